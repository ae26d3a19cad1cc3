//! `Sec-WebSocket-Extensions` (RFC 6455 §9.1, RFC 7692 §5): the header grammar, and the
//! permessage-deflate extension (feature `deflate`).
//!
//! The parser is a single left-to-right pass over the header value (linear time on any input,
//! no backtracking, no recursion).

#[cfg(feature = "deflate")]
pub(crate) mod deflate;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// One extension offer or response: a name and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// The parameters in order; a parameter without a value has `None`. Quoted values are
    /// unescaped.
    pub params: Vec<(String, Option<String>)>,
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (name, value) in &self.params {
            match value {
                Some(value) => write!(f, "; {name}={value}")?,
                None => write!(f, "; {name}")?,
            }
        }
        Ok(())
    }
}

/// A `Sec-WebSocket-Extensions` value that does not follow the RFC 6455 §9.1 grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed Sec-WebSocket-Extensions header at byte {at}")]
pub struct ExtensionsSyntaxError {
    /// Where parsing stopped.
    pub at: usize,
}

const fn is_tchar(b: u8) -> bool {
    matches!(b, b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
        || b.is_ascii_alphanumeric()
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.s.get(self.at), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn error(&self) -> ExtensionsSyntaxError {
        ExtensionsSyntaxError { at: self.at }
    }

    fn token(&mut self) -> Result<String, ExtensionsSyntaxError> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if start == self.at {
            return Err(self.error());
        }
        // Token characters are ASCII.
        Ok(self.s[start..self.at].iter().map(|&b| char::from(b)).collect())
    }

    fn quoted(&mut self) -> Result<String, ExtensionsSyntaxError> {
        self.at += 1; // opening quote
        let mut out = String::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = self.peek().ok_or_else(|| self.error())?;
                    out.push(char::from(escaped));
                    self.at += 1;
                }
                Some(b) => {
                    out.push(char::from(b));
                    self.at += 1;
                }
                None => return Err(self.error()),
            }
        }
        // RFC 6455 §9.1: the unescaped value must itself be a token.
        if out.is_empty() || !out.bytes().all(is_tchar) {
            return Err(self.error());
        }
        Ok(out)
    }
}

/// Parses every extension in a `Sec-WebSocket-Extensions` value, in order.
///
/// ```
/// let list = wscore::parse_extensions("permessage-deflate; client_max_window_bits, x-foo; a=\"1\"").unwrap();
/// assert_eq!(list.len(), 2);
/// assert_eq!(list[0].params, [("client_max_window_bits".to_string(), None)]);
/// assert_eq!(list[1].params, [("a".to_string(), Some("1".to_string()))]);
/// assert!(wscore::parse_extensions("a;;b").is_err());
/// ```
pub fn parse_extensions(value: &str) -> Result<Vec<Extension>, ExtensionsSyntaxError> {
    let mut c = Cursor { s: value.as_bytes(), at: 0 };
    let mut out = Vec::new();
    loop {
        c.skip_ws();
        // Empty list elements ("a, , b") are allowed by the #rule.
        if c.peek() == Some(b',') {
            c.at += 1;
            continue;
        }
        if c.peek().is_none() {
            break;
        }
        let name = c.token()?;
        let mut params = Vec::new();
        loop {
            c.skip_ws();
            match c.peek() {
                Some(b';') => {
                    c.at += 1;
                    c.skip_ws();
                    let key = c.token()?;
                    c.skip_ws();
                    let value = if c.peek() == Some(b'=') {
                        c.at += 1;
                        c.skip_ws();
                        Some(if c.peek() == Some(b'"') { c.quoted()? } else { c.token()? })
                    } else {
                        None
                    };
                    params.push((key, value));
                }
                Some(b',') | None => break,
                Some(_) => return Err(c.error()),
            }
        }
        out.push(Extension { name, params });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn grammar_table() {
        let ok = [
            ("permessage-deflate", 1),
            ("permessage-deflate; client_max_window_bits", 1),
            ("permessage-deflate;server_max_window_bits=10 , permessage-deflate", 2),
            ("a; b=\"1\"; c=d, e", 2),
            ("a; b=\"\\1\\0\"", 1),
            (" , a ,, b ,", 2),
            ("", 0),
        ];
        for (value, count) in ok {
            assert_eq!(parse_extensions(value).map(|l| l.len()), Ok(count), "{value}");
        }
        let bad = [
            "a;",
            "a; =1",
            "a; b=",
            "a; b=\"unterminated",
            "a; b=\"has space\"",
            "a b",
            "a; b=c d",
            "\"a\"",
            "a; b=\"\"",
        ];
        for value in bad {
            assert!(parse_extensions(value).is_err(), "{value}");
        }
        let parsed = parse_extensions("a; b=\"\\1\\0\"").unwrap();
        assert_eq!(parsed[0].params[0], ("b".to_string(), Some("10".to_string())));
        assert_eq!(parsed[0].to_string(), "a; b=10");
    }

    #[test]
    fn linear_on_huge_input() {
        let value = "a;".repeat(200_000) + "b";
        assert_eq!(parse_extensions(&value).map(|l| l[0].params.len()), Ok(200_000));
        let value = ",".repeat(1_000_000);
        assert_eq!(parse_extensions(&value), Ok(Vec::new()));
    }
}
