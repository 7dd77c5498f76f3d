//! Fuzz PATCH path parsing (`attr[filter].sub`): errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = scimlab::patch::PatchPath::parse(text);
    }
});
