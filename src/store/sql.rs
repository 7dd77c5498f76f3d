//! SQL text helpers shared by the index plan and the filter compiler, so that a filter's
//! expression is byte-for-byte the indexed expression and SQLite can use the index.

/// JSON path of an attribute in a stored document: `$."urn…"."attr"."sub"`.
pub fn json_path(extension: Option<&str>, attr: &str, sub: Option<&str>) -> String {
    let mut p = String::from("$");
    for key in extension.into_iter().chain([attr]).chain(sub) {
        p.push_str(".\"");
        p.push_str(key);
        p.push('"');
    }
    p
}

/// `json_extract(<doc>, '<path>')`, lower-cased when the attribute is not case-exact.
pub fn extract(doc: &str, path: &str, case_exact: bool) -> String {
    let e = format!("json_extract({doc},{})", literal(path));
    if case_exact { e } else { format!("lower({e})") }
}

/// An SQL string literal. Inputs are names and URNs already checked by the model, but quoting
/// stays correct whatever they hold.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The WHERE terms that scope a query to one server and resource type, as literals: equality
/// on the first two columns of every index of `plan.rs`.
pub fn scope(alias: &str, server_id: &str, resource_type: &str) -> String {
    let a = if alias.is_empty() {
        String::new()
    } else {
        format!("{alias}.")
    };
    format!(
        "{a}server_id={} AND {a}resource_type={}",
        literal(server_id),
        literal(resource_type)
    )
}
