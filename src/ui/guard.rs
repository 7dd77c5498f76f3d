//! Who may see the UI, and how its forms are protected.
//! - **Peer**: loopback clients only, unless the server runs with `--admin-remote`.
//! - **Host**: a page on another origin whose name resolves to 127.0.0.1 (DNS rebinding) sends
//!   its own name as `Host`; only loopback names and the configured `--public-host` names are
//!   answered, so such a page can read nothing.
//! - **Token**: with `--admin-remote` the UI is reachable from other hosts, so it asks for the
//!   admin token once (`/ui/login`) and remembers the session.
//! - **CSRF**: every session has a random token that state-changing forms must carry.

use crate::http::AppState;
use crate::http::admin;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const COOKIE: &str = "scimlab_ui";
/// Sessions kept; the oldest is forgotten beyond this (its browser simply gets a new one).
const MAX_SESSIONS: usize = 1024;

/// One browser's session: its CSRF token and whether it gave the admin token.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub csrf: String,
    pub signed_in: bool,
}

/// The UI's sessions, by the random id in the browser's cookie.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<SessionTable>,
}

/// Sessions with the logical time each was created, and the clock.
#[derive(Default)]
struct SessionTable {
    by_id: HashMap<String, (u64, UiSession)>,
    clock: u64,
}

impl Sessions {
    fn get(&self, id: &str) -> Option<UiSession> {
        let map = crate::sync::lock(&self.inner);
        map.by_id.get(id).map(|(_, s)| s.clone())
    }

    fn create(&self) -> (String, UiSession) {
        let id = crate::vocab::rng::secret();
        let session = UiSession {
            csrf: crate::vocab::rng::secret(),
            signed_in: false,
        };
        let mut table = crate::sync::lock(&self.inner);
        table.clock += 1;
        let now = table.clock;
        if table.by_id.len() >= MAX_SESSIONS
            && let Some(oldest) = table
                .by_id
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone())
        {
            table.by_id.remove(&oldest);
        }
        table.by_id.insert(id.clone(), (now, session.clone()));
        (id, session)
    }

    fn sign_in(&self, id: &str) {
        let mut guard = crate::sync::lock(&self.inner);
        if let Some((_, s)) = guard.by_id.get_mut(id) {
            s.signed_in = true;
        }
    }
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
    let known = cookie_session(&req).and_then(|id| sessions.get(&id).map(|s| (id, s)));
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

fn set_cookie(resp: &mut Response, id: &str, fresh: bool) {
    if !fresh {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Whether a submitted form's `csrf` field is this session's token.
pub fn csrf_ok(session: &UiSession, submitted: Option<&str>) -> bool {
    submitted.is_some_and(|t| crate::http::constant_time_eq(t.as_bytes(), session.csrf.as_bytes()))
}

/// Marks the session as having given the admin token, if `token` is it.
pub fn sign_in(app: &AppState, sessions: &Sessions, id: &str, token: &str) -> bool {
    let ok =
        crate::http::constant_time_eq(token.trim().as_bytes(), app.harness.admin.token.as_bytes());
    if ok {
        sessions.sign_in(id);
    }
    ok
}
