//! Values the server issues when a resource is created, where an RFC says the server
//! provides them rather than the client.

use crate::model::ResourceType;
use serde_json::{Map, Value};

/// RFC 9944's EndpointApp core schema.
const ENDPOINT_APP: &str = "urn:ietf:params:scim:schemas:core:2.0:EndpointApp";

/// RFC 9944 §6: an EndpointApp created without `certificateInfo` gets a `clientToken` (at most
/// 500 characters) to authenticate with; one with a certificate does not.
pub fn assign(rt: &ResourceType, doc: &mut Map<String, Value>) {
    if rt.schema.id.eq_ignore_ascii_case(ENDPOINT_APP)
        && rt.schema.attr("clientToken").is_some()
        && !doc
            .keys()
            .any(|k| k.eq_ignore_ascii_case("certificateInfo"))
    {
        let token = crate::vocab::rng::secret();
        doc.insert("clientToken".into(), Value::String(token));
    }
}
