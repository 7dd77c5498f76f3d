//! SCIM routes under `/scim-identifier/{server_id}/scim/v2/`: discovery documents, the
//! resource endpoints of every resource type (`/{endpoint}`), `/.search` and `/Bulk`.
//! `exchange` admits a request (server, snapshot, auth, recording) and applies rate limits and
//! faults to requests a route serves, extractors give handlers what they need, and a method a
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
    // Full paths rather than a router nested at BASE: one route lookup per request, and no
    // prefix stripping or nested service cloned per request.
    let at = |path: &str| format!("{BASE}{path}");
    let served = Router::new()
        .route(
            &at("/ServiceProviderConfig"),
            only(
                get(h::service_provider_config),
                "/ServiceProviderConfig",
                discovery,
                "GET, HEAD",
            ),
        )
        .route(
            &at("/ResourceTypes"),
            only(
                get(h::resource_types),
                "/ResourceTypes",
                discovery,
                "GET, HEAD",
            ),
        )
        .route(
            &at("/ResourceTypes/{name}"),
            only(
                get(h::resource_type),
                "/ResourceTypes/{name}",
                discovery,
                "GET, HEAD",
            ),
        )
        .route(
            &at("/Schemas"),
            only(get(h::schemas), "/Schemas", discovery, "GET, HEAD"),
        )
        .route(
            &at("/Schemas/{id}"),
            only(get(h::schema), "/Schemas/{id}", discovery, "GET, HEAD"),
        )
        .route(&at("/Bulk"), only(post(h::bulk), "/Bulk", "POST", "POST"))
        .route(
            &at("/.search"),
            only(post(h::search_all), "/.search", "POST", "POST"),
        )
        .route(&at("/Me"), any(h::me))
        .route(
            &at("/SecurityEvents"),
            only(
                post(h::security_events),
                "/SecurityEvents",
                "POST (an RFC 8936 poll)",
                "POST",
            ),
        )
        .route(
            &at("/SecurityEvents/{txn}"),
            only(
                get(asynchronous::completion),
                "/SecurityEvents/{txn}",
                "GET (an asynchronous request's completion)",
                "GET, HEAD",
            ),
        )
        .route(
            &at("/SecurityEvents/jwks"),
            only(
                get(h::security_events_jwks),
                "/SecurityEvents/jwks",
                "GET",
                "GET, HEAD",
            ),
        )
        .route(
            &at("/{endpoint}"),
            on_endpoint(
                get(h::list).post(h::create),
                "{endpoint}",
                "GET (search) or POST (create)",
                "GET, HEAD, POST",
            ),
        )
        .route(
            &at("/{endpoint}/.search"),
            on_endpoint(post(h::search), "{endpoint}/.search", "POST", "POST"),
        )
        .route(
            &at("/{endpoint}/{id}"),
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
        // `…/v2` and `…/v2/` are the same base URL.
        .route(BASE, any(h::base))
        .route(&at("/"), any(h::base))
        .route_layer(exchange::served(app));
    // Paths no route serves: answered 404 (not rate limited or faulted). With the routes
    // above they cover every path below BASE (one segment is an endpoint).
    let unserved = Router::new()
        .route(&at("/{endpoint}/"), any(no_such_path))
        .route(&at("/{endpoint}/{id}/"), any(no_such_path))
        .route(&at("/{endpoint}/{id}/{*rest}"), any(no_such_path))
        .route_layer(exchange::unserved(app));
    served.merge(unserved)
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
        below_base(uri.path())
    ))
}

/// The part of a request path below its server's base URL (`/Users/1` of
/// `/scim-identifier/s1/scim/v2/Users/1`), `/` for the base URL itself.
pub(crate) fn below_base(path: &str) -> &str {
    // The fifth `/` ends `/scim-identifier/{server_id}/scim/v2`.
    match path.match_indices('/').nth(4) {
        Some((i, _)) => &path[i..],
        None => "/",
    }
}
