//! `terrarium lint`: check Dockerfiles and Compose files against the lessons.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use terrarium_lint::{Config, Format, LintError, Severity, rules};

/// Exit code when findings reach the failure threshold.
const EXIT_FINDINGS: u8 = 1;

/// Output formats on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// For people: code frames, colours on a terminal.
    Text,
    /// JSON (schema: crates/terrarium-lint/schema/lint-report.schema.json).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// GitHub Actions annotations.
    Github,
}

/// Severities on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SeverityArg {
    /// Fail on anything.
    Info,
    /// Fail on warnings and errors.
    Warning,
    /// Fail on errors only.
    Error,
}

/// When to colour text output.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ColorArg {
    /// On a terminal unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Arguments of `terrarium lint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dockerfiles, compose files or directories to check (default: the current directory).
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: FormatArg,
    /// Exit 1 when a finding is at or above this severity [default: warning, or `fail-on`].
    #[arg(long, value_enum)]
    pub fail_on: Option<SeverityArg>,
    /// Settings file (terrarium.toml or pyproject.toml) instead of the nearest one up from the
    /// first path (or the current directory).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print a rule's rationale with a bad and a good example, then exit.
    #[arg(long, value_name = "RULE")]
    pub explain: Option<String>,
    /// List every rule with its lesson and severity, then exit.
    #[arg(long)]
    pub list_rules: bool,
    /// Colour the text output.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorArg,
}

/// Run `terrarium lint`. Exit codes: 0 clean, 1 findings at or above the threshold, 2 usage
/// or unreadable input.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    if args.list_rules {
        for rule in rules::all() {
            let lesson = rule
                .lesson
                .map_or_else(|| "   ".to_string(), |l| l.to_string());
            writeln!(
                stdout,
                "{:<28} {lesson} {:<7} {}",
                rule.id, rule.severity, rule.summary
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(id) = &args.explain {
        let Some(rule) = rules::by_id(id) else {
            return Ok(input_error(&LintError::UnknownRule(id.clone())));
        };
        write!(stdout, "{}", explain(rule))?;
        return Ok(ExitCode::SUCCESS);
    }
    let start = match args.paths.first() {
        Some(p) if p.is_dir() => p.clone(),
        Some(p) => p.parent().map(PathBuf::from).unwrap_or_default(),
        None => std::env::current_dir()?,
    };
    let start = if start.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        start
    };
    let config = match &args.config {
        Some(path) => Config::load(path),
        None => Config::discover(&start),
    };
    let config = match config {
        Ok(c) => c,
        Err(err) => return Ok(input_error(&err)),
    };
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths
    };
    let outcome = match terrarium_lint::lint_paths(&paths, &config) {
        Ok(o) => o,
        Err(err) => return Ok(input_error(&err)),
    };
    let format = match args.format {
        FormatArg::Text => Format::Text,
        FormatArg::Json => Format::Json,
        FormatArg::Sarif => Format::Sarif,
        FormatArg::Github => Format::Github,
    };
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    stdout.write_all(terrarium_lint::render(format, &outcome, color).as_bytes())?;
    stdout.flush()?;
    for err in &outcome.errors {
        eprintln!("error: {err}");
    }
    let threshold = match args.fail_on {
        Some(SeverityArg::Info) => Severity::Info,
        Some(SeverityArg::Warning) => Severity::Warning,
        Some(SeverityArg::Error) => Severity::Error,
        None => config.threshold(),
    };
    Ok(if !outcome.errors.is_empty() {
        ExitCode::from(super::EXIT_INPUT)
    } else if outcome.fails(threshold) {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

fn input_error(err: &LintError) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::from(super::EXIT_INPUT)
}

fn explain(rule: &rules::Rule) -> String {
    let lesson = rule.lesson.map_or_else(
        || "none (Dockerfile basics)".to_string(),
        |l| format!("{l}: {}", l.title()),
    );
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "{id} ({severity})\n\n{summary}\n\nLesson: {lesson}\n\nWhy: {rationale}\n\nBad:\n{bad}\nGood:\n{good}\nFix: {fix}\n",
        id = rule.id,
        severity = rule.severity,
        summary = rule.summary,
        rationale = rule.rationale,
        bad = indent(rule.bad),
        good = indent(rule.good),
        fix = rule.fix,
    )
}
