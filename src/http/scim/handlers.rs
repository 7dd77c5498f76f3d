//! The SCIM handlers: discovery documents, the resource endpoints, `/.search` and `/Bulk`.
//! Each extracts what it needs, runs one engine call (store work on the blocking pool; a write
//! of one resource on the store's writer thread where it has one) and answers.

use super::asynchronous::{self, Done, Request};
use super::extract::{BulkJson, Endpoint, Params, ResourceId, ScimJson, Scope};
use crate::definition::MissingEndpoint;
use crate::engine::{self, Ctx, ListPage, ListQuery, Output, Projection};
use crate::error::{ScimError, ScimResult};
use crate::http::AppState;
use crate::http::response::{scim_json, scim_text};
use crate::model::ServerModel;
use crate::store::{Store, StoreError, WriteJob};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;

pub async fn service_provider_config(scope: Scope) -> Response {
    let doc = scope.server.discovery.service_provider_config.clone();
    scim_json(StatusCode::OK, &with_base(doc, &scope.base))
}

pub async fn resource_types(scope: Scope, params: Params) -> ScimResult<Response> {
    let docs = scope.server.discovery.resource_types.iter().map(|(_, d)| d);
    discovery_list(&scope, &params, docs)
}

pub async fn resource_type(
    scope: Scope,
    Path(p): Path<HashMap<String, String>>,
) -> ScimResult<Response> {
    let name = p.get("name").map(String::as_str).unwrap_or("");
    let (_, doc) = (scope.server.discovery.resource_types.iter())
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .ok_or_else(|| ScimError::not_found(format!("no resource type {name:?} on this server")))?;
    Ok(scim_json(
        StatusCode::OK,
        &with_base(doc.clone(), &scope.base),
    ))
}

pub async fn schemas(scope: Scope, params: Params) -> ScimResult<Response> {
    let docs = scope.server.discovery.schemas.iter().map(|(_, d)| d);
    discovery_list(&scope, &params, docs)
}

pub async fn schema(scope: Scope, Path(p): Path<HashMap<String, String>>) -> ScimResult<Response> {
    let id = p.get("id").map(String::as_str).unwrap_or("");
    let (_, doc) = (scope.server.discovery.schemas.iter())
        .find(|(u, _)| u.eq_ignore_ascii_case(id))
        .ok_or_else(|| ScimError::not_found(format!("no schema {id:?} on this server")))?;
    Ok(scim_json(
        StatusCode::OK,
        &with_base(doc.clone(), &scope.base),
    ))
}

/// The base URL itself names no resource.
pub async fn base() -> ScimError {
    ScimError::not_found(
        "this is the base URL of a SCIM server; start with /ServiceProviderConfig, /ResourceTypes or /Schemas",
    )
}

pub async fn me() -> ScimError {
    ScimError::NotImplemented("/Me is not supported: tokens are not tied to a resource".into())
}

/// Prefixes `meta.location` (a path below the base) with the base URL.
fn with_base(mut doc: Value, base: &str) -> Value {
    if let Some(loc) = doc.pointer_mut("/meta/location")
        && let Some(p) = loc.as_str()
    {
        *loc = Value::String(format!("{base}{p}"));
    }
    doc
}

fn discovery_list<'a>(
    scope: &Scope,
    params: &Params,
    docs: impl Iterator<Item = &'a Value>,
) -> ScimResult<Response> {
    if params.has("filter") {
        // RFC 7644 §4: discovery endpoints do not filter.
        return Err(ScimError::Forbidden(
            "discovery endpoints do not support filtering (RFC 7644 §4)".into(),
        ));
    }
    let mut resources = engine::RenderedList::default();
    for d in docs {
        resources.push_value(&with_base(d.clone(), &scope.base));
    }
    let page = engine::ListPage::by_index(resources.len(), 1, resources);
    Ok(scim_text(StatusCode::OK, page.to_json()))
}

pub async fn bulk(
    State(app): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    BulkJson(input): BulkJson,
) -> ScimResult<Response> {
    crate::model::persona::check_endpoint(&scope.server, MissingEndpoint::Bulk)?;
    let work = move |store: &Store, server: &ServerModel, base: &str| {
        engine::bulk::execute(store, server, base, input)
    };
    if let Some(wait) = asynchronous::preferred(&scope, &headers) {
        let request = Request {
            method: "POST",
            target: "/Bulk".into(),
        };
        let work = move |store: &Store, server: &ServerModel, base: &str| {
            work(store, server, base).map(Done::Bulk)
        };
        return asynchronous::accept(&app, &scope, wait, request, work, |done| match done {
            Done::Bulk(out) => scim_json(StatusCode::OK, &out),
            _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        })
        .await;
    }
    let out = blocking(&app, &scope, work).await?;
    Ok(scim_json(StatusCode::OK, &out))
}

/// How long a poll without `returnImmediately` waits for an event (RFC 8936 §2.4 long
/// polling), and how often it looks.
const LONG_POLL: std::time::Duration = std::time::Duration::from_secs(10);
const LONG_POLL_STEP: std::time::Duration = std::time::Duration::from_millis(100);

/// `POST /SecurityEvents`: the SET poll endpoint (RFC 8936). Acknowledgements and errors are
/// settled first; then up to `maxEvents` pending SETs are returned, at once or as soon as one
/// arrives (long polling, at most `LONG_POLL`).
pub async fn security_events(
    State(app): State<AppState>,
    scope: Scope,
    ScimJson(input): ScimJson,
) -> ScimResult<Response> {
    let cfg = events_of(&scope)?;
    let poll = engine::events::Poll::parse(&input)?;
    let (ack, errs) = (poll.ack.clone(), poll.set_errs.clone());
    blocking(&app, &scope, move |store, server, _| {
        store.write(|tx| Ok(tx.settle_events(&server.id, &ack, &errs)?))
    })
    .await?;
    let deadline = tokio::time::Instant::now()
        + if poll.return_immediately || poll.max_events == 0 {
            std::time::Duration::ZERO
        } else {
            LONG_POLL
        };
    let max = poll.max_events;
    loop {
        let (pending, more) = blocking(&app, &scope, move |store, server, _| {
            store.read(|c| Ok(c.pending_events(&server.id, max)?))
        })
        .await?;
        if !pending.is_empty() || tokio::time::Instant::now() >= deadline {
            return sets_response(&scope, &cfg, pending, Some(more));
        }
        tokio::time::sleep(LONG_POLL_STEP).await;
    }
}

/// The server's events settings, or 404 when it emits none.
pub(super) fn events_of(scope: &Scope) -> ScimResult<crate::definition::EventsDef> {
    scope.server.events.clone().ok_or_else(|| {
        ScimError::not_found(
            "this server emits no events; add `events:` to its definition (RFC 9967)",
        )
    })
}

/// SETs as an RFC 8936 poll answers them (`{"sets": {jti: SET}, "moreAvailable"}`, JSON per
/// §2.4), encoded and signed as the server's definition says.
pub(super) fn sets_response(
    scope: &Scope,
    cfg: &crate::definition::EventsDef,
    found: Vec<(String, String)>,
    more: Option<bool>,
) -> ScimResult<Response> {
    let mut sets = serde_json::Map::new();
    for (jti, claims) in found {
        let key = scope.server.event_key.as_ref();
        let set = engine::events::encode(&cfg.signing, key, &claims)?;
        sets.insert(jti, Value::String(set));
    }
    let mut body = serde_json::json!({ "sets": sets });
    if let Some(more) = more {
        body["moreAvailable"] = Value::Bool(more);
    }
    let mut resp = scim_json(StatusCode::OK, &body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// `GET /SecurityEvents/jwks`: the public key that verifies this server's RS256 SETs, as a
/// JWK Set (RFC 7517 §5).
pub async fn security_events_jwks(scope: Scope) -> ScimResult<Response> {
    let key = scope.server.event_key.as_ref().ok_or_else(|| {
        ScimError::not_found(
            "this server does not sign its SETs with RS256: there is no public key to publish",
        )
    })?;
    let mut resp = scim_json(StatusCode::OK, &serde_json::json!({"keys": [key.jwk]}));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    Ok(resp)
}

/// `POST /.search` over every resource type.
pub async fn search_all(
    State(app): State<AppState>,
    scope: Scope,
    ScimJson(input): ScimJson,
) -> ScimResult<Response> {
    crate::model::persona::check_endpoint(&scope.server, MissingEndpoint::Search)?;
    let (query, proj) = engine::search_request(&input)?;
    let out = searching(&app, &scope, move |store, server, base| {
        engine::search_all(store, server, base, &query, &proj)
    })
    .await?;
    Ok(scim_text(StatusCode::OK, out.to_json()))
}

/// `GET /{endpoint}`: a search by query parameters.
pub async fn list(
    State(app): State<AppState>,
    scope: Scope,
    Endpoint(rt): Endpoint,
    params: Params,
) -> ScimResult<Response> {
    let (query, proj) = (params.list_query()?, params.projection()?);
    let out = listed(&app, &scope, rt, query, proj).await?;
    Ok(scim_text(StatusCode::OK, out.to_json()))
}

/// One page of a search over resource type `rt`. A lookup by a unique key reads like a GET;
/// anything that may scan waits for a search slot and runs on the blocking pool.
async fn listed(
    app: &AppState,
    scope: &Scope,
    rt: usize,
    query: ListQuery,
    proj: Projection,
) -> ScimResult<ListPage> {
    let ctx = inline_ctx(app, scope, rt);
    if let Some(page) = engine::lookup(&ctx, &query, &proj)? {
        return Ok(page);
    }
    searching(
        app,
        scope,
        with_ctx(rt, move |ctx| engine::list(ctx, &query, &proj)),
    )
    .await
}

/// `POST /{endpoint}/.search`.
pub async fn search(
    State(app): State<AppState>,
    scope: Scope,
    Endpoint(rt): Endpoint,
    ScimJson(input): ScimJson,
) -> ScimResult<Response> {
    crate::model::persona::check_endpoint(&scope.server, MissingEndpoint::Search)?;
    let (query, proj) = engine::search_request(&input)?;
    let out = listed(&app, &scope, rt, query, proj).await?;
    Ok(scim_text(StatusCode::OK, out.to_json()))
}

pub async fn create(
    State(app): State<AppState>,
    scope: Scope,
    Endpoint(rt): Endpoint,
    params: Params,
    headers: HeaderMap,
    ScimJson(input): ScimJson,
) -> ScimResult<Response> {
    let proj = params.projection()?;
    let work = move |ctx: &Ctx<'_>| engine::create(ctx, &input, &proj);
    let target = scope.server.resource_types[rt].endpoint.clone();
    written(
        &app,
        &scope,
        rt,
        &headers,
        ("POST", target),
        StatusCode::CREATED,
        work,
    )
    .await
}

/// Answers a create, replace or patch: synchronously, or asynchronously when the client
/// prefers it (RFC 9967 §2.5.1).
async fn written(
    app: &AppState,
    scope: &Scope,
    rt: usize,
    headers: &HeaderMap,
    (method, target): (&'static str, String),
    status: StatusCode,
    work: impl FnOnce(&Ctx<'_>) -> ScimResult<Output> + Send + 'static,
) -> ScimResult<Response> {
    let created = status == StatusCode::CREATED;
    if let Some(wait) = asynchronous::preferred(scope, headers) {
        let work = with_ctx(rt, move |ctx| {
            work(ctx).map(|out| Done::Resource(status, out))
        });
        let request = Request { method, target };
        return asynchronous::accept(app, scope, wait, request, work, move |done| match done {
            Done::Resource(status, out) => resource_response(status, &out, created),
            _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        })
        .await;
    }
    let out = write(app, scope, rt, headers, work).await?;
    Ok(resource_response(answered(status, &out), &out, created))
}

/// 200 instead of 201 for a create answered with the resource it collided with.
fn answered(status: StatusCode, out: &Output) -> StatusCode {
    if out.existing { StatusCode::OK } else { status }
}

/// `GET /{endpoint}/{id}`: a point read, run on this worker (a hop to the blocking pool costs
/// more than the indexed lookup; readers never wait on the writer in WAL mode).
pub async fn get(
    State(app): State<AppState>,
    scope: Scope,
    Endpoint(rt): Endpoint,
    ResourceId(id): ResourceId,
    params: Params,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let ctx = inline_ctx(&app, &scope, rt);
    let out = engine::get(&ctx, &id, &params.projection()?)?;
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|h| etag_matches(h, &out.etag)) {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&out.etag) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    Ok(resource_response(StatusCode::OK, &out, false))
}

pub async fn replace(
    State(app): State<AppState>,
    scope: Scope,
    Endpoint(rt): Endpoint,
    ResourceId(id): ResourceId,
    params: Params,
    headers: HeaderMap,
    ScimJson(input): ScimJson,
) -> ScimResult<Response> {
    let (if_match, proj) = (if_match(&headers), params.projection()?);
    let target = format!("{}/{id}", scope.server.resource_types[rt].endpoint);
    let work = move |ctx: &Ctx<'_>| engine::replace(ctx, &id, &input, if_match.as_deref(), &proj);
    written(
        &app,
        &scope,
        rt,
        &headers,
        ("PUT", target),
        StatusCode::OK,
        work,
    )
    .await
}

pub async fn patch(
    State(app): State<AppState>,
    scope: Scope,
    Endpoint(rt): Endpoint,
    ResourceId(id): ResourceId,
    params: Params,
    headers: HeaderMap,
    ScimJson(input): ScimJson,
) -> ScimResult<Response> {
    let (if_match, proj) = (if_match(&headers), params.projection()?);
    let target = format!("{}/{id}", scope.server.resource_types[rt].endpoint);
    let work = move |ctx: &Ctx<'_>| engine::patch(ctx, &id, &input, if_match.as_deref(), &proj);
    written(
        &app,
        &scope,
        rt,
        &headers,
        ("PATCH", target),
        StatusCode::OK,
        work,
    )
    .await
}

pub async fn delete(
    State(app): State<AppState>,
    scope: Scope,
    Endpoint(rt): Endpoint,
    ResourceId(id): ResourceId,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let if_match = if_match(&headers);
    let target = format!("{}/{id}", scope.server.resource_types[rt].endpoint);
    let work = move |ctx: &Ctx<'_>| engine::delete(ctx, &id, if_match.as_deref());
    if let Some(wait) = asynchronous::preferred(&scope, &headers) {
        let work = with_ctx(rt, move |ctx| work(ctx).map(|()| Done::Deleted));
        let request = Request {
            method: "DELETE",
            target,
        };
        let deleted = |_| StatusCode::NO_CONTENT.into_response();
        return asynchronous::accept(&app, &scope, wait, request, work, deleted).await;
    }
    write(&app, &scope, rt, &headers, work).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    (headers.get(header::IF_MATCH))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn etag_matches(header: &str, etag: &str) -> bool {
    let weak = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header
        .split(',')
        .any(|t| t.trim() == "*" || weak(t) == weak(etag))
}

fn resource_response(status: StatusCode, out: &Output, with_location: bool) -> Response {
    let mut resp = scim_text(status, out.body.as_str());
    if let Ok(v) = HeaderValue::from_str(&out.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if with_location && let Ok(v) = HeaderValue::from_str(&out.location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Runs a search on the blocking pool once one of the store's search slots is free (waiting
/// here, not on a blocking thread that writes need); the slot is free again before the
/// response is serialised.
async fn searching<T: Send + 'static>(
    app: &AppState,
    scope: &Scope,
    f: impl FnOnce(&Store, &ServerModel, &str) -> ScimResult<T> + Send + 'static,
) -> ScimResult<T> {
    let slot = app.searches.acquire().await.map_err(ScimError::internal)?;
    let out = blocking(app, scope, f).await;
    drop(slot);
    out
}

/// Runs store work for one server on the blocking pool, carrying what it notes (quirks,
/// events) back to the request.
pub(super) async fn blocking<T: Send + 'static>(
    app: &AppState,
    scope: &Scope,
    f: impl FnOnce(&Store, &ServerModel, &str) -> ScimResult<T> + Send + 'static,
) -> ScimResult<T> {
    let (store, server, base) = (app.store.clone(), scope.server.clone(), scope.base.clone());
    let (out, notes) = tokio::task::spawn_blocking(move || {
        crate::vocab::notes::noted_on_thread(|| f(&store, &server, &base))
    })
    .await
    .map_err(ScimError::internal)?;
    crate::vocab::notes::add_notes(notes);
    out
}

/// Runs a write of one resource (an engine call with a context for resource type `rt`) on the
/// store's writer thread, which answers it once its transaction is committed (or here, when
/// it is the only write and its request small); where the store has none (PostgreSQL), on the
/// blocking pool, where it commits on its own.
async fn write<T: Send + 'static>(
    app: &AppState,
    scope: &Scope,
    rt: usize,
    headers: &HeaderMap,
    f: impl FnOnce(&Ctx<'_>) -> ScimResult<T> + Send + 'static,
) -> ScimResult<T> {
    let small = small_body(headers);
    let (store, server, base) = (app.store.clone(), scope.server.clone(), scope.base.clone());
    let work = with_ctx(rt, f);
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: WriteJob = Box::new(move || {
        let (out, notes) = crate::vocab::notes::noted_on_thread(|| work(&store, &server, &base));
        Box::new(move |committed| {
            let out = match out {
                Ok(_) if !committed => Err(StoreError::Commit.into()),
                out => out,
            };
            // The request may be gone (its client hung up): nobody to answer.
            let _ = answer.send((out, notes));
        })
    });
    if let Err(job) = app.store.submit_write(job, small) {
        (tokio::task::spawn_blocking(move || job()(true)).await).map_err(ScimError::internal)?;
    }
    // Dropped unanswered only when the write panicked.
    let (out, notes) = answered.await.map_err(ScimError::internal)?;
    crate::vocab::notes::add_notes(notes);
    out
}

/// Request bodies up to this size make writes that may run on the request's worker (see
/// `store/serial.rs`): every single-resource write IdPs send is a few kilobytes, and a larger
/// one (a group of thousands of members) would hold the worker, and the other servers'
/// requests queued on it, for as long as it takes.
const SMALL_WRITE_BYTES: u64 = 64 * 1024;

/// Whether the request's body is known to be at most [`SMALL_WRITE_BYTES`] (none at all, as
/// for DELETE, included; a chunked body of unknown length is not).
fn small_body(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_LENGTH) {
        Some(v) => (v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n <= SMALL_WRITE_BYTES),
        None => !headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// The context for resource type `rt`, for engine calls that run on the request's task
/// (reads by key).
fn inline_ctx<'a>(app: &'a AppState, scope: &'a Scope, rt: usize) -> Ctx<'a> {
    Ctx {
        store: &app.store,
        server: &scope.server,
        rt: &scope.server.resource_types[rt],
        base: &scope.base,
    }
}

/// An engine call as store work: the context for resource type `rt` of the server.
fn with_ctx<T>(
    rt: usize,
    f: impl FnOnce(&Ctx<'_>) -> ScimResult<T>,
) -> impl FnOnce(&Store, &ServerModel, &str) -> ScimResult<T> {
    move |store, server, base| {
        f(&Ctx {
            store,
            server,
            rt: &server.resource_types[rt],
            base,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{HeaderMap, SMALL_WRITE_BYTES, header, small_body};

    fn with(pairs: &[(header::HeaderName, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, v.parse().unwrap());
        }
        h
    }

    /// A body known to be small, or absent, may run where it is asked; a large one, one of
    /// unknown length (chunked) and a length that is not a number go to the writer thread.
    #[test]
    fn only_writes_known_to_be_small_may_run_on_the_worker() {
        let length = |n: u64| with(&[(header::CONTENT_LENGTH, n.to_string())]);
        assert!(small_body(&length(900)));
        assert!(small_body(&length(SMALL_WRITE_BYTES)));
        assert!(!small_body(&length(SMALL_WRITE_BYTES + 1)));
        assert!(small_body(&HeaderMap::new()), "no body (DELETE)");
        let chunked = with(&[(header::TRANSFER_ENCODING, "chunked".into())]);
        assert!(!small_body(&chunked));
        assert!(!small_body(&with(&[(
            header::CONTENT_LENGTH,
            "many".into()
        )])));
    }
}
