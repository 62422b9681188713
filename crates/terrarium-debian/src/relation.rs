//! Package relationships (`Depends`, `Pre-Depends`, `Provides`): comma-separated groups of
//! `|`-separated alternatives, each `name[:arch] [(op version)]`.

use std::fmt;

use crate::version::Version;

/// A version comparison in a relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<<`
    Less,
    /// `<=`
    LessEqual,
    /// `=`
    Equal,
    /// `>=`
    GreaterEqual,
    /// `>>`
    Greater,
}

impl Op {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "<<" => Op::Less,
            "<=" | "<" => Op::LessEqual,
            "=" => Op::Equal,
            ">=" | ">" => Op::GreaterEqual,
            ">>" => Op::Greater,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Less => "<<",
            Op::LessEqual => "<=",
            Op::Equal => "=",
            Op::GreaterEqual => ">=",
            Op::Greater => ">>",
        }
    }

    /// Whether `version` satisfies `op wanted`.
    pub fn matches(self, version: &Version, wanted: &Version) -> bool {
        let ord = version.cmp(wanted);
        match self {
            Op::Less => ord.is_lt(),
            Op::LessEqual => ord.is_le(),
            Op::Equal => ord.is_eq(),
            Op::GreaterEqual => ord.is_ge(),
            Op::Greater => ord.is_gt(),
        }
    }
}

/// One alternative: a package name and an optional version constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The package (or virtual package) name, without an `:any`/`:native` qualifier.
    pub name: String,
    /// The version constraint, if any.
    pub constraint: Option<(Op, Version)>,
}

impl Relation {
    /// Whether a package (or a `Provides`) with `version` satisfies this relation; `None` is an
    /// unversioned `Provides`, which satisfies only unversioned relations (Debian policy 7.5).
    pub fn accepts(&self, version: Option<&Version>) -> bool {
        match (&self.constraint, version) {
            (None, _) => true,
            (Some((op, wanted)), Some(version)) => op.matches(version, wanted),
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some((op, version)) = &self.constraint {
            write!(f, " ({} {version})", op.as_str())?;
        }
        Ok(())
    }
}

/// One comma-separated group: satisfied by any of its alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The alternatives in the order the maintainer wrote them.
    pub alternatives: Vec<Relation>,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alternative) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alternative}")?;
        }
        Ok(())
    }
}

/// Parse a relationship field. Architecture restrictions (`[amd64]`) and build profiles
/// (`<!nocheck>`) only occur in source packages and are ignored.
pub fn parse_relations(text: &str) -> Result<Vec<Dependency>, String> {
    let mut out = Vec::new();
    for group in text.split(',') {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let mut alternatives = Vec::new();
        for alternative in group.split('|') {
            alternatives.push(parse_relation(alternative.trim())?);
        }
        out.push(Dependency { alternatives });
    }
    Ok(out)
}

fn parse_relation(text: &str) -> Result<Relation, String> {
    let bad = || format!("malformed relation `{text}`");
    let text = strip_brackets(text, '[', ']');
    let text = strip_brackets(&text, '<', '>');
    let text = text.trim();
    let (name_part, constraint) = match text.split_once('(') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(bad)?.trim();
            let op_len = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .ok_or_else(bad)?;
            let op = Op::parse(&inner[..op_len]).ok_or_else(bad)?;
            let version = Version::parse(inner[op_len..].trim()).map_err(|err| err.to_string())?;
            (name.trim(), Some((op, version)))
        }
        None => (text, None),
    };
    let name = name_part.split(':').next().unwrap_or(name_part);
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if !valid {
        return Err(bad());
    }
    Ok(Relation {
        name: name.to_owned(),
        constraint,
    })
}

/// `text` without what `open`…`close` enclose, outside a version constraint's parentheses
/// (so `<!nocheck>` goes and `(<< 2.37)` stays).
fn strip_brackets(text: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut in_constraint = false;
    for c in text.chars() {
        if depth == 0 && c == '(' {
            in_constraint = true;
        } else if depth == 0 && c == ')' {
            in_constraint = false;
        }
        if in_constraint {
            out.push(c);
        } else if c == open {
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_depends() {
        let deps = parse_relations(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any, libfoo [amd64] <!nocheck>, libc6 (<< 2.37)",
        )
        .unwrap();
        assert_eq!(deps.len(), 5);
        assert_eq!(deps[4].to_string(), "libc6 (<< 2.37)");
        assert_eq!(deps[1].to_string(), "debconf (>= 0.5) | debconf-2.0");
        assert_eq!(deps[2].alternatives[0].name, "python3");
        assert_eq!(deps[3].alternatives[0].name, "libfoo");
        let wanted = &deps[0].alternatives[0];
        assert!(wanted.accepts(Some(&Version::parse("2.36-9").unwrap())));
        assert!(!wanted.accepts(Some(&Version::parse("2.31").unwrap())));
        assert!(!wanted.accepts(None));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_relations("libc6 (>= )").is_err());
        assert!(parse_relations("libc6 (~ 1)").is_err());
        assert!(parse_relations("Bad Name").is_err());
    }
}
