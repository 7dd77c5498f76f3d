//! Authentication of SCIM requests: each virtual server admits only its own credentials, by
//! the methods its definition declares: static bearer tokens, HTTP Basic (RFC 7617), a custom
//! header, and OAuth 2.0 access tokens it issued (RFC 6749, checked as RFC 6750 says). A 401
//! names, in `WWW-Authenticate`, the schemes the server accepts; for a bearer token that is
//! wrong or expired it carries RFC 6750's `error="invalid_token"`.

use crate::error::{ScimError, ScimResult};
use crate::model::ServerModel;
use crate::model::compat::{Compat, Quirk};
use crate::store::Store;
use axum::http::{HeaderMap, header};
use base64::Engine as _;

/// Compares without an early exit (`subtle`), so response time does not reveal how much of a
/// secret matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// Whether any of `secrets` equals `given`, looking at every one (timing does not reveal which
/// one was close).
fn any_equal<'a>(secrets: impl Iterator<Item = &'a str>, given: &str) -> bool {
    secrets.fold(false, |found, s| {
        constant_time_eq(s.as_bytes(), given.as_bytes()) | found
    })
}

/// The digest under which the store keeps an issued token, code or consent.
pub fn digest(secret: &str) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(secret.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
}

/// Admits the request or says why not.
pub fn check(store: &Store, server: &ServerModel, headers: &HeaderMap) -> ScimResult<()> {
    let auth = &server.auth;
    // A custom header other than Authorization admits on its own.
    let mut wrong_header = None;
    for h in auth
        .header
        .iter()
        .filter(|h| !h.name.eq_ignore_ascii_case("authorization"))
    {
        if let Some(v) = headers.get(h.name.as_str()) {
            if constant_time_eq(v.as_bytes(), h.value.as_bytes()) {
                return Ok(());
            }
            wrong_header = Some(h.name.as_str());
        }
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            server,
            match wrong_header {
                Some(name) => format!("the {name} header does not hold this server's value"),
                None => format!(
                    "missing credentials; server {:?} accepts {}",
                    server.id,
                    accepted(server)
                ),
            },
            None,
        ));
    };
    let value = value.to_str().unwrap_or("").trim();
    // Okta's "HTTP header" option: the Authorization header's whole value is the secret.
    let whole = auth
        .header
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("authorization"));
    if any_equal(whole.map(|h| h.value.as_str()), value) {
        return Ok(());
    }
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            bearer(store, server, token.trim())
        }
        Some((scheme, credentials)) if scheme.eq_ignore_ascii_case("basic") => {
            basic(server, credentials.trim())
        }
        None if any_equal(server.tokens.iter().map(String::as_str), value) => {
            if !server.compat.allows(Quirk::BearerWithoutPrefix) {
                return Err(unauthorized(
                    server,
                    Compat::refusal(
                        Quirk::BearerWithoutPrefix,
                        "the Authorization header holds a token without the \"Bearer \" scheme",
                    ),
                    Some("invalid_request"),
                ));
            }
            Ok(())
        }
        _ => Err(unauthorized(
            server,
            format!(
                "the Authorization header must use a scheme server {:?} accepts: {}",
                server.id,
                accepted(server)
            ),
            None,
        )),
    }
}

fn bearer(store: &Store, server: &ServerModel, token: &str) -> ScimResult<()> {
    if any_equal(server.tokens.iter().map(String::as_str), token) {
        return Ok(());
    }
    if server.auth.oauth.is_some() {
        let d = digest(token);
        let grant = store
            .read_point(|c| c.grant(&server.id, &d, "access", false))
            .map_err(ScimError::internal)?;
        if let Some(g) = grant {
            if g.expires_at > crate::vocab::time::unix_secs() as i64 {
                return Ok(());
            }
            return Err(unauthorized(
                server,
                "the access token expired; get a new one from the token endpoint (a refresh token, or the client credentials)",
                Some("invalid_token"),
            ));
        }
    }
    Err(unauthorized(
        server,
        format!("the bearer token is not valid for server {:?}", server.id),
        Some("invalid_token"),
    ))
}

fn basic(server: &ServerModel, credentials: &str) -> ScimResult<()> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Err(unauthorized(
            server,
            "HTTP Basic credentials are base64 of \"username:password\" (RFC 7617 §2)",
            None,
        ));
    };
    // Every pair is compared, both halves, whatever matched.
    let ok = server.auth.basic.iter().fold(false, |found, b| {
        (constant_time_eq(b.username.as_bytes(), user.as_bytes())
            & constant_time_eq(b.password.as_bytes(), password.as_bytes()))
            | found
    });
    if ok {
        Ok(())
    } else if server.auth.basic.is_empty() {
        Err(unauthorized(
            server,
            format!(
                "server {:?} does not accept HTTP Basic; it accepts {}",
                server.id,
                accepted(server)
            ),
            None,
        ))
    } else {
        Err(unauthorized(
            server,
            format!(
                "the username or password is not valid for server {:?}",
                server.id
            ),
            None,
        ))
    }
}

/// The methods a server accepts, for error details.
fn accepted(server: &ServerModel) -> String {
    let mut out = Vec::new();
    if !server.tokens.is_empty() {
        out.push("\"Authorization: Bearer <token>\"".to_string());
    }
    if server.auth.oauth.is_some() {
        out.push("an OAuth access token from its token endpoint (…/oauth/token)".into());
    }
    if !server.auth.basic.is_empty() {
        out.push("HTTP Basic".into());
    }
    for h in &server.auth.header {
        out.push(format!("the {} header", h.name));
    }
    out.join(", or ")
}

/// A 401 whose `WWW-Authenticate` names every scheme the server accepts; `error` is RFC 6750
/// §3.1's code for a bearer token that was sent and refused (none when no credentials came).
fn unauthorized(server: &ServerModel, detail: impl Into<String>, error: Option<&str>) -> ScimError {
    let detail = detail.into();
    let mut challenges = Vec::new();
    if !server.tokens.is_empty() || server.auth.oauth.is_some() {
        let mut c = "Bearer realm=\"scimlab\"".to_string();
        if let Some(e) = error {
            // The description is a quoted-string of printable ASCII without '"' or '\'.
            let description: String = (detail.chars())
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .filter(|c| *c != '"' && *c != '\\')
                .collect();
            c.push_str(&format!(
                ", error=\"{e}\", error_description=\"{description}\""
            ));
        }
        challenges.push(c);
    }
    if !server.auth.basic.is_empty() {
        challenges.push("Basic realm=\"scimlab\", charset=\"UTF-8\"".into());
    }
    if challenges.is_empty() {
        // Only a custom header admits: still a challenge, as RFC 9110 §15.5.2 requires one.
        challenges.push("Bearer realm=\"scimlab\"".into());
    }
    ScimError::Unauthorized { detail, challenges }
}
