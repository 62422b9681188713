//! What a lint run reports: findings with a rule, a lesson, a severity and a location.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use crate::span::Location;

/// How serious a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; some projects do this on purpose.
    Info,
    /// Likely a mistake; fails the run by default.
    Warning,
    /// Breaks a lesson outright (root, secrets, parse errors).
    Error,
}

impl Severity {
    /// The lowercase name used in output and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "note" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            other => Err(format!(
                "unknown severity `{other}` (expected error, warning or info)"
            )),
        }
    }
}

/// A lesson from `shared/LESSONS.md`, `L01`..`L22`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LessonId(u8);

impl LessonId {
    /// The lesson with number `n` (1..=22).
    pub const fn new(n: u8) -> Self {
        LessonId(n)
    }

    /// The lesson's number.
    pub fn number(self) -> u8 {
        self.0
    }

    /// The lesson's one-line statement, as written in `LESSONS.md`.
    pub fn title(self) -> &'static str {
        LESSON_TITLES
            .get(usize::from(self.0).wrapping_sub(1))
            .copied()
            .unwrap_or("")
    }
}

impl fmt::Display for LessonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{:02}", self.0)
    }
}

impl Serialize for LessonId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

const LESSON_TITLES: [&str; 22] = [
    "One process per container.",
    "Run WSGI/ASGI apps under a production app server, never the framework's development server.",
    "No web server inside the app container; a reverse proxy is its own container.",
    "No virtualenv inside the container; install into the image's own site-packages.",
    "Few, purposeful layers: apt-get update and install in one RUN, clean package lists, no no-op layers.",
    "Cacheable layers ordered from least to most likely to change.",
    "Reuse: shared base images for repeated steps; dev and prod share a base.",
    "Document the image: EXPOSE its ports, declare its VOLUMEs.",
    "Containers are ephemeral: data that must survive lives in a declared volume.",
    "Configuration through environment variables; volume-mapped config files are a warning sign.",
    "Never run as root.",
    "As little as possible in the image: small base, no compilers, package managers or build tools.",
    "Repeatable, idempotent builds: pinned base images and locked, hash-checked dependencies.",
    "Logs go to stdout/stderr, unbuffered; no log files inside the container.",
    "Debug without SSH: exec into the running service, read its logs, inspect its config.",
    "Dev containers: source mounted, auto-reload, published on the host's localhost.",
    "Test inside containers, in every Python version you support.",
    "Watch health: every service has a health check the orchestrator can use.",
    "Stop cleanly and restart fast: PID 1 receives SIGTERM.",
    "Several services are described in one compose file, with restart policies and limits.",
    "Care less about where it runs: no host paths, no host-specific assumptions baked in.",
    "Secrets never enter the image: not in layers, ENV or ARG.",
];

/// One problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id of the rule that found it, e.g. `root-user`.
    pub rule: &'static str,
    /// The lesson the rule enforces, if any (hadolint-style basics have none).
    pub lesson: Option<LessonId>,
    /// Severity after configuration overrides.
    pub severity: Severity,
    /// The file, as given or discovered.
    pub file: PathBuf,
    /// Where in the file.
    #[serde(flatten)]
    pub location: Location,
    /// One line saying what is wrong.
    pub message: String,
    /// One line saying how to fix it.
    pub fix: String,
}
