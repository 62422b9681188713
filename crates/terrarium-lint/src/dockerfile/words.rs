//! Splitting non-RUN instruction arguments into words, the way BuildKit does for FROM, COPY,
//! ENV and friends: whitespace separates, quotes group, the escape character escapes.

use super::{Text, Token};

/// Split `text` into words with quotes and escapes removed; each token's span covers the word
/// as written.
pub fn split_words(text: &Text, escape: char) -> Vec<Token> {
    let mut words = Vec::new();
    let s = text.text.as_str();
    let mut chars = s.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        let mut end = start;
        let mut quote: Option<char> = None;
        while let Some(&(i, c)) = chars.peek() {
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            chars.next();
            end = i + c.len_utf8();
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (q, c) if c == escape && q != Some('\'') => {
                    if let Some((j, next)) = chars.next() {
                        end = j + next.len_utf8();
                        word.push(next);
                    }
                }
                (_, c) => word.push(c),
            }
        }
        words.push(Token {
            text: word,
            span: text.span(start, end),
        });
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Text {
        let mut t = Text::default();
        t.push_str(s, 10);
        t
    }

    #[test]
    fn splits_quotes_and_escapes() {
        let words = split_words(&text(r#"A="b c" d\ e 'f\g'"#), '\\');
        let texts: Vec<_> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["A=b c", "d e", "f\\g"]);
        assert_eq!(words[0].span.start, 10);
        assert_eq!(words[1].span.start, 18);
    }

    #[test]
    fn backtick_escape() {
        let words = split_words(&text(r"C:\app a`b"), '`');
        assert_eq!(words[0].text, r"C:\app");
        assert_eq!(words[1].text, "ab");
    }
}
