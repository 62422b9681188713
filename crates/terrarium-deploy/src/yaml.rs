//! A small ordered YAML document model and its emitter: manifests and stack files are built as
//! values (so every key is written once, in a fixed order) and printed in block style, strings
//! double-quoted whenever plain style could change their meaning.

use std::fmt::Write as _;

/// A YAML value whose maps keep the order they were built in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A sequence.
    List(Vec<Node>),
    /// A mapping, in insertion order.
    Map(Vec<(String, Node)>),
}

impl From<&str> for Node {
    fn from(s: &str) -> Self {
        Node::Str(s.to_string())
    }
}

impl From<String> for Node {
    fn from(s: String) -> Self {
        Node::Str(s)
    }
}

impl From<&String> for Node {
    fn from(s: &String) -> Self {
        Node::Str(s.clone())
    }
}

impl From<i64> for Node {
    fn from(n: i64) -> Self {
        Node::Int(n)
    }
}

impl From<u16> for Node {
    fn from(n: u16) -> Self {
        Node::Int(i64::from(n))
    }
}

impl From<u32> for Node {
    fn from(n: u32) -> Self {
        Node::Int(i64::from(n))
    }
}

impl From<bool> for Node {
    fn from(b: bool) -> Self {
        Node::Bool(b)
    }
}

impl From<Vec<Node>> for Node {
    fn from(items: Vec<Node>) -> Self {
        Node::List(items)
    }
}

/// A mapping from `(key, value)` pairs, in order.
pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Node)>) -> Node {
    Node::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// A sequence of strings.
pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Node {
    Node::List(
        items
            .into_iter()
            .map(|s| Node::Str(s.as_ref().to_string()))
            .collect(),
    )
}

impl Node {
    /// Add an entry to a mapping (no-op on other nodes); returns the node for chaining.
    pub fn with(mut self, key: &str, value: impl Into<Node>) -> Node {
        if let Node::Map(entries) = &mut self {
            entries.push((key.to_string(), value.into()));
        }
        self
    }

    fn is_empty_collection(&self) -> bool {
        matches!(self, Node::List(items) if items.is_empty())
            || matches!(self, Node::Map(entries) if entries.is_empty())
    }
}

/// Whether `s` can be written without quotes and read back as the same string.
fn plain_ok(s: &str) -> bool {
    let reserved = [
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "yes",
        "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
    ];
    if reserved.contains(&s) || s.parse::<f64>().is_ok() || s.starts_with(['0', '+', '.']) {
        return false;
    }
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '$');
    first_ok
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | '$' | '=')
        })
        && !s.contains(": ")
        && !s.ends_with(':')
}

/// A scalar string as YAML: plain when safe, else a double-quoted (JSON) string.
pub fn scalar(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

fn inline(node: &Node) -> Option<String> {
    match node {
        Node::Str(s) => Some(scalar(s)),
        Node::Int(n) => Some(n.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        Node::List(items) if items.is_empty() => Some("[]".into()),
        // Short lists of scalars read best on one line: `drop: [ALL]`.
        Node::List(items)
            if items
                .iter()
                .all(|i| matches!(i, Node::Str(_) | Node::Int(_) | Node::Bool(_))) =>
        {
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    // `:` is fine in plain block scalars but some readers stumble on it in flow.
                    Node::Str(s) if s.contains(':') => {
                        serde_json::Value::String(s.clone()).to_string()
                    }
                    other => inline(other).unwrap_or_default(),
                })
                .collect();
            let line = format!("[{}]", parts.join(", "));
            (line.len() <= 60).then_some(line)
        }
        Node::Map(entries) if entries.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn emit(out: &mut String, node: &Node, indent: usize) {
    let pad = " ".repeat(indent);
    match node {
        Node::Map(entries) => {
            for (key, value) in entries {
                match inline(value) {
                    Some(text) => {
                        let _ = writeln!(out, "{pad}{}: {text}", scalar(key));
                    }
                    None => {
                        let _ = writeln!(out, "{pad}{}:", scalar(key));
                        let child = if matches!(value, Node::List(_)) {
                            indent
                        } else {
                            indent + 2
                        };
                        emit(out, value, child);
                    }
                }
            }
        }
        Node::List(items) => {
            for item in items {
                match inline(item) {
                    Some(text) => {
                        let _ = writeln!(out, "{pad}- {text}");
                    }
                    None => {
                        let mut nested = String::new();
                        emit(&mut nested, item, indent + 2);
                        let trimmed = nested.trim_start_matches(' ');
                        let _ = write!(out, "{pad}- {trimmed}");
                    }
                }
            }
        }
        scalar_node => {
            if let Some(text) = inline(scalar_node) {
                let _ = writeln!(out, "{pad}{text}");
            }
        }
    }
}

/// One YAML document for `node` (a mapping at the top).
pub fn to_string(node: &Node) -> String {
    let mut out = String::new();
    if node.is_empty_collection() {
        out.push_str(&inline(node).unwrap_or_default());
        out.push('\n');
    } else {
        emit(&mut out, node, 0);
    }
    out
}

/// Several documents in one stream, separated by `---`.
pub fn documents(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(to_string)
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_maps_and_lists_in_block_style() {
        let doc = map([
            ("apiVersion", Node::from("v1")),
            (
                "spec",
                map([
                    ("replicas", Node::from(3u16)),
                    (
                        "containers",
                        Node::List(vec![map([
                            ("name", "web".into()),
                            ("args", strings(["a", "b c"])),
                        ])]),
                    ),
                    ("empty", Node::Map(vec![])),
                ]),
            ),
        ]);
        assert_eq!(
            to_string(&doc),
            "apiVersion: v1\nspec:\n  replicas: 3\n  containers:\n  - name: web\n    args: [a, \"b c\"]\n  empty: {}\n"
        );
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "true", "no", "8080", "1.0", "", "0.5", "a: b", "*x", "#c", "x ", "{a}",
        ] {
            assert!(scalar(s).starts_with('"'), "{s} -> {}", scalar(s));
        }
        for s in [
            "nginx:1.28.0-bookworm",
            "/health",
            "points",
            "RuntimeDefault",
        ] {
            assert_eq!(scalar(s), s);
        }
    }
}
