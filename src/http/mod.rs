//! HTTP edge (axum): routing, auth, content types, ETags, logging. Handlers are thin: they
//! pick the model snapshot, extract, call one engine function on the blocking pool, respond.

mod auth;
mod response;
mod scim;

pub use response::SCIM_JSON;

use crate::error::ScimError;
use crate::model::Model;
use crate::store::Store;
use arc_swap::ArcSwap;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Shared state: the current model (swapped atomically on reload) and the store.
#[derive(Clone)]
pub struct AppState {
    pub model: Arc<ArcSwap<Model>>,
    pub store: Arc<Store>,
    /// Definition files and the last reload's outcome, for `/healthz`.
    pub reload: Arc<std::sync::Mutex<crate::reload::ReloadStatus>>,
}

impl AppState {
    /// Creates the state and the store indexes every server of `model` needs.
    /// Prepares every server (indexes, catalogue, seed data) and holds the model.
    pub fn new(store: Arc<Store>, model: Model) -> Result<AppState, crate::data::DataError> {
        for server in model.servers.values() {
            crate::data::prepare(&store, server)?;
        }
        Ok(AppState {
            model: Arc::new(ArcSwap::from_pointee(model)),
            store,
            reload: Default::default(),
        })
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(scim::healthz))
        .route("/health", get(scim::healthz))
        .route(
            "/scim-identifier/{server_id}/scim/v2",
            any(scim::entry_root),
        )
        .route(
            "/scim-identifier/{server_id}/scim/v2/{*rest}",
            any(scim::entry),
        )
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    ScimError::not_found(format!(
        "nothing at {}; SCIM servers live at /scim-identifier/{{server_id}}/scim/v2/, and /healthz lists them",
        uri.path()
    ))
    .into_response()
}

/// Serves on `listener` until `shutdown` completes. The caller binds the socket.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
