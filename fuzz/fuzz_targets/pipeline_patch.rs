//! Fuzz PatchOps applied to stored resources: a JSON object is the PatchOp body, a JSON array
//! its operations. A refused PatchOp must leave the resource unchanged; nothing may be a 5xx.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::sync::LazyLock;

static PIPELINE: LazyLock<scimlab::fuzzing::Pipeline> =
    LazyLock::new(scimlab::fuzzing::Pipeline::new);

fuzz_target!(|data: &[u8]| {
    let body = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Array(ops)) => json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": ops
        }),
        Ok(v @ Value::Object(_)) => v,
        _ => return,
    };
    PIPELINE.patch(&body).unwrap();
});
