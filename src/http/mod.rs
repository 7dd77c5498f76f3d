//! HTTP edge (axum): routing, auth, content types, ETags, logging, the request recorder's hook,
//! rate limits and faults (`scim.rs`), and the admin API (`admin.rs`). Handlers are thin: they
//! pick the model snapshot, extract, call one engine function (reads by key inline, scans
//! on the blocking pool, writes of one resource on the store's writer thread), respond.

pub mod admin;
mod auth;
mod health;
pub mod listen;
mod oauth;
mod response;
mod scim;
pub mod tls;

pub use auth::constant_time_eq;
pub use oauth::routes as oauth_routes;
pub use response::SCIM_JSON;

use crate::error::ScimError;
use crate::model::Model;
use crate::store::Store;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// Shared state: the current model (swapped atomically on reload), the store and the harness.
/// One `Arc`: axum clones the state for every extractor of every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an `AppState` holds.
pub struct Shared {
    /// The current model and its one writer (reload and the admin API change it through it).
    pub model: Arc<crate::model::ModelHandle>,
    pub store: Arc<Store>,
    /// Definition files and the last reload's outcome, for `/healthz`.
    pub reload: Arc<std::sync::Mutex<crate::reload::ReloadStatus>>,
    pub harness: Arc<Harness>,
    /// Searches waiting for a reader wait here, not on a blocking thread that writes need.
    pub searches: tokio::sync::Semaphore,
}

/// Runtime state of the test-harness features.
pub struct Harness {
    /// Writes the request log; None if it could not start (then nothing is recorded).
    pub recorder: Option<crate::harness::inspector::Recorder>,
    pub buckets: crate::harness::limits::Buckets,
    pub faults: crate::harness::faults::Faults,
    /// Rate limits set through the admin API, overriding the definition's, per server.
    pub limit_overrides:
        std::sync::Mutex<std::collections::HashMap<String, crate::harness::limits::Limits>>,
    pub admin: AdminAccess,
    /// Held while an admin-API override is stored and applied, and while other replicas'
    /// overrides are adopted: an adoption that read the database before a change must not
    /// apply its stale view after it.
    pub overrides_lock: std::sync::Mutex<()>,
}

/// Who may use `/admin` and `/ui`.
#[derive(Debug, Clone)]
pub struct AdminAccess {
    /// Bearer token of the admin API.
    pub token: String,
    /// Serve `/admin` and `/ui` to non-loopback clients too (the UI then wants the token).
    pub remote: bool,
    /// Host names (`name` or `name:port`) the UI answers to besides loopback names.
    pub public_hosts: Vec<String>,
}

impl AdminAccess {
    /// A random token (logged at start-up), loopback only.
    pub fn generated() -> AdminAccess {
        AdminAccess {
            token: format!("admin-{}", uuid::Uuid::new_v4().simple()),
            remote: false,
            public_hosts: Vec::new(),
        }
    }
}

impl Harness {
    /// The rate limits in force for `server`: an admin override, else the definition's.
    pub fn limits_for(&self, server: &crate::model::ServerModel) -> crate::harness::limits::Limits {
        crate::sync::lock(&self.limit_overrides)
            .get(&server.id)
            .cloned()
            .unwrap_or_else(|| server.limits.clone())
    }
}

impl AppState {
    /// What reloads work on (the model handle, the store, the reload status).
    pub fn reloader(&self) -> crate::reload::Reloader {
        crate::reload::Reloader {
            model: self.model.clone(),
            store: self.store.clone(),
            status: self.reload.clone(),
        }
    }

    /// Prepares every server (indexes, catalogue, seed data) and holds the model; starts the
    /// request recorder.
    pub fn new(store: Arc<Store>, model: Model) -> Result<AppState, crate::data::DataError> {
        for server in model.servers.values() {
            crate::data::prepare(&store, server, None)?;
        }
        let recorder = match crate::harness::inspector::Recorder::start(&store) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("request inspector disabled: {e}");
                None
            }
        };
        let model = Arc::new(crate::model::ModelHandle::new(model));
        let buckets = crate::harness::limits::Buckets::for_store(&store);
        crate::reload::shared::adopt(&model, &store);
        Ok(AppState(Arc::new(Shared {
            model,
            searches: tokio::sync::Semaphore::new(store.search_slots()),
            store,
            reload: Default::default(),
            harness: Arc::new(Harness {
                recorder,
                buckets,
                faults: Default::default(),
                limit_overrides: Default::default(),
                admin: AdminAccess::generated(),
                overrides_lock: Default::default(),
            }),
        })))
    }

    /// Where replicas share the store: adopts what other replicas change through their admin
    /// API (servers, faults, rate-limit overrides) every `reload::shared::POLL`, until this
    /// state is dropped (the thread holds only weak references).
    pub fn watch_shared(&self) {
        if !self.store.is_shared() {
            return;
        }
        let (model, store, harness, reload) = (
            Arc::downgrade(&self.model),
            Arc::downgrade(&self.store),
            Arc::downgrade(&self.harness),
            self.reload.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("scimlab-shared".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(crate::reload::shared::POLL);
                    let (Some(model), Some(store), Some(harness)) =
                        (model.upgrade(), store.upgrade(), harness.upgrade())
                    else {
                        return;
                    };
                    crate::reload::shared::adopt(&model, &store);
                    admin::adopt_overrides(&AppState(Arc::new(Shared {
                        model,
                        searches: tokio::sync::Semaphore::new(store.search_slots()),
                        store,
                        harness,
                        reload: reload.clone(),
                    })));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("could not start watching what other replicas change: {e}");
        }
    }

    /// Sets who may use the admin API and UI.
    pub fn with_admin(mut self, admin: AdminAccess) -> AppState {
        if let Some(h) = Arc::get_mut(&mut self.0).and_then(|s| Arc::get_mut(&mut s.harness)) {
            h.admin = admin;
        }
        self
    }
}

/// The SCIM, health and admin routes; every error they answer is a SCIM error body. (The
/// UI's routes are mounted beside them by `app::router`.)
pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/health", get(health::healthz))
        .merge(scim::routes(app))
        .merge(admin::routes())
        .fallback(not_found)
        .layer(axum::middleware::map_response(response::scim_error_bodies))
}

async fn not_found(uri: axum::http::Uri) -> Response {
    ScimError::not_found(format!(
        "nothing at {}; SCIM servers live at /scim-identifier/{{server_id}}/scim/v2/, and /healthz lists them",
        uri.path()
    ))
    .into_response()
}

/// The unreserved characters of RFC 3986 stay as they are; everything else is encoded.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query value (for links the UI builds).
pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}
