//! Extractors of the SCIM routes: the server a request addresses (set by the exchange
//! middleware), the resource type an endpoint names, SCIM JSON bodies and list parameters.
//! Every rejection is a [`ScimError`].

use crate::engine::{ListQuery, Projection};
use crate::error::{ScimError, ScimResult};
use crate::model::ServerModel;
use axum::body::to_bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::{header, request::Parts};
use serde_json::Value;
use std::sync::Arc;

/// The virtual server a request addresses, from one model snapshot, and its base URL as this
/// client reached it (for `meta.location` and `Location`).
#[derive(Clone)]
pub struct Scope {
    pub server: Arc<ServerModel>,
    pub base: Arc<str>,
    /// The resource type the route's `{endpoint}` segment names, if any (looked up once).
    pub rt: Option<usize>,
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ScimResult<Scope> {
        parts
            .extensions
            .get::<Scope>()
            .cloned()
            .ok_or_else(|| ScimError::internal("SCIM route without the exchange middleware"))
    }
}

/// The base URL of `server_id` as the client addressed it (forwarded headers first).
pub fn base_url(parts: &Parts, server_id: &str) -> String {
    let headers = &parts.headers;
    let get = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
    let host = get("x-forwarded-host")
        .or_else(|| get(header::HOST.as_str()))
        .unwrap_or("localhost");
    let direct = match parts.extensions.get::<crate::http::listen::Https>() {
        Some(_) => "https",
        None => "http",
    };
    let proto = get("x-forwarded-proto").unwrap_or(direct);
    format!("{proto}://{host}/scim-identifier/{server_id}/scim/v2")
}

/// The resource type named by the `{endpoint}` segment (case-insensitive), by index into the
/// server's resource types.
pub struct Endpoint(pub usize);

impl<S: Send + Sync> FromRequestParts<S> for Endpoint {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ScimResult<Endpoint> {
        let scope = Scope::from_request_parts(parts, state).await?;
        if let Some(rt) = scope.rt {
            return Ok(Endpoint(rt));
        }
        let params = path_params(parts, state).await?;
        let endpoint = param(&params, "endpoint").unwrap_or_default();
        Err(ScimError::not_found(format!(
            "this server has no endpoint /{endpoint}; it serves {}",
            scope
                .server
                .resource_types
                .iter()
                .map(|r| r.endpoint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// The `{id}` segment of a resource's path, percent-decoded.
pub struct ResourceId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ResourceId {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ScimResult<ResourceId> {
        let params = path_params(parts, state).await?;
        Ok(ResourceId(
            param(&params, "id").unwrap_or_default().to_string(),
        ))
    }
}

/// A path parameter, percent-decoded (read without building a map per request).
pub(super) fn param<'a>(params: &'a RawPathParams, name: &str) -> Option<&'a str> {
    params.iter().find_map(|(k, v)| (k == name).then_some(v))
}

/// The request's path parameters, as routed (a route without one has none).
async fn path_params<S: Send + Sync>(parts: &mut Parts, state: &S) -> ScimResult<RawPathParams> {
    RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ScimError::invalid_syntax(format!("malformed path: {e}")))
}

/// Query parameters as sent, in order. SCIM matches their names case-insensitively; a name
/// given twice means its last value. A request carries a handful, so a list beats a map.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ScimResult<Params> {
        // Percent-decoding is lossy (invalid UTF-8 becomes U+FFFD), so it cannot fail.
        let query = parts.uri.query().unwrap_or_default();
        Ok(Params(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl Params {
    /// The value of parameter `name` (any case).
    fn get(&self, name: &str) -> Option<&str> {
        (self.0.iter().rev())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `attributes` / `excludedAttributes` (RFC 7644 §3.9).
    pub fn projection(&self) -> ScimResult<Projection> {
        Projection::new(self.get("attributes"), self.get("excludedAttributes"))
    }

    /// The list parameters of RFC 7644 §3.4.2.
    pub fn list_query(&self) -> ScimResult<ListQuery> {
        let text = |name| self.get(name).map(str::to_string);
        Ok(ListQuery {
            filter: text("filter"),
            sort_by: text("sortBy"),
            sort_order: text("sortOrder"),
            start_index: self.int("startIndex")?,
            count: self.int("count")?,
            cursor: text("cursor"),
        })
    }

    fn int(&self, name: &str) -> ScimResult<Option<i64>> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ScimError::invalid_value(format!("{name} must be an integer, not {v:?}"))
                })
            })
            .transpose()
    }
}

/// A JSON request body within the server's `max_payload_bytes`.
pub struct ScimJson(pub Value);

/// A Bulk request body within the server's `bulk_max_payload_bytes`.
pub struct BulkJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ScimError;

    async fn from_request(req: Request, _: &S) -> ScimResult<ScimJson> {
        let limit = scope_of(&req)?.server.max_payload_bytes;
        read_json(req, limit).await.map(ScimJson)
    }
}

impl<S: Send + Sync> FromRequest<S> for BulkJson {
    type Rejection = ScimError;

    async fn from_request(req: Request, _: &S) -> ScimResult<BulkJson> {
        let limit = scope_of(&req)?.server.bulk_max_payload_bytes;
        read_json(req, limit).await.map(BulkJson)
    }
}

fn scope_of(req: &Request) -> ScimResult<&Scope> {
    req.extensions()
        .get::<Scope>()
        .ok_or_else(|| ScimError::internal("SCIM route without the exchange middleware"))
}

async fn read_json(req: Request, limit: usize) -> ScimResult<Value> {
    if let Some(ct) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let ct = ct.to_ascii_lowercase();
        if !ct.contains("json") {
            return Err(ScimError::UnsupportedMediaType(format!(
                "Content-Type {ct:?} is not accepted; send application/scim+json or application/json"
            )));
        }
    }
    let bytes = to_bytes(req.into_body(), limit)
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
pub fn body_error(e: &axum::Error, limit: usize) -> ScimError {
    if crate::http::listen::is_body_timeout(e) {
        ScimError::Timeout(format!("{e}; send the whole body promptly"))
    } else {
        ScimError::payload_too_large(format!(
            "the request body is larger than this server's limit of {limit} bytes"
        ))
    }
}
