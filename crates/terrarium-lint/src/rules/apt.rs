//! OS package installs: update and install together with lists cleaned (L05), and the
//! hadolint basics (-y, --no-install-recommends, apt-get not apt, apk --no-cache).

use super::{DockerfileContext, Emitter, Rule};
use crate::finding::{LessonId, Severity};
use crate::shell::{Command, Script};

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "apt-update-alone",
        lesson: Some(LessonId::new(5)),
        severity: Severity::Warning,
        summary: "`apt-get update` runs in a different RUN from `apt-get install`",
        rationale: "The update layer is cached: a later install uses stale package lists and \
                    fails or installs old versions. Update and install in one RUN.",
        bad: "RUN apt-get update\nRUN apt-get install -y curl",
        good: "RUN apt-get update && apt-get install -y --no-install-recommends curl \\\n && rm -rf /var/lib/apt/lists/*",
        fix: "put `apt-get update && apt-get install ...` in the same RUN",
        dockerfile: Some(update_alone),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "apt-lists-not-removed",
        lesson: Some(LessonId::new(5)),
        severity: Severity::Warning,
        summary: "apt package lists are left in a layer of the final image",
        rationale: "/var/lib/apt/lists adds tens of megabytes to the layer and is stale anyway.",
        bad: "RUN apt-get update && apt-get install -y --no-install-recommends curl",
        good: "RUN apt-get update && apt-get install -y --no-install-recommends curl \\\n && rm -rf /var/lib/apt/lists/*",
        fix: "end the RUN with `&& rm -rf /var/lib/apt/lists/*` (or use a cache mount)",
        dockerfile: Some(lists_not_removed),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "apt-no-yes",
        lesson: None,
        severity: Severity::Warning,
        summary: "apt-get install without -y",
        rationale: "The build has no terminal: without -y apt-get waits for an answer and aborts.",
        bad: "RUN apt-get update && apt-get install curl",
        good: "RUN apt-get update && apt-get install -y --no-install-recommends curl",
        fix: "add -y",
        dockerfile: Some(no_yes),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "apt-no-recommends",
        lesson: None,
        severity: Severity::Info,
        summary: "apt-get install without --no-install-recommends",
        rationale: "Recommended packages are rarely needed in an image and often double its size.",
        bad: "RUN apt-get install -y curl",
        good: "RUN apt-get install -y --no-install-recommends curl",
        fix: "add --no-install-recommends",
        dockerfile: Some(no_recommends),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "apt-not-apt-get",
        lesson: None,
        severity: Severity::Warning,
        summary: "`apt` is used in a RUN instead of `apt-get`",
        rationale: "`apt` is for people: its output and behaviour are not stable for scripts.",
        bad: "RUN apt install -y curl",
        good: "RUN apt-get install -y --no-install-recommends curl",
        fix: "use apt-get",
        dockerfile: Some(apt_not_apt_get),
        compose: None,
        kubernetes: None,
    },
    Rule {
        id: "apk-no-cache",
        lesson: None,
        severity: Severity::Info,
        summary: "apk add without --no-cache",
        rationale: "Without --no-cache the APK index stays in the layer.",
        bad: "RUN apk add curl",
        good: "RUN apk add --no-cache curl",
        fix: "add --no-cache",
        dockerfile: Some(apk_no_cache),
        compose: None,
        kubernetes: None,
    },
];

fn is_apt(cmd: &Command, verb: &str) -> bool {
    matches!(cmd.program_name(), Some("apt-get" | "apt"))
        && cmd.args().iter().any(|w| w.text == verb)
}

fn installs(script: &Script) -> impl Iterator<Item = &Command> {
    script.commands.iter().filter(|c| is_apt(c, "install"))
}

fn update_alone(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        if installs(script).next().is_none() {
            for cmd in script.commands.iter().filter(|c| is_apt(c, "update")) {
                out.span(
                    cmd.span(),
                    "`apt-get update` without an install in the same RUN",
                );
            }
        }
    }
}

fn lists_not_removed(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    let runtime = cx.runtime();
    for (_, inst, script) in cx.runs().filter(|(n, _, _)| runtime.contains(n)) {
        let Some(install) = installs(script).next() else {
            continue;
        };
        let cache_mount = inst.flags.iter().any(|f| {
            f.name == "mount"
                && f.value
                    .as_deref()
                    .is_some_and(|v| v.contains("/var/lib/apt"))
        });
        let cleaned = script.commands.iter().any(|c| {
            c.program_name() == Some("rm")
                && c.args()
                    .iter()
                    .any(|w| w.text.starts_with("/var/lib/apt/lists"))
        });
        if !cache_mount && !cleaned {
            out.span(install.span(), "apt package lists stay in this layer");
        }
    }
}

fn no_yes(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        for cmd in installs(script)
            .filter(|c| c.program_name() == Some("apt-get") || c.program_name() == Some("apt"))
        {
            let yes = cmd.has_option(&["--yes", "--assume-yes", "-qq", "-q=2", "--quiet=2"])
                || cmd.has_short_flag('y');
            if !yes {
                out.span(cmd.span(), "apt-get install without -y waits for input");
            }
        }
    }
}

fn no_recommends(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        for cmd in installs(script) {
            let off = cmd.has_option(&["--no-install-recommends"])
                || cmd.args().iter().any(|w| {
                    w.text.contains("Install-Recommends=false")
                        || w.text.contains("Install-Recommends=0")
                });
            if !off {
                out.span(
                    cmd.span(),
                    "apt-get install without --no-install-recommends",
                );
            }
        }
    }
}

fn apt_not_apt_get(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, _, script) in cx.runs() {
        for cmd in script
            .commands
            .iter()
            .filter(|c| c.program_name() == Some("apt"))
        {
            out.span(cmd.span(), "use apt-get in scripts, not apt");
        }
    }
}

fn apk_no_cache(cx: &DockerfileContext<'_>, out: &mut Emitter<'_>) {
    for (_, inst, script) in cx.runs() {
        if inst.flags.iter().any(|f| {
            f.name == "mount"
                && f.value
                    .as_deref()
                    .is_some_and(|v| v.contains("/var/cache/apk"))
        }) {
            continue;
        }
        for cmd in script
            .commands
            .iter()
            .filter(|c| c.program_name() == Some("apk") && c.args().iter().any(|w| w.text == "add"))
        {
            if !cmd.has_option(&["--no-cache"]) {
                out.span(
                    cmd.span(),
                    "apk add without --no-cache keeps the package index",
                );
            }
        }
    }
}
