//! Inline ignores: `# terrarium: ignore=RULE[,RULE] reason` silences the next instruction (or,
//! in YAML, the next line and the block under it, or the line it trails);
//! `# terrarium: ignore-file=RULE[,RULE]` silences the whole file. `all` matches every rule.

use crate::dockerfile::Dockerfile;

/// The ignores found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppressions {
    file_wide: Vec<String>,
    ranges: Vec<(Vec<String>, usize, usize)>,
    /// Every rule id named in an ignore comment, with the comment's 1-based line.
    pub mentions: Vec<(String, usize)>,
}

/// Parse `terrarium: ignore=a,b why` out of a comment's text; `true` for `ignore-file`.
fn directive(comment: &str) -> Option<(bool, Vec<String>)> {
    let rest = comment.trim_start_matches('#').trim_start();
    let rest = rest.strip_prefix("terrarium:")?.trim_start();
    let (file_wide, list) = if let Some(l) = rest.strip_prefix("ignore-file=") {
        (true, l)
    } else {
        (false, rest.strip_prefix("ignore=")?)
    };
    let list = list.split_whitespace().next().unwrap_or("");
    let rules: Vec<String> = list
        .split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    (!rules.is_empty()).then_some((file_wide, rules))
}

impl Suppressions {
    /// Ignores in a Dockerfile's comment lines.
    pub fn for_dockerfile(df: &Dockerfile) -> Self {
        let mut s = Suppressions::default();
        for comment in &df.comments {
            let Some((file_wide, rules)) = directive(&comment.text) else {
                continue;
            };
            let (line, _) = df.lines.position(&df.source, comment.span.start);
            s.mentions.extend(rules.iter().map(|r| (r.clone(), line)));
            if file_wide {
                s.file_wide.extend(rules);
                continue;
            }
            if let Some(next) = df
                .instructions
                .iter()
                .find(|i| i.span.start > comment.span.start)
            {
                let (first, _) = df.lines.position(&df.source, next.span.start);
                let (last, _) = df.lines.position(
                    &df.source,
                    next.span.end.saturating_sub(1).max(next.span.start),
                );
                s.ranges.push((rules, first, last));
            }
        }
        s
    }

    /// Ignores in YAML comments.
    pub fn for_yaml(source: &str) -> Self {
        let lines: Vec<&str> = source.lines().collect();
        let mut s = Suppressions::default();
        for (i, line) in lines.iter().enumerate() {
            let Some(pos) = comment_start(line) else {
                continue;
            };
            let Some((file_wide, rules)) = directive(&line[pos..]) else {
                continue;
            };
            s.mentions.extend(rules.iter().map(|r| (r.clone(), i + 1)));
            if file_wide {
                s.file_wide.extend(rules);
                continue;
            }
            let target = if line[..pos].trim().is_empty() {
                (i + 1..lines.len()).find(|&j| {
                    let t = lines[j].trim_start();
                    !t.is_empty() && !t.starts_with('#')
                })
            } else {
                Some(i)
            };
            let Some(target) = target else { continue };
            let indent = indentation(lines[target]);
            let mut end = target;
            for (j, l) in lines.iter().enumerate().skip(target + 1) {
                if l.trim().is_empty()
                    || indentation(l) > indent
                    || l.trim_start().starts_with('-')
                        && indentation(l) == indent
                        && lines[target].trim_start().ends_with(':')
                {
                    end = j;
                } else {
                    break;
                }
            }
            s.ranges.push((rules, target + 1, end + 1));
        }
        s
    }

    /// Whether a finding of `rule` on 1-based `line` is ignored.
    pub fn covers(&self, rule: &str, line: usize) -> bool {
        let matches = |rules: &[String]| rules.iter().any(|r| r == rule || r == "all");
        matches(&self.file_wide)
            || self
                .ranges
                .iter()
                .any(|(rules, first, last)| (*first..=*last).contains(&line) && matches(rules))
    }
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Byte position of a `#` that starts a YAML comment (not inside quotes).
fn comment_start(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return Some(i),
            None => {}
        }
        prev = c;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    #[test]
    fn dockerfile_next_instruction_and_file_wide() {
        let df = parse(
            "# terrarium: ignore-file=maintainer\nFROM a\n# terrarium: ignore=root-user,sudo because\nRUN a \\\n  b\nUSER root\n",
        );
        let s = Suppressions::for_dockerfile(&df);
        assert!(s.covers("maintainer", 99));
        assert!(s.covers("root-user", 4) && s.covers("sudo", 5));
        assert!(!s.covers("root-user", 6));
        assert!(!s.covers("other", 4));
    }

    #[test]
    fn yaml_blocks_and_trailing() {
        let src = "services:\n  # terrarium: ignore=compose-root-user\n  app:\n    user: root\n  db:\n    user: root  # terrarium: ignore=all\n    image: x\n";
        let s = Suppressions::for_yaml(src);
        assert!(s.covers("compose-root-user", 3) && s.covers("compose-root-user", 4));
        assert!(!s.covers("compose-root-user", 5));
        assert!(s.covers("anything", 6));
        assert!(!s.covers("anything", 7));
    }

    #[test]
    fn rejects_malformed_directives() {
        assert_eq!(directive("# terrarium: ignore="), None);
        assert_eq!(directive("# terrarium ignore=x"), None);
        assert_eq!(
            directive("#terrarium: ignore=a,b reason here"),
            Some((false, vec!["a".into(), "b".into()]))
        );
    }
}
