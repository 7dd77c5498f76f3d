//! `/admin`: ephemeral servers for CI, reset, snapshots, the request log (JSON and HAR), and
//! runtime rate limits and faults. Bearer admin token; loopback clients only unless the server
//! was started with remote admin allowed.

use super::{AppState, constant_time_eq};
use crate::data;
use crate::definition::{FaultDef, RateLimitsDef};
use crate::error::{ScimError, ScimResult};
use crate::harness::inspector;
use crate::model::{RebuildError, ServerModel};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/servers", get(list_servers).post(create_server))
        .route("/admin/servers/{id}", get(one_server).delete(delete_server))
        .route("/admin/servers/{id}/reset", post(reset))
        .route("/admin/servers/{id}/export", get(export))
        .route(
            "/admin/servers/{id}/requests",
            get(requests).delete(clear_requests),
        )
        .route("/admin/servers/{id}/requests.har", get(requests_har))
        .route("/admin/servers/{id}/events", get(list_events))
        .route(
            "/admin/servers/{id}/snapshots",
            get(list_snapshots).post(take_snapshot),
        )
        .route(
            "/admin/servers/{id}/snapshots/{name}",
            axum::routing::delete(delete_snapshot),
        )
        .route(
            "/admin/servers/{id}/snapshots/{name}/restore",
            post(restore_snapshot),
        )
        .route(
            "/admin/servers/{id}/rate-limits",
            get(get_limits).put(put_limits).delete(delete_limits),
        )
        .route(
            "/admin/servers/{id}/faults",
            get(get_faults).put(put_faults).delete(delete_faults),
        )
}

/// An admin caller: an extractor that lets a handler run only for loopback clients (unless
/// remote admin is on) holding the admin token. Its rejection is a SCIM error.
pub struct AdminCaller;

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ScimError> {
        guard(app, peer(parts)?, &parts.headers)?;
        Ok(AdminCaller)
    }
}

/// The server named by the `{id}` path segment, for an admin caller.
pub struct AdminServer(pub Arc<ServerModel>);

impl FromRequestParts<AppState> for AdminServer {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ScimError> {
        AdminCaller::from_request_parts(parts, app).await?;
        let Path(params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, app)
                .await
                .map_err(|e| ScimError::invalid_syntax(e.to_string()))?;
        let id = params.get("id").map(String::as_str).unwrap_or_default();
        server(app, id).map(AdminServer)
    }
}

/// The client's address (`serve` records it for every connection).
pub fn peer(parts: &Parts) -> ScimResult<SocketAddr> {
    peer_of(&parts.extensions)
}

/// The client's address from a request's extensions.
pub fn peer_of(extensions: &axum::http::Extensions) -> ScimResult<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .ok_or_else(|| ScimError::internal("the connection's peer address is unknown"))
}

/// Loopback (unless remote admin is on) and the admin bearer token.
pub fn guard(app: &AppState, peer: SocketAddr, headers: &HeaderMap) -> ScimResult<()> {
    local_only(app, peer)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or("");
    if constant_time_eq(token.as_bytes(), app.harness.admin.token.as_bytes()) {
        Ok(())
    } else {
        Err(ScimError::unauthorized(
            "the admin API needs \"Authorization: Bearer <admin token>\" (--admin-token or SCIMLAB_ADMIN_TOKEN; a generated one is logged at start-up)",
        ))
    }
}

/// The admin API and UI answer loopback clients only, unless remote admin was allowed.
pub fn local_only(app: &AppState, peer: SocketAddr) -> ScimResult<()> {
    if app.harness.admin.remote || peer.ip().is_loopback() {
        Ok(())
    } else {
        Err(ScimError::Forbidden(
            "the admin API and UI answer loopback clients only; start with --admin-remote to allow others".into(),
        ))
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(body).unwrap_or_default(),
    )
        .into_response()
}

fn server(app: &AppState, id: &str) -> ScimResult<Arc<ServerModel>> {
    app.model
        .load()
        .server(id)
        .cloned()
        .ok_or_else(|| ScimError::not_found(format!("no server {id:?}")))
}

fn data_err(e: data::DataError) -> ScimError {
    match e {
        data::DataError::Import(m) => ScimError::invalid_value(m),
        data::DataError::UnknownServer(m) => ScimError::not_found(format!("no server {m:?}")),
        other => ScimError::internal(other),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ScimResult<T> + Send + 'static,
) -> ScimResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ScimError::internal)?
}

/// What the admin API and the UI show about a server.
pub fn describe(app: &AppState, s: &ServerModel) -> Value {
    let counts = crate::store::count_map(&app.store, &s.id);
    json!({
        "id": s.id,
        "description": s.description,
        "source": s.source.display().to_string(),
        "ephemeral": s.ephemeral,
        "profiles": s.profiles,
        "base": format!("/scim-identifier/{}/scim/v2", s.id),
        "resource_types": s.resource_types.iter().map(|r| json!({
            "name": r.name,
            "endpoint": r.endpoint,
            "count": counts.get(&r.name).copied().unwrap_or(0),
            "view": r.view.as_ref().map(|v| v.text.clone()),
        })).collect::<Vec<_>>(),
        "rate_limits": app.harness.limits_for(s),
        "rate_limit_tokens": app.harness.buckets.snapshot(&s.id),
        "faults": s.faults,
        "admin_faults": app.harness.faults.admin_rules(&s.id),
        "inspector": s.inspector,
    })
}

async fn list_servers(_: AdminCaller, State(app): State<AppState>) -> ScimResult<Response> {
    let model = app.model.load_full();
    let list: Vec<Value> = model.servers.values().map(|s| describe(&app, s)).collect();
    Ok(json_response(StatusCode::OK, &json!({ "servers": list })))
}

async fn one_server(
    AdminServer(s): AdminServer,
    State(app): State<AppState>,
) -> ScimResult<Response> {
    Ok(json_response(StatusCode::OK, &describe(&app, &s)))
}

/// Compiles the file definitions plus `ephemeral`, exactly like a reload.
/// POST /admin/servers: a server definition (YAML or JSON) → an ephemeral server.
async fn create_server(
    _: AdminCaller,
    State(app): State<AppState>,
    body: Bytes,
) -> ScimResult<Response> {
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ScimError::invalid_syntax("the definition must be UTF-8 YAML or JSON"))?;
    blocking(move || {
        // JSON is YAML, so one parser reads both and locates errors in either.
        let probe: serde_json::Value = serde_saphyr::from_str(&text).unwrap_or_default();
        let id = probe
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or("ephemeral")
            .to_string();
        let path = crate::reload::shared::source_name(&id);
        let file = crate::definition::load_str(&path, &text).map_err(|d| {
            ScimError::invalid_syntax(format!("the definition does not parse: {d}"))
        })?;
        let id = file.def.id.clone();
        let file_text = file.text.clone();
        let (_, model) = app
            .model
            .rebuild(
                |ephemeral, current| match current.server(&id) {
                    Some(existing) => Err(ScimError::uniqueness(format!(
                        "server {:?} already exists ({}); delete it first or pick another id",
                        existing.id,
                        existing.source.display()
                    ))),
                    None => {
                        ephemeral.push(file);
                        Ok(())
                    }
                },
                |model, _| match model.server(&id) {
                    Some(new) => {
                        data::prepare(&app.store, new, None).map_err(data_err)?;
                        // Replicas sharing the database serve it too (`reload::shared`).
                        if app.store.is_shared() && !app.store.write(|c| {
                            c.put_ephemeral(&id, &file_text, &crate::engine::now())
                        })? {
                            return Err(ScimError::uniqueness(format!(
                                "server {id:?} already exists (created on another replica); delete it first or pick another id"
                            )));
                        }
                        Ok(())
                    }
                    None => Err(ScimError::internal("compiled model lacks the new server")),
                },
            )
            .map_err(|e| match e {
                RebuildError::Compile(problems) => ScimError::invalid_value(format!(
                    "the definition is invalid:\n{}",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                )),
                RebuildError::Refused(e) => e,
            })?;
        let new = model
            .server(&id)
            .cloned()
            .ok_or_else(|| ScimError::internal("compiled model lacks the new server"))?;
        tracing::info!(server = %new.id, "ephemeral server created through the admin API");
        Ok(json_response(StatusCode::CREATED, &describe(&app, &new)))
    })
    .await
}

/// DELETE /admin/servers/{id}: an ephemeral server and its data.
async fn delete_server(
    AdminServer(s): AdminServer,
    State(app): State<AppState>,
) -> ScimResult<Response> {
    let id = s.id.clone();
    if !s.ephemeral {
        return Err(ScimError::Conflict(format!(
            "server {id:?} is defined by {}; delete the file to unmount it",
            s.source.display()
        )));
    }
    blocking(move || {
        app.model
            .rebuild(
                |ephemeral, _| {
                    // Under the model's writer lock, like the adoption of shared servers: one
                    // running meanwhile must not find it still kept and bring it back.
                    if app.store.is_shared() {
                        app.store.write(|c| c.delete_ephemeral(&id))?;
                    }
                    ephemeral.retain(|f| f.def.id != id);
                    Ok(())
                },
                |_, _| Ok::<(), ScimError>(()),
            )
            .map_err(|e| match e {
                RebuildError::Compile(p) => ScimError::internal(
                    p.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                RebuildError::Refused(e) => e,
            })?;
        data::reset(&app.store, &id).map_err(data_err)?;
        clear_log(&app, &id)?;
        app.store
            .write(|tx| tx.delete_snapshots(&id, None).map_err(ScimError::internal))?;
        let _one_change = crate::sync::lock(&app.harness.overrides_lock);
        share_override(&app, &id, FAULTS, None)?;
        share_override(&app, &id, LIMITS, None)?;
        app.harness.faults.set_admin(&id, Vec::new());
        crate::sync::lock(&app.harness.limit_overrides).remove(&id);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

fn clear_log(app: &AppState, id: &str) -> ScimResult<usize> {
    if let Some(r) = &app.harness.recorder {
        r.flush();
        r.forget(id);
    }
    app.store
        .write(|tx| inspector::clear(tx, id).map_err(ScimError::internal))
}

async fn reset(AdminServer(s): AdminServer, State(app): State<AppState>) -> ScimResult<Response> {
    blocking(move || {
        let n = data::reset_served(&app.store, &s).map_err(data_err)?;
        Ok(json_response(StatusCode::OK, &json!({ "deleted": n })))
    })
    .await
}

async fn export(
    _: AdminCaller,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ScimResult<Response> {
    export_response(app, id).await
}

/// The export as a JSON download (shared with the UI).
pub async fn export_response(app: AppState, id: String) -> ScimResult<Response> {
    let s = server(&app, &id)?;
    let text = blocking(move || data::export(&app.store, &s.id).map_err(data_err)).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.json\""),
            ),
        ],
        text,
    )
        .into_response())
}

/// Recorded requests, newest first (shared with the UI).
pub async fn read_requests(
    app: &AppState,
    id: &str,
    q: inspector::Query,
) -> ScimResult<Vec<inspector::Entry>> {
    server(app, id)?;
    let (app, id) = (app.clone(), id.to_string());
    blocking(move || {
        if let Some(r) = &app.harness.recorder {
            r.flush();
        }
        app.store
            .read(|c| inspector::read(c, &id, &q).map_err(ScimError::internal))
    })
    .await
}

async fn requests(
    _: AdminCaller,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<inspector::Query>,
) -> ScimResult<Response> {
    let entries = read_requests(&app, &id, q).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "server": id, "count": entries.len(), "requests": entries }),
    ))
}

async fn requests_har(
    _: AdminCaller,
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<inspector::Query>,
) -> ScimResult<Response> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let entries = read_requests(&app, &id, q).await?;
    let mut resp = json_response(
        StatusCode::OK,
        &inspector::har(&entries, &format!("http://{host}")),
    );
    if let Ok(v) = format!("attachment; filename=\"{id}.har\"").parse() {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

async fn clear_requests(
    _: AdminCaller,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ScimResult<Response> {
    server(&app, &id)?;
    let n = blocking(move || clear_log(&app, &id)).await?;
    Ok(json_response(StatusCode::OK, &json!({ "deleted": n })))
}

#[derive(serde::Deserialize)]
struct SnapshotRequest {
    name: String,
}

fn snapshot_name(name: &str) -> ScimResult<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(ScimError::invalid_value(
            "snapshot names are 1-64 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(())
}

async fn take_snapshot(
    AdminServer(s): AdminServer,
    State(app): State<AppState>,
    body: Bytes,
) -> ScimResult<Response> {
    let req: SnapshotRequest = serde_json::from_slice(&body).map_err(|e| {
        ScimError::invalid_syntax(format!("send {{\"name\": \"<snapshot name>\"}}: {e}"))
    })?;
    snapshot_name(&req.name)?;
    blocking(move || {
        let text = data::export(&app.store, &s.id).map_err(data_err)?;
        let taken = crate::engine::now();
        app.store.write(|tx| {
            tx.put_snapshot(&s.id, &req.name, &taken, &text)
                .map_err(ScimError::internal)
        })?;
        Ok(json_response(
            StatusCode::CREATED,
            &json!({"server": s.id, "name": req.name, "taken": taken}),
        ))
    })
    .await
}

/// GET /admin/servers/{id}/events: the latest SCIM events (RFC 9967), newest first, each with
/// its SET claims and delivery state (pending, acknowledged, failed with the receiver's error).
async fn list_events(
    _: AdminCaller,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ScimResult<Response> {
    server(&app, &id)?;
    let events = events(&app, &id, 1000).await?;
    Ok(json_response(StatusCode::OK, &json!({ "events": events })))
}

/// The latest `limit` events of server `id`, newest first, each with its pushes (the admin
/// API and the UI show the same).
pub async fn events(app: &AppState, id: &str, limit: usize) -> ScimResult<Vec<Value>> {
    let (store, id) = (app.store.clone(), id.to_string());
    let (list, pushes) = blocking(move || {
        store.read(|c| {
            let log = c.event_log(&id, limit).map_err(ScimError::internal)?;
            let pushes = c.deliveries(&id, limit).map_err(ScimError::internal)?;
            Ok((log, pushes))
        })
    })
    .await?;
    Ok(describe_events(list, pushes))
}

/// The events one request raised (by `jti`), as `events` describes them.
pub async fn events_named(app: &AppState, id: &str, jtis: Vec<String>) -> ScimResult<Vec<Value>> {
    let (store, id) = (app.store.clone(), id.to_string());
    let (list, pushes) =
        blocking(move || store.read(|c| c.events_named(&id, &jtis).map_err(ScimError::internal)))
            .await?;
    Ok(describe_events(list, pushes))
}

/// Each event with its state (pending, acknowledged, failed), claims and pushes.
fn describe_events(
    list: Vec<crate::store::EventRecord>,
    pushes: Vec<crate::store::PushRecord>,
) -> Vec<Value> {
    let mut by_event: std::collections::HashMap<String, Vec<Value>> = Default::default();
    for p in pushes {
        by_event.entry(p.jti.clone()).or_default().push(json!({
            "receiver": p.receiver,
            "state": p.state,
            "attempts": p.attempts,
            "error": p.error,
        }));
    }
    list.into_iter()
        .map(|e| {
            let deliveries = by_event.remove(&e.jti).unwrap_or_default();
            json!({
                "jti": e.jti,
                "created": e.created,
                "state": e.state,
                "error": e.error,
                "claims": serde_json::from_str::<Value>(&e.claims).unwrap_or(Value::Null),
                "deliveries": deliveries,
            })
        })
        .collect()
}

async fn list_snapshots(
    _: AdminCaller,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ScimResult<Response> {
    server(&app, &id)?;
    let list = blocking(move || {
        app.store
            .read(|c| c.snapshots(&id).map_err(ScimError::internal))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &json!({ "snapshots": list })))
}

async fn restore_snapshot(
    _: AdminCaller,
    State(app): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> ScimResult<Response> {
    let s = server(&app, &id)?;
    blocking(move || {
        let text = app
            .store
            .read(|c| c.snapshot_data(&s.id, &name).map_err(ScimError::internal))?;
        let text = text.ok_or_else(|| {
            ScimError::not_found(format!("no snapshot {name:?} of server {}", s.id))
        })?;
        let n = data::import(&app.store, &s, &text, true).map_err(data_err)?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"restored": name, "resources": n}),
        ))
    })
    .await
}

async fn delete_snapshot(
    _: AdminCaller,
    State(app): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> ScimResult<Response> {
    let n = blocking(move || {
        app.store.write(|tx| {
            tx.delete_snapshots(&id, Some(&name))
                .map_err(ScimError::internal)
        })
    })
    .await?;
    if n == 0 {
        return Err(ScimError::not_found("no such snapshot"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_limits(
    AdminServer(s): AdminServer,
    State(app): State<AppState>,
) -> ScimResult<Response> {
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "in_force": app.harness.limits_for(&s),
            "from_definition": s.limits,
            "tokens": app.harness.buckets.snapshot(&s.id),
        }),
    ))
}

/// PUT: `{read: "10/s", write: "2/s", per_type: {User: "5/s"}}` replaces the limits in force
/// until DELETE (back to the definition's) or a restart.
async fn put_limits(
    AdminServer(s): AdminServer,
    State(app): State<AppState>,
    body: Bytes,
) -> ScimResult<Response> {
    let def: RateLimitsDef = serde_json::from_slice(&body)
        .map_err(|e| ScimError::invalid_syntax(format!("rate limits: {e}")))?;
    let limits = crate::harness::limits::Limits::compile(&def).map_err(|errors| {
        ScimError::invalid_value(
            errors
                .into_iter()
                .map(|(k, m)| format!("{}: {m}", k.join(".")))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    if let Some((name, _)) = limits.per_type.iter().find(|(n, _)| s.by_name(n).is_none()) {
        return Err(ScimError::invalid_value(format!(
            "{name} is not a resource type of server {}",
            s.id
        )));
    }
    let _one_change = crate::sync::lock(&app.harness.overrides_lock);
    share_override(&app, &s.id, LIMITS, Some(&body))?;
    crate::sync::lock(&app.harness.limit_overrides).insert(s.id.clone(), limits.clone());
    Ok(json_response(
        StatusCode::OK,
        &json!({ "in_force": limits }),
    ))
}

async fn delete_limits(
    AdminServer(s): AdminServer,
    State(app): State<AppState>,
) -> ScimResult<Response> {
    let _one_change = crate::sync::lock(&app.harness.overrides_lock);
    share_override(&app, &s.id, LIMITS, None)?;
    crate::sync::lock(&app.harness.limit_overrides).remove(&s.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_faults(
    AdminServer(s): AdminServer,
    State(app): State<AppState>,
) -> ScimResult<Response> {
    Ok(json_response(
        StatusCode::OK,
        &json!({"from_definition": s.faults, "admin": app.harness.faults.admin_rules(&s.id)}),
    ))
}

/// PUT: a list of fault rules (the YAML `faults:` shape) replacing the admin rules.
async fn put_faults(
    AdminServer(s): AdminServer,
    State(app): State<AppState>,
    body: Bytes,
) -> ScimResult<Response> {
    let rules: Vec<FaultDef> = serde_json::from_slice(&body).map_err(|e| {
        ScimError::invalid_syntax(format!("faults: send a JSON list of rules: {e}"))
    })?;
    for (i, f) in rules.iter().enumerate() {
        crate::definition::FaultDef::check(f)
            .map_err(|m| ScimError::invalid_value(format!("faults[{i}]: {m}")))?;
    }
    let _one_change = crate::sync::lock(&app.harness.overrides_lock);
    share_override(&app, &s.id, FAULTS, Some(&body))?;
    app.harness.faults.set_admin(&s.id, rules.clone());
    Ok(json_response(StatusCode::OK, &json!({ "admin": rules })))
}

async fn delete_faults(
    AdminServer(s): AdminServer,
    State(app): State<AppState>,
) -> ScimResult<Response> {
    let _one_change = crate::sync::lock(&app.harness.overrides_lock);
    share_override(&app, &s.id, FAULTS, None)?;
    app.harness.faults.set_admin(&s.id, Vec::new());
    Ok(StatusCode::NO_CONTENT.into_response())
}

const FAULTS: &str = "faults";
const LIMITS: &str = "rate-limits";

/// Where replicas share the store, keeps an override there for the others (`adopt_overrides`).
fn share_override(
    app: &AppState,
    server: &str,
    kind: &str,
    value: Option<&[u8]>,
) -> ScimResult<()> {
    if !app.store.is_shared() {
        return Ok(());
    }
    let value = value.map(String::from_utf8_lossy);
    app.store
        .write(|c| c.put_override(server, kind, value.as_deref()))
        .map_err(ScimError::internal)
}

/// Applies the overrides other replicas set (or cleared) through their admin API.
pub fn adopt_overrides(app: &AppState) {
    let _one_change = crate::sync::lock(&app.harness.overrides_lock);
    let kept = match app.store.read(|c| c.overrides()) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!("reading the overrides other replicas set: {e}");
            return;
        }
    };
    let model = app.model.load();
    for server in model.servers.values() {
        let value = |kind: &str| {
            kept.iter()
                .find(|(s, k, _)| *s == server.id && k == kind)
                .map(|(_, _, v)| v.as_str())
        };
        let rules: Vec<FaultDef> = value(FAULTS)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        if app.harness.faults.admin_rules(&server.id) != rules {
            app.harness.faults.set_admin(&server.id, rules);
        }
        let limits = value(LIMITS)
            .and_then(|v| serde_json::from_str::<RateLimitsDef>(v).ok())
            .and_then(|d| crate::harness::limits::Limits::compile(&d).ok());
        let mut overrides = crate::sync::lock(&app.harness.limit_overrides);
        match limits {
            Some(l) if overrides.get(&server.id) != Some(&l) => {
                overrides.insert(server.id.clone(), l);
            }
            None => {
                overrides.remove(&server.id);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_and_ui_answer_loopback_only_unless_remote_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(&dir.path().join("db")).unwrap());
        let app = AppState::new(store, crate::model::Model::default()).unwrap();
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        assert!(local_only(&app, local).is_ok());
        assert_eq!(local_only(&app, remote).unwrap_err().status(), 403);
        let mut headers = HeaderMap::new();
        assert_eq!(guard(&app, local, &headers).unwrap_err().status(), 401);
        let token = app.harness.admin.token.clone();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        assert!(guard(&app, local, &headers).is_ok());
        assert_eq!(guard(&app, remote, &headers).unwrap_err().status(), 403);
        let open = app.with_admin(super::super::AdminAccess {
            token,
            remote: true,
            public_hosts: Vec::new(),
        });
        assert!(guard(&open, remote, &headers).is_ok());
    }
}
