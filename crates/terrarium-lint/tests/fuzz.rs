//! Property tests: the parsers and rules never panic and always finish on arbitrary input,
//! and every reported position lies inside the file. Bounded so `cargo test` stays fast.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use terrarium_lint::{Config, FileKind, lint_source};

/// Dockerfile-ish fragments so generated inputs reach deep into the parser.
fn dockerfile_line() -> impl Strategy<Value = String> {
    let keyword = prop::sample::select(vec![
        "FROM",
        "RUN",
        "CMD",
        "ENTRYPOINT",
        "COPY",
        "ADD",
        "ENV",
        "ARG",
        "USER",
        "WORKDIR",
        "EXPOSE",
        "HEALTHCHECK",
        "ONBUILD",
        "SHELL",
        "VOLUME",
        "LABEL",
        "# escape=`",
        "# syntax=x",
        "#",
        "",
    ]);
    let piece = prop::sample::select(vec![
        "python:3.12",
        "AS build",
        "--from=build",
        "--mount=type=cache,target=/x",
        "<<EOF",
        "<<-'X'",
        "EOF",
        "X",
        "[\"a\", \"b\"]",
        "['a']",
        "[",
        "\"",
        "'",
        "\\",
        "`",
        "&&",
        "||",
        "|",
        ";",
        "&",
        "$(",
        ")",
        "${A:-b}",
        "$A",
        "pip install flask",
        "apt-get install -y x",
        "flask run",
        "sh -c",
        "\"exec gunicorn\"",
        "2>&1",
        "> /var/log/x",
        "é",
        "\t",
        "USER root",
        "0:0",
        "=",
        "A=1",
    ]);
    (keyword, prop::collection::vec(piece, 0..8), any::<bool>()).prop_map(|(k, pieces, cont)| {
        format!("{k} {}{}", pieces.join(" "), if cont { " \\" } else { "" })
    })
}

fn check(name: &str, src: &str) {
    let path = Path::new(name);
    let start = Instant::now();
    let findings = lint_source(path, src, FileKind::for_explicit(path), &Config::default());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    let lines = src.split('\n').count().max(1);
    for f in findings {
        assert!(
            f.location.line >= 1 && f.location.line <= lines + 1,
            "{f:?} in {lines} lines"
        );
        assert!(f.location.column >= 1, "{f:?}");
    }
}

/// The fixture corpus, read once.
fn fixtures() -> &'static [(String, String)] {
    static FIXTURES: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| {
        let mut files: Vec<(String, String)> = std::fs::read_dir("tests/fixtures")
            .expect("fixtures")
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(e.path()).ok()?;
                Some((name, text))
            })
            .collect();
        files.sort();
        files
    })
}

/// Apply byte-level edits (delete, or insert one of a few significant characters) to `text`.
fn mutate(text: &str, edits: &[(usize, u8)]) -> String {
    const INSERT: &[u8] = b"\\\n\"'`[]{}:-#$&|<>= \t";
    let mut bytes = text.as_bytes().to_vec();
    for &(at, what) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        if what % 3 == 0 {
            bytes.remove(at);
        } else {
            bytes.insert(at, INSERT[usize::from(what) % INSERT.len()]);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000), max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn dockerfile_arbitrary_text(src in "\\PC{0,400}") {
        check("Dockerfile", &src);
    }

    #[test]
    fn dockerfile_structured(lines in prop::collection::vec(dockerfile_line(), 0..30)) {
        check("Dockerfile", &lines.join("\n"));
    }

    #[test]
    fn fixture_mutations(pick in any::<usize>(), edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..12)) {
        let files = fixtures();
        let (name, text) = &files[pick % files.len()];
        let name = if name.ends_with(".yaml") { "compose.yaml" } else { "Dockerfile" };
        check(name, &mutate(text, &edits));
    }

    #[test]
    fn compose_arbitrary_text(src in "[ a-z:\\-\\n\"'\\[\\]{}#&*!|>0-9.$]{0,300}") {
        check("compose.yaml", &src);
    }

    #[test]
    fn compose_structured(services in prop::collection::vec((
        "[a-z]{1,6}",
        prop::sample::select(vec!["image: postgres", "build: .", "user: root", "privileged: true", "ports: [\"5432:5432\"]", "ports: [{target: 1}]", "volumes: [\"/a:/b:ro\", x]", "environment: [A=1, PASSWORD=x]", "environment: {A: }", "command: [flask, run]", "healthcheck: {disable: true}", "deploy: 1", "cap_add: ALL", "ports: 8000"]),
    ), 0..6)) {
        let mut src = String::from("services:\n");
        for (name, line) in services {
            src.push_str(&format!("  {name}:\n    {line}\n"));
        }
        check("compose.yaml", &src);
    }
}
