//! `/healthz`: the servers loaded, their resource counts and the last reload's outcome.

use super::AppState;
use super::response::scim_json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

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
