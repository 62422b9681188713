//! The Dockerfile parser. It never fails: problems become `SyntaxError`s with positions and
//! parsing carries on with the next line.

use super::{
    Arguments, Directive, Dockerfile, Flag, Heredoc, Instruction, Kind, Stage, SyntaxError, Text,
    Token, expand,
};
use crate::span::{LineIndex, Span};

const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parse a Dockerfile. Always returns a tree; syntax problems are in `Dockerfile::errors`.
pub fn parse(source: &str) -> Dockerfile {
    let lines = split_lines(source);
    let mut errors = Vec::new();
    let mut directives = Vec::new();
    let mut comments = Vec::new();
    let mut instructions = Vec::new();
    let mut escape = '\\';
    let mut i = 0;

    while let Some(&(start, end)) = lines.get(i) {
        let Some(directive) = parse_directive(&source[start..end], Span::new(start, end)) else {
            break;
        };
        if directives
            .iter()
            .any(|d: &Directive| d.name == directive.name)
        {
            break;
        }
        if directive.name == "escape" {
            match directive.value.as_str() {
                "\\" => escape = '\\',
                "`" => escape = '`',
                other => errors.push(SyntaxError {
                    span: directive.span,
                    message: format!("invalid escape character `{other}`"),
                    fix: "use `# escape=\\` or `# escape=``".to_string(),
                }),
            }
        }
        directives.push(directive);
        i += 1;
    }

    while let Some(&(start, end)) = lines.get(i) {
        let line = &source[start..end];
        if line.trim().is_empty() {
            i += 1;
            continue;
        }
        if line.trim_start().starts_with('#') {
            let lead = line.len() - line.trim_start().len();
            comments.push(Token {
                text: line.trim().to_string(),
                span: Span::new(start + lead, end),
            });
            i += 1;
            continue;
        }
        let mut text = Text::default();
        while let Some(&(ls, le)) = lines.get(i) {
            let line = &source[ls..le];
            let trimmed = line.trim_end();
            i += 1;
            if let Some(content) = trimmed.strip_suffix(escape) {
                text.push_str(content, ls);
                while lines.get(i).is_some_and(|&(s, e)| {
                    let l = source[s..e].trim_start();
                    l.is_empty() || l.starts_with('#')
                }) {
                    i += 1;
                }
            } else {
                text.push_str(trimmed, ls);
                break;
            }
        }
        let Some(mut instruction) = parse_logical(&text, escape, &mut errors) else {
            continue;
        };
        let mut span_end = text.offset(text.text.len());
        for doc in &mut instruction.heredocs {
            let mut body = Text::default();
            let mut terminated = false;
            while let Some(&(ls, le)) = lines.get(i) {
                i += 1;
                let line = &source[ls..le];
                let (content, skipped) = if doc.strip_tabs {
                    let stripped = line.trim_start_matches('\t');
                    (stripped, line.len() - stripped.len())
                } else {
                    (line, 0)
                };
                span_end = le;
                if content.trim_end_matches('\r') == doc.delimiter {
                    terminated = true;
                    break;
                }
                body.push_str(content, ls + skipped);
                body.push_str("\n", le);
            }
            body.ends_at(span_end);
            if !terminated {
                errors.push(SyntaxError {
                    span: doc.marker,
                    message: format!("here-document `{}` is never closed", doc.delimiter),
                    fix: format!("end it with a line containing only `{}`", doc.delimiter),
                });
            }
            doc.body = body;
        }
        instruction.span = Span::new(instruction.keyword.span.start, span_end);
        instructions.push(instruction);
    }

    let mut dockerfile = Dockerfile {
        source: source.to_string(),
        lines: LineIndex::new(source),
        escape,
        directives,
        instructions,
        comments,
        errors,
        stages: Vec::new(),
    };
    build_stages(&mut dockerfile);
    dockerfile
}

/// Byte ranges of each line without its line ending.
fn split_lines(source: &str) -> Vec<(usize, usize)> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, _) in source.match_indices('\n') {
        let end = if source[start..i].ends_with('\r') {
            i - 1
        } else {
            i
        };
        lines.push((start, end));
        start = i + 1;
    }
    if start < source.len() {
        lines.push((start, source.len()));
    }
    lines
}

fn parse_directive(line: &str, span: Span) -> Option<Directive> {
    let body = line.trim().strip_prefix('#')?;
    let (name, value) = body.split_once('=')?;
    let name = name.trim().to_ascii_lowercase();
    if !matches!(name.as_str(), "syntax" | "escape" | "check") {
        return None;
    }
    Some(Directive {
        name,
        value: value.trim().to_string(),
        span,
    })
}

fn parse_logical(text: &Text, escape: char, errors: &mut Vec<SyntaxError>) -> Option<Instruction> {
    let body = text.slice(0);
    let keyword_len = body
        .text
        .find(char::is_whitespace)
        .unwrap_or(body.text.len());
    if keyword_len == 0 {
        return None;
    }
    let keyword = Token {
        text: body.text[..keyword_len].to_string(),
        span: body.span(0, keyword_len),
    };
    let kind = Kind::from_keyword(&keyword.text);
    if kind == Kind::Unknown {
        let fix = match closest_keyword(&keyword.text) {
            Some(k) => format!("did you mean `{k}`?"),
            None => "use a Dockerfile instruction such as RUN, COPY or CMD".to_string(),
        };
        errors.push(SyntaxError {
            span: keyword.span,
            message: format!("unknown instruction `{}`", keyword.text),
            fix,
        });
    }
    let mut rest = body.slice(keyword_len);
    let mut flags = Vec::new();
    if kind.takes_flags() {
        while rest.text.starts_with("--") {
            let len = rest
                .text
                .find(char::is_whitespace)
                .unwrap_or(rest.text.len());
            let raw = &rest.text[2..len];
            let (name, value) = match raw.split_once('=') {
                Some((n, v)) => (
                    n,
                    Some(v.trim_matches(|c| c == '"' || c == '\'').to_string()),
                ),
                None => (raw, None),
            };
            flags.push(Flag {
                name: name.to_ascii_lowercase(),
                value,
                span: rest.span(0, len),
            });
            rest = rest.slice(len);
        }
    }
    let mut onbuild = None;
    let args = match kind {
        Kind::Healthcheck => {
            let word_len = rest
                .text
                .find(char::is_whitespace)
                .unwrap_or(rest.text.len());
            let word = rest.text[..word_len].to_ascii_uppercase();
            match word.as_str() {
                "NONE" => Arguments::None,
                "CMD" => command_args(rest.slice(word_len), kind, errors),
                _ => {
                    errors.push(SyntaxError {
                        span: if word_len > 0 {
                            rest.span(0, word_len)
                        } else {
                            keyword.span
                        },
                        message: "HEALTHCHECK must be followed by CMD or NONE".to_string(),
                        fix: "write `HEALTHCHECK CMD <command>` or `HEALTHCHECK NONE`".to_string(),
                    });
                    Arguments::Shell(rest)
                }
            }
        }
        Kind::Onbuild => {
            onbuild = parse_logical(&rest, escape, errors).map(Box::new);
            Arguments::Shell(rest)
        }
        _ => command_args(rest, kind, errors),
    };
    if matches!(&args, Arguments::Shell(t) if t.text.trim().is_empty())
        && !matches!(kind, Kind::Unknown)
    {
        errors.push(SyntaxError {
            span: keyword.span,
            message: format!("{} has no arguments", keyword.text.to_ascii_uppercase()),
            fix: "add the instruction's arguments or remove the line".to_string(),
        });
    }
    let heredocs = match (&args, kind) {
        (Arguments::Shell(t), Kind::Run | Kind::Copy | Kind::Add) => find_heredocs(t),
        _ => Vec::new(),
    };
    let span = Span::new(keyword.span.start, text.offset(text.text.len()));
    Some(Instruction {
        kind,
        keyword,
        span,
        flags,
        args,
        heredocs,
        onbuild,
        escape,
    })
}

fn command_args(rest: Text, kind: Kind, errors: &mut Vec<SyntaxError>) -> Arguments {
    if kind.has_exec_form() && rest.text.starts_with('[') {
        if let Some(items) = parse_json_array(&rest) {
            return Arguments::Exec(items);
        }
        if matches!(kind, Kind::Cmd | Kind::Entrypoint | Kind::Run | Kind::Shell) {
            errors.push(SyntaxError {
                span: rest.whole(),
                message: "this looks like the JSON (exec) form but is not valid JSON; Docker \
                          will run it as a shell command"
                    .to_string(),
                fix: "use double quotes and commas: [\"executable\", \"arg\"]".to_string(),
            });
        }
    }
    Arguments::Shell(rest)
}

/// Parse a JSON array of strings, keeping each string's span.
fn parse_json_array(text: &Text) -> Option<Vec<Token>> {
    let s = text.text.as_str();
    let bytes = s.as_bytes();
    let skip_ws = |mut i: usize| {
        while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    if bytes.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(i + 1);
    let mut items = Vec::new();
    if bytes.get(i) == Some(&b']') {
        return (skip_ws(i + 1) == bytes.len()).then_some(items);
    }
    loop {
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        let start = i;
        i += 1;
        loop {
            match bytes.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        i += 1;
        let value: String = serde_json::from_str(s.get(start..i)?).ok()?;
        items.push(Token {
            text: value,
            span: text.span(start, i),
        });
        i = skip_ws(i);
        match bytes.get(i)? {
            b',' => i = skip_ws(i + 1),
            b']' => break,
            _ => return None,
        }
    }
    (skip_ws(i + 1) == bytes.len()).then_some(items)
}

/// Find `<<EOF`, `<<-EOF`, `<<"EOF"` markers outside quotes.
fn find_heredocs(text: &Text) -> Vec<Heredoc> {
    let s = text.text.as_str();
    let bytes = s.as_bytes();
    let mut docs = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if bytes[i..].starts_with(b"<<") && !bytes[i..].starts_with(b"<<<") => {
                let start = i;
                let mut j = i + 2;
                let strip_tabs = bytes.get(j) == Some(&b'-');
                if strip_tabs {
                    j += 1;
                }
                let open = bytes.get(j).copied().filter(|&c| c == b'"' || c == b'\'');
                if open.is_some() {
                    j += 1;
                }
                let name_start = j;
                while bytes
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    j += 1;
                }
                let name_end = j;
                if open.is_some() && bytes.get(j).copied() == open {
                    j += 1;
                }
                if name_end > name_start {
                    docs.push(Heredoc {
                        delimiter: s[name_start..name_end].to_string(),
                        strip_tabs,
                        quoted: open.is_some(),
                        marker: text.span(start, j),
                        body: Text::default(),
                    });
                }
                i = j;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    docs
}

fn closest_keyword(word: &str) -> Option<&'static str> {
    let upper = word.to_ascii_uppercase();
    KEYWORDS
        .iter()
        .map(|k| (edit_distance(&upper, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn build_stages(df: &mut Dockerfile) {
    let globals = df
        .instructions
        .iter()
        .take_while(|i| i.kind != Kind::From)
        .filter(|i| i.kind == Kind::Arg)
        .flat_map(|i| i.pairs())
        .map(|(k, v)| (k.text, v.map(|v| v.text).unwrap_or_default()))
        .collect::<Vec<_>>();
    let lookup = |name: &str| {
        globals
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let froms: Vec<usize> = df
        .instructions
        .iter()
        .enumerate()
        .filter(|(_, i)| i.kind == Kind::From)
        .map(|(n, _)| n)
        .collect();
    for inst in df
        .instructions
        .iter()
        .take(froms.first().copied().unwrap_or(usize::MAX))
    {
        if !matches!(inst.kind, Kind::Arg | Kind::Unknown) {
            df.errors.push(SyntaxError {
                span: inst.keyword.span,
                message: format!(
                    "{} before the first FROM",
                    inst.keyword.text.to_ascii_uppercase()
                ),
                fix: "only ARG may come before FROM; start the file with `FROM <image>`"
                    .to_string(),
            });
        }
    }
    if froms.is_empty() {
        let span = df
            .instructions
            .first()
            .map_or(Span::new(0, 0), |i| i.keyword.span);
        df.errors.push(SyntaxError {
            span,
            message: "no FROM instruction: this file does not build an image".to_string(),
            fix: "start the file with `FROM <image>`".to_string(),
        });
    }
    let mut stages: Vec<Stage> = Vec::new();
    for (n, &from) in froms.iter().enumerate() {
        let inst = &df.instructions[from];
        let words = inst.words();
        let end = froms.get(n + 1).copied().unwrap_or(df.instructions.len());
        let Some(base) = words.first().cloned() else {
            continue;
        };
        let name = match words.as_slice() {
            [_] => None,
            [_, as_kw, name] if as_kw.text.eq_ignore_ascii_case("as") => {
                Some(name.text.to_ascii_lowercase())
            }
            _ => {
                df.errors.push(SyntaxError {
                    span: inst.span,
                    message: "FROM takes an image and an optional `AS name`".to_string(),
                    fix: "write `FROM <image>[:tag] [AS <name>]`".to_string(),
                });
                None
            }
        };
        let base_resolved = expand(&base.text, &lookup);
        let lower = base_resolved.to_ascii_lowercase();
        let parent = stages
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(lower.as_str()));
        let parent = parent.map(|s| s.index);
        stages.push(Stage {
            index: stages.len(),
            name,
            base,
            base_resolved,
            parent,
            from,
            body: from + 1..end,
        });
    }
    df.stages = stages;
}
