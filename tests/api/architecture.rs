//! Structure the code keeps: every SQL string and every rusqlite type lives in `src/store`, so
//! a second storage backend is an implementation of the store's API and nothing else; and the
//! top-level modules depend on each other without cycles.

use std::collections::{BTreeMap, BTreeSet};
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

/// Top-level module → the top-level modules its non-test code names as `crate::<module>`
/// (paths and grouped `use crate::{a, b}` imports).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods: BTreeSet<String> = std::fs::read_dir(src)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            let stem = p.file_stem()?.to_str()?.to_string();
            let module = (p.is_dir() && p.join("mod.rs").exists())
                || (p.extension().is_some_and(|x| x == "rs") && stem != "lib" && stem != "main");
            module.then_some(stem)
        })
        .collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> =
        mods.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let owner = first.trim_end_matches(".rs").to_string();
        if !mods.contains(&owner) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let text = match text.find("\n#[cfg(test)]") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        let mut named = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + 7..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    named.insert(item.trim().split("::").next().unwrap().to_string());
                }
            } else {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                named.insert(rest[..end].to_string());
            }
        }
        let deps = graph.get_mut(&owner).unwrap();
        deps.extend(
            named
                .into_iter()
                .filter(|m| mods.contains(m) && *m != owner),
        );
    }
    graph
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.len() > 15, "found the modules: {graph:?}");
    assert!(
        graph["engine"].contains("store"),
        "found the edges: {graph:?}"
    );
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| *p == m) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for d in &graph[m] {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
}
