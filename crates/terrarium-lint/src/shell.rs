//! A focused POSIX shell tokenizer for RUN, CMD and ENTRYPOINT: simple commands, the
//! `&&`/`||`/`;`/`|`/`&` operators between them, redirections, quotes, `$(...)` and backquotes.
//! It does not run or expand anything; it gives the rules commands and arguments with spans.

use crate::dockerfile::Token;
use crate::span::Span;

/// How a command is joined to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    /// The first command of the script.
    Start,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `;`, a newline, or a subshell boundary.
    Seq,
    /// `|`
    Pipe,
}

/// One shell word with quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word's text with quotes and backslashes removed (expansions kept as written).
    pub text: String,
    /// Where the word is in the source.
    pub span: Span,
}

/// A simple command: words, redirections, and how it connects to the previous command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The words, assignments and program included.
    pub words: Vec<Word>,
    /// Redirection targets (`> file` gives `file`).
    pub redirects: Vec<Word>,
    /// The operator before this command.
    pub connector: Connector,
    /// Whether the command ends with `&` (runs in the background).
    pub background: bool,
}

/// The commands of a shell script, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// Commands, flattened (the bodies of `if`, `for` and subshells included).
    pub commands: Vec<Command>,
}

const SKIPPED_KEYWORDS: [&str; 13] = [
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "esac",
];
const WRAPPERS: [&str; 12] = [
    "sudo",
    "exec",
    "env",
    "nohup",
    "time",
    "nice",
    "command",
    "builtin",
    "gosu",
    "su-exec",
    "tini",
    "dumb-init",
];
/// Project tools whose `run` subcommand runs another program (`poetry run gunicorn ...`).
const RUNNERS: [&str; 6] = ["poetry", "uv", "pipenv", "pdm", "hatch", "rye"];
/// Shells whose `-c` argument is a script.
pub const SHELLS: [&str; 5] = ["sh", "bash", "ash", "dash", "zsh"];

impl Command {
    fn new(connector: Connector) -> Self {
        Command {
            words: Vec::new(),
            redirects: Vec::new(),
            connector,
            background: false,
        }
    }

    /// Index of the program word, after `VAR=value` assignments and wrappers such as `sudo`,
    /// `exec`, `env`, `nohup`, `gosu user` or `tini --`.
    pub fn program_index(&self) -> Option<usize> {
        let mut i = 0;
        loop {
            let word = self.words.get(i)?;
            if is_assignment(&word.text) {
                i += 1;
                continue;
            }
            let name = basename(&word.text);
            let runner =
                RUNNERS.contains(&name) && self.words.get(i + 1).is_some_and(|w| w.text == "run");
            if runner {
                i += 2;
                while self.words.get(i).is_some_and(|w| w.text.starts_with('-')) {
                    i += 1;
                }
                continue;
            }
            if !WRAPPERS.contains(&name) {
                return Some(i);
            }
            i += 1;
            while let Some(w) = self.words.get(i) {
                if w.text == "--" {
                    i += 1;
                    break;
                }
                if w.text.starts_with('-') {
                    let takes_value = matches!(
                        (name, w.text.as_str()),
                        ("sudo", "-u" | "-g") | ("nice", "-n") | ("env", "-u")
                    );
                    i += if takes_value { 2 } else { 1 };
                } else if name == "env" && is_assignment(&w.text) {
                    i += 1;
                } else {
                    break;
                }
            }
            if matches!(name, "gosu" | "su-exec") {
                i += 1;
            }
        }
    }

    /// The program's base name (`/usr/sbin/sshd` gives `sshd`).
    pub fn program_name(&self) -> Option<&str> {
        self.program_index().map(|i| basename(&self.words[i].text))
    }

    /// The words after the program.
    pub fn args(&self) -> &[Word] {
        self.program_index().map_or(&[], |i| &self.words[i + 1..])
    }

    /// Whether any argument equals one of `options` (exactly, or as `--opt=value`).
    pub fn has_option(&self, options: &[&str]) -> bool {
        self.args().iter().any(|w| {
            options.iter().any(|o| {
                w.text == *o || (o.starts_with("--") && w.text.starts_with(&format!("{o}=")))
            })
        })
    }

    /// Whether a short option letter appears in any `-abc` style argument.
    pub fn has_short_flag(&self, letter: char) -> bool {
        self.args().iter().any(|w| {
            w.text.len() > 1
                && w.text.starts_with('-')
                && !w.text.starts_with("--")
                && w.text[1..].chars().all(|c| c.is_ascii_alphabetic())
                && w.text[1..].contains(letter)
        })
    }

    /// The span of the whole command.
    pub fn span(&self) -> Span {
        match (self.words.first(), self.words.last()) {
            (Some(a), Some(b)) => a.span.join(b.span),
            _ => Span::default(),
        }
    }

    /// The words as one line, for messages.
    pub fn text(&self) -> String {
        self.words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Script {
    /// A script of one command made of exec-form items.
    pub fn from_exec(items: &[Token]) -> Script {
        let words = items
            .iter()
            .map(|t| Word {
                text: t.text.clone(),
                span: t.span,
            })
            .collect();
        Script {
            commands: vec![Command {
                words,
                redirects: Vec::new(),
                connector: Connector::Start,
                background: false,
            }],
        }
    }

    /// Add the commands inside `sh -c "..."` strings after the commands that hold them.
    pub fn expand_shell_c(&mut self) {
        let mut extra = Vec::new();
        for cmd in &self.commands {
            if !cmd.program_name().is_some_and(|p| SHELLS.contains(&p)) {
                continue;
            }
            let args = cmd.args();
            let c_flag = args.iter().position(|w| {
                w.text.starts_with('-') && !w.text.starts_with("--") && w.text.contains('c')
            });
            if let Some(script) = c_flag.and_then(|p| args.get(p + 1)) {
                let span = script.span;
                let nested = parse(&script.text, &|i| (span.start + 1 + i).min(span.end));
                extra.extend(nested.commands);
            }
        }
        self.commands.extend(extra);
    }

    /// Commands whose program is `name`.
    pub fn find<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Command> + 'a {
        self.commands
            .iter()
            .filter(move |c| c.program_name() == Some(name))
    }
}

/// `/usr/bin/python3` gives `python3`.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

struct Tokenizer<'a> {
    map: &'a dyn Fn(usize) -> usize,
    commands: Vec<Command>,
    current: Command,
    word: Option<(String, usize, usize)>,
    redirect_next: bool,
}

impl Tokenizer<'_> {
    fn push_char(&mut self, c: char, at: usize, end: usize) {
        match &mut self.word {
            Some((text, _, e)) => {
                text.push(c);
                *e = end;
            }
            None => self.word = Some((c.to_string(), at, end)),
        }
    }

    fn push_str(&mut self, s: &str, at: usize, end: usize) {
        match &mut self.word {
            Some((text, _, e)) => {
                text.push_str(s);
                *e = end;
            }
            None => self.word = Some((s.to_string(), at, end)),
        }
    }

    fn end_word(&mut self) {
        let Some((text, start, end)) = self.word.take() else {
            return;
        };
        let span = Span::new((self.map)(start), (self.map)(end.saturating_sub(1)) + 1);
        let word = Word { text, span };
        if self.redirect_next {
            self.redirect_next = false;
            self.current.redirects.push(word);
        } else if self.current.words.is_empty() && SKIPPED_KEYWORDS.contains(&word.text.as_str()) {
        } else {
            self.current.words.push(word);
        }
    }

    fn end_command(&mut self, next: Connector) {
        self.end_word();
        let done = std::mem::replace(&mut self.current, Command::new(next));
        if !done.words.is_empty() || !done.redirects.is_empty() {
            self.commands.push(done);
        } else if done.connector != Connector::Start && next == Connector::Seq {
            self.current.connector = done.connector;
        }
    }
}

/// Tokenize `text`. `map` turns a byte offset in `text` into an offset in the source file.
pub fn parse(text: &str, map: &dyn Fn(usize) -> usize) -> Script {
    let mut t = Tokenizer {
        map,
        commands: Vec::new(),
        current: Command::new(Connector::Start),
        word: None,
        redirect_next: false,
    };
    let bytes = text.as_bytes();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, c)| c);
        match c {
            ' ' | '\t' | '\r' => t.end_word(),
            '\n' => t.end_command(Connector::Seq),
            '#' if t.word.is_none() => {
                while chars.peek().is_some_and(|&(_, c)| c != '\n') {
                    chars.next();
                }
            }
            ';' | '(' | ')' => t.end_command(Connector::Seq),
            '&' if next == Some('&') => {
                chars.next();
                t.end_command(Connector::And);
            }
            '&' if next == Some('>') => {
                t.end_word();
                chars.next();
                if chars.peek().is_some_and(|&(_, c)| c == '>') {
                    chars.next();
                }
                t.redirect_next = true;
            }
            '&' => {
                t.current.background = true;
                t.end_command(Connector::Seq);
            }
            '|' if next == Some('|') => {
                chars.next();
                t.end_command(Connector::Or);
            }
            '|' => {
                if next == Some('&') {
                    chars.next();
                }
                t.end_command(Connector::Pipe);
            }
            '>' | '<' => {
                if t.word
                    .as_ref()
                    .is_some_and(|(w, _, _)| w.chars().all(|c| c.is_ascii_digit()))
                {
                    t.word = None;
                } else {
                    t.end_word();
                }
                while chars
                    .peek()
                    .is_some_and(|&(_, c)| matches!(c, '>' | '<' | '|'))
                {
                    chars.next();
                }
                if chars.peek().is_some_and(|&(_, c)| c == '&') {
                    chars.next();
                    if chars
                        .peek()
                        .is_some_and(|&(_, c)| c.is_ascii_digit() || c == '-')
                    {
                        while chars
                            .peek()
                            .is_some_and(|&(_, c)| c.is_ascii_digit() || c == '-')
                        {
                            chars.next();
                        }
                        continue;
                    }
                }
                t.redirect_next = true;
            }
            '\'' => {
                let start = i;
                let mut end = text.len();
                let mut content = String::new();
                for (j, c) in chars.by_ref() {
                    if c == '\'' {
                        end = j + 1;
                        break;
                    }
                    content.push(c);
                }
                t.push_str(&content, start, end);
            }
            '"' => {
                let start = i;
                let mut end = text.len();
                let mut content = String::new();
                while let Some((j, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = j + 1;
                            break;
                        }
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                if !matches!(n, '"' | '\\' | '$' | '`' | '\n') {
                                    content.push('\\');
                                }
                                if n != '\n' {
                                    content.push(n);
                                }
                            }
                        }
                        '$' if chars.peek().is_some_and(|&(_, c)| c == '(') => {
                            let close = balanced_end(bytes, j + 1);
                            content.push_str(&text[j..close]);
                            while chars.peek().is_some_and(|&(k, _)| k < close) {
                                chars.next();
                            }
                        }
                        c => content.push(c),
                    }
                }
                t.push_str(&content, start, end);
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((j, n)) => t.push_char(n, i, j + n.len_utf8()),
                None => {}
            },
            '$' if next == Some('(') || next == Some('{') => {
                let close = if next == Some('(') {
                    balanced_end(bytes, i + 1)
                } else {
                    text[i..].find('}').map_or(text.len(), |p| i + p + 1)
                };
                t.push_str(&text[i..close], i, close);
                while chars.peek().is_some_and(|&(k, _)| k < close) {
                    chars.next();
                }
            }
            '`' => {
                let close = text[i + 1..]
                    .find('`')
                    .map_or(text.len(), |p| i + 1 + p + 1);
                t.push_str(&text[i..close], i, close);
                while chars.peek().is_some_and(|&(k, _)| k < close) {
                    chars.next();
                }
            }
            c => t.push_char(c, i, i + c.len_utf8()),
        }
    }
    t.end_command(Connector::Seq);
    Script {
        commands: t.commands,
    }
}

/// Index just past the `)` matching the `(` at `open`, skipping quoted text.
fn balanced_end(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = open;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'\\' => i += 1,
                b'(' => depth += 1,
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(s: &str) -> Vec<(Connector, Vec<String>)> {
        parse(s, &|i| i)
            .commands
            .into_iter()
            .map(|c| (c.connector, c.words.into_iter().map(|w| w.text).collect()))
            .collect()
    }

    #[test]
    fn splits_chains() {
        let c = cmds("apt-get update && apt-get install -y x || true; echo 'a b' | tee f");
        assert_eq!(c.len(), 5);
        assert_eq!(c[0].1, ["apt-get", "update"]);
        assert_eq!(c[1].0, Connector::And);
        assert_eq!(c[2].0, Connector::Or);
        assert_eq!(c[3].1, ["echo", "a b"]);
        assert_eq!(c[4].0, Connector::Pipe);
    }

    #[test]
    fn redirects_and_background() {
        let s = parse("gunicorn app:app > /var/log/x.log 2>&1 & nginx", &|i| i);
        assert_eq!(s.commands.len(), 2);
        assert!(s.commands[0].background);
        assert_eq!(s.commands[0].redirects[0].text, "/var/log/x.log");
        assert_eq!(s.commands[0].words.len(), 2);
        assert_eq!(s.commands[1].words[0].text, "nginx");
    }

    #[test]
    fn substitutions_and_quotes_stay_in_one_word() {
        let c = cmds(r#"echo "$(cat a | wc -l)" `date` ${X:-y} a\ b"#);
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].1,
            ["echo", "$(cat a | wc -l)", "`date`", "${X:-y}", "a b"]
        );
    }

    #[test]
    fn keywords_are_skipped() {
        let c = cmds("if [ -f x ]; then pip install y; fi");
        assert_eq!(c[1].1, ["pip", "install", "y"]);
    }

    #[test]
    fn program_skips_wrappers() {
        let s = parse("FOO=1 sudo -u app exec /usr/sbin/sshd -D", &|i| i);
        assert_eq!(s.commands[0].program_name(), Some("sshd"));
        let run = parse("poetry run --no-interaction gunicorn app:app", &|i| i);
        assert_eq!(run.commands[0].program_name(), Some("gunicorn"));
        let uv = parse("uv pip install x", &|i| i);
        assert_eq!(uv.commands[0].program_name(), Some("uv"));
        assert_eq!(s.commands[0].args()[0].text, "-D");
    }

    #[test]
    fn nested_sh_c() {
        let mut s = parse("sh -c 'flask run --host 0.0.0.0'", &|i| i);
        s.expand_shell_c();
        assert!(s.find("flask").next().is_some());
    }

    #[test]
    fn spans_map_to_source() {
        let s = parse("a  bc", &|i| i + 100);
        assert_eq!(s.commands[0].words[1].span, Span::new(103, 105));
    }
}
