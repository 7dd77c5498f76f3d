//! Attribute paths (`name.givenName`, `urn:…:User:manager.value`) as clients write them,
//! before resolution against a resource type (`model::path`).

use crate::error::{ScimError, ScimResult};
use std::fmt;

/// `[urn ":"] name ["." sub]`, as written by a client (not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses `[urn:…:]attr[.sub]`. The URN is everything up to the last `:` when the text
    /// starts with `urn:`.
    pub fn parse(text: &str) -> ScimResult<AttrPath> {
        let bad = || ScimError::invalid_path(format!("{text:?} is not a valid attribute path"));
        let (urn, rest) = if is_urn(text) {
            let i = text.rfind(':').ok_or_else(bad)?;
            // The attribute part may itself contain '.', but never ':'.
            (Some(text[..i].to_string()), &text[i + 1..])
        } else {
            (None, text)
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        if !valid_name(name) || sub.is_some_and(|s| !valid_name(s)) {
            return Err(bad());
        }
        Ok(AttrPath {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }
}

/// Whether `text` starts with `urn:` (any case). Safe on any UTF-8: never slices inside a
/// character (found by fuzzing).
pub fn is_urn(text: &str) -> bool {
    text.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        && text.len() > 4
}

/// RFC 7644 ATTRNAME (plus `$ref`).
pub fn valid_name(name: &str) -> bool {
    name == "$ref"
        || (name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}
