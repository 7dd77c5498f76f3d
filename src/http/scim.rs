//! SCIM routes under `/scim-identifier/{server_id}/scim/v2/`: discovery documents and the
//! generic resource endpoints. Each request loads one model snapshot and uses it throughout.

use super::response::scim_json;
use super::{AppState, auth};
use crate::engine::{self, Ctx, ListQuery, Output, Projection};
use crate::error::{ScimError, ScimResult};
use crate::model::ServerModel;
use crate::store::Store;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub async fn healthz(State(app): State<AppState>) -> Response {
    let model = app.model.load();
    let servers: Vec<Value> = model
        .servers
        .values()
        .map(|s| {
            let counts = crate::store::count_map(&app.store, &s.id);
            json!({
                "id": s.id,
                "description": s.description,
                "source": s.source.display().to_string(),
                "profiles": s.profiles,
                "resource_types": s.resource_types.iter().map(|r| json!({
                    "name": r.name,
                    "endpoint": r.endpoint,
                    "count": counts.get(&r.name).copied().unwrap_or(0),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let reload = crate::sync::lock(&app.reload).clone();
    let status = if reload.last_reload.as_ref().is_some_and(|o| !o.ok) {
        "degraded"
    } else {
        "ok"
    };
    scim_json(
        StatusCode::OK,
        &json!({
            "status": status,
            "servers": servers,
            "definitions": reload.files,
            "last_reload": reload.last_reload,
        }),
    )
}

pub async fn entry_root(
    state: State<AppState>,
    Path(server_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    logged(
        state.0,
        server_id,
        String::new(),
        method,
        uri,
        headers,
        body,
    )
    .await
}

pub async fn entry(
    state: State<AppState>,
    Path((server_id, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    logged(state.0, server_id, rest, method, uri, headers, body).await
}

/// Wraps a request in a span naming the virtual server, logs its outcome and records it in the
/// request inspector.
async fn logged(
    app: AppState,
    server_id: String,
    rest: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let span = tracing::info_span!("scim", server = %server_id);
    async move {
        let started = Instant::now();
        let at = crate::engine::now();
        let req = Request {
            server_id,
            rest,
            method,
            uri,
            headers,
        };
        // One model snapshot for the whole request (a reload mid-request does not mix two).
        let model = app.model.load_full();
        let server = model.server(&req.server_id).cloned();
        // The body is read once, for the handler and the recorder, up to the largest limit any
        // of this server's endpoints accepts (handlers then apply their own).
        let cap = server.as_ref().map_or(1 << 20, |s| {
            s.max_payload_bytes.max(s.bulk_max_payload_bytes)
        });
        let bytes = match axum::body::to_bytes(body, cap).await {
            Ok(b) => b,
            Err(e) => return body_error(&e, cap).into_response(),
        };
        let (resp, quirks) =
            crate::vocab::notes::with_notes(handle(&app, &model, &req, Body::from(bytes.clone())))
                .await;
        let resp = resp.unwrap_or_else(IntoResponse::into_response);
        let status = resp.status().as_u16();
        let micros = started.elapsed().as_micros() as u64;
        if status >= 500 {
            tracing::error!(method = %req.method, uri = %req.uri, status, micros, "request failed");
        } else {
            tracing::info!(method = %req.method, uri = %req.uri, status, micros, "request");
        }
        let settings = server.map(|s| s.inspector.clone());
        record(&app, settings, &req, at, started, &bytes, resp, quirks).await
    }
    .instrument(span)
    .await
}

/// Hands the exchange to the recorder (if the server records) and returns the response.
#[allow(clippy::too_many_arguments)] // one exchange's parts, assembled once here
async fn record(
    app: &AppState,
    settings: Option<crate::definition::InspectorDef>,
    req: &Request,
    at: String,
    started: Instant,
    request_body: &[u8],
    resp: Response,
    quirks: Vec<&'static str>,
) -> Response {
    use crate::harness::inspector::{Entry, capped, headers};
    let Some(recorder) = &app.harness.recorder else {
        return resp;
    };
    let Some(settings) = settings.filter(|s| s.enabled) else {
        return resp;
    };
    let (parts, body) = resp.into_parts();
    let Ok(resp_bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let fault = parts.extensions.get::<FaultNote>().map(|f| f.0.clone());
    let status = parts.status.as_u16();
    let error = if status >= 400 {
        serde_json::from_slice::<Value>(&resp_bytes)
            .ok()
            .map(|b| json!({"scimType": b.get("scimType"), "detail": b.get("detail")}))
    } else {
        None
    };
    let (request_body, request_body_truncated) = capped(request_body, settings.body_limit);
    let (response_body, response_body_truncated) = capped(&resp_bytes, settings.body_limit);
    let path = format!("/{}", req.rest.trim_start_matches('/'));
    recorder.record(
        Entry {
            seq: 0,
            server: req.server_id.clone(),
            at,
            method: req.method.to_string(),
            path: if req.rest.is_empty() {
                String::new()
            } else {
                path
            },
            query: req.uri.query().map(str::to_string),
            status,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            request_headers: headers(&req.headers),
            request_body,
            request_body_truncated,
            response_headers: headers(&parts.headers),
            response_body,
            response_body_truncated,
            quirks: quirks.iter().map(|q| q.to_string()).collect(),
            error,
            fault,
        },
        settings.capacity,
    );
    Response::from_parts(parts, Body::from(resp_bytes))
}

/// Marks a response whose request got an injected fault (read by the recorder).
#[derive(Clone)]
struct FaultNote(String);

/// Rate limits, then fault injection. An `Err` is the response to send instead of handling.
async fn gate(
    app: &AppState,
    server: &ServerModel,
    req: &Request,
    segments: &[&str],
) -> Result<Option<String>, Response> {
    let m = &req.method;
    let search = segments.last() == Some(&".search");
    let write = !(m == Method::GET || m == Method::HEAD || (m == Method::POST && search));
    let rt = segments
        .first()
        .and_then(|s| server.by_endpoint(s))
        .map(|rt| rt.name.as_str());
    let limits = app.harness.limits_for(server);
    if let Err(limited) = app.harness.buckets.take(&server.id, &limits, write, rt) {
        let secs = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let mut resp = ScimError::new(
            429,
            None,
            format!(
                "rate limit of {} {}/{}s for {} requests exceeded on server {}; retry after {secs} s",
                limited.rate.count,
                if limited.rate.count == 1 { "request" } else { "requests" },
                limited.rate.period_secs,
                limited.class,
                server.id
            ),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(resp);
    }
    let path = format!("/{}", segments.join("/"));
    let Some(injection) =
        app.harness
            .faults
            .decide(&server.id, &server.faults, m.as_str(), &path, rt)
    else {
        return Ok(None);
    };
    if injection.latency_ms > 0 {
        tokio::time::sleep(injection.delay()).await;
    }
    let note = injection.describe();
    if let Some(status) = injection.status {
        let mut resp = ScimError::new(
            status,
            None,
            format!("injected fault ({note}); the request was not processed"),
        )
        .into_response();
        if status == 429 {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp.extensions_mut().insert(FaultNote(note));
        return Err(resp);
    }
    Ok(Some(note))
}

struct Request {
    server_id: String,
    rest: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Request {
    /// The server's base URL as this client reached it, for `meta.location` and `Location`.
    fn base(&self) -> String {
        let host = self
            .headers
            .get("x-forwarded-host")
            .or_else(|| self.headers.get(header::HOST))
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let proto = self
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("http");
        format!(
            "{proto}://{host}/scim-identifier/{}/scim/v2",
            self.server_id
        )
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn query(&self) -> ScimResult<HashMap<String, String>> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&self.uri)
            .map_err(|e| ScimError::invalid_syntax(format!("malformed query string: {e}")))?;
        // Parameter names are matched case-insensitively.
        Ok(pairs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect())
    }
}

/// 405 naming what `what` allows; `allow` is the `Allow` header's value.
fn method_not_allowed(
    method: &Method,
    what: &str,
    allowed: &str,
    allow: &'static str,
) -> ScimError {
    ScimError::method_not_allowed(
        format!("{method} is not allowed on {what}; use {allowed}"),
        allow,
    )
}

async fn handle(
    app: &AppState,
    model: &crate::model::Model,
    req: &Request,
    body: Body,
) -> ScimResult<Response> {
    let server = model.server(&req.server_id).cloned().ok_or_else(|| {
        ScimError::not_found(format!(
            "no virtual server {:?}; loaded servers: {}",
            req.server_id,
            model.servers.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    auth::check(&server, &req.headers)?;
    let segments: Vec<&str> = req.rest.split('/').filter(|s| !s.is_empty()).collect();
    let fault = match gate(app, &server, req, &segments).await {
        Ok(f) => f,
        Err(resp) => return Ok(resp),
    };
    let mut resp = dispatch(app, req, body, &server, &segments).await?;
    if let Some(note) = fault {
        resp.extensions_mut().insert(FaultNote(note));
    }
    Ok(resp)
}

async fn dispatch(
    app: &AppState,
    req: &Request,
    body: Body,
    server: &Arc<ServerModel>,
    segments: &[&str],
) -> ScimResult<Response> {
    let server = server.clone();
    let base = req.base();
    let m = &req.method;
    match segments {
        ["ServiceProviderConfig"] => {
            only_get(m, "/ServiceProviderConfig")?;
            Ok(scim_json(
                StatusCode::OK,
                &with_base(server.discovery.service_provider_config.clone(), &base),
            ))
        }
        ["ResourceTypes"] => {
            only_get(m, "/ResourceTypes")?;
            discovery_list(
                req,
                &base,
                server.discovery.resource_types.iter().map(|(_, d)| d),
            )
        }
        ["ResourceTypes", name] => {
            only_get(m, "/ResourceTypes/{name}")?;
            let doc = server
                .discovery
                .resource_types
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name));
            let (_, doc) = doc.ok_or_else(|| {
                ScimError::not_found(format!("no resource type {name:?} on this server"))
            })?;
            Ok(scim_json(StatusCode::OK, &with_base(doc.clone(), &base)))
        }
        ["Schemas"] => {
            only_get(m, "/Schemas")?;
            discovery_list(req, &base, server.discovery.schemas.iter().map(|(_, d)| d))
        }
        ["Schemas", id] => {
            only_get(m, "/Schemas/{id}")?;
            let doc = server
                .discovery
                .schemas
                .iter()
                .find(|(u, _)| u.eq_ignore_ascii_case(id));
            let (_, doc) = doc
                .ok_or_else(|| ScimError::not_found(format!("no schema {id:?} on this server")))?;
            Ok(scim_json(StatusCode::OK, &with_base(doc.clone(), &base)))
        }
        ["Bulk"] => {
            if m != Method::POST {
                return Err(method_not_allowed(m, "/Bulk", "POST", "POST"));
            }
            let input = read_json_limited(req, server.bulk_max_payload_bytes, body).await?;
            let out = blocking(app, &server, &base, move |store, server, base| {
                engine::bulk::execute(store, server, base, &input)
            })
            .await?;
            Ok(scim_json(StatusCode::OK, &out))
        }
        [".search"] => {
            if m != Method::POST {
                return Err(method_not_allowed(m, "/.search", "POST", "POST"));
            }
            let input = read_json(req, &server, body).await?;
            let (query, proj) = search_request(&input)?;
            let out = blocking(app, &server, &base, move |store, server, base| {
                engine::search_all(store, server, base, &query, &proj)
            })
            .await?;
            Ok(scim_json(StatusCode::OK, &out))
        }
        ["Me"] => Err(ScimError::new(
            501,
            None,
            "/Me is not supported: tokens are not tied to a resource",
        )),
        [endpoint, rest @ ..] => {
            let rt_index = server
                .resource_types
                .iter()
                .position(|rt| rt.endpoint[1..].eq_ignore_ascii_case(endpoint))
                .ok_or_else(|| {
                    ScimError::not_found(format!(
                        "this server has no endpoint /{endpoint}; it serves {}",
                        server
                            .resource_types
                            .iter()
                            .map(|r| r.endpoint.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            resource(app, req, &server, rt_index, &base, rest, body).await
        }
        [] => Err(ScimError::not_found(
            "this is the base URL of a SCIM server; start with /ServiceProviderConfig, /ResourceTypes or /Schemas",
        )),
    }
}

fn only_get(m: &Method, what: &str) -> ScimResult<()> {
    if m == Method::GET || m == Method::HEAD {
        Ok(())
    } else {
        Err(method_not_allowed(
            m,
            what,
            "GET (discovery documents are read-only)",
            "GET, HEAD",
        ))
    }
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
    req: &Request,
    base: &str,
    docs: impl Iterator<Item = &'a Value>,
) -> ScimResult<Response> {
    if req.query()?.contains_key("filter") {
        // RFC 7644 §4: discovery endpoints do not filter.
        return Err(ScimError::new(
            403,
            None,
            "discovery endpoints do not support filtering (RFC 7644 §4)",
        ));
    }
    let resources: Vec<Value> = docs.map(|d| with_base(d.clone(), base)).collect();
    Ok(scim_json(
        StatusCode::OK,
        &engine::list_response(resources.len(), 1, resources),
    ))
}

/// Reads and parses a JSON request body within the server's size limit.
async fn read_json(req: &Request, server: &ServerModel, body: Body) -> ScimResult<Value> {
    read_json_limited(req, server.max_payload_bytes, body).await
}

async fn read_json_limited(req: &Request, limit: usize, body: Body) -> ScimResult<Value> {
    if let Some(ct) = req.header(header::CONTENT_TYPE) {
        let ct = ct.to_ascii_lowercase();
        if !ct.contains("json") {
            return Err(ScimError::new(
                415,
                Some(crate::error::ScimType::InvalidSyntax),
                format!(
                    "Content-Type {ct:?} is not accepted; send application/scim+json or application/json"
                ),
            ));
        }
    }
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|e| body_error(&e, limit))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax(
            "the request body is empty; send a JSON document",
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))
}

/// Why a request body could not be read: too slow (408) or too large (413).
fn body_error(e: &axum::Error, limit: usize) -> ScimError {
    if super::listen::is_body_timeout(e) {
        ScimError::new(408, None, format!("{}; send the whole body promptly", e))
    } else {
        ScimError::payload_too_large(format!(
            "the request body is larger than this server's limit of {limit} bytes"
        ))
    }
}

/// Runs store work for one server on the blocking pool.
async fn blocking<T: Send + 'static>(
    app: &AppState,
    server: &Arc<ServerModel>,
    base: &str,
    f: impl FnOnce(&Store, &ServerModel, &str) -> ScimResult<T> + Send + 'static,
) -> ScimResult<T> {
    let (store, server, base) = (app.store.clone(), server.clone(), base.to_string());
    let (out, quirks) = tokio::task::spawn_blocking(move || {
        crate::vocab::notes::take_thread_quirks();
        let out = f(&store, &server, &base);
        (out, crate::vocab::notes::take_thread_quirks())
    })
    .await
    .map_err(ScimError::internal)?;
    crate::vocab::notes::add_quirks(quirks);
    out
}

/// Runs an engine call on the blocking pool with a context for one resource type.
async fn run<T: Send + 'static>(
    app: &AppState,
    server: &Arc<ServerModel>,
    rt_index: usize,
    base: &str,
    f: impl FnOnce(&Ctx<'_>) -> ScimResult<T> + Send + 'static,
) -> ScimResult<T> {
    blocking(app, server, base, move |store, server, base| {
        f(&Ctx {
            store,
            server,
            rt: &server.resource_types[rt_index],
            base,
        })
    })
    .await
}

/// Runs a point read (one indexed lookup) on the current worker: a hop to the blocking pool
/// costs more than the read itself. Reads never wait on writers in WAL mode.
fn run_inline<T>(
    app: &AppState,
    server: &Arc<ServerModel>,
    rt_index: usize,
    base: &str,
    f: impl FnOnce(&Ctx<'_>) -> ScimResult<T>,
) -> ScimResult<T> {
    let ctx = Ctx {
        store: &app.store,
        server,
        rt: &server.resource_types[rt_index],
        base,
    };
    f(&ctx)
}

fn resource_response(status: StatusCode, out: &Output, with_location: bool) -> Response {
    let mut resp = scim_json(status, &out.body);
    if let Ok(v) = HeaderValue::from_str(&out.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if with_location && let Ok(v) = HeaderValue::from_str(&out.location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn projection(q: &HashMap<String, String>) -> Projection {
    Projection::new(
        q.get("attributes").map(String::as_str),
        q.get("excludedattributes").map(String::as_str),
    )
}

fn int_param(q: &HashMap<String, String>, name: &str) -> ScimResult<Option<i64>> {
    q.get(&name.to_ascii_lowercase())
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ScimError::invalid_value(format!("{name} must be an integer, not {v:?}"))
            })
        })
        .transpose()
}

fn etag_matches(header: &str, etag: &str) -> bool {
    let weak = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header
        .split(',')
        .any(|t| t.trim() == "*" || weak(t) == weak(etag))
}

async fn resource(
    app: &AppState,
    req: &Request,
    server: &Arc<ServerModel>,
    rt_index: usize,
    base: &str,
    rest: &[&str],
    body: Body,
) -> ScimResult<Response> {
    let endpoint = server.resource_types[rt_index].endpoint.clone();
    let q = req.query()?;
    let proj = projection(&q);
    let if_match = req.header(header::IF_MATCH).map(str::to_string);
    match (&req.method, rest) {
        (&Method::GET, []) => {
            let query = ListQuery {
                filter: q.get("filter").cloned(),
                sort_by: q.get("sortby").cloned(),
                sort_order: q.get("sortorder").cloned(),
                start_index: int_param(&q, "startIndex")?,
                count: int_param(&q, "count")?,
            };
            let out = run(app, server, rt_index, base, move |ctx| {
                engine::list(ctx, &query, &proj)
            })
            .await?;
            Ok(scim_json(StatusCode::OK, &out))
        }
        (&Method::POST, []) => {
            let input = read_json(req, server, body).await?;
            let out = run(app, server, rt_index, base, move |ctx| {
                engine::create(ctx, &input, &proj)
            })
            .await?;
            Ok(resource_response(StatusCode::CREATED, &out, true))
        }
        (&Method::POST, [".search"]) => {
            let input = read_json(req, server, body).await?;
            let (query, proj) = search_request(&input)?;
            let out = run(app, server, rt_index, base, move |ctx| {
                engine::list(ctx, &query, &proj)
            })
            .await?;
            Ok(scim_json(StatusCode::OK, &out))
        }
        (m, []) => Err(method_not_allowed(
            m,
            &endpoint,
            "GET (search) or POST (create)",
            "GET, HEAD, POST",
        )),
        (m, [".search"]) => Err(method_not_allowed(
            m,
            &format!("{endpoint}/.search"),
            "POST",
            "POST",
        )),
        (&Method::GET | &Method::HEAD, [id]) => {
            let out = run_inline(app, server, rt_index, base, |ctx| {
                engine::get(ctx, id, &proj)
            })?;
            if req
                .header(header::IF_NONE_MATCH)
                .is_some_and(|h| etag_matches(h, &out.etag))
            {
                let mut resp = StatusCode::NOT_MODIFIED.into_response();
                if let Ok(v) = HeaderValue::from_str(&out.etag) {
                    resp.headers_mut().insert(header::ETAG, v);
                }
                return Ok(resp);
            }
            Ok(resource_response(StatusCode::OK, &out, false))
        }
        (&Method::PUT, [id]) => {
            let input = read_json(req, server, body).await?;
            let id = id.to_string();
            let out = run(app, server, rt_index, base, move |ctx| {
                engine::replace(ctx, &id, &input, if_match.as_deref(), &proj)
            })
            .await?;
            Ok(resource_response(StatusCode::OK, &out, false))
        }
        (&Method::PATCH, [id]) => {
            let input = read_json(req, server, body).await?;
            let id = id.to_string();
            let out = run(app, server, rt_index, base, move |ctx| {
                engine::patch(ctx, &id, &input, if_match.as_deref(), &proj)
            })
            .await?;
            Ok(resource_response(StatusCode::OK, &out, false))
        }
        (&Method::DELETE, [id]) => {
            let id = id.to_string();
            run(app, server, rt_index, base, move |ctx| {
                engine::delete(ctx, &id, if_match.as_deref())
            })
            .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (m, [_]) => Err(method_not_allowed(
            m,
            &format!("{endpoint}/{{id}}"),
            "GET, PUT, PATCH or DELETE",
            "GET, HEAD, PUT, PATCH, DELETE",
        )),
        _ => Err(ScimError::not_found(format!(
            "no such path below {endpoint}"
        ))),
    }
}

/// A SearchRequest body (RFC 7644 §3.4.3).
fn search_request(body: &Value) -> ScimResult<(ListQuery, Projection)> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
    let get = |k: &str| {
        obj.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v)
    };
    let text = |k: &str| -> ScimResult<Option<String>> {
        match get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Array(a)) if k.ends_with("ttributes") => Ok(Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            Some(_) => Err(ScimError::invalid_value(format!("{k} has the wrong type"))),
        }
    };
    let int = |k: &str| -> ScimResult<Option<i64>> {
        match get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| ScimError::invalid_value(format!("{k} must be an integer"))),
        }
    };
    let query = ListQuery {
        filter: text("filter")?,
        sort_by: text("sortBy")?,
        sort_order: text("sortOrder")?,
        start_index: int("startIndex")?,
        count: int("count")?,
    };
    let proj = Projection::new(
        text("attributes")?.as_deref(),
        text("excludedAttributes")?.as_deref(),
    );
    Ok((query, proj))
}
