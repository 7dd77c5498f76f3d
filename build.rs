//! Thin shim: check and embed `schemas/*.json` (the generator lives in `src/schema/check.rs`).

#[path = "src/schema/check.rs"]
mod check;

fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=schemas/scim");
    match check::generate(std::path::Path::new("schemas/scim"), &out) {
        Ok(files) => {
            for f in files {
                println!("cargo:rerun-if-changed={}", f.display());
            }
        }
        Err(problems) => {
            eprintln!("malformed schema files:\n{problems}");
            panic!("malformed schema files in schemas/scim/:\n{problems}");
        }
    }
}
