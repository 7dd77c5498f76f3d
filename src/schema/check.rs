//! Structural check of RFC 7643 §7 schema documents, shared by `build.rs` (which refuses to
//! build with a malformed file in `schemas/`) and the library's tests.
//!
//! Only `std` and `serde_json` may be used here: `build.rs` includes this file with `#[path]`.

use serde_json::Value;
use std::path::{Path, PathBuf};

const TYPES: &[&str] = &[
    "string",
    "boolean",
    "decimal",
    "integer",
    "dateTime",
    "binary",
    "reference",
    "complex",
];
const MUTABILITY: &[&str] = &["readOnly", "readWrite", "immutable", "writeOnly"];
const RETURNED: &[&str] = &["always", "never", "default", "request"];
const UNIQUENESS: &[&str] = &["none", "server", "global"];

/// Checks one schema document; returns its URN or every problem found, each naming the
/// attribute path it concerns.
pub fn check_schema_document(text: &str) -> Result<String, Vec<String>> {
    let doc: Value = serde_json::from_str(text).map_err(|e| vec![format!("not JSON: {e}")])?;
    let mut problems = Vec::new();
    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
    if !id.starts_with("urn:") {
        problems.push(format!(
            "\"id\" must be a schema URN, found {:?}",
            doc.get("id")
        ));
    }
    if doc.get("name").and_then(Value::as_str).is_none() {
        problems.push("\"name\" must be a string".into());
    }
    match doc.get("attributes").and_then(Value::as_array) {
        // RFC 7643 §8.7.2's own Schema schema nests `subAttributes` inside `attributes`; it is
        // the one document allowed a second level.
        Some(attrs) => {
            let max_depth = if id == "urn:ietf:params:scim:schemas:core:2.0:Schema" {
                1
            } else {
                0
            };
            check_attributes(attrs, "", 0, max_depth, &mut problems)
        }
        None => problems.push("\"attributes\" must be an array".into()),
    }
    if problems.is_empty() {
        Ok(id.to_string())
    } else {
        Err(problems)
    }
}

fn check_attributes(
    attrs: &[Value],
    parent: &str,
    depth: usize,
    max_depth: usize,
    problems: &mut Vec<String>,
) {
    let mut seen: Vec<String> = Vec::new();
    for attr in attrs {
        let name = attr.get("name").and_then(Value::as_str).unwrap_or("");
        let at = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        };
        let valid_name = name == "$ref"
            || (name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        // RFC 9944 §7.1 nests extensions inside an extension (BLE pairing methods): an
        // object keyed by the nested schema's URN, declared here as a complex attribute.
        let nested_extension = depth == 0
            && name.starts_with("urn:")
            && attr.get("type").and_then(Value::as_str) == Some("complex")
            && attr.get("multiValued") != Some(&Value::Bool(true));
        if !valid_name && !nested_extension {
            problems.push(format!("attribute {at:?}: invalid attribute name"));
        }
        if attr.get("pattern").is_some_and(|p| !p.is_string()) {
            problems.push(format!("attribute {at:?}: \"pattern\" must be a string"));
        }
        if seen.contains(&name.to_ascii_lowercase()) {
            problems.push(format!(
                "attribute {at:?}: defined twice (names are case-insensitive)"
            ));
        }
        seen.push(name.to_ascii_lowercase());
        let ty = attr.get("type").and_then(Value::as_str).unwrap_or("");
        if !TYPES.contains(&ty) {
            problems.push(format!(
                "attribute {at:?}: \"type\" must be one of {TYPES:?}"
            ));
        }
        for (key, allowed) in [
            ("mutability", MUTABILITY),
            ("returned", RETURNED),
            ("uniqueness", UNIQUENESS),
        ] {
            if attr
                .get(key)
                .is_some_and(|v| !v.as_str().is_some_and(|s| allowed.contains(&s)))
            {
                problems.push(format!(
                    "attribute {at:?}: \"{key}\" must be one of {allowed:?}"
                ));
            }
        }
        for key in ["multiValued", "required", "caseExact"] {
            if attr.get(key).is_some_and(|v| !v.is_boolean()) {
                problems.push(format!("attribute {at:?}: \"{key}\" must be a boolean"));
            }
        }
        match (ty, attr.get("subAttributes")) {
            ("complex", Some(Value::Array(subs))) if depth <= max_depth => {
                check_attributes(subs, &at, depth + 1, max_depth, problems)
            }
            ("complex", Some(_)) if depth > max_depth => problems.push(format!(
                "attribute {at:?}: sub-attributes cannot be complex (RFC 7643 §2.3.8)"
            )),
            ("complex", _) => {}
            (_, Some(_)) => problems.push(format!(
                "attribute {at:?}: only complex attributes have \"subAttributes\""
            )),
            _ => {}
        }
    }
}

/// Checks every `*.json` in `dir` and writes `schemas.rs` into `out_dir`: a static table of
/// `(file name, URN, JSON text)` pulled in with `include_str!`. Returns the files read, so the
/// caller can ask to be re-run when one changes.
#[allow(dead_code)] // called by build.rs and by tests, not by the library itself
pub fn generate(dir: &Path, out_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no schema files (*.json) found", dir.display()));
    }
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let mut urns: Vec<(String, PathBuf)> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        match check_schema_document(&text) {
            Ok(urn) => {
                if let Some((_, other)) = urns.iter().find(|(u, _)| u.eq_ignore_ascii_case(&urn)) {
                    problems.push(format!(
                        "{}: schema {urn} is also defined in {}",
                        file.display(),
                        other.display()
                    ));
                }
                let abs = file.canonicalize().map_err(|e| e.to_string())?;
                let name = file
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                rows.push(format!(
                    "    ({name:?}, {urn:?}, include_str!({:?})),\n",
                    abs.display().to_string()
                ));
                urns.push((urn, file.clone()));
            }
            Err(errs) => {
                problems.extend(errs.into_iter().map(|e| format!("{}: {e}", file.display())))
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let code = format!(
        "/// Schema files embedded at build time: (file name, schema URN, JSON text).\npub static EMBEDDED_SCHEMAS: &[(&str, &str, &str)] = &[\n{}];\n",
        rows.concat()
    );
    std::fs::write(out_dir.join("schemas.rs"), code).map_err(|e| e.to_string())?;
    Ok(files)
}
