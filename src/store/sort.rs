//! A checked `sortBy` ([`crate::model::query::Sort`]) as the store's `ORDER BY`.

use super::sql::{json_path, literal};
use crate::model::query::{Sort, SortKey};

/// The `ORDER BY` terms: missing values at the end the direction puts them, then the value
/// (folded unless case-exact).
pub fn order_by(sort: &Sort<'_>) -> String {
    let expr = match sort.key {
        SortKey::Id => "r.id".to_string(),
        SortKey::Created => "r.created".into(),
        SortKey::LastModified => "r.last_modified".into(),
        SortKey::ResourceType => "r.resource_type".into(),
        SortKey::Version => "r.version".into(),
        SortKey::FirstValue(res) => format!(
            "json_extract(r.doc, {})",
            literal(&format!(
                "{}[0]",
                json_path(res.extension, &res.attr.name, None)
            ))
        ),
        SortKey::PrimaryElement(res, sub) => format!(
            "(SELECT json_extract(e.value, {}) FROM json_each(r.doc, {}) e ORDER BY json_extract(e.value, '$.\"primary\"') IS NOT 1, e.key LIMIT 1)",
            literal(&format!("$.\"{}\"", sub.name)),
            literal(&json_path(res.extension, &res.attr.name, None))
        ),
        SortKey::Doc(res) => format!(
            "json_extract(r.doc, {})",
            literal(&json_path(
                res.extension,
                &res.attr.name,
                res.sub.map(|s| s.name.as_str())
            ))
        ),
    };
    let expr = if sort.fold {
        format!("lower({expr})")
    } else {
        expr
    };
    // RFC 7644 §3.4.2.3: resources without the value sort last ascending, first descending.
    let dir = if sort.descending { "DESC" } else { "ASC" };
    format!("({expr}) IS NULL {dir}, {expr} {dir}")
}
