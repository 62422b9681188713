//! Text from a [`Plan`]: the Dockerfile, Dockerfile.dev, .dockerignore, compose.yaml (and the
//! nginx config of the optional proxy) that `terrarium init` writes, and the all-or-nothing
//! writer that puts them on disk.

mod ci;
mod compose;
mod dockerfile;
mod ignore;
mod install;
mod system;
mod write;

use std::path::PathBuf;

use terrarium_plan::Plan;

pub use ci::{CiImage, GITHUB_WORKFLOW, github_workflow};
pub use system::render_system;
pub use write::{WriteError, Written, write_all};

/// What to render besides the app itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// An nginx reverse proxy in front of the app (L03, L20).
    pub proxy: bool,
    /// A PostgreSQL service with a named volume and a health check.
    pub postgres: bool,
}

/// A file to write, relative to the project directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Its path, relative to the project directory.
    pub path: PathBuf,
    /// Its contents.
    pub contents: String,
    /// Holds a generated secret: written only when missing, never overwritten, mode 0600.
    pub secret: bool,
    /// How to combine it with a file the project already has, instead of refusing it.
    pub merge: Option<Merge>,
}

/// A way to combine a rendered file with the project's existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// terrarium's `.dockerignore` rules put before the project's own.
    DockerIgnore,
}

impl Merge {
    /// The combined contents, or `None` when the existing file needs nothing.
    pub fn apply(self, existing: &str) -> Option<String> {
        match self {
            Merge::DockerIgnore => ignore::merge_dockerignore(existing),
        }
    }
}

impl RenderedFile {
    fn new(path: &str, contents: String) -> Self {
        RenderedFile {
            path: PathBuf::from(path),
            contents,
            secret: false,
            merge: None,
        }
    }

    /// The `.dockerignore` of `plan`; a project's own gets terrarium's rules put before its
    /// rules (which stay as written, and win) instead of being refused or replaced.
    fn dockerignore(plan: &Plan) -> Self {
        RenderedFile {
            merge: Some(Merge::DockerIgnore),
            ..RenderedFile::new(".dockerignore", ignore::dockerignore(plan))
        }
    }
}

/// Every file `terrarium init` writes for `plan`.
pub fn render(plan: &Plan, options: RenderOptions) -> Vec<RenderedFile> {
    let mut files = vec![
        RenderedFile::new("Dockerfile", dockerfile::production(plan)),
        RenderedFile::new("Dockerfile.dev", dockerfile::development(plan)),
        RenderedFile::dockerignore(plan),
        RenderedFile::new("compose.yaml", compose::compose(plan, options)),
    ];
    if let Some(workspace) = plan.workspace() {
        let rules = ignore::workspace_dockerignore(plan, workspace);
        files.push(RenderedFile::new("Dockerfile.dockerignore", rules.clone()));
        files.push(RenderedFile::new("Dockerfile.dev.dockerignore", rules));
    }
    if options.proxy {
        files.push(RenderedFile::new(
            "proxy/nginx.conf",
            compose::nginx_conf(
                &plan.name,
                &[("app".to_string(), plan.port.value)],
                &[("/".to_string(), "app".to_string())],
                &[],
            ),
        ));
    }
    if options.postgres {
        files.push(RenderedFile {
            path: PathBuf::from(".env"),
            contents: compose::dotenv(&["POSTGRES_PASSWORD"]),
            secret: true,
            merge: None,
        });
    }
    files
}

/// A JSON array of strings, as Dockerfile exec form and YAML flow sequences both accept.
pub(crate) fn json_array(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| json_string(w)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
