//! PostgreSQL expressions over stored documents (`jsonb`), shared by the index plan and the
//! filter compiler so that a filter's expression is the indexed one.
//!
//! Strings compare under the "C" collation: byte order, and `lower()` folds ASCII only — as
//! SQLite does and as the model folds values — whatever the database's own locale is.

use super::super::sql::literal;

/// `doc->'urn…'->'attr'->'sub'`: the attribute's JSON value (SQL NULL when absent).
pub fn json(doc: &str, extension: Option<&str>, attr: &str, sub: Option<&str>) -> String {
    let mut e = format!("({doc}");
    for key in extension.into_iter().chain([attr]).chain(sub) {
        e.push_str("->");
        e.push_str(&literal(key));
    }
    e.push(')');
    e
}

/// The attribute's value as text under the "C" collation (SQL NULL when absent or JSON null).
pub fn text(doc: &str, extension: Option<&str>, attr: &str, sub: Option<&str>) -> String {
    let mut e = format!("({doc}");
    let keys: Vec<&str> = extension.into_iter().chain([attr]).chain(sub).collect();
    for (i, key) in keys.iter().enumerate() {
        e.push_str(if i + 1 == keys.len() { "->>" } else { "->" });
        e.push_str(&literal(key));
    }
    e.push_str(") COLLATE \"C\"");
    format!("({e})")
}

/// A JSON scalar as text under the "C" collation (`e.value`, an array element).
pub fn scalar_text(json: &str) -> String {
    format!("(({json} #>> '{{}}') COLLATE \"C\")")
}

/// The elements of a JSON array (none when the value is absent or not an array).
pub fn elements(json: &str) -> String {
    format!("jsonb_array_elements(CASE jsonb_typeof({json}) WHEN 'array' THEN {json} END)")
}

/// The WHERE terms that scope a query to one server and resource type (see the SQLite one).
pub fn scope(alias: &str, server_id: &str, resource_type: &str) -> String {
    super::super::sql::scope(alias, server_id, resource_type)
}
