//! JSON and SARIF output validate against their schemas (ours, and the vendored SARIF 2.1.0
//! schema from the OASIS specification as published on SchemaStore).

use std::path::PathBuf;

use serde_json::Value;
use terrarium_lint::{Config, Format, lint_paths, render};

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).expect("schema file");
    serde_json::from_str(&text).expect("schema is JSON")
}

/// The published SARIF 2.1.0 schema's `language` pattern has a stray `]`
/// (`^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`) that ECMA regexes accept but Rust's do not.
/// Drop that one keyword (terrarium never emits `language`); everything else is checked.
const BROKEN_LANGUAGE_PATTERN: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";

fn drop_broken_pattern(value: &mut Value) -> usize {
    match value {
        Value::Object(map) => {
            let mut dropped = 0;
            if map.get("pattern").and_then(Value::as_str) == Some(BROKEN_LANGUAGE_PATTERN) {
                map.remove("pattern");
                dropped += 1;
            }
            dropped + map.values_mut().map(drop_broken_pattern).sum::<usize>()
        }
        Value::Array(items) => items.iter_mut().map(drop_broken_pattern).sum(),
        _ => 0,
    }
}

fn outcome() -> terrarium_lint::Outcome {
    let outcome =
        lint_paths(&[PathBuf::from("tests/fixtures")], &Config::default()).expect("lint fixtures");
    assert!(
        outcome.files.len() >= 40,
        "discovered {} files",
        outcome.files.len()
    );
    assert!(outcome.findings.len() > 50);
    outcome
}

fn assert_valid(schema: &Value, instance: &Value) {
    let validator = jsonschema::validator_for(schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(10)
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn json_output_matches_schema() {
    let outcome = outcome();
    let json: Value = serde_json::from_str(&render(Format::Json, &outcome, false)).expect("json");
    assert_valid(&load("schema/lint-report.schema.json"), &json);
    assert_eq!(
        json["findings"].as_array().map(Vec::len),
        Some(outcome.findings.len())
    );
    // The schema really checks: a broken report is rejected.
    let mut broken = json.clone();
    broken["findings"][0]["severity"] = Value::from("fatal");
    let validator =
        jsonschema::validator_for(&load("schema/lint-report.schema.json")).expect("schema");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn sarif_output_matches_sarif_2_1_0() {
    let outcome = outcome();
    let sarif: Value =
        serde_json::from_str(&render(Format::Sarif, &outcome, false)).expect("sarif");
    let mut schema = load("tests/data/sarif-schema-2.1.0.json");
    assert!(drop_broken_pattern(&mut schema) > 0);
    assert_valid(&schema, &sarif);
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), outcome.findings.len());
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    for result in results {
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
    }
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    let validator = jsonschema::validator_for(&schema).expect("schema");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn github_annotations_one_per_finding() {
    let outcome = outcome();
    let text = render(Format::Github, &outcome, false);
    assert_eq!(text.lines().count(), outcome.findings.len());
    assert!(text.lines().all(|l| l.starts_with("::error file=")
        || l.starts_with("::warning file=")
        || l.starts_with("::notice file=")));
}
