//! Cursors of RFC 9865: opaque to the client and unforgeable (HMAC-SHA256 with the store's
//! secret, §5.2), bound to the query and `count` that issued them (§2.1, §2.4) and to the
//! time they were issued (`cursorTimeout`, §2.3). A cursor holds the keyset of the last
//! resource of its page: the next page starts after it, whatever was created or deleted
//! meanwhile. Only unreserved characters of RFC 3986 §2.3 appear in it (§2).

use crate::error::{ScimError, ScimResult, ScimType};
use crate::store::Keyset;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Digest of the query the cursor pages.
    q: String,
    /// The page size.
    n: usize,
    /// Issued at (Unix seconds).
    t: u64,
    /// Where the page ended (or, for a previous cursor, began).
    k: Keyset,
    /// A previous cursor: the page before `k`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    b: bool,
}

/// Where the page a cursor asks for lies.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    /// After this keyset (`nextCursor`).
    After(Keyset),
    /// Before it (`previousCursor`).
    Before(Keyset),
}

/// The identity of a query: every parameter a client must repeat on each page.
pub fn query_digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(&h.finalize()[..16])
}

fn mac(secret: &[u8], body: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(body.as_bytes());
    m
}

/// The cursor of the page at `at`.
pub fn seal(secret: &[u8], query: &str, count: usize, now: u64, at: &Position) -> String {
    let (k, b) = match at {
        Position::After(k) => (k.clone(), false),
        Position::Before(k) => (k.clone(), true),
    };
    let payload = Payload {
        q: query.to_string(),
        n: count,
        t: now,
        k,
        b,
    };
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
    let tag = URL_SAFE_NO_PAD.encode(mac(secret, &body).finalize().into_bytes());
    format!("{body}.{tag}")
}

fn invalid(why: &str) -> ScimError {
    ScimError::bad(
        ScimType::InvalidCursor,
        format!(
            "{why}; send an empty cursor for the first page, then each page's nextCursor with the same query (RFC 9865 §2)"
        ),
    )
}

/// Where the page `cursor` asks for starts, if this server issued it for this query and
/// count and it has not expired.
pub fn open(
    secret: &[u8],
    cursor: &str,
    query: &str,
    count: usize,
    now: u64,
    timeout_secs: u64,
) -> ScimResult<Position> {
    let (body, tag) = cursor
        .split_once('.')
        .ok_or_else(|| invalid("the cursor is not one this server issued"))?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| invalid("the cursor is not one this server issued"))?;
    // Constant-time comparison (hmac's verify).
    mac(secret, body)
        .verify_slice(&tag)
        .map_err(|_| invalid("the cursor is not one this server issued (or it was altered)"))?;
    let payload: Payload = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("the cursor does not decode"))?;
    if payload.q != query {
        return Err(invalid(
            "the cursor belongs to another query (filter, sortBy, sortOrder, attributes and the endpoint must stay the same)",
        ));
    }
    if payload.n != count {
        return Err(ScimError::bad(
            ScimType::InvalidCount,
            format!(
                "count must stay {} on every page of this cursor, not {count} (RFC 9865 §2.4)",
                payload.n
            ),
        ));
    }
    if now.saturating_sub(payload.t) > timeout_secs {
        return Err(ScimError::bad(
            ScimType::ExpiredCursor,
            format!(
                "the cursor expired: it is older than this server's cursorTimeout of {timeout_secs} s; start again with an empty cursor (RFC 9865 §2.3)"
            ),
        ));
    }
    Ok(if payload.b {
        Position::Before(payload.k)
    } else {
        Position::After(payload.k)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_open_only_for_their_query_count_and_time() {
        let k = Keyset {
            key: serde_json::json!("ann"),
            seq: 7,
        };
        let c = seal(b"secret", "q1", 10, 1000, &Position::After(k.clone()));
        assert!(
            c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-._~".contains(ch))
        );
        assert_eq!(
            open(b"secret", &c, "q1", 10, 1500, 3600).unwrap(),
            Position::After(k.clone())
        );
        let back = seal(b"secret", "q1", 10, 1000, &Position::Before(k.clone()));
        assert_eq!(
            open(b"secret", &back, "q1", 10, 1500, 3600).unwrap(),
            Position::Before(k.clone())
        );
        let kind = |r: ScimResult<Position>| r.unwrap_err().scim_type();
        assert_eq!(
            kind(open(b"other", &c, "q1", 10, 1500, 3600)),
            Some(ScimType::InvalidCursor)
        );
        assert_eq!(
            kind(open(b"secret", &c, "q2", 10, 1500, 3600)),
            Some(ScimType::InvalidCursor)
        );
        assert_eq!(
            kind(open(b"secret", &c, "q1", 11, 1500, 3600)),
            Some(ScimType::InvalidCount)
        );
        assert_eq!(
            kind(open(b"secret", &c, "q1", 10, 4601, 3600)),
            Some(ScimType::ExpiredCursor)
        );
        let mut tampered = c.clone();
        tampered.replace_range(0..1, if c.starts_with('A') { "B" } else { "A" });
        assert_eq!(
            kind(open(b"secret", &tampered, "q1", 10, 1500, 3600)),
            Some(ScimType::InvalidCursor)
        );
        for junk in ["", "x", "a.b", "..", "é.é"] {
            assert_eq!(
                kind(open(b"secret", junk, "q1", 10, 1500, 3600)),
                Some(ScimType::InvalidCursor),
                "{junk}"
            );
        }
    }
}
