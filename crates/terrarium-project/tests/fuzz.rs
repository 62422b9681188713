//! Property tests: every project file reader, and `detect` on a whole project, turns arbitrary
//! and mutated input into a project or into an error that names the file; it never panics.
//!
//! Each reader gets (a) arbitrary bytes, arbitrary text and a soup of the format's own
//! fragments, and (b) structure-aware mutations of the real inputs under
//! `crates/terrarium/tests/fixtures` (lines deleted, duplicated, swapped, values replaced by other
//! TOML/JSON types, random unicode inserted, bytes flipped, the file truncated).
//!
//! 100,000 cases in all, shared out by each test's weight: about 40 s of CPU in a debug build,
//! run on as many threads as `cargo test` uses. `PROPTEST_CASES=N`, proptest's own variable, gives every test N cases
//! instead: `PROPTEST_CASES=100000` runs 2.1 million.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use terrarium_project::{DetectError, detect, detect_system};

/// Cases across every test of this file; each test runs its weight's share.
const TOTAL_CASES: u64 = 100_000;

fn config(weight: u32) -> ProptestConfig {
    let cases = (TOTAL_CASES * u64::from(weight) / u64::from(TOTAL_WEIGHT)).max(1);
    ProptestConfig {
        cases: u32::try_from(cases).unwrap_or(u32::MAX),
        max_shrink_iters: 2_000,
        // Failures are reported with their minimal input; no regression files in the tree.
        failure_persistence: None,
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Running a reader and checking what it says.

/// Lexically normalized: `.` dropped, `..` applied.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// An error must be about one of the files written, name it first, and (when malformed) say
/// what to do.
fn assert_names_a_file(err: &DetectError, root: &Path, files: &[(String, Vec<u8>)]) {
    let message = err.to_string();
    let (path, fix) = match err {
        DetectError::Malformed { path, fix, .. } => (path, Some(fix)),
        DetectError::Read { path, .. } => (path, None),
        other => panic!("an error that names no file: {other}"),
    };
    let path = normalize(path);
    assert!(
        files
            .iter()
            .any(|(name, _)| normalize(&root.join(name)) == path),
        "the error names {} which is none of the files written: {message}",
        path.display()
    );
    assert!(
        message.starts_with(&err_path_prefix(err)),
        "the message does not start with the file: {message}"
    );
    if let Some(fix) = fix {
        assert!(!fix.trim().is_empty(), "no fix: {message}");
        assert!(message.contains("\n  fix: "), "no fix line: {message}");
    }
}

fn err_path_prefix(err: &DetectError) -> String {
    match err {
        DetectError::Malformed { path, .. } | DetectError::Read { path, .. } => {
            path.display().to_string()
        }
        _ => String::new(),
    }
}

/// A file of the project whose source lines must exist.
fn assert_line_inside(root: &Path, source: &terrarium_project::Source) {
    if let Some(line) = source.line {
        let text = std::fs::read(root.join(&source.file)).unwrap_or_default();
        let lines = text.split(|&b| b == b'\n').count().max(1);
        assert!(
            line >= 1 && line <= lines,
            "{source} is outside the file ({lines} lines)"
        );
    }
}

/// A fresh directory, in memory when the machine has `/dev/shm`: on a disk that discards freed
/// blocks, creating and deleting 10^5 directories costs minutes of waiting.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("terrarium-fuzz")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("temp dir")
}

/// Write `files` into a fresh directory and read it as a project (or, with `system`, as a
/// multi-service system). Never panics; finishes quickly; errors name a file.
fn check(files: &[(String, Vec<u8>)], system: bool) {
    let dir = scratch_dir();
    let root = dir.path();
    for (name, bytes) in files {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, bytes).expect("write file");
    }
    let start = Instant::now();
    if system {
        match detect_system(root) {
            Ok(_) => {}
            Err(err) => assert_names_a_file(&err, root, files),
        }
    } else {
        match detect(root) {
            Ok(project) => {
                for fact in &project.python {
                    assert_line_inside(root, &fact.source);
                }
                for fact in &project.scripts {
                    assert_line_inside(root, &fact.source);
                }
                assert_line_inside(root, &project.name.source);
            }
            Err(err) => assert_names_a_file(&err, root, files),
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
}

/// A module without a web application, so that a directory holding only a `.python-version`
/// or `terrarium.toml` is still a Python project.
fn plain_module() -> (String, Vec<u8>) {
    ("main.py".to_string(), b"print('hello')\n".to_vec())
}

// ---------------------------------------------------------------------------------------------
// Seeds: the fixtures of the CLI's tests, plus a few inputs they lack.

/// A seed input, with where its lines start (and a final entry at its end).
struct Seed {
    bytes: Vec<u8>,
    line_starts: Vec<usize>,
    /// Lines that open a TOML table (`[…]`), where a window may start.
    headers: Vec<usize>,
}

impl Seed {
    fn new(bytes: Vec<u8>) -> Seed {
        let mut line_starts = vec![0];
        line_starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1)
                .filter(|&i| i < bytes.len()),
        );
        let headers = line_starts
            .iter()
            .enumerate()
            .filter(|&(_, &at)| bytes.get(at) == Some(&b'['))
            .map(|(i, _)| i)
            .collect();
        line_starts.push(bytes.len());
        Seed {
            bytes,
            line_starts,
            headers,
        }
    }

    /// Large files are cut, most of the time, to their preamble (the lines before the first
    /// table) and a window of whole tables, so that cases stay fast.
    fn window(&self, start: usize, len: usize, whole: bool) -> Vec<u8> {
        if whole || self.bytes.len() < 8 * 1024 || self.headers.is_empty() {
            return self.bytes.clone();
        }
        let preamble = self.line_starts[self.headers[0]];
        let from = self.line_starts[self.headers[start % self.headers.len()]];
        // Between 1 and 4 KiB of whole lines.
        let budget = from + 1024 + len % 3072;
        let to = self
            .line_starts
            .iter()
            .copied()
            .find(|&at| at > budget)
            .unwrap_or(self.bytes.len());
        let mut out = self.bytes[..preamble].to_vec();
        out.extend_from_slice(&self.bytes[from..to]);
        out
    }
}

/// A fixture project: its name and its files (path, content).
type Fixture = (String, Vec<(String, Seed)>);

/// Every file of every fixture project, by project then path.
fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../terrarium/tests/fixtures");
        let mut projects = Vec::new();
        for entry in std::fs::read_dir(&base).expect("fixtures").flatten() {
            let mut files = Vec::new();
            collect(&entry.path(), &entry.path(), &mut files);
            files.sort_by(|a, b| a.0.cmp(&b.0));
            projects.push((entry.file_name().to_string_lossy().into_owned(), files));
        }
        projects.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(projects.len() >= 5, "fixtures not found under {base:?}");
        projects
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, Seed)>) {
    for entry in std::fs::read_dir(dir).expect("fixture dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let (Ok(rel), Ok(bytes)) = (path.strip_prefix(root), std::fs::read(&path)) {
            out.push((rel.to_string_lossy().into_owned(), Seed::new(bytes)));
        }
    }
}

const PYPROJECT_EXTRA: &str = r#"[project]
name = "shop"
version = "1.0"
requires-python = ">=3.11,<3.14"
dependencies = ["flask>=3; python_version >= '3.11'", "gunicorn==23.0.0"]

[project.optional-dependencies]
dev = ["pytest>=8"]
test = ["coverage[toml]>=7"]

[project.scripts]
shop = "shop.cli:main"

[dependency-groups]
lint = ["ruff", { include-group = "dev" }]

[tool.uv]
dev-dependencies = ["pytest-cov"]

[tool.poetry]
name = "shop"
package-mode = true

[tool.poetry.dependencies]
python = "~3.12"
requests = { version = "^2.31", extras = ["socks"] }

[tool.poetry.dev-dependencies]
black = "*"

[tool.poetry.group.test.dependencies]
pytest = "^8"

[tool.poetry.scripts]
serve = { reference = "shop.web:main", type = "console" }
admin = "shop.admin:main"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.terrarium]
command = ["gunicorn", "shop:app"]
dev-command = "flask --app shop run --debug"
port = 8000
python = "3.12"
base = "debian:trixie-slim"
system-packages = ["libpq5"]
env = { SHOP_MODE = "production" }
volumes = ["/data"]
healthcheck = "/health"
user = "1000:1000"
proxy-image = "caddy:2"
postgres-image = "postgres:17"

[tool.terrarium.lint]
disable = ["L01"]
"#;

const TERRARIUM_TOML_EXTRA: &str = r#"command = "gunicorn app:application"
dev-command = ["python", "app.py"]
port = 8080
python = "3.13"
env = { A = "1", B = "" }
volumes = ["/srv/data"]
healthcheck = false
user = "65532"
"#;

const SYSTEM_TOML: &str = r#"name = "shop"

[services.api]
path = "api"
env = { MODE = "api" }

[services.web]
path = "web"

[jobs.migrate]
service = "api"
command = ["python", "-m", "api.migrate"]
before = ["api"]

[gateway]
port = 8080
port-env = "SHOP_PORT"
routes = [{ path = "/api/", service = "api" }, { path = "/", service = "web" }]

[postgres]
database = "shop"
services = ["api", "migrate"]
"#;

const PIPFILE_EXTRA: &str = r#"[[source]]
url = "https://pypi.org/simple"
verify_ssl = true
name = "pypi"

[packages]
flask = {version = "==3.1.2", extras = ["async"]}
gunicorn = "*"

[dev-packages]
pytest = "*"

[requires]
python_full_version = "3.12.4"
"#;

const REQUIREMENTS_EXTRA: &str = "# pinned\n-r base.txt\n--index-url https://pypi.org/simple\n-e .\n./vendor/pkg\nflask[async]==3.1.2 ; python_version >= \"3.11\" \\\n    --hash=sha256:34e815dfaa43340d1d15a5c3a02b8476004037eb4840b34910c6e21679d288f3\nrequests @ https://files.example/requests-2.32.3-py3-none-any.whl\n-c constraints.txt\n";

/// A Poetry 1.1 lock: files and hashes under `[metadata.files]`.
const POETRY_1_1_LOCK: &str = r#"[[package]]
name = "click"
version = "8.0.1"
description = "Composable command line interface toolkit"
category = "main"
optional = false
python-versions = ">=3.6"

[package.dependencies]
colorama = {version = "*", markers = "platform_system == \"Windows\""}

[[package]]
name = "colorama"
version = "0.4.4"
description = "Cross-platform colored terminal text."
category = "dev"
optional = false
python-versions = ">=2.7"
markers = "platform_system == \"Windows\""

[[package]]
name = "zipp"
version = "3.5.0"
category = "main"
optional = false
python-versions = ">=3.6"

[[package]]
name = "zipp"
version = "1.2.0"
category = "main"
optional = false
python-versions = ">=2.7"

[metadata]
lock-version = "1.1"
python-versions = "^3.8"
content-hash = "2b3f1f0ea8b6e3ec6ac1d2ab1b4a7c49c3f5d0bd0d31d47e9a50e2d8a08f8e3a"

[metadata.files]
click = [
    {file = "click-8.0.1-py3-none-any.whl", hash = "sha256:fba402a4a47334742d782209a7c79bc448911afe1149d07bdabdf480b3e2f4b6"},
    {file = "click-8.0.1.tar.gz", hash = "sha256:8c04c11192119b1ef78ea049e0a6f0463e4c48ef00a30160c704337586f3ad7a"},
]
colorama = [
    {file = "colorama-0.4.4-py2.py3-none-any.whl", hash = "sha256:9f47eda37229f68eee03b24b9748937c7dc3868f906e8ba69fbcbdd3bc5dc3e2"},
]
zipp = [
    {file = "zipp-3.5.0-py3-none-any.whl", hash = "sha256:957cfda87797e389580cb8b9e3870841ca991e2125350677b2ca83a0e99390a3"},
    {file = "zipp-1.2.0.tar.gz", hash = "sha256:e0d9e63797e483a30d27e09fffd308c59a700d365ec34e93cc100844168bf921"},
]
"#;

const PYTHON_VERSIONS: [&str; 4] = ["3.12\n", "3.11.4\n", "# pinned by pyenv\n3.13\n", "3.12.0"];

/// Seeds for a kind of file: the fixtures' copies and the extras above. `requirements.txt`
/// takes every fixture requirements file (`requirements-dev.txt`, `requirements.in`, …).
fn seeds(kind: &str) -> &'static [Seed] {
    static SEEDS: OnceLock<std::collections::BTreeMap<&'static str, Vec<Seed>>> = OnceLock::new();
    let all = SEEDS.get_or_init(|| {
        let kinds = [
            "pyproject.toml",
            "requirements.txt",
            "uv.lock",
            "poetry.lock",
            "pylock.toml",
            "Pipfile.lock",
            "Pipfile",
            ".python-version",
            "terrarium.toml",
            "system",
        ];
        kinds
            .into_iter()
            .map(|kind| {
                let mut seeds: Vec<Seed> = fixtures()
                    .iter()
                    .flat_map(|(_, files)| files)
                    .filter(|(path, _)| {
                        path == kind
                            || (kind == "requirements.txt" && path.starts_with("requirements"))
                    })
                    .map(|(_, seed)| Seed::new(seed.bytes.clone()))
                    .collect();
                let extra: &[&str] = match kind {
                    "pyproject.toml" => &[PYPROJECT_EXTRA],
                    "terrarium.toml" => &[TERRARIUM_TOML_EXTRA],
                    "system" => &[SYSTEM_TOML],
                    "Pipfile" => &[PIPFILE_EXTRA],
                    "requirements.txt" => &[REQUIREMENTS_EXTRA],
                    "poetry.lock" => &[POETRY_1_1_LOCK],
                    ".python-version" => &PYTHON_VERSIONS,
                    _ => &[],
                };
                seeds.extend(extra.iter().map(|s| Seed::new(s.as_bytes().to_vec())));
                assert!(!seeds.is_empty(), "no seed for {kind}");
                (kind, seeds)
            })
            .collect()
    });
    all.get(kind).map(Vec::as_slice).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// One structure-aware edit of a file.
#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Insert text at a byte offset.
    Insert(usize, String),
    /// Keep only the first bytes.
    Truncate(usize),
    /// XOR one byte with a mask.
    FlipByte(usize, u8),
    /// Replace what follows the first `=` or `:` of a line with another value.
    ReplaceValue(usize, &'static str),
}

/// Values of every TOML and JSON type, and strings each format reads specially.
const VALUES: &[&str] = &[
    "1",
    "-1",
    "0",
    "18446744073709551616",
    "-9223372036854775808",
    "1.5",
    "-0.0",
    "inf",
    "nan",
    "true",
    "false",
    "null",
    "\"\"",
    "\"é\"",
    "\"x\"",
    "\"\\u0000\"",
    "\"^3.11\"",
    "\"~3.11\"",
    "\"^18446744073709551615\"",
    "\"==1.0\"",
    "\">=3.11\"",
    "\"3.x\"",
    "\"3\"",
    "\"1.0\"",
    "\"2.0\"",
    "\"main\"",
    "\"dev\"",
    "\"sha256:abc\"",
    "\"sha256:34e815dfaa43340d1d15a5c3a02b8476004037eb4840b34910c6e21679d288f3\"",
    "\"python_version >= '3.11'\"",
    "\"/\"",
    "\"0:0\"",
    "1979-05-27",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "[]",
    "[1, \"a\"]",
    "[\"a\", \"b\"]",
    "[[1]]",
    "[{}]",
    "[{ name = \"x\" }]",
    "{}",
    "{ a = 1 }",
    "{ version = \"1\" }",
    "{ editable = \".\" }",
    "{ virtual = \".\" }",
    "{ reference = 1 }",
    "{\"version\": 1}",
    "{\"version\": \"==1\", \"hashes\": [1]}",
    "[\"sha256:zz\"]",
    "'''\nmulti\nline'''",
    "\"\"\"\n\"\"\"",
];

/// Text worth inserting: structure characters, format keywords, odd unicode.
const INSERTS: &[&str] = &[
    "é",
    "\u{0}",
    "\u{feff}",
    "\u{10ffff}",
    "\u{202e}",
    "😀",
    "\r",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\\",
    "\\\n",
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    "#",
    " #",
    ":",
    "-",
    "-é",
    "-r ",
    "-r requirements.txt\n",
    "-r base.txt\n",
    "-e ",
    "--hash=",
    "--hash ",
    "sha256:",
    "==",
    "===",
    "^",
    "~",
    "~=",
    ">=",
    "*",
    ";",
    " and ",
    "@",
    "://",
    ".",
    "..",
    "/",
    "9999999999999999999999",
    "\n[project]\n",
    "\n[tool.poetry.dependencies]\npython = ",
    "\n[tool.terrarium]\n",
    "\n[[package]]\nname = \"x\"\n",
    "\n[[packages]]\nname = \"x\"\n",
    "\n[metadata.files]\nx = ",
    "\nversion = ",
    "null",
    "{}",
];

fn edit() -> impl Strategy<Value = Edit> {
    let insert = prop_oneof![
        3 => prop::sample::select(INSERTS).prop_map(str::to_string),
        1 => prop::collection::vec(any::<char>(), 1..6).prop_map(|c| c.into_iter().collect()),
    ];
    prop_oneof![
        3 => any::<usize>().prop_map(Edit::DeleteLine),
        2 => any::<usize>().prop_map(Edit::DuplicateLine),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        4 => (any::<usize>(), insert).prop_map(|(at, s)| Edit::Insert(at, s)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, mask)| Edit::FlipByte(at, mask)),
        4 => (any::<usize>(), prop::sample::select(VALUES)).prop_map(|(l, v)| Edit::ReplaceValue(l, v)),
    ]
}

/// Split into lines, each keeping its `\n`.
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    match edit {
        Edit::DeleteLine(at)
        | Edit::DuplicateLine(at)
        | Edit::SwapLines(at, _)
        | Edit::ReplaceValue(at, _) => {
            let mut lines = lines(bytes);
            if lines.is_empty() {
                return;
            }
            let i = at % lines.len();
            match edit {
                Edit::DeleteLine(_) => {
                    lines.remove(i);
                }
                Edit::DuplicateLine(_) => {
                    let line = lines[i].clone();
                    lines.insert(i, line);
                }
                Edit::SwapLines(_, other) => {
                    let j = other % lines.len();
                    lines.swap(i, j);
                }
                Edit::ReplaceValue(_, value) => {
                    let line = &mut lines[i];
                    if let Some(sep) = line.iter().position(|&b| b == b'=' || b == b':') {
                        let newline = line.ends_with(b"\n");
                        line.truncate(sep + 1);
                        line.push(b' ');
                        line.extend_from_slice(value.as_bytes());
                        if newline {
                            line.push(b'\n');
                        }
                    }
                }
                _ => unreachable!(),
            }
            *bytes = lines.concat();
        }
        Edit::Insert(at, text) => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, text.bytes());
        }
        Edit::Truncate(at) => {
            let at = at % (bytes.len() + 1);
            bytes.truncate(at);
        }
        Edit::FlipByte(at, mask) => {
            if bytes.is_empty() {
                return;
            }
            let at = at % bytes.len();
            // Mostly stay ASCII (so the text parsers see it); sometimes break UTF-8.
            let mask = if mask % 8 == 0 { *mask } else { mask & 0x7f };
            bytes[at] ^= mask.max(1);
        }
    }
}

/// A seed of `name`, windowed and edited.
#[derive(Debug, Clone)]
struct Mutation {
    seed: usize,
    start: usize,
    len: usize,
    whole: bool,
    edits: Vec<Edit>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        any::<usize>(),
        any::<usize>(),
        any::<usize>(),
        prop::bool::weighted(0.01),
        prop::collection::vec(edit(), 1..8),
    )
        .prop_map(|(seed, start, len, whole, edits)| Mutation {
            seed,
            start,
            len,
            whole,
            edits,
        })
}

impl Mutation {
    /// Pick one of `seeds`, cut it and edit it.
    fn of(&self, seeds: &[Seed]) -> Vec<u8> {
        let mut bytes = seeds[self.seed % seeds.len()].window(self.start, self.len, self.whole);
        for edit in &self.edits {
            apply(&mut bytes, edit);
        }
        bytes
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input: bytes, text, and a soup of each format's fragments.

/// Text from a regex. (A `&str` strategy compiles its regex for every case; this compiles once.)
fn regex(pattern: &str) -> impl Strategy<Value = String> + use<> {
    proptest::string::string_regex(pattern).expect("valid regex")
}

/// Any characters: controls, surrogate-adjacent, private use, unassigned.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(|chars| chars.into_iter().collect())
}

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        any_text(300).prop_map(String::into_bytes),
        regex("\\PC{0,100}").prop_map(String::into_bytes),
    ]
}

const TOML_HEADERS: &[&str] = &[
    "[project]",
    "[project.scripts]",
    "[project.optional-dependencies]",
    "[dependency-groups]",
    "[build-system]",
    "[tool.uv]",
    "[tool.poetry]",
    "[tool.poetry.dependencies]",
    "[tool.poetry.dev-dependencies]",
    "[tool.poetry.group.dev.dependencies]",
    "[tool.poetry.scripts]",
    "[tool.terrarium]",
    "[tool.terrarium.lint]",
    "[[package]]",
    "[[packages]]",
    "[[package.wheels]]",
    "[package.source]",
    "[package.dev-dependencies]",
    "[metadata]",
    "[metadata.files]",
    "[packages]",
    "[dev-packages]",
    "[requires]",
    "[services.api]",
    "[jobs.migrate]",
    "[gateway]",
    "[postgres]",
    "[tool]",
    "[project.project]",
];

const TOML_KEYS: &[&str] = &[
    "name",
    "version",
    "requires-python",
    "dependencies",
    "optional-dependencies",
    "dev-dependencies",
    "dev",
    "test",
    "python",
    "scripts",
    "groups",
    "category",
    "files",
    "file",
    "markers",
    "marker",
    "source",
    "wheels",
    "sdist",
    "url",
    "hash",
    "hashes",
    "lock-version",
    "package-mode",
    "build-backend",
    "command",
    "dev-command",
    "port",
    "user",
    "healthcheck",
    "env",
    "volumes",
    "system-packages",
    "base",
    "python_version",
    "python_full_version",
    "path",
    "service",
    "routes",
    "before",
    "services",
    "flask",
    "Flask_SQLAlchemy",
    "é",
    "\"quoted key\"",
    "a.b",
    "project",
    "tool",
    "package",
];

fn toml_soup() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        2 => prop::sample::select(TOML_HEADERS).prop_map(str::to_string),
        5 => (prop::sample::select(TOML_KEYS), prop::sample::select(VALUES))
            .prop_map(|(k, v)| format!("{k} = {v}")),
        1 => prop::sample::select(INSERTS).prop_map(str::to_string),
    ];
    prop::collection::vec(line, 0..25).prop_map(|lines| lines.join("\n").into_bytes())
}

const REQUIREMENT_PIECES: &[&str] = &[
    "flask",
    "Flask_SQLAlchemy",
    "gunicorn",
    "é",
    "==3.1.2",
    "===3.1",
    ">=2,<4",
    "~=1.0",
    "==1.*",
    "[async]",
    "; python_version < \"3.12\"",
    "; sys_platform == 'linux' and",
    "@ https://files.example/a-1.0-py3-none-any.whl",
    "--hash=sha256:34e815dfaa43340d1d15a5c3a02b8476004037eb4840b34910c6e21679d288f3",
    "--hash=md5:00",
    "--hash",
    "--no-deps",
    "\\",
    "#",
    " # comment",
    "-r",
    "-rbase.txt",
    "-r base.txt",
    "-r requirements.txt",
    "--requirement=base.txt",
    "-c constraints.txt",
    "-e",
    "-e .",
    "-é",
    "-",
    "--",
    "--index-url=https://pypi.org/simple",
    "./local",
    "/abs/path",
    "git+https://example.invalid/x.git",
    "(",
    ")",
    "\t",
    "\u{a0}",
    "\u{feff}",
    "ß",
    "😀",
    "and é",
    "or",
    "'é'",
];

fn requirements_soup() -> impl Strategy<Value = Vec<u8>> {
    let line = prop::collection::vec(prop::sample::select(REQUIREMENT_PIECES), 0..6)
        .prop_map(|pieces| pieces.join(" "));
    prop::collection::vec(line, 0..15).prop_map(|lines| lines.join("\n").into_bytes())
}

const JSON_VALUES: &[&str] = &[
    "null",
    "true",
    "1",
    "-1e999",
    "\"x\"",
    "\"==1.0\"",
    "\"é\"",
    "[]",
    "[\"sha256:34e815dfaa43340d1d15a5c3a02b8476004037eb4840b34910c6e21679d288f3\"]",
    "[1]",
    "{}",
];

fn pipfile_lock_soup() -> impl Strategy<Value = Vec<u8>> {
    let entry = (
        prop::sample::select(vec!["flask", "é", "", "Django"]),
        prop::collection::vec(
            (
                prop::sample::select(vec!["version", "hashes", "markers", "index", "editable"]),
                prop::sample::select(JSON_VALUES),
            ),
            0..4,
        ),
    )
        .prop_map(|(name, fields)| {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            format!("\"{name}\": {{{}}}", fields.join(", "))
        });
    let section = (
        prop::sample::select(vec!["default", "develop", "_meta", "other"]),
        prop::collection::vec(entry, 0..4),
        any::<bool>(),
    )
        .prop_map(|(name, entries, as_object)| {
            if as_object {
                format!("\"{name}\": {{{}}}", entries.join(", "))
            } else {
                format!("\"{name}\": [{}]", entries.join(", "))
            }
        });
    prop::collection::vec(section, 0..4)
        .prop_map(|sections| format!("{{{}}}", sections.join(", ")).into_bytes())
}

fn python_version_soup() -> impl Strategy<Value = Vec<u8>> {
    regex("[0-9.#a-z \\n\\r\\t]{0,20}").prop_map(String::into_bytes)
}

// ---------------------------------------------------------------------------------------------
// Project layouts per reader.

fn files(list: Vec<(&str, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    list.into_iter().map(|(n, b)| (n.to_string(), b)).collect()
}

/// A lock file beside the manifest its tool needs (which only has to exist: a small one keeps
/// cases fast).
fn lock_project(lock: &str, manifest: &str, bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let manifest_text: &[u8] = if manifest == "Pipfile" {
        b"[packages]\nflask = \"*\"\n"
    } else {
        b"[project]\nname = \"app\"\n"
    };
    vec![
        (lock.to_string(), bytes),
        (manifest.to_string(), manifest_text.to_vec()),
    ]
}

fn requirements_project(main: Vec<u8>, include: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    files(vec![
        ("requirements.txt", main),
        ("base.txt", include),
        ("constraints.txt", b"six<2\n".to_vec()),
        (
            "requirements-dev.txt",
            b"-r requirements.txt\npytest==8.4.2\n".to_vec(),
        ),
    ])
}

fn system_project(toml: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let app = b"from flask import Flask\napp = Flask(__name__)\n".to_vec();
    files(vec![
        ("terrarium.toml", toml),
        ("api/app.py", app.clone()),
        ("api/requirements.txt", b"flask==3.1.2\n".to_vec()),
        ("web/app.py", app),
        (
            "web/pyproject.toml",
            b"[project]\nname = \"web\"\n".to_vec(),
        ),
    ])
}

/// A whole fixture project with some of its files mutated.
fn whole_project(pick: usize, mutations: &[(usize, Mutation)]) -> Vec<(String, Vec<u8>)> {
    let all = fixtures();
    let (_, project) = &all[pick % all.len()];
    let mut files: Vec<(String, Vec<u8>)> = project
        .iter()
        .map(|(path, seed)| (path.clone(), seed.bytes.clone()))
        .collect();
    for (which, mutation) in mutations {
        let i = which % project.len();
        files[i].1 = mutation.of(std::slice::from_ref(&project[i].1));
    }
    files
}

// ---------------------------------------------------------------------------------------------

/// One proptest per reader, each with its share (`weight`) of the total cases.
macro_rules! fuzz {
    ($($weight:literal => fn $name:ident($($arg:tt)*) $body:block)*) => {
        /// The sum of the weights.
        const TOTAL_WEIGHT: u32 = 0 $(+ $weight)*;
        $(proptest! {
            #![proptest_config(config($weight))]
            #[test]
            fn $name($($arg)*) $body
        })*
    };
}

fuzz! {
    12 => fn pyproject_arbitrary(bytes in prop_oneof![arbitrary_bytes(), toml_soup()]) {
        check(&files(vec![("pyproject.toml", bytes)]), false);
    }

    14 => fn pyproject_mutated(m in mutation()) {
        check(&files(vec![("pyproject.toml", m.of(seeds("pyproject.toml")))]), false);
    }

    14 => fn requirements_arbitrary(main in prop_oneof![arbitrary_bytes(), requirements_soup()], include in requirements_soup()) {
        check(&requirements_project(main, include), false);
    }

    19 => fn requirements_mutated(main in mutation(), include in mutation()) {
        let seeds = seeds("requirements.txt");
        check(&requirements_project(main.of(seeds), include.of(seeds)), false);
    }

    8 => fn uv_lock_arbitrary(bytes in prop_oneof![arbitrary_bytes(), toml_soup()]) {
        check(&lock_project("uv.lock", "pyproject.toml", bytes), false);
    }

    10 => fn uv_lock_mutated(m in mutation()) {
        check(&lock_project("uv.lock", "pyproject.toml", m.of(seeds("uv.lock"))), false);
    }

    8 => fn poetry_lock_arbitrary(bytes in prop_oneof![arbitrary_bytes(), toml_soup()]) {
        check(&lock_project("poetry.lock", "pyproject.toml", bytes), false);
    }

    10 => fn poetry_lock_mutated(m in mutation()) {
        check(&lock_project("poetry.lock", "pyproject.toml", m.of(seeds("poetry.lock"))), false);
    }

    8 => fn pylock_arbitrary(bytes in prop_oneof![arbitrary_bytes(), toml_soup()]) {
        check(&lock_project("pylock.toml", "pyproject.toml", bytes), false);
    }

    10 => fn pylock_mutated(m in mutation()) {
        check(&lock_project("pylock.toml", "pyproject.toml", m.of(seeds("pylock.toml"))), false);
    }

    8 => fn pipfile_lock_arbitrary(bytes in prop_oneof![arbitrary_bytes(), pipfile_lock_soup()]) {
        check(&lock_project("Pipfile.lock", "Pipfile", bytes), false);
    }

    10 => fn pipfile_lock_mutated(m in mutation()) {
        check(&lock_project("Pipfile.lock", "Pipfile", m.of(seeds("Pipfile.lock"))), false);
    }

    8 => fn pipfile_arbitrary(bytes in prop_oneof![arbitrary_bytes(), toml_soup()]) {
        check(&files(vec![("Pipfile", bytes)]), false);
    }

    10 => fn pipfile_mutated(m in mutation()) {
        check(&files(vec![("Pipfile", m.of(seeds("Pipfile")))]), false);
    }

    8 => fn python_version_arbitrary(bytes in prop_oneof![arbitrary_bytes(), python_version_soup()]) {
        check(&[(".python-version".to_string(), bytes), plain_module()], false);
    }

    8 => fn python_version_mutated(m in mutation()) {
        check(&[(".python-version".to_string(), m.of(seeds(".python-version"))), plain_module()], false);
    }

    8 => fn terrarium_toml_arbitrary(bytes in prop_oneof![arbitrary_bytes(), toml_soup()]) {
        check(&[("terrarium.toml".to_string(), bytes), plain_module()], false);
    }

    10 => fn terrarium_toml_mutated(m in mutation()) {
        check(&[("terrarium.toml".to_string(), m.of(seeds("terrarium.toml"))), plain_module()], false);
    }

    6 => fn system_arbitrary(bytes in prop_oneof![arbitrary_bytes(), toml_soup()]) {
        check(&system_project(bytes), true);
    }

    8 => fn system_mutated(m in mutation()) {
        check(&system_project(m.of(seeds("system"))), true);
    }

    3 => fn whole_projects_mutated(pick in any::<usize>(), mutations in prop::collection::vec((any::<usize>(), mutation()), 1..4)) {
        check(&whole_project(pick, &mutations), false);
    }
}
