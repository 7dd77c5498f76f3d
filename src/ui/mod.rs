//! The web UI: server-rendered handlebars pages from `templates/ui/` (embedded at build time; no
//! JavaScript build step). A dashboard of every virtual server, per server its resource types,
//! limits, faults, export and reset, and a live request log (polled), a resource browser with a
//! SCIM filter box and paging, and resource detail. Who may see it is [`guard`]'s job;
//! writeOnly values (passwords) are never shown.

pub mod guard;

use crate::engine::{self, Ctx, ListQuery, Projection};
use crate::error::ScimError;
use crate::harness::inspector;
use crate::http::AppState;
use crate::http::admin;
use crate::model::ServerModel;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use handlebars::Handlebars;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("../../templates/ui/layout.hbs")),
    (
        "dashboard",
        include_str!("../../templates/ui/dashboard.hbs"),
    ),
    ("server", include_str!("../../templates/ui/server.hbs")),
    (
        "resources",
        include_str!("../../templates/ui/resources.hbs"),
    ),
    ("resource", include_str!("../../templates/ui/resource.hbs")),
    ("request", include_str!("../../templates/ui/request.hbs")),
    ("login", include_str!("../../templates/ui/login.hbs")),
];

/// The pages, compiled once; a test renders each so a broken template fails the suite.
fn pages() -> &'static Handlebars<'static> {
    static PAGES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
        let mut h = Handlebars::new();
        h.set_strict_mode(false);
        for (name, text) in TEMPLATES {
            if let Err(e) = h.register_template_string(name, *text) {
                tracing::error!("UI template {name} does not compile: {e}");
            }
        }
        h
    });
    &PAGES
}

pub fn routes(app: AppState) -> Router<AppState> {
    Router::new()
        .route("/ui/login", get(login_page).post(login))
        .route("/ui", get(dashboard))
        .route("/ui/", get(dashboard))
        .route("/ui/servers/{id}", get(server_page))
        .route("/ui/servers/{id}/requests.json", get(requests_json))
        .route("/ui/servers/{id}/requests/{seq}", get(request_page))
        .route("/ui/servers/{id}/reset", post(reset))
        .route("/ui/servers/{id}/export", get(export))
        .route("/ui/servers/{id}/types/{rt}", get(browse))
        .route("/ui/servers/{id}/types/{rt}/{rid}", get(detail))
        .layer(axum::middleware::from_fn_with_state(
            (
                app.clone(),
                Arc::new(guard::Sessions::new(app.store.cursor_key())),
            ),
            guard::guard,
        ))
}

fn render(page: &str, mut data: Value) -> Response {
    if data.get("title").is_none() {
        data["title"] = json!(page);
    }
    match pages().render(page, &data) {
        Ok(html) => Html(html).into_response(),
        Err(e) => ScimError::internal(format!("rendering {page}: {e}")).into_response(),
    }
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let mut r = render(
        "resource",
        json!({"title": "error", "server": "", "resource_type": "", "id": status.as_u16(), "json": message}),
    );
    *r.status_mut() = status;
    r
}

type Page = Result<Response, Response>;

/// The server and the index of its resource type `rt_name`, or a 404 page.
#[allow(clippy::result_large_err)] // the error is the page to send
fn find_type(
    app: &AppState,
    id: &str,
    rt_name: &str,
) -> Result<(Arc<ServerModel>, usize), Response> {
    let Some(server) = app.model.load().server(id).cloned() else {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("no server {id:?}"),
        ));
    };
    match server
        .resource_types
        .iter()
        .position(|r| r.name.eq_ignore_ascii_case(rt_name))
    {
        Some(i) => Ok((server, i)),
        None => Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("no resource type {rt_name:?} on {id}"),
        )),
    }
}

async fn dashboard(State(app): State<AppState>) -> Page {
    let model = app.model.load_full();
    let app2 = app.clone();
    let servers: Vec<Value> = tokio::task::spawn_blocking(move || {
        model
            .servers
            .values()
            .map(|s| admin::describe(&app2, s))
            .collect()
    })
    .await
    .unwrap_or_default();
    let reload = crate::sync::lock(&app.reload).clone();
    Ok(render(
        "dashboard",
        json!({
            "title": "servers",
            "servers": servers,
            "files": reload.files,
            "reload": reload.last_reload,
            "reload_failed": reload.last_reload.as_ref().is_some_and(|o| !o.ok),
        }),
    ))
}

fn entry_row(e: &inspector::Entry) -> Value {
    let mut notes: Vec<String> = e.quirks.iter().map(|q| format!("quirk {q}")).collect();
    notes.extend(e.policies.iter().map(|p| format!("policy {p}")));
    if let Some(f) = &e.fault {
        notes.push(format!("fault {f}"));
    }
    match e.events.len() {
        0 => {}
        1 => notes.push("1 event".into()),
        n => notes.push(format!("{n} events")),
    }
    if let Some(d) = e.error.as_ref().and_then(|x| x["detail"].as_str()) {
        notes.push(d.to_string());
    }
    json!({
        "seq": e.seq,
        "at": e.at,
        "method": e.method,
        "path": e.path,
        "query": e.query,
        "status": e.status,
        "status_class": e.status / 100,
        "latency": format!("{:.1}", e.latency_ms),
        "notes": notes.join("; "),
    })
}

async fn server_page(
    State(app): State<AppState>,
    Extension(session): Extension<guard::UiSession>,
    Path(id): Path<String>,
) -> Page {
    let Some(s) = app.model.load().server(&id).cloned() else {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("no server {id:?}"),
        ));
    };
    let entries = admin::read_requests(&app, &id, inspector::Query::default())
        .await
        .map_err(|e| error_page(StatusCode::INTERNAL_SERVER_ERROR, e.detail()))?;
    let limits = app.harness.limits_for(&s);
    let mut limit_parts = Vec::new();
    for (name, rate) in [("read", limits.read), ("write", limits.write)] {
        if let Some(r) = rate {
            limit_parts.push(format!("{name}: {} per {} s", r.count, r.period_secs));
        }
    }
    for (name, r) in &limits.per_type {
        limit_parts.push(format!("{name}: {} per {} s", r.count, r.period_secs));
    }
    let faults: Vec<String> = s
        .faults
        .iter()
        .map(|f| &f.def)
        .chain(app.harness.faults.admin_rules(&s.id).iter())
        .map(|f| serde_json::to_string(f).unwrap_or_default())
        .collect();
    let events = if s.events.is_some() {
        admin::events(&app, &id, 50)
            .await
            .map_err(|e| error_page(StatusCode::INTERNAL_SERVER_ERROR, e.detail()))?
            .iter()
            .map(event_row)
            .collect()
    } else {
        Vec::new()
    };
    let has_events = s.events.is_some();
    let app2 = app.clone();
    let described = tokio::task::spawn_blocking(move || admin::describe(&app2, &s))
        .await
        .unwrap_or_default();
    let mut described = described;
    // Whole tokens read better than 7.000123.
    if let Some(tokens) = described["rate_limit_tokens"].as_array_mut() {
        for t in tokens {
            if let Some(n) = t[1].as_f64() {
                t[1] = json!(n.floor() as i64);
            }
        }
    }
    Ok(render(
        "server",
        json!({
            "title": id,
            "server": described,
            "limits_text": limit_parts.join(", "),
            "csrf": session.csrf,
            "faults_text": faults.join(" · "),
            "requests": entries.iter().map(entry_row).collect::<Vec<_>>(),
            "after": entries.first().map_or(0, |e| e.seq),
            "has_events": has_events,
            "events": events,
        }),
    ))
}

/// One event for the server page: when, which events (short names), about what, and how its
/// delivery stands (polled: pending, acknowledged or failed; each push's state).
fn event_row(e: &Value) -> Value {
    let kinds: Vec<String> = (e["claims"]["events"].as_object().into_iter().flatten())
        .map(|(uri, _)| {
            uri.trim_start_matches("urn:ietf:params:scim:event:")
                .to_string()
        })
        .collect();
    let pushes: Vec<String> = (e["deliveries"].as_array().into_iter().flatten())
        .map(|d| {
            let mut s = format!(
                "{} {} ({} attempts)",
                d["receiver"].as_str().unwrap_or(""),
                d["state"].as_str().unwrap_or(""),
                d["attempts"]
            );
            if let Some(err) = d["error"].as_str() {
                s.push_str(&format!(": {err}"));
            }
            s
        })
        .collect();
    json!({
        "created": e["created"],
        "kinds": kinds.join(", "),
        "subject": e["claims"]["sub_id"]["uri"],
        "state": e["state"],
        "error": e["error"],
        "pushes": pushes.join("; "),
    })
}

/// A body for display: pretty JSON with writeOnly values hidden when it is JSON, else as
/// recorded.
fn pretty(server: &ServerModel, body: Option<&str>) -> Option<String> {
    let b = body?;
    Some(match serde_json::from_str::<Value>(b) {
        Ok(mut v) => {
            server.redact_write_only(&mut v);
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        Err(_) => b.to_string(),
    })
}

/// One recorded exchange: what the client really sent and what it got.
async fn request_page(State(app): State<AppState>, Path((id, seq)): Path<(String, i64)>) -> Page {
    let Some(model) = app.model.load().server(&id).cloned() else {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("no server {id:?}"),
        ));
    };
    let (app2, server) = (app.clone(), id.clone());
    let entry = tokio::task::spawn_blocking(move || {
        if let Some(r) = &app2.harness.recorder {
            r.flush();
        }
        app2.store
            .read(|c| inspector::read_one(c, &server, seq).map_err(ScimError::internal))
    })
    .await
    .ok()
    .and_then(Result::ok)
    .flatten();
    let Some(e) = entry else {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("no request {seq} in the log of {id} (the log keeps the newest entries)"),
        ));
    };
    let row = entry_row(&e);
    // What became of the events the request raised: polled, pushed, acknowledged, failed.
    let events: Vec<Value> = if e.events.is_empty() {
        Vec::new()
    } else {
        admin::events_named(&app, &id, e.events.clone())
            .await
            .map_err(|err| error_page(StatusCode::INTERNAL_SERVER_ERROR, err.detail()))?
            .iter()
            .map(event_row)
            .collect()
    };
    Ok(render(
        "request",
        json!({
            "events": events,
            "raised": e.events.len(),
            "title": format!("{id} request {seq}"),
            "server": id,
            "request_body": pretty(&model, e.request_body.as_deref()),
            "response_body": pretty(&model, e.response_body.as_deref()),
            "status_class": e.status / 100,
            "latency": row["latency"],
            "notes": row["notes"],
            "entry": e,
        }),
    ))
}

#[derive(Deserialize)]
struct After {
    after: Option<i64>,
}

async fn requests_json(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<After>,
) -> Page {
    let entries = admin::read_requests(
        &app,
        &id,
        inspector::Query {
            after: q.after,
            ..Default::default()
        },
    )
    .await
    .map_err(IntoResponse::into_response)?;
    // The same rows the page renders, so the page's script formats nothing itself.
    let rows: Vec<Value> = entries.iter().map(entry_row).collect();
    Ok(axum::Json(rows).into_response())
}

/// Refuses a form post without this session's CSRF token: a page elsewhere cannot read the
/// token, so it cannot forge the form.
#[allow(clippy::result_large_err)] // the error is the page to send
fn checked_form(session: &guard::UiSession, body: &[u8]) -> Result<(), Response> {
    if guard::csrf_ok(session, form_field(body, "csrf").as_deref()) {
        Ok(())
    } else {
        Err(error_page(
            StatusCode::FORBIDDEN,
            "this form is missing its session token (reload the page and try again)",
        ))
    }
}

/// A field of a submitted form (`application/x-www-form-urlencoded`); a body of another kind
/// simply has none.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn reset(
    State(app): State<AppState>,
    Extension(session): Extension<guard::UiSession>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Page {
    checked_form(&session, &body)?;
    let Some(s) = app.model.load().server(&id).cloned() else {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("no server {id:?}"),
        ));
    };
    let store = app.store.clone();
    let done = tokio::task::spawn_blocking(move || crate::data::reset_served(&store, &s)).await;
    match done {
        Ok(Ok(_)) => Ok(Redirect::to(&format!("/ui/servers/{id}")).into_response()),
        _ => Err(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reset failed",
        )),
    }
}

async fn login_page(Extension(session): Extension<guard::UiSession>) -> Page {
    Ok(render(
        "login",
        json!({"title": "sign in", "csrf": session.csrf}),
    ))
}

async fn login(
    State(app): State<AppState>,
    Extension(session): Extension<guard::UiSession>,
    Extension(id): Extension<guard::SessionId>,
    Extension(sessions): Extension<Arc<guard::Sessions>>,
    body: axum::body::Bytes,
) -> Page {
    checked_form(&session, &body)?;
    let token = form_field(&body, "token").unwrap_or_default();
    let mut signed_in = Redirect::to("/ui").into_response();
    if !guard::sign_in(&app, &sessions, &id.0, &token, &mut signed_in) {
        let mut page = render(
            "login",
            json!({"title": "sign in", "csrf": session.csrf, "error": "that is not the admin token"}),
        );
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(page);
    }
    Ok(signed_in)
}

/// The server's export with writeOnly values (passwords) replaced: the UI never shows them.
/// (`scimlab export` and the admin API keep them, so that an import restores them.)
async fn export(State(app): State<AppState>, Path(id): Path<String>) -> Page {
    let Some(server) = app.model.load().server(&id).cloned() else {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("no server {id:?}"),
        ));
    };
    let resp = admin::export_response(app, id)
        .await
        .map_err(IntoResponse::into_response)?;
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    let mut doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    server.redact_write_only(&mut doc);
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    Ok(Response::from_parts(parts, axum::body::Body::from(text)))
}

#[derive(Deserialize)]
struct Browse {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
}

const PAGE: i64 = 25;

/// A short label for a resource in lists.
fn label(doc: &Value) -> String {
    for key in ["userName", "displayName", "name"] {
        if let Some(s) = doc.get(key).and_then(Value::as_str) {
            return s.to_string();
        }
    }
    String::new()
}

async fn browse(
    State(app): State<AppState>,
    Path((id, rt_name)): Path<(String, String)>,
    Query(q): Query<Browse>,
) -> Page {
    let (server, rt_index) = find_type(&app, &id, &rt_name)?;
    let filter = q.filter.clone().unwrap_or_default();
    let start = q.start_index.unwrap_or(1).max(1);
    let store = app.store.clone();
    let query = ListQuery {
        filter: Some(filter.clone()).filter(|f| !f.trim().is_empty()),
        start_index: Some(start),
        count: Some(PAGE),
        ..Default::default()
    };
    let server2 = server.clone();
    let result = tokio::task::spawn_blocking(move || {
        let ctx = Ctx {
            store: &store,
            server: &server2,
            rt: &server2.resource_types[rt_index],
            base: "",
        };
        engine::list(&ctx, &query, &Projection::default())
    })
    .await
    .unwrap_or_else(|e| Err(ScimError::internal(e)));
    let rt = &server.resource_types[rt_index];
    let (rows, total, error) = match result {
        Ok(page) => {
            let rows: Vec<Value> = (page.resources.values())
                .map(|r| {
                    json!({
                        "id": r["id"],
                        "label": label(&r),
                        "modified": r["meta"]["lastModified"],
                    })
                })
                .collect();
            (rows, page.total as i64, None)
        }
        Err(e) => (Vec::new(), 0, Some(e.detail().to_string())),
    };
    let shown = rows.len() as i64;
    Ok(render(
        "resources",
        json!({
            "title": format!("{id} {}", rt.name),
            "server": id,
            "resource_type": rt.name,
            "filter": filter,
            "filter_q": crate::http::urlencode(&filter),
            "error": error,
            "rows": rows,
            "total": total,
            "first": start,
            "last": start + shown - 1,
            "prev": (start > 1).then(|| (start - PAGE).max(1)),
            "next": (start + shown <= total).then_some(start + PAGE),
        }),
    ))
}

/// A resource as the UI shows it: pretty, without writeOnly values.
fn shown(server: &ServerModel, mut body: Value) -> String {
    server.redact_write_only(&mut body);
    serde_json::to_string_pretty(&body).unwrap_or_default()
}

async fn detail(
    State(app): State<AppState>,
    Path((id, rt_name, rid)): Path<(String, String, String)>,
) -> Page {
    let (server, rt_index) = find_type(&app, &id, &rt_name)?;
    let store = app.store.clone();
    let server2 = server.clone();
    let rid2 = rid.clone();
    let base = format!("/scim-identifier/{id}/scim/v2");
    let out = tokio::task::spawn_blocking(move || {
        let ctx = Ctx {
            store: &store,
            server: &server2,
            rt: &server2.resource_types[rt_index],
            base: &base,
        };
        engine::get(&ctx, &rid2, &Projection::default())
    })
    .await
    .unwrap_or_else(|e| Err(ScimError::internal(e)));
    match out {
        Ok(o) => Ok(render(
            "resource",
            json!({
                "title": rid,
                "server": id,
                "resource_type": server.resource_types[rt_index].name,
                "id": rid,
                "json": shown(&server, o.body.to_value()),
            }),
        )),
        Err(e) => Err(error_page(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::NOT_FOUND),
            e.detail(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_renders() {
        let mut h = Handlebars::new();
        h.set_strict_mode(false);
        for (name, text) in TEMPLATES {
            h.register_template_string(name, *text)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for page in ["dashboard", "server", "resources", "resource", "request"] {
            let html = h.render(page, &json!({"title": page})).unwrap();
            assert!(html.contains("<main>"), "{page}");
        }
        let html = h
            .render("resource", &json!({"json": "<script>alert(1)</script>"}))
            .unwrap();
        assert!(!html.contains("<script>alert"), "values are escaped");
    }
}
