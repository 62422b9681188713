//! Parser tests: directives, escapes, continuations, heredocs, forms, flags, spans, errors.

use super::*;

fn text_at(df: &Dockerfile, span: Span) -> &str {
    &df.source[span.start..span.end]
}

#[test]
fn directives_and_backtick_escape() {
    let src = "# syntax=docker/dockerfile:1\n# escape=`\nFROM mcr.microsoft.com/windows:ltsc2022\nRUN dir C:\\ `\n    && echo done\nWORKDIR C:\\app\n";
    let df = parse(src);
    assert_eq!(df.escape, '`');
    assert_eq!(df.directives.len(), 2);
    assert_eq!(df.directives[0].value, "docker/dockerfile:1");
    assert!(df.errors.is_empty(), "{:?}", df.errors);
    let run = &df.instructions[1];
    assert_eq!(run.args_text(), "dir C:\\     && echo done");
    assert_eq!(df.instructions[2].words()[0].text, "C:\\app");
}

#[test]
fn directives_stop_at_first_other_line() {
    let df = parse("# a comment\n# escape=`\nFROM x:1\n");
    assert!(df.directives.is_empty());
    assert_eq!(df.escape, '\\');
    assert_eq!(df.comments.len(), 2);
    let bad = parse("# escape=x\nFROM x:1\n");
    assert_eq!(bad.errors.len(), 1);
}

#[test]
fn continuations_skip_comments_and_blank_lines() {
    let src = "FROM x:1\nRUN apt-get update \\\n# a comment inside\n\n    && apt-get install -y curl \\\n  # another\n    && rm -rf /var/lib/apt/lists/*\nUSER 1\n";
    let df = parse(src);
    assert_eq!(df.instructions.len(), 3);
    let run = &df.instructions[1];
    assert_eq!(run.kind, Kind::Run);
    let script = run.script();
    let names: Vec<_> = script
        .commands
        .iter()
        .filter_map(|c| c.program_name())
        .collect();
    assert_eq!(names, ["apt-get", "apt-get", "rm"]);
    // Each word's span points at its exact place in the source.
    let rm = &script.commands[2].words[0];
    assert_eq!(text_at(&df, rm.span), "rm");
    assert_eq!(df.lines.locate(&df.source, rm.span).line, 7);
    let curl = &script.commands[1].words[3];
    assert_eq!(text_at(&df, curl.span), "curl");
    assert_eq!(df.lines.locate(&df.source, curl.span).line, 5);
    assert_eq!(df.lines.locate(&df.source, df.instructions[2].span).line, 8);
}

#[test]
fn heredocs() {
    let src = "FROM x:1\nRUN <<EOF\nset -e\npip install flask\nEOF\nCOPY <<-\"CONF\" /etc/app.conf\n\tkey=$value\n\tCONF\nRUN python3 <<PY\nimport os\nPY\nUSER 1\n";
    let df = parse(src);
    assert!(df.errors.is_empty(), "{:?}", df.errors);
    assert_eq!(df.instructions.len(), 5);
    let run = &df.instructions[1];
    assert_eq!(run.heredocs[0].delimiter, "EOF");
    assert_eq!(run.heredocs[0].body.text, "set -e\npip install flask\n");
    let pip = run
        .script()
        .commands
        .into_iter()
        .find(|c| c.program_name() == Some("pip"))
        .expect("pip");
    assert_eq!(text_at(&df, pip.words[1].span), "install");
    let copy = &df.instructions[2];
    assert!(copy.heredocs[0].strip_tabs && copy.heredocs[0].quoted);
    assert_eq!(copy.heredocs[0].body.text, "key=$value\n");
    // A python heredoc body is not shell.
    let py = &df.instructions[3];
    assert!(
        py.script()
            .commands
            .iter()
            .all(|c| c.program_name() != Some("import"))
    );
    assert_eq!(df.instructions[4].kind, Kind::User);
}

#[test]
fn unterminated_heredoc_is_an_error() {
    let df = parse("FROM x:1\nRUN <<EOF\necho hi\n");
    assert_eq!(df.errors.len(), 1);
    assert!(df.errors[0].message.contains("never closed"));
}

#[test]
fn exec_and_shell_forms_with_spans() {
    let df = parse(
        "FROM x:1\nCMD [ \"gunicorn\" , \"--bind\",\"0.0.0.0:8000\" ]\nENTRYPOINT exec python -m app\n",
    );
    let Arguments::Exec(items) = &df.instructions[1].args else {
        panic!("exec form")
    };
    assert_eq!(
        items.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
        ["gunicorn", "--bind", "0.0.0.0:8000"]
    );
    assert_eq!(text_at(&df, items[0].span), "\"gunicorn\"");
    assert!(matches!(df.instructions[2].args, Arguments::Shell(_)));
    let bad = parse("FROM x:1\nCMD ['gunicorn']\n");
    assert!(matches!(bad.instructions[1].args, Arguments::Shell(_)));
    assert_eq!(bad.errors.len(), 1);
    let escaped = parse("FROM x:1\nCMD [\"echo\", \"a\\\"b\\u0041\"]\n");
    let Arguments::Exec(items) = &escaped.instructions[1].args else {
        panic!("exec form")
    };
    assert_eq!(items[1].text, "a\"bA");
}

#[test]
fn flags() {
    let df = parse(
        "FROM --platform=$BUILDPLATFORM python:3.12-slim AS build\nRUN --mount=type=cache,target=/root/.cache --network=none pip install x\nCOPY --from=build --chown=1:1 --chmod=755 --link /a /b\n",
    );
    assert_eq!(
        df.instructions[0]
            .flag("platform")
            .and_then(|f| f.value.as_deref()),
        Some("$BUILDPLATFORM")
    );
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].base.text, "python:3.12-slim");
    let run = &df.instructions[1];
    assert_eq!(run.flags.len(), 2);
    assert_eq!(run.script().commands[0].program_name(), Some("pip"));
    let copy = &df.instructions[2];
    assert_eq!(
        copy.flags
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["from", "chown", "chmod", "link"]
    );
    assert_eq!(copy.flag("link").and_then(|f| f.value.clone()), None);
    assert_eq!(text_at(&df, copy.flags[1].span), "--chown=1:1");
    assert_eq!(
        copy.words()
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>(),
        ["/a", "/b"]
    );
}

#[test]
fn env_pairs_both_forms() {
    let df = parse(
        "FROM x:1\nENV A=1 B=\"two words\" C=\nENV LEGACY some value\nARG NAME\nARG WITH=default\n",
    );
    let pairs = |i: usize| {
        df.instructions[i]
            .pairs()
            .into_iter()
            .map(|(k, v)| (k.text, v.map(|v| v.text)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pairs(1),
        [
            ("A".into(), Some("1".into())),
            ("B".into(), Some("two words".into())),
            ("C".into(), Some(String::new()))
        ]
    );
    assert_eq!(pairs(2), [("LEGACY".into(), Some("some value".into()))]);
    assert_eq!(pairs(3), [("NAME".into(), None)]);
    assert_eq!(pairs(4), [("WITH".into(), Some("default".into()))]);
}

#[test]
fn stages_chain_and_arg_substitution() {
    let src = "ARG PY=python:3.12-slim\nFROM ${PY} AS base\nENV A=1\nFROM base AS build\nRUN make\nFROM ${PY}\nCOPY --from=build /x /x\n";
    let df = parse(src);
    assert_eq!(df.stages.len(), 3);
    assert_eq!(df.stages[0].base_resolved, "python:3.12-slim");
    assert_eq!(df.stages[1].parent, Some(0));
    assert_eq!(df.stages[2].parent, None);
    assert_eq!(df.chain(&df.stages[1]).len(), 2);
    assert_eq!(df.effective(&df.stages[1]).len(), 2);
    assert_eq!(df.stage_by_ref("BUILD").map(|s| s.index), Some(1));
    assert_eq!(df.stage_by_ref("2").map(|s| s.index), Some(2));
    assert_eq!(
        df.global_args(),
        [("PY".to_string(), Some("python:3.12-slim".to_string()))]
    );
}

#[test]
fn structural_errors() {
    let df = parse("RUN echo\nFROM\nFROM a b c\nFORM x\nHEALTHCHECK maybe\n");
    let messages: Vec<_> = df.errors.iter().map(|e| e.message.clone()).collect();
    assert!(
        messages.iter().any(|m| m.contains("before the first FROM")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("FROM has no arguments")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("AS name")),
        "{messages:?}"
    );
    let unknown = df
        .errors
        .iter()
        .find(|e| e.message.contains("unknown instruction"))
        .expect("unknown");
    assert!(unknown.fix.contains("FROM"), "{}", unknown.fix);
    assert!(
        messages.iter().any(|m| m.contains("CMD or NONE")),
        "{messages:?}"
    );
    assert!(
        parse("")
            .errors
            .iter()
            .any(|e| e.message.contains("no FROM"))
    );
}

#[test]
fn crlf_onbuild_and_healthcheck() {
    let df = parse(
        "FROM x:1\r\nONBUILD RUN pip install flask\r\nHEALTHCHECK NONE\r\nHEALTHCHECK --interval=5s CMD curl -f http://localhost/ || exit 1\r\n",
    );
    assert!(df.errors.is_empty(), "{:?}", df.errors);
    let onbuild = df.instructions[1].onbuild.as_ref().expect("inner");
    assert_eq!(onbuild.kind, Kind::Run);
    assert_eq!(df.instructions[2].args, Arguments::None);
    let hc = &df.instructions[3];
    assert_eq!(
        hc.flag("interval").and_then(|f| f.value.as_deref()),
        Some("5s")
    );
    assert_eq!(hc.script().commands[0].program_name(), Some("curl"));
    assert!(!hc.args_text().contains('\r'));
}
