//! Fuzz the filter parser: any input must parse or fail with an error, never panic; whatever
//! parses must print back to text that parses to the same AST.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(f) = scimlab::filter::parse(text) {
            let printed = f.to_string();
            let again = scimlab::filter::parse(&printed).expect("printed filter parses");
            assert_eq!(again, f, "round trip of {printed:?}");
        }
    }
});
