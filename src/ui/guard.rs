//! Who may see the UI, and how its forms are protected.
//! - **Peer**: loopback clients only, unless the server runs with `--admin-remote`.
//! - **Host**: a page on another origin whose name resolves to 127.0.0.1 (DNS rebinding) sends
//!   its own name as `Host`; only loopback names and the configured `--public-host` names are
//!   answered, so such a page can read nothing.
//! - **Token**: with `--admin-remote` the UI is reachable from other hosts, so it asks for the
//!   admin token once (`/ui/login`) and remembers the session.
//! - **CSRF**: every session has a token that state-changing forms must carry.
//!
//! Sessions keep no state in the process: the cookie holds a random session id (and, once
//! the admin token was given, a MAC saying so), and the CSRF token is a MAC of the id, both
//! keyed by the store's shared secret. Replicas on one database therefore honour each other's
//! sessions, whichever one a load balancer picks.

use crate::http::AppState;
use crate::http::admin;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

const COOKIE: &str = "scimlab_ui";
/// One browser's session: its CSRF token and whether it gave the admin token.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub csrf: String,
    pub signed_in: bool,
}

/// Reads and makes session cookies (see the module's notes).
pub struct Sessions {
    key: Vec<u8>,
}

impl Sessions {
    /// Sessions keyed by `secret` (the store's: every replica on the database shares it).
    pub fn new(secret: &[u8]) -> Sessions {
        Sessions {
            key: mac(secret, "scimlab ui sessions"),
        }
    }

    fn mac(&self, what: &str, id: &str) -> String {
        let m = mac(&self.key, &format!("{what}:{id}"));
        m.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The session a cookie value names: `id`, or `id~mac` once signed in. A MAC that does not
    /// verify is no session at all.
    fn get(&self, cookie: &str) -> Option<(String, UiSession)> {
        let (id, signed) = match cookie.split_once('~') {
            Some((id, m)) => {
                let expected = self.mac("signed-in", id);
                if !crate::http::constant_time_eq(m.as_bytes(), expected.as_bytes()) {
                    return None;
                }
                (id, true)
            }
            None => (cookie, false),
        };
        if id.len() < 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        Some((id.to_string(), self.session(id, signed)))
    }

    fn session(&self, id: &str, signed_in: bool) -> UiSession {
        UiSession {
            csrf: self.mac("csrf", id)[..32].to_string(),
            signed_in,
        }
    }

    fn create(&self) -> (String, UiSession) {
        let id = crate::vocab::rng::secret();
        let s = self.session(&id, false);
        (id, s)
    }

    /// The cookie value of session `id` signed in.
    fn signed_in_cookie(&self, id: &str) -> String {
        format!("{id}~{}", self.mac("signed-in", id))
    }
}

fn mac(key: &[u8], body: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(body.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Whether `host` (a `Host` header: name or name:port) names this machine's loopback, or one
/// of the configured public names.
pub fn allowed_host(host: &str, public_hosts: &[String]) -> bool {
    let host = host.trim().to_ascii_lowercase();
    if public_hosts
        .iter()
        .any(|p| p.eq_ignore_ascii_case(&host) || strip_port(&host) == p.to_ascii_lowercase())
    {
        return true;
    }
    let name = strip_port(&host);
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let ip = name.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// `name` of `name:port`; `[::1]` of `[::1]:8080`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn cookie_session(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The session id of the request (set by [`guard`]).
#[derive(Clone)]
pub struct SessionId(pub String);

/// Middleware in front of every `/ui` route: its state is the app and the UI's sessions.
pub async fn guard(
    State((app, sessions)): State<(AppState, Arc<Sessions>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let forbidden = |why: &str| super::error_page(StatusCode::FORBIDDEN, why);
    let peer = match admin::peer_of(req.extensions()) {
        Ok(p) => p,
        Err(e) => return forbidden(e.detail()),
    };
    if let Err(e) = admin::local_only(&app, peer) {
        return forbidden(e.detail());
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !allowed_host(host, &app.harness.admin.public_hosts) {
        return forbidden(&format!(
            "the UI answers requests for localhost, not for {host:?}; start scimlab with --public-host {host} to serve that name"
        ));
    }
    let known = cookie_session(&req).and_then(|c| sessions.get(&c));
    let (id, session, fresh) = match known {
        Some((id, s)) => (id, s, false),
        None => {
            let (id, s) = sessions.create();
            (id, s, true)
        }
    };
    let login = req.uri().path() == "/ui/login";
    if app.harness.admin.remote && !session.signed_in && !login {
        let mut resp = Redirect::to("/ui/login").into_response();
        set_cookie(&mut resp, &id, fresh);
        return resp;
    }
    req.extensions_mut().insert(session);
    req.extensions_mut().insert(sessions.clone());
    req.extensions_mut().insert(SessionId(id.clone()));
    let mut resp = next.run(req).await;
    set_cookie(&mut resp, &id, fresh);
    resp
}

fn set_cookie(resp: &mut Response, value: &str, fresh: bool) {
    if !fresh {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Whether a submitted form's `csrf` field is this session's token.
pub fn csrf_ok(session: &UiSession, submitted: Option<&str>) -> bool {
    submitted.is_some_and(|t| crate::http::constant_time_eq(t.as_bytes(), session.csrf.as_bytes()))
}

/// Marks the session as having given the admin token, if `token` is it: `resp` then carries
/// the session's signed-in cookie.
pub fn sign_in(
    app: &AppState,
    sessions: &Sessions,
    id: &str,
    token: &str,
    resp: &mut Response,
) -> bool {
    let ok =
        crate::http::constant_time_eq(token.trim().as_bytes(), app.harness.admin.token.as_bytes());
    if ok {
        set_cookie(resp, &sessions.signed_in_cookie(id), true);
    }
    ok
}
