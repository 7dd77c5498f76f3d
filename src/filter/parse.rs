//! Recursive-descent parser for the RFC 7644 filter grammar. `or` binds looser than `and`;
//! both are left-associative; `not` needs parentheses. Nesting is bounded by [`MAX_DEPTH`].

use super::{CompValue, CompareOp, Filter};
use crate::error::{ScimError, ScimResult};
use crate::vocab::compat::{Compat, Quirk};
use crate::vocab::path::AttrPath;

/// Deepest nesting of parentheses, `not` and value paths accepted.
pub const MAX_DEPTH: usize = 32;

/// Most comparisons (`attr op value`, `attr pr`) in one filter. A filter is compiled to one SQL
/// expression whose depth grows with its terms; this keeps every accepted filter well inside
/// SQLite's expression-depth limit (1,000) and the compiler's recursion shallow.
pub const MAX_TERMS: usize = 250;

/// Longest comparison value, in characters: substring tests become `LIKE` patterns, which
/// SQLite caps at 50,000 bytes.
pub const MAX_VALUE_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    LBracket,
    RBracket,
    Str(String),
    Num(serde_json::Number),
    Word(String),
}

struct Lexed {
    tok: Tok,
    at: usize,
}

fn err(text: &str, at: usize, what: &str) -> ScimError {
    ScimError::invalid_filter(format!("{what} at position {} of filter {text:?}", at + 1))
}

fn lex(text: &str) -> ScimResult<Vec<Lexed>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let at = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Lexed { tok: Tok::Open, at });
                i += 1
            }
            b')' => {
                out.push(Lexed {
                    tok: Tok::Close,
                    at,
                });
                i += 1
            }
            b'[' => {
                out.push(Lexed {
                    tok: Tok::LBracket,
                    at,
                });
                i += 1
            }
            b']' => {
                out.push(Lexed {
                    tok: Tok::RBracket,
                    at,
                });
                i += 1
            }
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                if j >= bytes.len() {
                    return Err(err(text, at, "unterminated string"));
                }
                let s: String = serde_json::from_str(&text[i..=j])
                    .map_err(|_| err(text, at, "invalid string escape"))?;
                out.push(Lexed {
                    tok: Tok::Str(s),
                    at,
                });
                i = j + 1;
            }
            b'-' | b'0'..=b'9' => {
                let mut j = i + 1;
                while j < bytes.len()
                    && matches!(bytes[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    j += 1;
                }
                let n = number(&text[i..j]).ok_or_else(|| err(text, at, "invalid number"))?;
                out.push(Lexed {
                    tok: Tok::Num(n),
                    at,
                });
                i = j;
            }
            b'.' if out.last().is_some_and(|t: &Lexed| t.tok == Tok::RBracket) => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'_' | b'-' | b'$'))
                {
                    j += 1;
                }
                out.push(Lexed {
                    tok: Tok::Word(text[i..j].to_string()),
                    at,
                });
                i = j;
            }
            _ if c.is_ascii_alphabetic() || c == b'$' => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric()
                        || matches!(bytes[j], b'_' | b'-' | b'.' | b':' | b'$'))
                {
                    j += 1;
                }
                out.push(Lexed {
                    tok: Tok::Word(text[i..j].to_string()),
                    at,
                });
                i = j;
            }
            _ => {
                return Err(err(
                    text,
                    at,
                    &format!(
                        "unexpected character {:?}",
                        text[i..].chars().next().unwrap_or(' ')
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// A JSON number: integers exactly, others through Rust's correctly rounded `f64` parser (so a
/// printed filter parses back to the same value). The text must still be JSON number syntax.
fn number(text: &str) -> Option<serde_json::Number> {
    serde_json::from_str::<serde_json::Number>(text).ok()?;
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(u.into());
    }
    serde_json::Number::from_f64(text.parse::<f64>().ok()?)
}

struct Parser<'a> {
    text: &'a str,
    compat: &'a Compat,
    toks: Vec<Lexed>,
    pos: usize,
    depth: usize,
    terms: usize,
}

/// Parses a filter expression (RFC grammar only).
pub fn parse(text: &str) -> ScimResult<Filter> {
    parse_with(text, &Compat::default())
}

/// Parses a filter expression, accepting the IdP deviations `compat` allows.
pub fn parse_with(text: &str, compat: &Compat) -> ScimResult<Filter> {
    let mut p = Parser {
        text,
        compat,
        toks: lex(text)?,
        pos: 0,
        depth: 0,
        terms: 0,
    };
    if p.toks.is_empty() {
        return Err(ScimError::invalid_filter("the filter is empty"));
    }
    let f = p.or(false)?;
    if let Some(t) = p.toks.get(p.pos) {
        return Err(err(text, t.at, "unexpected text after a complete filter"));
    }
    Ok(f)
}

impl Parser<'_> {
    /// `pr`, or an operator and a value, after the attribute path `path` (written `w`).
    fn comparison(&mut self, path: AttrPath, w: &str) -> ScimResult<Filter> {
        let op_at = self.at();
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(err(
                self.text,
                op_at,
                &format!(
                    "the filter has more than {MAX_TERMS} comparisons (scimlab's limit); split the query into several requests"
                ),
            ));
        }
        let op_word = match self.peek() {
            Some(Tok::Word(o)) => o.clone(),
            _ => {
                return Err(err(
                    self.text,
                    op_at,
                    &format!("expected an operator after {w:?}"),
                ));
            }
        };
        self.pos += 1;
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::parse(&op_word).ok_or_else(|| {
            err(self.text, op_at, &format!("unknown operator {op_word:?} (expected eq, ne, co, sw, ew, gt, ge, lt, le or pr)"))
        })?;
        let value_at = self.at();
        let value = match self.peek().cloned() {
            Some(Tok::Str(s)) => CompValue::Str(s),
            Some(Tok::Num(n)) => CompValue::Num(n),
            Some(Tok::Word(v)) if v.eq_ignore_ascii_case("true") => CompValue::Bool(true),
            Some(Tok::Word(v)) if v.eq_ignore_ascii_case("false") => CompValue::Bool(false),
            Some(Tok::Word(v)) if v.eq_ignore_ascii_case("null") => CompValue::Null,
            _ => {
                return Err(err(
                    self.text,
                    value_at,
                    "expected a value (a \"string\", number, true, false or null)",
                ));
            }
        };
        if let CompValue::Str(s) = &value
            && s.chars().count() > MAX_VALUE_CHARS
        {
            return Err(err(
                self.text,
                value_at,
                &format!(
                    "the compared string is longer than {MAX_VALUE_CHARS} characters (scimlab's limit)"
                ),
            ));
        }
        self.pos += 1;
        Ok(Filter::Compare { path, op, value })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }
    fn at(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|t| t.at)
            .unwrap_or(self.text.len())
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn deeper(&mut self) -> ScimResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                self.text,
                self.at(),
                &format!("filter nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }
    fn expect(&mut self, tok: Tok, what: &str) -> ScimResult<()> {
        if self.peek() == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(err(self.text, self.at(), &format!("expected {what}")))
        }
    }

    fn or(&mut self, in_brackets: bool) -> ScimResult<Filter> {
        let mut left = self.and(in_brackets)?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and(in_brackets)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, in_brackets: bool) -> ScimResult<Filter> {
        let mut left = self.atom(in_brackets)?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.atom(in_brackets)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn atom(&mut self, in_brackets: bool) -> ScimResult<Filter> {
        if self.keyword("not")
            && matches!(self.toks.get(self.pos + 1).map(|t| &t.tok), Some(Tok::Open))
        {
            self.pos += 2;
            self.deeper()?;
            let inner = self.or(in_brackets)?;
            self.expect(Tok::Close, "')' closing 'not ('")?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        match self.peek().cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                self.deeper()?;
                let inner = self.or(in_brackets)?;
                self.expect(Tok::Close, "')'")?;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Tok::Word(w)) => {
                let at = self.at();
                self.pos += 1;
                let path = AttrPath::parse(&w)
                    .map_err(|_| err(self.text, at, &format!("{w:?} is not an attribute path")))?;
                if self.peek() == Some(&Tok::LBracket) {
                    if in_brackets {
                        return Err(err(self.text, self.at(), "value filters cannot be nested"));
                    }
                    self.pos += 1;
                    self.deeper()?;
                    let inner = self.or(true)?;
                    self.expect(Tok::RBracket, "']'")?;
                    self.depth -= 1;
                    if let Some(Tok::Word(sub)) = self
                        .peek()
                        .cloned()
                        .filter(|t| matches!(t, Tok::Word(x) if x.starts_with('.')))
                    {
                        // `emails[type eq "work"].value eq "x"`: the comparison joins the filter.
                        if !self.compat.allows(Quirk::FilterValuePathSubAttribute) {
                            return Err(ScimError::invalid_filter(Compat::refusal(
                                Quirk::FilterValuePathSubAttribute,
                                &format!(
                                    "{w}[...]{sub} compares a sub-attribute after a value filter; RFC 7644 writes {w}[... and {} ...]",
                                    &sub[1..]
                                ),
                            )));
                        }
                        self.pos += 1;
                        let sub_path = AttrPath {
                            urn: None,
                            name: sub[1..].to_string(),
                            sub: None,
                        };
                        let cond = self.comparison(sub_path, &sub)?;
                        let both = Filter::And(Box::new(inner), Box::new(cond));
                        return Ok(Filter::ValuePath {
                            path,
                            filter: Box::new(both),
                        });
                    }
                    return Ok(Filter::ValuePath {
                        path,
                        filter: Box::new(inner),
                    });
                }
                self.comparison(path, &w)
            }
            _ => Err(err(
                self.text,
                self.at(),
                "expected an attribute, '(' or 'not ('",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> String {
        parse(s).unwrap().to_string()
    }

    #[test]
    fn parses_the_rfc_examples_and_prints_them_back() {
        for f in [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            "active eq true and x.y eq 1.5e3 and z eq null",
        ] {
            let printed = rt(f);
            assert_eq!(
                parse(&printed).unwrap(),
                parse(f).unwrap(),
                "{f} -> {printed}"
            );
        }
    }

    #[test]
    fn precedence_and_case_insensitive_keywords() {
        let f = parse(r#"a eq 1 OR b EQ 2 And c Pr"#).unwrap();
        assert!(matches!(f, Filter::Or(_, ref r) if matches!(**r, Filter::And(..))));
        assert_eq!(f.to_string(), "a eq 1 or b eq 2 and c pr");
        assert_eq!(rt("a pr or (b pr or c pr)"), "a pr or (b pr or c pr)");
        assert_eq!(rt("(a pr or b pr) and c pr"), "(a pr or b pr) and c pr");
    }

    #[test]
    fn rejects_bad_filters_with_a_position() {
        for (f, needle) in [
            ("userName eq", "expected a value"),
            ("userName zz \"x\"", "unknown operator"),
            ("(userName pr", "expected ')'"),
            ("userName eq \"x", "unterminated string"),
            ("emails[type eq \"w\"", "expected ']'"),
            ("emails[a[b pr]]", "cannot be nested"),
            ("userName pr extra", "unexpected text"),
            ("", "empty"),
            ("%", "unexpected character"),
        ] {
            let e = parse(f).unwrap_err();
            assert_eq!(e.scim_type(), Some(crate::error::ScimType::InvalidFilter));
            assert!(e.detail().contains(needle), "{f}: {}", e.detail());
        }
    }

    #[test]
    fn numbers_print_and_parse_back_exactly() {
        // Found by the fuzzer: serde_json's fast float parsing is not correctly rounded.
        for f in [
            "ES gt 11000E020",
            "a eq 1.1e24",
            "a eq -0.1",
            "a eq 18446744073709551615",
            "a eq -9223372036854775808",
        ] {
            let ast = parse(f).unwrap();
            assert_eq!(parse(&ast.to_string()).unwrap(), ast, "{f}");
        }
        assert!(
            parse("a eq 1e999").is_err(),
            "infinity is not a JSON number"
        );
        assert!(parse("a eq 01").is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!(
            "{}a pr{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(&deep).unwrap_err().detail().contains("nests deeper"));
        let ok = format!("{}a pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        parse(&ok).unwrap();
    }

    #[test]
    fn terms_and_values_are_bounded() {
        let chain = |n: usize, join: &str| {
            (0..n)
                .map(|i| format!("userName eq \"u{i}\""))
                .collect::<Vec<_>>()
                .join(join)
        };
        parse(&chain(MAX_TERMS, " or ")).unwrap();
        for join in [" or ", " and "] {
            let e = parse(&chain(MAX_TERMS + 1, join)).unwrap_err();
            assert_eq!(e.scim_type(), Some(crate::error::ScimType::InvalidFilter));
            assert!(
                e.detail().contains("more than 250 comparisons"),
                "{}",
                e.detail()
            );
        }
        // Long chains stop at the limit without reading (or building) the rest.
        assert!(parse(&chain(20_000, " or ")).is_err());
        let long = "é".repeat(MAX_VALUE_CHARS);
        parse(&format!("userName co \"{long}\"")).unwrap();
        let e = parse(&format!("userName co \"{long}x\"")).unwrap_err();
        assert!(
            e.detail().contains("longer than 4096 characters"),
            "{}",
            e.detail()
        );
    }
}
