//! The provisioning event URIs of RFC 9967 that scimlab emits.

/// The prefix of the provisioning events.
pub const PROV: &str = "urn:ietf:params:scim:event:prov";

/// The event URIs a server emits (`securityEvents.eventUris`): create, put and patch as
/// `full` or `notice` events, and delete, activate, deactivate.
pub fn uris(full: bool) -> Vec<String> {
    let kind = if full { "full" } else { "notice" };
    let mut out: Vec<String> = ["create", "put", "patch"]
        .iter()
        .map(|op| format!("{PROV}:{op}:{kind}"))
        .collect();
    for op in ["delete", "activate", "deactivate"] {
        out.push(format!("{PROV}:{op}"));
    }
    out
}
