//! Referential checks a server can opt into (`validation.check_references`): group members,
//! Okta entitlements and roles, and the enterprise manager must name existing resources.

use super::Ctx;
use crate::error::{ScimError, ScimResult};
use crate::model::compat::{Compat, Quirk};
use crate::schema::urn;
use crate::store::Conn;
use crate::store::Member;
use serde_json::{Map, Value};

/// Under `unknown_members: skip`, drops the group members that name no resource of the
/// server (so the rest apply) and notes the policy when it dropped any.
pub fn skip_unknown_members(
    ctx: &Ctx<'_>,
    conn: &dyn Conn,
    members: Option<&mut Vec<Member>>,
) -> ScimResult<()> {
    let Some(members) = members else {
        return Ok(());
    };
    if ctx.server.lifecycle.unknown_members != crate::definition::MembersPolicy::Skip
        || members.is_empty()
    {
        return Ok(());
    }
    let types: Vec<&str> = (ctx.server.resource_types.iter())
        .filter(|t| t.has_groups || t.has_members)
        .map(|t| t.name.as_str())
        .collect();
    let before = members.len();
    let mut kept = Vec::with_capacity(before);
    for m in members.drain(..) {
        if conn
            .exists(&ctx.server.id, &m.value, &types)
            .map_err(super::store_err(ctx))?
        {
            kept.push(m);
        }
    }
    if kept.len() < before {
        crate::vocab::notes::note_policy("unknown_members=skip");
    }
    *members = kept;
    Ok(())
}

pub fn check(
    ctx: &Ctx<'_>,
    conn: &dyn Conn,
    doc: &Map<String, Value>,
    members: Option<&[Member]>,
) -> ScimResult<()> {
    let server = ctx.server;
    let sid = &server.id;
    let exists =
        |id: &str, types: &[&str]| conn.exists(sid, id, types).map_err(super::store_err(ctx));
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

/// The id of the resource a by-value reference (userName, email, group displayName) names.
fn find_by_value(
    ctx: &Ctx<'_>,
    conn: &dyn Conn,
    value: &str,
    want_groups: bool,
) -> ScimResult<Option<String>> {
    let sid = &ctx.server.id;
    for rt in &ctx.server.resource_types {
        let found = if rt.schema.attr("userName").is_some() {
            match conn
                .find_id_by_value(sid, &rt.name, "userName", None, value)
                .map_err(super::store_err(ctx))?
            {
                Some(id) => Some(id),
                None if value.contains('@') && rt.schema.attr("emails").is_some() => conn
                    .find_id_by_value(sid, &rt.name, "emails", Some("value"), value)
                    .map_err(super::store_err(ctx))?,
                None => None,
            }
        } else if want_groups && rt.has_members {
            conn.find_id_by_value(sid, &rt.name, "displayName", None, value)
                .map_err(super::store_err(ctx))?
        } else {
            None
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Replaces member and manager values that name a resource by userName/email/displayName
/// (instead of by id) with its id, where `compat` allows it; refuses them by name otherwise.
/// A value that is an id, or names nothing, is left alone.
pub fn resolve_by_value(
    ctx: &Ctx<'_>,
    conn: &dyn Conn,
    doc: &mut Map<String, Value>,
    members: Option<&mut Vec<Member>>,
) -> ScimResult<()> {
    let sid = &ctx.server.id;
    let resolve = |value: &str, want_groups: bool| -> ScimResult<Option<String>> {
        if conn
            .exists(sid, value, &[])
            .map_err(super::store_err(ctx))?
        {
            return Ok(None);
        }
        let Some(id) = find_by_value(ctx, conn, value, want_groups)? else {
            return Ok(None);
        };
        if !ctx.server.compat.allows(Quirk::ReferencesByValue) {
            return Err(ScimError::invalid_value(Compat::refusal(
                Quirk::ReferencesByValue,
                &format!(
                    "the reference {value:?} names a resource by value; SCIM references use its id ({id:?})"
                ),
            )));
        }
        Ok(Some(id))
    };
    for m in members.into_iter().flatten() {
        if let Some(id) = resolve(&m.value, true)? {
            m.value = id;
        }
    }
    let manager = doc
        .get_mut(urn::ENTERPRISE_USER)
        .and_then(|e| e.get_mut("manager"))
        .and_then(|m| m.get_mut("value"));
    if let Some(Value::String(v)) = manager
        && let Some(id) = resolve(v, false)?
    {
        *v = id;
    }
    Ok(())
}
