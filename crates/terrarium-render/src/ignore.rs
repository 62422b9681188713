//! `.dockerignore`: keeps secrets, VCS data, virtualenvs, caches and build output out of the
//! build context (L22), and the Docker files themselves, so editing them doesn't bust the cache.
//! The rules are the plan's: `terrarium build` applies the same ones to its app layer.

use std::fmt::Write as _;

use terrarium_plan::{DEFAULT_IGNORES, Plan};

/// The `.dockerignore` terrarium writes: its own rules by section, then any the plan adds.
pub(crate) fn dockerignore(plan: &Plan) -> String {
    let mut out = String::from(
        "# Written by `terrarium init`: what never belongs in the build context.\n\
         # Docker's syntax: patterns start at the context root, **/ matches any depth.\n",
    );
    let mut defaults = 0;
    for (why, patterns) in DEFAULT_IGNORES {
        let _ = writeln!(out, "# {why}");
        for pattern in *patterns {
            let _ = writeln!(out, "{pattern}");
        }
        defaults += patterns.len();
    }
    let own = plan.context.value.get(defaults..).unwrap_or_default();
    if !own.is_empty() {
        out.push_str("# The project's own rules\n");
        for rule in own {
            let _ = writeln!(out, "{rule}");
        }
    }
    out
}
