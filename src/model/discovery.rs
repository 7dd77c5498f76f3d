//! Discovery documents (RFC 7644 §4) generated from a compiled server. `meta.location` holds
//! the path below the server's base URL; the HTTP layer prefixes the base per request.

use super::ServerModel;
use crate::schema::urn;
use serde_json::{Value, json};

#[derive(Debug, Default)]
pub struct Discovery {
    pub service_provider_config: Value,
    /// (resource type name, document)
    pub resource_types: Vec<(String, Value)>,
    /// (schema URN, document)
    pub schemas: Vec<(String, Value)>,
}

/// scimlab's own limits where RFC 7643 §5 has no attribute for them, as an extension of the
/// ServiceProviderConfig (README, "Limits").
pub const LIMITS_EXTENSION: &str =
    "urn:scimlab:params:scim:schemas:extension:limits:2.0:ServiceProviderConfig";

fn pagination(p: &super::Pagination) -> Value {
    let mut v = json!({
        "cursor": p.cursor,
        "index": p.index,
        "defaultPaginationMethod": if p.cursor_by_default { "cursor" } else { "index" },
        "defaultPageSize": p.default_page_size,
        "maxPageSize": p.max_page_size,
    });
    if p.cursor {
        v["cursorTimeout"] = json!(p.cursor_timeout_secs);
    }
    v
}

/// Whether the server's persona has no such endpoint.
fn persona_lacks(server: &ServerModel, e: crate::definition::MissingEndpoint) -> bool {
    (server.persona.as_ref()).is_some_and(|p| p.missing_endpoints.contains(&e))
}

/// RFC 7643 §5 `authenticationSchemes`: the ways in this server's definition declares, the
/// first one primary.
fn authentication_schemes(server: &ServerModel) -> Value {
    let mut out = Vec::new();
    if server.auth.oauth.is_some() {
        out.push(json!({
            "type": "oauth2",
            "name": "OAuth 2.0",
            "description": "Access tokens from this server's token endpoint (…/oauth/token): client_credentials, authorization_code with refresh tokens",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6749",
        }));
    }
    if !server.tokens.is_empty() || server.auth.oauth.is_some() {
        out.push(json!({
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authorization: Bearer with a token listed in this server's definition or issued by its token endpoint",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
        }));
    }
    if !server.auth.basic.is_empty() {
        out.push(json!({
            "type": "httpbasic",
            "name": "HTTP Basic",
            "description": "A username and password from this server's definition",
            "specUri": "https://www.rfc-editor.org/rfc/rfc7617",
        }));
    }
    for h in &server.auth.header {
        out.push(json!({
            "type": "httpheader",
            "name": format!("{} header", h.name),
            "description": format!("A secret value in the {} header", h.name),
        }));
    }
    if let Some(first) = out.first_mut() {
        first["primary"] = json!(true);
    }
    Value::Array(out)
}

pub fn build(server: &ServerModel) -> Discovery {
    let mut service_provider_config = json!({
        "schemas": [urn::SERVICE_PROVIDER_CONFIG, LIMITS_EXTENSION],
        LIMITS_EXTENSION: {
            "maxPayloadSize": server.max_payload_bytes,
            "patchMaxOperations": server.patch_max_operations,
            "filterMaxTerms": crate::filter::MAX_TERMS,
            "filterMaxDepth": crate::filter::MAX_DEPTH,
            "filterMaxValueLength": crate::filter::MAX_VALUE_CHARS,
        },
        "documentationUri": "https://github.com/scimlab/scimlab#readme",
        "patch": {"supported": true},
        "bulk": {
            "supported": !persona_lacks(server, crate::definition::MissingEndpoint::Bulk),
            "maxOperations": server.bulk_max_operations,
            "maxPayloadSize": server.bulk_max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": server.max_results},
        // RFC 9865 §4.
        "pagination": pagination(&server.pagination),
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": authentication_schemes(server),
        "meta": {"resourceType": "ServiceProviderConfig", "location": "/ServiceProviderConfig"}
    });
    // RFC 9967 §4: the events this server emits, and whether it completes a request
    // asynchronously when the client asks (`Prefer: respond-async`).
    if let Some(events) = &server.events {
        let asynchronous = events.async_requests == crate::definition::AsyncRequests::Request;
        service_provider_config["securityEvents"] = json!({
            "asyncRequest": events.async_requests.name(),
            "eventUris": crate::vocab::events::uris(
                events.payload == crate::definition::EventPayload::Full,
                asynchronous,
            ),
        });
    }
    let resource_types = server
        .resource_types
        .iter()
        .map(|rt| {
            let doc = json!({
                "schemas": [urn::RESOURCE_TYPE],
                "id": rt.name,
                "name": rt.name,
                "endpoint": rt.endpoint,
                "description": rt.description,
                "schema": rt.schema.id,
                "schemaExtensions": rt.extensions.iter()
                    .map(|e| json!({"schema": e.schema.id, "required": e.required}))
                    .collect::<Vec<_>>(),
                "meta": {"resourceType": "ResourceType", "location": format!("/ResourceTypes/{}", rt.name)}
            });
            (rt.name.clone(), doc)
        })
        .collect();
    let schemas = server
        .schemas
        .iter()
        .map(|s| {
            let mut doc = serde_json::to_value(&**s).unwrap_or_default();
            doc["schemas"] = json!([urn::SCHEMA]);
            doc["meta"] =
                json!({"resourceType": "Schema", "location": format!("/Schemas/{}", s.id)});
            (s.id.clone(), doc)
        })
        .collect();
    Discovery {
        service_provider_config,
        resource_types,
        schemas,
    }
}
