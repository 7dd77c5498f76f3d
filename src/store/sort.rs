//! `sortBy` (RFC 7644 §3.4.2.3) as SQL: the store's `ORDER BY` for a resource type.

use super::sql::{json_path, literal};
use crate::error::{ScimError, ScimResult};
use crate::model::{AttrPath, ResourceType, Target};
use crate::schema::AttrType;

/// The SQL `ORDER BY` expression for `sortBy` (RFC 7644 §3.4.2.3): a multi-valued attribute
/// sorts by its primary (else first) value; missing values sort last.
pub fn order_by(rt: &ResourceType, sort_by: &str, descending: bool) -> ScimResult<String> {
    let bad = |why: String| ScimError::invalid_value(format!("sortBy={sort_by:?}: {why}"));
    let path = AttrPath::parse(sort_by).map_err(|e| bad(e.detail().to_string()))?;
    let (expr, case_exact) = match rt.resolve(&path).map_err(|e| bad(e.detail().to_string()))? {
        Target::Id => ("r.id".to_string(), true),
        Target::Meta(Some(d)) if d.name == "created" => ("r.created".into(), true),
        Target::Meta(Some(d)) if d.name == "lastModified" => ("r.last_modified".into(), true),
        Target::Meta(Some(d)) if d.name == "resourceType" => ("r.resource_type".into(), true),
        Target::Meta(Some(d)) if d.name == "version" => ("r.version".into(), true),
        Target::Doc(res) if res.attr.multi_valued => {
            if res.attr.ty != AttrType::Complex {
                (
                    format!(
                        "json_extract(r.doc, {})",
                        literal(&format!(
                            "{}[0]",
                            json_path(res.extension, &res.attr.name, None)
                        ))
                    ),
                    res.attr.case_exact,
                )
            } else {
                let sub = res
                    .sub
                    .or_else(|| res.attr.sub("value"))
                    .ok_or_else(|| bad("name a sub-attribute to sort by".into()))?;
                (
                    format!(
                        "(SELECT json_extract(e.value, {}) FROM json_each(r.doc, {}) e ORDER BY json_extract(e.value, '$.\"primary\"') IS NOT 1, e.key LIMIT 1)",
                        literal(&format!("$.\"{}\"", sub.name)),
                        literal(&json_path(res.extension, &res.attr.name, None))
                    ),
                    sub.case_exact,
                )
            }
        }
        Target::Doc(res) if res.leaf().ty != AttrType::Complex => (
            format!(
                "json_extract(r.doc, {})",
                literal(&json_path(
                    res.extension,
                    &res.attr.name,
                    res.sub.map(|s| s.name.as_str())
                ))
            ),
            res.leaf().case_exact,
        ),
        _ => return Err(bad("not a sortable (simple) attribute".into())),
    };
    let expr = if case_exact {
        expr
    } else {
        format!("lower({expr})")
    };
    Ok(format!(
        "({expr}) IS NULL, {expr} {}",
        if descending { "DESC" } else { "ASC" }
    ))
}
