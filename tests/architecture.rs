//! Structure the code keeps: every SQL string and every rusqlite type lives in `src/store`, so
//! a second storage backend is an implementation of the store's API and nothing else.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn rusqlite_is_named_only_inside_the_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let outside: Vec<String> = files
        .iter()
        .filter(|p| !p.starts_with(src.join("store")))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("rusqlite"))
        .map(|p| p.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert!(files.len() > 20, "found the sources");
    assert!(
        outside.is_empty(),
        "rusqlite outside src/store: {outside:?}"
    );
}
