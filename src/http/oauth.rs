//! OAuth 2.0 (RFC 6749) for the virtual servers whose definition declares `auth.oauth`: a
//! token endpoint per server (`/scim-identifier/{id}/oauth/token`: `client_credentials`,
//! `authorization_code`, `refresh_token`) and an authorization endpoint with a minimal consent
//! page (`/scim-identifier/{id}/oauth/authorize`). Access tokens expire after the configured
//! lifetime; refresh tokens rotate on use. Only digests of what is issued are stored
//! (`store::Grant`), so every process on the database honours them and the database holds no
//! usable credential. Nothing here is logged or recorded by the request inspector.

use super::AppState;
use super::auth::{constant_time_eq, digest};
use crate::definition::{OAuthClientDef, OAuthDef, OAuthGrant};
use crate::model::ServerModel;
use crate::store::Grant;
use crate::vocab::rng::secret;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use handlebars::Handlebars;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// How long an authorization code may wait to be exchanged (RFC 6749 §4.1.2 recommends at most
/// ten minutes), and a consent page to be answered.
const CODE_LIFETIME: i64 = 60;
const CONSENT_LIFETIME: i64 = 600;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/scim-identifier/{server_id}/oauth/token", post(token))
        .route(
            "/scim-identifier/{server_id}/oauth/authorize",
            get(authorize).post(decide),
        )
}

fn now() -> i64 {
    crate::vocab::time::unix_secs() as i64
}

/// An RFC 6749 §5.2 error: status, `error` code, and a description that says what to fix.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> OAuthError {
    OAuthError {
        status,
        error,
        description: description.to_string(),
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut resp = (self.status, axum::Json(body)).into_response();
        no_store(resp.headers_mut());
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"scimlab\""),
            );
        }
        resp
    }
}

/// RFC 6749 §5.1: token answers are never cached.
fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The server and its OAuth settings, or the error answer.
fn oauth_server(app: &AppState, id: &str) -> Result<(Arc<ServerModel>, OAuthDef), OAuthError> {
    let model = app.model.load();
    match model.server(id) {
        Some(s) => match &s.auth.oauth {
            Some(o) => Ok((s.clone(), o.clone())),
            None => Err(oauth_error(
                StatusCode::NOT_FOUND,
                "invalid_request",
                &format!("server {id:?} does not offer OAuth; add auth.oauth to its definition"),
            )),
        },
        None => Err(oauth_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            &format!("no virtual server {id:?}"),
        )),
    }
}

/// `POST …/oauth/token` (RFC 6749 §3.2).
async fn token(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (server, oauth) = match oauth_server(&app, &id) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let client = match authenticate_client(&oauth, &headers, &form) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let store = app.store.clone();
    let sid = server.id.clone();
    let answer = tokio::task::spawn_blocking(move || {
        exchange(&store, &sid, &oauth, &client, &grant_type, &form)
    })
    .await;
    match answer {
        Ok(Ok(body)) => {
            let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
            no_store(resp.headers_mut());
            resp
        }
        Ok(Err(e)) => e.into_response(),
        Err(_) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the token could not be issued",
        )
        .into_response(),
    }
}

/// The client the request authenticates as (RFC 6749 §2.3.1: HTTP Basic with the
/// form-encoded id and secret, or `client_id` and `client_secret` in the body).
fn authenticate_client(
    oauth: &OAuthDef,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<OAuthClientDef, OAuthError> {
    let from_basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (id, secret) = match from_basic {
        Some(pair) => pair,
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(i), Some(s)) => (i.clone(), s.clone()),
            _ => {
                return Err(oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "authenticate the client: HTTP Basic with client_id:client_secret, or client_id and client_secret in the body",
                ));
            }
        },
    };
    let found = oauth.clients.iter().find(|c| c.client_id == id);
    // Compare against some secret even for an unknown id, so timing says nothing.
    let expected = found.map_or("-", |c| c.client_secret.as_str());
    match found {
        Some(c) if constant_time_eq(expected.as_bytes(), secret.as_bytes()) => Ok(c.clone()),
        _ => {
            let _ = constant_time_eq(expected.as_bytes(), secret.as_bytes());
            Err(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client_id or wrong client_secret",
            ))
        }
    }
}

/// Runs the grant: the token answer (RFC 6749 §5.1) or an error answer (§5.2).
fn exchange(
    store: &crate::store::Store,
    server_id: &str,
    oauth: &OAuthDef,
    client: &OAuthClientDef,
    grant_type: &str,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, OAuthError> {
    let bad = |error: &'static str, description: &str| {
        Err(oauth_error(StatusCode::BAD_REQUEST, error, description))
    };
    let store_failed = |_| {
        oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the grant could not be read or stored",
        )
    };
    let allowed = |g: OAuthGrant| client.grants.contains(&g);
    let with_refresh = match grant_type {
        "client_credentials" if allowed(OAuthGrant::ClientCredentials) => false,
        "authorization_code" if allowed(OAuthGrant::AuthorizationCode) => {
            let Some(code) = form.get("code") else {
                return bad("invalid_request", "code is missing");
            };
            let grant = store
                .write(|tx| tx.grant(server_id, &digest(code), "code", true))
                .map_err(store_failed)?;
            let Some(g) = grant.filter(|g| g.client_id == client.client_id) else {
                return bad(
                    "invalid_grant",
                    "the code is unknown, used already, or was issued to another client",
                );
            };
            if g.expires_at <= now() {
                return bad(
                    "invalid_grant",
                    "the code expired; codes must be exchanged within 60 seconds",
                );
            }
            let redirect = g
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                .and_then(|d| d["redirect_uri"].as_str().map(str::to_string));
            if form.get("redirect_uri").cloned() != redirect {
                return bad(
                    "invalid_grant",
                    "redirect_uri must be the one the authorization request used (RFC 6749 §4.1.3)",
                );
            }
            true
        }
        "refresh_token" if allowed(OAuthGrant::AuthorizationCode) => {
            let Some(refresh) = form.get("refresh_token") else {
                return bad("invalid_request", "refresh_token is missing");
            };
            // Rotation: the refresh token used is gone, a new one comes with the answer.
            let grant = store
                .write(|tx| tx.grant(server_id, &digest(refresh), "refresh", true))
                .map_err(store_failed)?;
            match grant {
                Some(g) if g.client_id == client.client_id && g.expires_at > now() => true,
                Some(g) if g.client_id == client.client_id => {
                    return bad(
                        "invalid_grant",
                        "the refresh token expired; authorize again",
                    );
                }
                _ => {
                    return bad(
                        "invalid_grant",
                        "the refresh token is unknown, used already, or belongs to another client",
                    );
                }
            }
        }
        "client_credentials" | "authorization_code" | "refresh_token" => {
            return bad(
                "unauthorized_client",
                &format!(
                    "client {:?} may not use grant_type {grant_type} (its grants: {:?})",
                    client.client_id, client.grants
                ),
            );
        }
        other => {
            return bad(
                "unsupported_grant_type",
                &format!(
                    "grant_type {other:?} is not one of client_credentials, authorization_code, refresh_token"
                ),
            );
        }
    };
    let access = secret();
    let refresh = with_refresh.then(secret);
    let grant = |kind: &str, lifetime: u64| Grant {
        kind: kind.into(),
        client_id: client.client_id.clone(),
        expires_at: now() + lifetime as i64,
        detail: None,
    };
    store
        .write(|tx| {
            tx.put_grant(
                server_id,
                &digest(&access),
                &grant("access", oauth.access_token_lifetime),
            )?;
            if let Some(r) = &refresh {
                tx.put_grant(
                    server_id,
                    &digest(r),
                    &grant("refresh", oauth.refresh_token_lifetime),
                )?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(store_failed)?;
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": oauth.access_token_lifetime,
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    Ok(body)
}

fn consent_page() -> &'static Handlebars<'static> {
    static PAGE: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
        let mut h = Handlebars::new();
        if let Err(e) =
            h.register_template_string("consent", include_str!("../../templates/oauth/consent.hbs"))
        {
            tracing::error!("the OAuth consent template does not compile: {e}");
        }
        h
    });
    &PAGE
}

/// A page that says what is wrong with an authorization request, without redirecting (RFC
/// 6749 §4.1.2.1: an unknown client or redirect URI must not be redirected to).
fn refusal(status: StatusCode, message: &str) -> Response {
    let text = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=\"utf-8\"><title>Authorization refused · scimlab</title><h1>Authorization refused</h1><p>{text}</p>"
        )),
    )
        .into_response()
}

/// `GET …/oauth/authorize` (RFC 6749 §4.1.1): the consent page.
async fn authorize(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (server, oauth) = match oauth_server(&app, &id) {
        Ok(s) => s,
        Err(_) => {
            return refusal(
                StatusCode::NOT_FOUND,
                &format!("server {id:?} does not offer OAuth"),
            );
        }
    };
    let client_id = q.get("client_id").cloned().unwrap_or_default();
    let Some(client) = oauth.clients.iter().find(|c| c.client_id == client_id) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            &format!("unknown client_id {client_id:?}"),
        );
    };
    let redirect_uri = match q.get("redirect_uri") {
        Some(u) if client.redirect_uris.contains(u) => u.clone(),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        _ => {
            return refusal(
                StatusCode::BAD_REQUEST,
                &format!(
                    "redirect_uri must be one registered for client {client_id:?}: {:?}",
                    client.redirect_uris
                ),
            );
        }
    };
    let state = q.get("state").cloned();
    if q.get("response_type").map(String::as_str) != Some("code")
        || !client.grants.contains(&OAuthGrant::AuthorizationCode)
    {
        return redirect_with(
            &redirect_uri,
            &[
                ("error", "unsupported_response_type"),
                (
                    "error_description",
                    "response_type must be code, for a client with the authorization_code grant",
                ),
            ],
            state.as_deref(),
        );
    }
    let consent = secret();
    let detail = json!({"redirect_uri": redirect_uri, "state": state}).to_string();
    let (store, sid, cid) = (app.store.clone(), server.id.clone(), client_id.clone());
    let digest_of = digest(&consent);
    let stored = tokio::task::spawn_blocking(move || {
        store.write(|tx| {
            tx.put_grant(
                &sid,
                &digest_of,
                &Grant {
                    kind: "consent".into(),
                    client_id: cid,
                    expires_at: now() + CONSENT_LIFETIME,
                    detail: Some(detail),
                },
            )
        })
    })
    .await;
    if !matches!(stored, Ok(Ok(()))) {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the consent could not be stored",
        );
    }
    let html = consent_page().render(
        "consent",
        &json!({
            "client_id": client_id,
            "server": server.id,
            "description": server.description,
            "redirect_uri": redirect_uri,
            "consent": consent,
        }),
    );
    match html {
        Ok(h) => {
            let mut resp = Html(h).into_response();
            // Not framed by other sites (clickjacking of the Allow button).
            resp.headers_mut()
                .insert("x-frame-options", HeaderValue::from_static("DENY"));
            resp
        }
        Err(e) => refusal(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `POST …/oauth/authorize`: the consent page's answer; back to the client with a code or
/// `access_denied` (RFC 6749 §4.1.2).
async fn decide(State(app): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let consent = form.get("consent").cloned().unwrap_or_default();
    let allow = form.get("decision").map(String::as_str) == Some("allow");
    let (store, sid) = (app.store.clone(), id.clone());
    let code = secret();
    let code_digest = digest(&code);
    let taken = tokio::task::spawn_blocking(move || {
        store.write(|tx| {
            let Some(g) = tx.grant(&sid, &digest(&consent), "consent", true)? else {
                return Ok(None);
            };
            if g.expires_at <= now() {
                return Ok(None);
            }
            let detail: serde_json::Value =
                serde_json::from_str(g.detail.as_deref().unwrap_or("{}")).unwrap_or_default();
            if allow {
                tx.put_grant(
                    &sid,
                    &code_digest,
                    &Grant {
                        kind: "code".into(),
                        client_id: g.client_id.clone(),
                        expires_at: now() + CODE_LIFETIME,
                        detail: Some(json!({"redirect_uri": detail["redirect_uri"]}).to_string()),
                    },
                )?;
            }
            Ok::<_, crate::store::StoreError>(Some(detail))
        })
    })
    .await;
    let Ok(Ok(Some(detail))) = taken else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "this consent page expired or was answered already; start the authorization again",
        );
    };
    let redirect_uri = detail["redirect_uri"].as_str().unwrap_or_default();
    let state = detail["state"].as_str();
    if allow {
        redirect_with(redirect_uri, &[("code", &code)], state)
    } else {
        redirect_with(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the consent was denied"),
            ],
            state,
        )
    }
}

/// A redirect to `uri` with query parameters added (and `state` echoed, RFC 6749 §4.1.2).
fn redirect_with(uri: &str, params: &[(&str, &str)], state: Option<&str>) -> Response {
    let Ok(mut url) = url::Url::parse(uri) else {
        return refusal(StatusCode::BAD_REQUEST, "the redirect URI does not parse");
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    Redirect::to(url.as_str()).into_response()
}
