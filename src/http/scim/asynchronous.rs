//! Asynchronous SCIM requests (RFC 9967 §2.5.1). A POST, PUT, PATCH, DELETE or Bulk request
//! sent with `Prefer: respond-async` runs in the background; the client gets `202 Accepted`
//! with no body, a `Set-Txn` naming the transaction, `Preference-Applied: respond-async`, and
//! a `Location` where the completion event can be fetched (`GET …/SecurityEvents/{txn}`).
//! The completion is a `misc:asyncresp` SET in that transaction, polled or pushed like every
//! other event. With `wait=N` (RFC 7240 §4.3) a request that completes within N seconds is
//! answered normally instead, and raises no completion event.

use super::extract::Scope;
use super::handlers::{blocking, events_of, sets_response};
use crate::definition::AsyncRequests;
use crate::engine::Output;
use crate::error::{ScimError, ScimResult};
use crate::http::AppState;
use crate::model::ServerModel;
use crate::store::Store;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::Duration;

/// The longest `wait` honoured: a client asking for more still gets its answer, as a 202.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// `Some(wait)` when the client prefers an asynchronous answer (RFC 7240 §4.1) and the server
/// offers one; `wait` is how long to try for a synchronous answer first (RFC 7240 §4.3).
pub fn preferred(scope: &Scope, headers: &HeaderMap) -> Option<Duration> {
    let events = scope.server.events.as_ref()?;
    if events.async_requests != AsyncRequests::Request {
        return None;
    }
    let mut respond_async = false;
    let mut wait = Duration::ZERO;
    let preferences = (headers.get_all("prefer").iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for preference in preferences {
        // `token [= value] *(; parameter)`: parameters do not matter for these two.
        let head = preference.split(';').next().unwrap_or("").trim();
        let (name, value) = match head.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (head, None),
        };
        if name.eq_ignore_ascii_case("respond-async") {
            respond_async = true;
        } else if name.eq_ignore_ascii_case("wait")
            && let Some(secs) = value.and_then(|v| v.parse::<u64>().ok())
        {
            wait = Duration::from_secs(secs).min(MAX_WAIT);
        }
    }
    respond_async.then_some(wait)
}

/// One request's outcome, as the engine gave it.
pub enum Done {
    /// A created, replaced or patched resource.
    Resource(StatusCode, Output),
    /// A deleted one.
    Deleted,
    /// A Bulk response body.
    Bulk(Value),
}

/// Records the completion events of an asynchronous request.
async fn record(
    app: &AppState,
    scope: &Scope,
    request: &Request,
    txn: &str,
    result: ScimResult<Done>,
) {
    let completions = completions(scope, request, txn, result);
    let recorded = blocking(app, scope, move |store, server, base| {
        store.write(|tx| {
            for (txn, uri, operation) in completions {
                crate::engine::events::record_completion(server, base, tx, &txn, &uri, operation)?;
            }
            Ok(())
        })
    })
    .await;
    if let Err(e) = recorded {
        tracing::error!(server = %scope.server.id, txn, error = ?e,
            "the completion event of an asynchronous request was not recorded");
    }
}

/// What an asynchronous request is: its method and the path of its target relative to the
/// base (`/Users` for a create, `/Users/{id}` otherwise).
#[derive(Clone)]
pub struct Request {
    pub method: &'static str,
    pub target: String,
}

/// Runs `work` (store work, as `handlers::blocking` runs it) in the background and answers
/// 202, or within `wait` the normal answer that `answer` makes of its outcome.
pub async fn accept(
    app: &AppState,
    scope: &Scope,
    wait: Duration,
    request: Request,
    work: impl FnOnce(&Store, &ServerModel, &str) -> ScimResult<Done> + Send + 'static,
    answer: impl FnOnce(Done) -> Response,
) -> ScimResult<Response> {
    let txn = uuid::Uuid::new_v4().simple().to_string();
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<ScimResult<Done>>();
    let (app2, scope2, txn2, request2) = (app.clone(), scope.clone(), txn.clone(), request.clone());
    tokio::spawn(async move {
        let result = blocking(&app2, &scope2, work).await;
        // Sent: the handler takes the outcome. Not sent: the client was told 202 and learns
        // the outcome from the completion event.
        if let Err(result) = done_tx.send(result) {
            record(&app2, &scope2, &request2, &txn2, result).await;
        }
    });
    if !wait.is_zero() {
        let within = tokio::select! {
            r = &mut done_rx => r.ok(),
            () = tokio::time::sleep(wait) => None,
        };
        if let Some(result) = within {
            return result.map(answer);
        }
    }
    done_rx.close();
    // Finished just as the wait ended: the client still gets the 202 it asked for.
    if let Ok(result) = done_rx.try_recv() {
        record(app, scope, &request, &txn, result).await;
    }
    let mut resp = StatusCode::ACCEPTED.into_response();
    let h = resp.headers_mut();
    let location = format!("{}/SecurityEvents/{txn}", scope.base);
    for (name, value) in [
        ("set-txn", txn.as_str()),
        ("preference-applied", "respond-async"),
        (header::LOCATION.as_str(), location.as_str()),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    Ok(resp)
}

/// The completion events of a request: (txn, subject path, payload). A Bulk request has one
/// per operation, in transaction `txn:index` (RFC 9967 §2.5.1.2).
fn completions(
    scope: &Scope,
    request: &Request,
    txn: &str,
    result: ScimResult<Done>,
) -> Vec<(String, String, Value)> {
    let relative = |location: &str| {
        location
            .strip_prefix(&*scope.base)
            .unwrap_or(location)
            .to_string()
    };
    match result {
        Ok(Done::Resource(status, out)) => {
            let mut op = json!({
                "method": request.method,
                "status": status.as_u16().to_string(),
                "version": out.etag,
            });
            if request.method == "POST" {
                op["location"] = Value::String(out.location.clone());
            }
            vec![(txn.to_string(), relative(&out.location), op)]
        }
        Ok(Done::Deleted) => vec![(
            txn.to_string(),
            request.target.clone(),
            json!({"method": request.method, "status": "204"}),
        )],
        Ok(Done::Bulk(body)) => (body["Operations"].as_array().into_iter().flatten())
            .enumerate()
            .map(|(i, op)| {
                let uri = match op["location"].as_str() {
                    Some(l) => relative(l),
                    None => request.target.clone(),
                };
                (format!("{txn}:{i}"), uri, op.clone())
            })
            .collect(),
        Err(e) => {
            let status = e.status().to_string();
            vec![(
                txn.to_string(),
                request.target.clone(),
                json!({"method": request.method, "status": status, "response": e.body()}),
            )]
        }
    }
}

/// `GET /SecurityEvents/{txn}`: the completion events of an asynchronous request, in the
/// shape of an RFC 8936 poll answer (`{"sets": {jti: SET}}`); 404 until there is one.
pub async fn completion(
    axum::extract::State(app): axum::extract::State<AppState>,
    scope: Scope,
    axum::extract::Path(p): axum::extract::Path<std::collections::HashMap<String, String>>,
) -> ScimResult<Response> {
    let cfg = events_of(&scope)?;
    let txn = p.get("txn").cloned().unwrap_or_default();
    let lookup = txn.clone();
    let found = blocking(&app, &scope, move |store, server, _| {
        store.read(|c| Ok(c.events_of_txn(&server.id, &lookup)?))
    })
    .await?;
    if found.is_empty() {
        return Err(ScimError::not_found(format!(
            "no completion event for transaction {txn:?} yet: the request is still running, \
             or this server never gave that Set-Txn"
        )));
    }
    sets_response(&scope, &cfg, found, None)
}
