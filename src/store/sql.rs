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
    let mut out = String::with_capacity(s.len() + 2);
    push_literal(&mut out, s);
    out
}

fn push_literal(out: &mut String, s: &str) {
    out.push('\'');
    for (i, part) in s.split('\'').enumerate() {
        if i > 0 {
            out.push_str("''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

/// `template` with each `$SERVER` replaced by `server_id` as a literal. Runs before every
/// statement a request prepares: one allocation, and a byte search for `$` (`str::replace`'s
/// substring search and two allocations were 2.5% of a GET's CPU).
pub fn with_server(template: &str, server_id: &str) -> String {
    const MARK: &str = "$SERVER";
    let mut out = String::with_capacity(template.len() + 2 * server_id.len() + 8);
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        match tail.strip_prefix(MARK) {
            Some(after) => {
                push_literal(&mut out, server_id);
                rest = after;
            }
            None => {
                out.push('$');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The WHERE terms that scope a query to one server and resource type, as literals: equality
/// on the first two columns of every index of `plan.rs`.
pub fn scope(alias: &str, server_id: &str, resource_type: &str) -> String {
    // Pushed piece by piece, not formatted: every list request builds it.
    let mut out =
        String::with_capacity(2 * alias.len() + server_id.len() + resource_type.len() + 40);
    for (i, (column, value)) in [("server_id=", server_id), ("resource_type=", resource_type)]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push_str(" AND ");
        }
        if !alias.is_empty() {
            out.push_str(alias);
            out.push('.');
        }
        out.push_str(column);
        push_literal(&mut out, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_server_quotes_every_mark_and_leaves_json_paths_alone() {
        let template = "SELECT json_extract(doc,'$.\"a\"') FROM r WHERE server_id=$SERVER \
                        AND id IN (SELECT id FROM m WHERE server_id=$SERVER)$";
        assert_eq!(
            with_server(template, "o'brien"),
            "SELECT json_extract(doc,'$.\"a\"') FROM r WHERE server_id='o''brien' \
             AND id IN (SELECT id FROM m WHERE server_id='o''brien')$"
        );
        assert_eq!(with_server("$SERVE $SERVER", ""), "$SERVE ''");
        assert_eq!(literal("a''b"), "'a''''b'");
        assert_eq!(literal(""), "''");
    }
}
