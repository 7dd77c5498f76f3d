//! Referential checks a server can opt into (`validation.check_references`): group members,
//! Okta entitlements and roles, and the enterprise manager must name existing resources.

use super::Ctx;
use crate::error::{ScimError, ScimResult};
use crate::schema::urn;
use crate::store::{self, Member};
use rusqlite::Connection;
use serde_json::{Map, Value};

pub fn check(
    ctx: &Ctx<'_>,
    conn: &Connection,
    doc: &Map<String, Value>,
    members: Option<&[Member]>,
) -> ScimResult<()> {
    let server = ctx.server;
    let sid = &server.id;
    let exists = |id: &str, types: &[&str]| {
        store::exists(conn, sid, id, types).map_err(super::store_err(ctx))
    };
    if server.checks_references("members") {
        let types: Vec<&str> = server
            .resource_types
            .iter()
            .filter(|t| t.has_groups || t.has_members)
            .map(|t| t.name.as_str())
            .collect();
        for m in members.unwrap_or_default() {
            if !exists(&m.value, &types)? {
                return Err(ScimError::invalid_value(format!(
                    "members: no {} with id {:?} on this server (this server checks references)",
                    types.join(" or "),
                    m.value
                )));
            }
        }
    }
    for (attr, schema) in [
        ("entitlements", urn::OKTA_ENTITLEMENT),
        ("roles", urn::OKTA_ROLE),
    ] {
        if !server.checks_references(attr) {
            continue;
        }
        let types: Vec<&str> = server.by_schema(schema).map(|t| t.name.as_str()).collect();
        for v in doc
            .get(attr)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = v.get("value").and_then(Value::as_str).unwrap_or_default();
            let wanted: Vec<&str> = match v.get("type").and_then(Value::as_str) {
                Some(t) if attr == "entitlements" => types
                    .iter()
                    .copied()
                    .filter(|x| x.eq_ignore_ascii_case(t))
                    .collect(),
                _ => types.clone(),
            };
            if wanted.is_empty() || !exists(id, &wanted)? {
                return Err(ScimError::invalid_value(format!(
                    "{attr}: no {} with id {id:?} on this server (this server checks references)",
                    if wanted.is_empty() {
                        types.join(" or ")
                    } else {
                        wanted.join(" or ")
                    }
                )));
            }
        }
    }
    if server.checks_references("manager") {
        let manager = doc
            .get(urn::ENTERPRISE_USER)
            .and_then(|e| e.get("manager"))
            .and_then(|m| m.get("value"))
            .and_then(Value::as_str);
        if let Some(id) = manager
            && !exists(id, &[ctx.rt.name.as_str()])?
        {
            return Err(ScimError::invalid_value(format!(
                "manager: no {} with id {id:?} on this server",
                ctx.rt.name
            )));
        }
    }
    Ok(())
}
