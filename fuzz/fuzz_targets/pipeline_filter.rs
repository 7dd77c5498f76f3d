//! Fuzz filters through the whole pipeline: parse, compile to SQL, execute on a real store.
//! Any outcome but a result or a client error (4xx) is a finding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static PIPELINE: LazyLock<scimlab::fuzzing::Pipeline> =
    LazyLock::new(scimlab::fuzzing::Pipeline::new);

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        PIPELINE.filter(text).unwrap();
    }
});
