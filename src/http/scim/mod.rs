//! SCIM routes under `/scim-identifier/{server_id}/scim/v2/`: discovery documents, the
//! resource endpoints of every resource type (`/{endpoint}`), `/.search` and `/Bulk`.
//! `exchange` admits a request (server, snapshot, auth, recording), `gate` applies rate limits
//! and faults to routed requests, extractors give handlers what they need, and a method a
//! route does not serve is a 405 naming the ones it does (with `Allow`).

mod asynchronous;
mod exchange;
mod extract;
mod handlers;

use crate::error::ScimError;
use crate::http::AppState;
use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, any, get, post};
use handlers as h;

/// The base URL of every virtual server.
pub const BASE: &str = "/scim-identifier/{server_id}/scim/v2";

/// The SCIM routes of every virtual server.
pub fn routes(app: &AppState) -> Router<AppState> {
    let discovery = "GET (discovery documents are read-only)";
    let server = Router::new()
        .route(
            "/ServiceProviderConfig",
            only(
                get(h::service_provider_config),
                "/ServiceProviderConfig",
                discovery,
                "GET, HEAD",
            ),
        )
        .route(
            "/ResourceTypes",
            only(
                get(h::resource_types),
                "/ResourceTypes",
                discovery,
                "GET, HEAD",
            ),
        )
        .route(
            "/ResourceTypes/{name}",
            only(
                get(h::resource_type),
                "/ResourceTypes/{name}",
                discovery,
                "GET, HEAD",
            ),
        )
        .route(
            "/Schemas",
            only(get(h::schemas), "/Schemas", discovery, "GET, HEAD"),
        )
        .route(
            "/Schemas/{id}",
            only(get(h::schema), "/Schemas/{id}", discovery, "GET, HEAD"),
        )
        .route("/Bulk", only(post(h::bulk), "/Bulk", "POST", "POST"))
        .route(
            "/.search",
            only(post(h::search_all), "/.search", "POST", "POST"),
        )
        .route("/Me", any(h::me))
        .route(
            "/SecurityEvents",
            only(
                post(h::security_events),
                "/SecurityEvents",
                "POST (an RFC 8936 poll)",
                "POST",
            ),
        )
        .route(
            "/SecurityEvents/{txn}",
            only(
                get(asynchronous::completion),
                "/SecurityEvents/{txn}",
                "GET (an asynchronous request's completion)",
                "GET, HEAD",
            ),
        )
        .route(
            "/SecurityEvents/jwks",
            only(
                get(h::security_events_jwks),
                "/SecurityEvents/jwks",
                "GET",
                "GET, HEAD",
            ),
        )
        .route(
            "/{endpoint}",
            on_endpoint(
                get(h::list).post(h::create),
                "{endpoint}",
                "GET (search) or POST (create)",
                "GET, HEAD, POST",
            ),
        )
        .route(
            "/{endpoint}/.search",
            on_endpoint(post(h::search), "{endpoint}/.search", "POST", "POST"),
        )
        .route(
            "/{endpoint}/{id}",
            on_endpoint(
                get(h::get)
                    .put(h::replace)
                    .patch(h::patch)
                    .delete(h::delete),
                "{endpoint}/{id}",
                "GET, PUT, PATCH or DELETE",
                "GET, HEAD, PUT, PATCH, DELETE",
            ),
        )
        .route("/", any(h::base))
        .fallback(no_such_path)
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            exchange::gate,
        ));
    Router::new()
        .nest(BASE, server)
        // The nested router answers `…/v2`; `…/v2/` is the same base URL.
        .route(&format!("{BASE}/"), any(h::base))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            exchange::exchange,
        ))
}

/// `router` for the methods it serves; any other method is a 405 that names `what` and the
/// methods to use, with `allow` as the `Allow` header.
fn only(
    router: MethodRouter<AppState>,
    what: &'static str,
    allowed: &'static str,
    allow: &'static str,
) -> MethodRouter<AppState> {
    router.fallback(move |method: Method| async move {
        ScimError::method_not_allowed(
            format!("{method} is not allowed on {what}; use {allowed}"),
            allow,
        )
    })
}

/// As [`only`], below `/{endpoint}`: an endpoint the server does not have is a 404 first.
fn on_endpoint(
    router: MethodRouter<AppState>,
    what: &'static str,
    allowed: &'static str,
    allow: &'static str,
) -> MethodRouter<AppState> {
    router.fallback(move |_: extract::Endpoint, method: Method| async move {
        ScimError::method_not_allowed(
            format!("{method} is not allowed on {what}; use {allowed}"),
            allow,
        )
    })
}

async fn no_such_path(uri: axum::http::Uri) -> ScimError {
    ScimError::not_found(format!(
        "no such path {} on this server; see /ResourceTypes for its endpoints",
        uri.path()
    ))
}
