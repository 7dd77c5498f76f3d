//! The provisioning event URIs of RFC 9967 that scimlab emits.

/// The prefix of the provisioning events.
pub const PROV: &str = "urn:ietf:params:scim:event:prov";

/// The asynchronous request completion event (RFC 9967 §2.5.1.3).
pub const ASYNC_RESPONSE: &str = "urn:ietf:params:scim:event:misc:asyncresp";

/// The event URIs a server emits (`securityEvents.eventUris`): create, put and patch as
/// `full` or `notice` events, delete, activate, deactivate, and the completion of
/// asynchronous requests when it takes them.
pub fn uris(full: bool, async_requests: bool) -> Vec<String> {
    let kind = if full { "full" } else { "notice" };
    let mut out: Vec<String> = ["create", "put", "patch"]
        .iter()
        .map(|op| format!("{PROV}:{op}:{kind}"))
        .collect();
    for op in ["delete", "activate", "deactivate"] {
        out.push(format!("{PROV}:{op}"));
    }
    if async_requests {
        out.push(ASYNC_RESPONSE.to_string());
    }
    out
}
