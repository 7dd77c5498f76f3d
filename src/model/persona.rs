//! A provider persona's limits (`persona:` in a definition), checked where requests arrive:
//! filter operators, members per request, values per attribute, whole-list member changes,
//! missing endpoints. Each refusal names the limit and the provider, so a client author
//! knows it is the provider's documented behaviour, not a bug in their request.

use super::ServerModel;
use crate::definition::{MissingEndpoint, PersonaDef};
use crate::error::{ScimError, ScimResult};
use crate::filter::Filter;
use serde_json::{Map, Value};

/// Every operator a persona may allow: the comparisons, `pr`, the logical operators, and
/// `[]` for value paths (RFC 7644 §3.4.2.2).
pub const FILTER_OPERATORS: &[&str] = &[
    "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "and", "or", "not", "[]",
];

fn refusal(p: &PersonaDef, what: String) -> String {
    match &p.source {
        Some(src) => format!("{what} (persona {}, as documented at {src})", p.name),
        None => format!("{what} (persona {})", p.name),
    }
}

/// Refuses a filter that uses an operator the persona does not understand.
pub fn check_filter(server: &ServerModel, filter: &Filter) -> ScimResult<()> {
    let Some(p) = &server.persona else {
        return Ok(());
    };
    let Some(allowed) = &p.filter_operators else {
        return Ok(());
    };
    let mut used = Vec::new();
    operators(filter, &mut used);
    if let Some(op) = used
        .into_iter()
        .find(|op| !allowed.iter().any(|a| a.eq_ignore_ascii_case(op)))
    {
        return Err(ScimError::invalid_filter(refusal(
            p,
            format!(
                "the filter operator {op} is not supported: filters may use only {}",
                allowed.join(", ")
            ),
        )));
    }
    Ok(())
}

fn operators(f: &Filter, out: &mut Vec<&'static str>) {
    match f {
        Filter::Compare { op, .. } => out.push(op.as_str()),
        Filter::Present(_) => out.push("pr"),
        Filter::And(l, r) => {
            out.push("and");
            operators(l, out);
            operators(r, out);
        }
        Filter::Or(l, r) => {
            out.push("or");
            operators(l, out);
            operators(r, out);
        }
        Filter::Not(x) => {
            out.push("not");
            operators(x, out);
        }
        Filter::ValuePath { filter, .. } => {
            out.push("[]");
            operators(filter, out);
        }
    }
}

/// Refuses a request that adds or removes more group members than the persona allows.
pub fn check_member_count(server: &ServerModel, count: usize) -> ScimResult<()> {
    match &server.persona {
        Some(p) if p.members_per_request.is_some_and(|max| count > max) => {
            Err(ScimError::invalid_value(refusal(
                p,
                format!(
                    "{count} member changes in one request; at most {} are allowed: split the change",
                    p.members_per_request.unwrap_or_default()
                ),
            )))
        }
        _ => Ok(()),
    }
}

/// The PATCH limits: members changed per request, and no replacing or removing the whole
/// member list when the persona does not allow it.
pub fn check_patch(server: &ServerModel, body: &Value) -> ScimResult<()> {
    let Some(p) = &server.persona else {
        return Ok(());
    };
    let ops = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array);
    let mut changes = 0;
    for op in ops.into_iter().flatten() {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let value = op.get("value");
        let on_members = path
            .get(..7)
            .is_some_and(|h| h.eq_ignore_ascii_case("members"));
        let whole_list = path.eq_ignore_ascii_case("members");
        if on_members {
            changes += value.and_then(Value::as_array).map_or(1, Vec::len);
        } else if path.is_empty()
            && let Some(m) = value
                .and_then(|v| v.get("members"))
                .and_then(Value::as_array)
        {
            changes += m.len();
        }
        let replaces = name.eq_ignore_ascii_case("replace")
            && (whole_list || path.is_empty() && value.is_some_and(|v| v.get("members").is_some()));
        let removes_all = name.eq_ignore_ascii_case("remove") && whole_list && value.is_none();
        if !p.replace_members && (replaces || removes_all) {
            return Err(ScimError::invalid_value(refusal(
                p,
                "replacing or removing a group's whole member list is not supported: add and remove members by value".into(),
            )));
        }
    }
    check_member_count(server, changes)
}

/// Refuses a document with more values in a multi-valued attribute than the persona keeps.
pub fn check_values(server: &ServerModel, doc: &Map<String, Value>) -> ScimResult<()> {
    let Some(p) = &server.persona else {
        return Ok(());
    };
    let Some(max) = p.values_per_attribute else {
        return Ok(());
    };
    let mut fields: Vec<(String, &Value)> = Vec::new();
    for (k, v) in doc {
        match v {
            Value::Object(ext) if k.starts_with("urn:") => {
                fields.extend(ext.iter().map(|(a, v)| (format!("{k}:{a}"), v)));
            }
            _ => fields.push((k.clone(), v)),
        }
    }
    for (name, v) in fields {
        if name == "members" || name == "groups" {
            continue;
        }
        if let Value::Array(values) = v
            && values.len() > max
        {
            return Err(ScimError::invalid_value(refusal(
                p,
                format!(
                    "{name} holds {} values; multi-valued attributes hold at most {max}",
                    values.len()
                ),
            )));
        }
    }
    Ok(())
}

/// 501 for an endpoint the persona's provider does not have.
pub fn check_endpoint(server: &ServerModel, endpoint: MissingEndpoint) -> ScimResult<()> {
    match &server.persona {
        Some(p) if p.missing_endpoints.contains(&endpoint) => {
            let what = match endpoint {
                MissingEndpoint::Bulk => "/Bulk is not supported",
                MissingEndpoint::Search => "POST …/.search is not supported: search with GET",
            };
            Err(ScimError::NotImplemented(refusal(p, what.into())))
        }
        _ => Ok(()),
    }
}

/// Whether groups come back without their members.
pub fn omits_members(server: &ServerModel) -> bool {
    server.persona.as_ref().is_some_and(|p| p.omit_members)
}
