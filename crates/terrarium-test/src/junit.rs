//! The counts of a pytest run, from the JUnit XML it writes (`--junitxml`): one `testsuite`
//! (or several under `testsuites`) with `tests`, `failures`, `errors` and `skipped`.

/// How many tests passed, failed (failures and errors) and were skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub passed: u64,
    /// Failed, and errored (a fixture or collection error).
    pub failed: u64,
    /// Skipped (and expected failures).
    pub skipped: u64,
}

/// Read the counts from a JUnit XML document; `None` when it is not one.
pub fn counts(xml: &str) -> Option<Counts> {
    let document = roxmltree::Document::parse(xml).ok()?;
    let root = document.root_element();
    let suites: Vec<roxmltree::Node> = match root.tag_name().name() {
        "testsuite" => vec![root],
        "testsuites" => root
            .children()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect(),
        _ => return None,
    };
    let attribute = |node: &roxmltree::Node, name: &str| {
        node.attribute(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut counts = Counts::default();
    for suite in suites {
        let tests = attribute(&suite, "tests");
        let failed = attribute(&suite, "failures") + attribute(&suite, "errors");
        let skipped = attribute(&suite, "skipped");
        counts.failed += failed;
        counts.skipped += skipped;
        counts.passed += tests.saturating_sub(failed + skipped);
    }
    Some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pytest_junit() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="2" skipped="1" tests="7" time="0.1"><testcase classname="t" name="a"/></testsuite></testsuites>"#;
        assert_eq!(
            counts(xml),
            Some(Counts {
                passed: 3,
                failed: 3,
                skipped: 1
            })
        );
        assert_eq!(counts("<html/>"), None);
        assert_eq!(counts("not xml"), None);
    }
}
