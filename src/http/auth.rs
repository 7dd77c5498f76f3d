//! Bearer-token authentication: each virtual server accepts only its own tokens.

use crate::error::{ScimError, ScimResult};
use crate::model::ServerModel;
use crate::model::compat::{Compat, Quirk};
use axum::http::{HeaderMap, header};

/// Compares without an early exit (`subtle`), so response time does not reveal how much of a
/// secret matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

pub fn check(server: &ServerModel, headers: &HeaderMap) -> ScimResult<()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ScimError::unauthorized(format!(
            "missing Authorization header; send \"Authorization: Bearer <token>\" with a token of server {:?}",
            server.id
        )));
    };
    let value = value.to_str().unwrap_or("").trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        None if server
            .tokens
            .iter()
            .any(|t| constant_time_eq(t.as_bytes(), value.as_bytes())) =>
        {
            if !server.compat.allows(Quirk::BearerWithoutPrefix) {
                return Err(ScimError::unauthorized(Compat::refusal(
                    Quirk::BearerWithoutPrefix,
                    "the Authorization header holds a token without the \"Bearer \" scheme",
                )));
            }
            value
        }
        _ => {
            return Err(ScimError::unauthorized(
                "the Authorization header must use the Bearer scheme: \"Bearer <token>\"",
            ));
        }
    };
    // Check every token so timing does not reveal which one was close.
    let ok = server.tokens.iter().fold(false, |found, t| {
        constant_time_eq(t.as_bytes(), token.as_bytes()) | found
    });
    if ok {
        Ok(())
    } else {
        Err(ScimError::unauthorized(format!(
            "the bearer token is not valid for server {:?}",
            server.id
        )))
    }
}
