//! Fuzz resource bodies through validation and storage (create and replace).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static PIPELINE: LazyLock<scimlab::fuzzing::Pipeline> =
    LazyLock::new(scimlab::fuzzing::Pipeline::new);

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        PIPELINE.write(&body).unwrap();
    }
});
