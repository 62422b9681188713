//! The Dockerfile syntax tree: parser directives, instructions with flags and arguments,
//! heredocs, comments and build stages, every token with its exact byte span.

mod parser;
mod words;

pub(crate) use parser::edit_distance;
pub use parser::parse;
pub use words::split_words;

use crate::shell::{self, Script};
use crate::span::{LineIndex, Span};

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The source text.
    pub source: String,
    /// Line index of `source`.
    pub lines: LineIndex,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// Parser directives at the top of the file (`# syntax=`, `# escape=`, `# check=`).
    pub directives: Vec<Directive>,
    /// Instructions in file order.
    pub instructions: Vec<Instruction>,
    /// Comment lines (outside heredoc bodies), used for inline ignores.
    pub comments: Vec<Token>,
    /// Problems the parser found; parsing continues past each one.
    pub errors: Vec<SyntaxError>,
    /// Build stages, one per `FROM`.
    pub stages: Vec<Stage>,
}

/// A syntax problem with its position and a fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the problem is.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// A piece of text with its span in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The text, with quotes and escapes removed where the context calls for it.
    pub text: String,
    /// Where it is in the source.
    pub span: Span,
}

/// A parser directive such as `# escape=``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lowercase directive name.
    pub name: String,
    /// Its value, trimmed.
    pub value: String,
    /// The whole directive line.
    pub span: Span,
}

/// Which instruction a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `ADD`: copy files, URLs or archives.
    Add,
    /// `ARG`: a build argument.
    Arg,
    /// `CMD`: the default command.
    Cmd,
    /// `COPY`: copy files from the context or a stage.
    Copy,
    /// `ENTRYPOINT`: the executable the container runs.
    Entrypoint,
    /// `ENV`: environment variables of the image.
    Env,
    /// `EXPOSE`: ports the service listens on.
    Expose,
    /// `FROM`: start a stage from a base image.
    From,
    /// `HEALTHCHECK`: how to tell the container is healthy.
    Healthcheck,
    /// `LABEL`: image metadata.
    Label,
    /// `MAINTAINER`: deprecated author field.
    Maintainer,
    /// `ONBUILD`: an instruction for images built from this one.
    Onbuild,
    /// `RUN`: a build step.
    Run,
    /// `SHELL`: the shell for shell-form instructions.
    Shell,
    /// `STOPSIGNAL`: the signal that stops the container.
    Stopsignal,
    /// `USER`: the user the container runs as.
    User,
    /// `VOLUME`: declared data directories.
    Volume,
    /// `WORKDIR`: the working directory.
    Workdir,
    /// Not a Dockerfile instruction (reported as a syntax error).
    Unknown,
}

impl Kind {
    /// The instruction for a keyword, case-insensitively.
    pub fn from_keyword(word: &str) -> Kind {
        match word.to_ascii_uppercase().as_str() {
            "ADD" => Kind::Add,
            "ARG" => Kind::Arg,
            "CMD" => Kind::Cmd,
            "COPY" => Kind::Copy,
            "ENTRYPOINT" => Kind::Entrypoint,
            "ENV" => Kind::Env,
            "EXPOSE" => Kind::Expose,
            "FROM" => Kind::From,
            "HEALTHCHECK" => Kind::Healthcheck,
            "LABEL" => Kind::Label,
            "MAINTAINER" => Kind::Maintainer,
            "ONBUILD" => Kind::Onbuild,
            "RUN" => Kind::Run,
            "SHELL" => Kind::Shell,
            "STOPSIGNAL" => Kind::Stopsignal,
            "USER" => Kind::User,
            "VOLUME" => Kind::Volume,
            "WORKDIR" => Kind::Workdir,
            _ => Kind::Unknown,
        }
    }

    /// Whether the instruction accepts leading `--flag` options.
    pub fn takes_flags(self) -> bool {
        matches!(
            self,
            Kind::Add | Kind::Copy | Kind::From | Kind::Run | Kind::Healthcheck
        )
    }

    /// Whether the instruction has a JSON (exec) form.
    pub fn has_exec_form(self) -> bool {
        matches!(
            self,
            Kind::Add
                | Kind::Cmd
                | Kind::Copy
                | Kind::Entrypoint
                | Kind::Healthcheck
                | Kind::Run
                | Kind::Shell
                | Kind::Volume
        )
    }
}

/// A `--name=value` option before an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Name without the leading dashes.
    pub name: String,
    /// Value after `=`, unquoted, if any.
    pub value: Option<String>,
    /// The whole flag.
    pub span: Span,
}

/// Text joined from several source lines (continuations and comment lines removed), with the
/// source offset of every byte so positions stay exact.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text {
    /// The joined text.
    pub text: String,
    /// `offsets[i]` is the source offset of byte `i`; one extra entry marks the end.
    offsets: Vec<usize>,
}

impl Text {
    fn push_str(&mut self, s: &str, source_start: usize) {
        self.offsets.pop();
        self.text.push_str(s);
        self.offsets.extend(source_start..source_start + s.len());
        self.offsets.push(source_start + s.len());
    }

    fn ends_at(&mut self, end: usize) {
        if let Some(last) = self.offsets.last_mut() {
            *last = end;
        } else {
            self.offsets.push(end);
        }
    }

    /// The source offset of byte `i` of the text (clamped to the end).
    pub fn offset(&self, i: usize) -> usize {
        self.offsets
            .get(i)
            .or(self.offsets.last())
            .copied()
            .unwrap_or(0)
    }

    /// The source span of the text range `start..end`.
    pub fn span(&self, start: usize, end: usize) -> Span {
        let s = self.offset(start);
        let e = if end > start {
            self.offset(end - 1) + 1
        } else {
            s
        };
        Span::new(s, e.max(s))
    }

    /// The text from byte `from`, trimmed of leading whitespace, as a new `Text`.
    fn slice(&self, from: usize) -> Text {
        let from = from.min(self.text.len());
        let skip = self.text[from..].len() - self.text[from..].trim_start().len();
        let from = from + skip;
        Text {
            text: self.text[from..].to_string(),
            offsets: self.offsets[from..].to_vec(),
        }
    }

    /// The span of the whole text.
    pub fn whole(&self) -> Span {
        self.span(0, self.text.len())
    }
}

/// An instruction's arguments after its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arguments {
    /// JSON array form, e.g. `CMD ["gunicorn", "app:app"]`.
    Exec(Vec<Token>),
    /// Shell form: the rest of the line, continuations joined.
    Shell(Text),
    /// Nothing to run (`HEALTHCHECK NONE`).
    None,
}

/// A here-document attached to a RUN, COPY or ADD instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF` in `<<EOF`).
    pub delimiter: String,
    /// Whether `<<-` strips leading tabs.
    pub strip_tabs: bool,
    /// Whether the delimiter was quoted (no variable expansion in the body).
    pub quoted: bool,
    /// The `<<EOF` marker in the instruction.
    pub marker: Span,
    /// The body, without the terminating delimiter line.
    pub body: Text,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Which instruction.
    pub kind: Kind,
    /// The keyword as written.
    pub keyword: Token,
    /// From the keyword to the end of its last line (heredoc bodies included).
    pub span: Span,
    /// Leading `--flag` options.
    pub flags: Vec<Flag>,
    /// The arguments.
    pub args: Arguments,
    /// Here-documents, in order.
    pub heredocs: Vec<Heredoc>,
    /// The instruction an `ONBUILD` wraps.
    pub onbuild: Option<Box<Instruction>>,
    /// The escape character in force.
    pub escape: char,
}

impl Instruction {
    /// The value of flag `name` (`--from=build` gives `Some("build")`).
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The arguments split into words (quotes removed), for non-shell instructions such as
    /// FROM, COPY, USER or EXPOSE. Exec-form arguments are returned as they are.
    pub fn words(&self) -> Vec<Token> {
        match &self.args {
            Arguments::Exec(items) => items.clone(),
            Arguments::Shell(text) => split_words(text, self.escape),
            Arguments::None => Vec::new(),
        }
    }

    /// The raw argument text (shell form) or the exec items joined by spaces.
    pub fn args_text(&self) -> String {
        match &self.args {
            Arguments::Exec(items) => items
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            Arguments::Shell(text) => text.text.clone(),
            Arguments::None => String::new(),
        }
    }

    /// `KEY=value` pairs of ENV, ARG and LABEL (legacy `ENV KEY value` too). ARG without a
    /// default gives `None` as the value.
    pub fn pairs(&self) -> Vec<(Token, Option<Token>)> {
        let words = self.words();
        if self.kind == Kind::Env
            && words.first().is_some_and(|w| !w.text.contains('='))
            && words.len() > 1
        {
            let key = words[0].clone();
            let span = words[1].span.join(words[words.len() - 1].span);
            let text = words[1..]
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            return vec![(key, Some(Token { text, span }))];
        }
        words
            .into_iter()
            .map(|w| match w.text.split_once('=') {
                Some((k, v)) => {
                    let key_end = w.span.start + k.len();
                    (
                        Token {
                            text: k.to_string(),
                            span: Span::new(w.span.start, key_end),
                        },
                        Some(Token {
                            text: v.to_string(),
                            span: w.span,
                        }),
                    )
                }
                None => (w, None),
            })
            .collect()
    }

    /// The commands this instruction runs: RUN, CMD, ENTRYPOINT and HEALTHCHECK, shell or
    /// exec form, including shell heredoc bodies and `sh -c` strings.
    pub fn script(&self) -> Script {
        let mut script = match &self.args {
            Arguments::Exec(items) => Script::from_exec(items),
            Arguments::Shell(text) => shell::parse(&text.text, &|i| text.offset(i)),
            Arguments::None => Script::default(),
        };
        if self.kind == Kind::Run && !self.heredocs.is_empty() {
            let shell_body = script.commands.first().is_none_or(|c| {
                c.words.is_empty()
                    || matches!(
                        c.program_name(),
                        Some("sh" | "bash" | "ash" | "dash" | "zsh")
                    )
            });
            if shell_body {
                for doc in &self.heredocs {
                    let body = shell::parse(&doc.body.text, &|i| doc.body.offset(i));
                    script.commands.extend(body.commands);
                }
            }
        }
        script.expand_shell_c();
        script
    }
}

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages (0-based).
    pub index: usize,
    /// The `AS name`, lowercased.
    pub name: Option<String>,
    /// The base image as written (before ARG substitution).
    pub base: Token,
    /// The base with global ARG defaults substituted.
    pub base_resolved: String,
    /// The stage this one builds on, if its base names an earlier stage.
    pub parent: Option<usize>,
    /// Index of the FROM instruction in `Dockerfile::instructions`.
    pub from: usize,
    /// Indices of the instructions after FROM belonging to this stage.
    pub body: std::ops::Range<usize>,
}

impl Dockerfile {
    /// The last stage: the image that gets run.
    pub fn final_stage(&self) -> Option<&Stage> {
        self.stages.last()
    }

    /// `stage` and the stages it builds on, base first.
    pub fn chain(&self, stage: &Stage) -> Vec<&Stage> {
        let Some(mut current) = self.stages.get(stage.index) else {
            return Vec::new();
        };
        let mut chain = vec![current];
        while let Some(parent) = current.parent.and_then(|p| self.stages.get(p)) {
            if chain.iter().any(|s| s.index == parent.index) {
                break;
            }
            chain.push(parent);
            current = parent;
        }
        chain.reverse();
        chain
    }

    /// The instructions that make up the image of `stage`: its own and those of the stages it
    /// builds on, in order.
    pub fn effective(&self, stage: &Stage) -> Vec<&Instruction> {
        self.chain(stage)
            .into_iter()
            .flat_map(|s| self.instructions[s.body.clone()].iter())
            .collect()
    }

    /// The instructions of one stage only.
    pub fn stage_instructions(&self, stage: &Stage) -> &[Instruction] {
        &self.instructions[stage.body.clone()]
    }

    /// Global ARGs (before the first FROM) with their defaults.
    pub fn global_args(&self) -> Vec<(String, Option<String>)> {
        let first_from = self
            .stages
            .first()
            .map_or(self.instructions.len(), |s| s.from);
        self.instructions[..first_from]
            .iter()
            .filter(|i| i.kind == Kind::Arg)
            .flat_map(|i| i.pairs())
            .map(|(k, v)| (k.text, v.map(|v| v.text)))
            .collect()
    }

    /// The stage named `name` (case-insensitive) or with that index.
    pub fn stage_by_ref(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }
}

/// Expand `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `${VAR:+alt}` in `text`
/// from `lookup`. Unknown variables expand to nothing, as Docker does.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().map(|&(_, c)| c) {
            Some('{') => {
                let rest = &text[i + 2..];
                let Some(close) = rest.find('}') else {
                    out.push_str(&text[i..]);
                    break;
                };
                let inner = &rest[..close];
                let (name, op, word) = split_modifier(inner);
                let value = lookup(name).filter(|v| !(op == ":-" && v.is_empty()));
                let expanded = match op {
                    ":-" | "-" => value.unwrap_or_else(|| expand(word, lookup)),
                    ":+" | "+" => value.map(|_| expand(word, lookup)).unwrap_or_default(),
                    _ => value.unwrap_or_default(),
                };
                out.push_str(&expanded);
                let end = i + 2 + close;
                while chars.peek().is_some_and(|&(j, _)| j <= end) {
                    chars.next();
                }
            }
            Some(c2) if c2 == '_' || c2.is_ascii_alphabetic() => {
                let start = i + 1;
                let mut end = start;
                while let Some(&(j, c)) = chars.peek() {
                    if c == '_' || c.is_ascii_alphanumeric() {
                        end = j + c.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push_str(&lookup(&text[start..end]).unwrap_or_default());
            }
            _ => out.push('$'),
        }
    }
    out
}

fn split_modifier(inner: &str) -> (&str, &str, &str) {
    for op in [":-", ":+", "-", "+"] {
        if let Some(pos) = inner.find(op) {
            return (&inner[..pos], op, &inner[pos + op.len()..]);
        }
    }
    (inner, "", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables_with_defaults() {
        let lookup = |name: &str| (name == "A").then(|| "x".to_string());
        assert_eq!(
            expand("$A/${A}/${B:-d}/${A:+y}/${B:+y}/$B.", &lookup),
            "x/x/d/y//."
        );
        assert_eq!(expand("${UNCLOSED", &lookup), "${UNCLOSED");
        assert_eq!(expand("cost $5", &lookup), "cost $5");
    }
}

#[cfg(test)]
mod parser_tests;
