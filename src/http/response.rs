//! Responses: `application/scim+json` bodies, and the single mapping of [`ScimError`] to an
//! RFC 7644 §3.12 error response.

use crate::error::ScimError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub const SCIM_JSON: &str = "application/scim+json";

/// A SCIM JSON response with a status.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    scim_text(status, serde_json::to_vec(body).unwrap_or_default())
}

/// A SCIM response whose body is JSON text already (rendered resources, list pages).
pub fn scim_text(status: StatusCode, json: impl Into<Vec<u8>>) -> Response {
    let mut resp = (status, json.into()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = scim_json(status, &self.body());
        let headers = resp.headers_mut();
        match &self {
            ScimError::MethodNotAllowed { allow, .. } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ScimError::Unauthorized { challenges, .. } => {
                for c in challenges {
                    if let Ok(v) = HeaderValue::from_str(c) {
                        headers.append(header::WWW_AUTHENTICATE, v);
                    }
                }
            }
            ScimError::RateLimited {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ScimError::Injected { status: 429, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

/// Middleware (`map_response`: unlike `from_fn`, it boxes no inner service per request): an
/// error answer that is not a SCIM error body (axum's plain-text rejections of a malformed
/// path, query or body, an oversized body) becomes one, keeping its status and saying what was
/// wrong. Every answer on the SCIM and admin paths is then a SCIM error.
pub async fn scim_error_bodies(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let detail = match (status, text.is_empty()) {
        (StatusCode::PAYLOAD_TOO_LARGE, _) => {
            "the request body is larger than this endpoint accepts".to_string()
        }
        (_, true) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string(),
        (_, false) => text,
    };
    let mut out = ScimError::Http {
        status: status.as_u16(),
        detail,
    }
    .into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}
