//! A checked `sortBy` ([`crate::model::query::Sort`]) as the store's `ORDER BY`.

use super::Keyset;
use super::sql::{json_path, literal};
use crate::model::query::{Sort, SortKey};
use rusqlite::types::Value as SqlValue;

/// The `ORDER BY` terms: missing values at the end the direction puts them, then the value
/// (folded unless case-exact).
pub fn order_by(sort: &Sort<'_>) -> String {
    value_order(&key_expr(sort), sort.descending)
}

pub(super) fn value_order(expr: &str, descending: bool) -> String {
    // RFC 7644 §3.4.2.3: resources without the value sort last ascending, first descending.
    let dir = if descending { "DESC" } else { "ASC" };
    format!("({expr}) IS NULL {dir}, {expr} {dir}")
}

/// Cursor paging's key expression and `ORDER BY`: the sort (if any), then insertion sequence,
/// which makes the order total. `backward` is the exact reverse, for the page before a
/// keyset (RFC 9865 `previousCursor`).
pub fn keyset_order(sort: Option<&Sort<'_>>, backward: bool) -> (String, String) {
    let seq = if backward { "r.seq DESC" } else { "r.seq ASC" };
    match sort {
        Some(s) => {
            let expr = key_expr(s);
            let order = format!("{}, {seq}", value_order(&expr, s.descending != backward));
            (expr, order)
        }
        None => ("NULL".to_string(), seq.to_string()),
    }
}

/// The value resources are ordered by (folded unless case-exact).
pub fn key_expr(sort: &Sort<'_>) -> String {
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
    if sort.fold {
        format!("lower({expr})")
    } else {
        expr
    }
}

/// The rows after `last` in the order `keyset_order` gives: the keyset condition of cursor
/// paging, binding its values into `params`. `backward`: after it in the reversed order,
/// i.e. before it.
pub fn after(
    expr: &str,
    descending: bool,
    backward: bool,
    last: &Keyset,
    params: &mut Vec<SqlValue>,
) -> String {
    let mut bind = |v: SqlValue| {
        params.push(v);
        format!("?{}", params.len())
    };
    let seq = bind(SqlValue::Integer(last.seq));
    let key = match &last.key {
        serde_json::Value::Null => None,
        serde_json::Value::Number(n) => Some(match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        }),
        serde_json::Value::String(s) => Some(SqlValue::Text(s.clone())),
        other => Some(SqlValue::Text(other.to_string())),
    };
    keyset_condition(expr, descending, backward, &seq, key.map(bind).as_deref())
}

/// The rows after a keyset in the order `value_order` then `seq` gives (both dialects):
/// `seq` and `key` are the bound placeholders of the last row's sequence number and sort
/// value (`None`: it had no value). `descending` is the sort's direction, `backward` walks
/// the reversed order.
pub(super) fn keyset_condition(
    expr: &str,
    descending: bool,
    backward: bool,
    seq: &str,
    key: Option<&str>,
) -> String {
    let descending = descending != backward;
    let seq_beyond = if backward { "<" } else { ">" };
    let (missing_first, beyond) = if descending {
        (true, "<")
    } else {
        (false, ">")
    };
    match key {
        // Among the rows without a value, later ones; then (ascending) the end.
        None if missing_first => {
            format!("(({expr}) IS NULL AND r.seq {seq_beyond} {seq}) OR ({expr}) IS NOT NULL")
        }
        None => format!("({expr}) IS NULL AND r.seq {seq_beyond} {seq}"),
        Some(k) => {
            let tail = if missing_first {
                String::new()
            } else {
                format!(" OR ({expr}) IS NULL")
            };
            format!(
                "(({expr}) IS NOT NULL AND ({expr} {beyond} {k} OR ({expr} = {k} AND r.seq {seq_beyond} {seq}))){tail}"
            )
        }
    }
}
