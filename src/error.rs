//! The one SCIM error type (RFC 7644 §3.12). Every module's failure ends up here, and it is
//! rendered into a response in exactly one place (`http::response`).

use std::fmt;

/// RFC 7644 Table 9 `scimType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    /// RFC 9865 §2.1: a cursor this server did not issue, or issued for another query.
    InvalidCursor,
    /// RFC 9865 §2.3: a cursor older than `cursorTimeout`.
    ExpiredCursor,
    /// RFC 9865 §2.4: a `count` out of range, or not the one the cursor was issued for.
    InvalidCount,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }
}

/// What can go wrong, as a client sees it: each variant maps to one HTTP status and
/// `scimType` (here, once) and carries a `detail` that tells the client what to fix.
/// Internal failures carry a generic detail; the cause is logged where they arise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimError {
    /// 400: the request is wrong in the way the `scimType` names.
    Invalid(ScimType, String),
    /// 401: no or wrong credentials; `challenges` are the `WWW-Authenticate` values (RFC 9110
    /// §11.6.1; RFC 6750 §3 for Bearer).
    Unauthorized {
        detail: String,
        challenges: Vec<String>,
    },
    /// 403: not for this client, or not on this endpoint.
    Forbidden(String),
    /// 404: no such server, endpoint or resource.
    NotFound(String),
    /// 405: the target allows only `allow` (the `Allow` header, RFC 9110 §15.5.6).
    MethodNotAllowed { detail: String, allow: &'static str },
    /// 408: the request body did not arrive in time.
    Timeout(String),
    /// 409 `uniqueness`: another resource holds the value.
    Uniqueness(String),
    /// 409 `invalidValue`: a Bulk `bulkId` that no operation defines, or a cycle of them.
    UnresolvedBulkId(String),
    /// 409: the target already exists (admin API).
    Conflict(String),
    /// 412: `If-Match` names another version.
    PreconditionFailed(String),
    /// 413: the body or the operation count is over a limit.
    PayloadTooLarge(String),
    /// 415: a body that is not JSON.
    UnsupportedMediaType(String),
    /// 429 with `Retry-After`.
    RateLimited {
        detail: String,
        retry_after_secs: u64,
    },
    /// 501: a SCIM feature this server does not offer.
    NotImplemented(String),
    /// A fault the server's fault rules inject, with the status they name.
    Injected { status: u16, detail: String },
    /// An error status from the HTTP layer (a malformed request line, path or header).
    Http { status: u16, detail: String },
    /// 500: an unexpected failure (logged with its cause when it was made).
    Internal,
}

pub type ScimResult<T> = Result<T, ScimError>;

impl ScimError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ScimError::Invalid(..) => 400,
            ScimError::Unauthorized { .. } => 401,
            ScimError::Forbidden(_) => 403,
            ScimError::NotFound(_) => 404,
            ScimError::MethodNotAllowed { .. } => 405,
            ScimError::Timeout(_) => 408,
            ScimError::Uniqueness(_) | ScimError::UnresolvedBulkId(_) | ScimError::Conflict(_) => {
                409
            }
            ScimError::PreconditionFailed(_) => 412,
            ScimError::PayloadTooLarge(_) => 413,
            ScimError::UnsupportedMediaType(_) => 415,
            ScimError::RateLimited { .. } => 429,
            ScimError::NotImplemented(_) => 501,
            ScimError::Injected { status, .. } | ScimError::Http { status, .. } => *status,
            ScimError::Internal => 500,
        }
    }

    /// The RFC 7644 Table 9 `scimType`, where one applies.
    pub fn scim_type(&self) -> Option<ScimType> {
        match self {
            ScimError::Invalid(t, _) => Some(*t),
            ScimError::Uniqueness(_) => Some(ScimType::Uniqueness),
            ScimError::UnresolvedBulkId(_) => Some(ScimType::InvalidValue),
            ScimError::UnsupportedMediaType(_) => Some(ScimType::InvalidSyntax),
            _ => None,
        }
    }

    /// What the client should know (and fix).
    pub fn detail(&self) -> &str {
        match self {
            ScimError::Invalid(_, d)
            | ScimError::Unauthorized { detail: d, .. }
            | ScimError::Forbidden(d)
            | ScimError::NotFound(d)
            | ScimError::Timeout(d)
            | ScimError::Uniqueness(d)
            | ScimError::UnresolvedBulkId(d)
            | ScimError::Conflict(d)
            | ScimError::PreconditionFailed(d)
            | ScimError::PayloadTooLarge(d)
            | ScimError::UnsupportedMediaType(d)
            | ScimError::NotImplemented(d) => d,
            ScimError::MethodNotAllowed { detail, .. }
            | ScimError::RateLimited { detail, .. }
            | ScimError::Injected { detail, .. }
            | ScimError::Http { detail, .. } => detail,
            ScimError::Internal => "internal server error; the cause is in scimlab's log",
        }
    }

    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError::Invalid(scim_type, detail.into())
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidSyntax, detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidFilter, detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidPath, detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::NoTarget, detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::Mutability, detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        ScimError::Uniqueness(detail.into())
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        ScimError::NotFound(detail.into())
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ScimError::Unauthorized {
            detail: detail.into(),
            challenges: vec!["Bearer realm=\"scimlab\"".into()],
        }
    }
    /// 405 for a target that allows only `allow` (e.g. `"GET, HEAD"`).
    pub fn method_not_allowed(detail: impl Into<String>, allow: &'static str) -> Self {
        ScimError::MethodNotAllowed {
            detail: detail.into(),
            allow,
        }
    }
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        ScimError::PreconditionFailed(detail.into())
    }
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        ScimError::PayloadTooLarge(detail.into())
    }
    /// An unexpected failure: logged here with its cause, shown to the client without it.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        ScimError::Internal
    }
}

impl ScimError {
    /// The RFC 7644 §3.12 error response body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "schemas": [crate::schema::urn::ERROR],
            "status": self.status().to_string(),
            "detail": self.detail(),
        });
        if let Some(t) = self.scim_type() {
            body["scimType"] = serde_json::json!(t.as_str());
        }
        body
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type() {
            Some(t) => write!(f, "{} {}: {}", self.status(), t.as_str(), self.detail()),
            None => write!(f, "{}: {}", self.status(), self.detail()),
        }
    }
}

impl std::error::Error for ScimError {}
