//! Membership-only PATCHes on group types (`add` to `members`, `remove` of
//! `members[value eq "…"]`), applied row by row: a change to a group with 10,000 members neither
//! reads nor rewrites the other members. Anything else takes the general PATCH path.

use super::{Ctx, store_err};
use crate::error::{ScimError, ScimResult};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::model::compat::Quirk;
use crate::patch::{OpKind, Operation};
use crate::store::Conn;
use crate::store::Member;
use serde_json::Value;

pub(super) enum MemberOp {
    Add(Vec<Member>),
    Remove(Vec<String>),
    RemoveAll,
}

fn is_members(ctx: &Ctx<'_>, p: &crate::model::AttrPath) -> bool {
    p.name.eq_ignore_ascii_case("members")
        && p.sub.is_none()
        && p.urn
            .as_ref()
            .is_none_or(|u| u.eq_ignore_ascii_case(&ctx.rt.schema.id))
}

/// A member value exactly as the general path would accept it, or None to let it decide.
fn member(v: &Value) -> Option<Member> {
    let o = v.as_object()?;
    let known = ["value", "display", "type", "$ref"];
    if o.keys()
        .any(|k| !known.iter().any(|x| x.eq_ignore_ascii_case(k)))
    {
        return None;
    }
    let get = |name: &str| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let text = |name: &str| match get(name) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    Some(Member {
        value: text("value")??,
        display: text("display")?,
        member_type: text("type")?,
    })
}

/// The operations as membership changes, if every one of them is one.
pub(super) fn member_ops(ctx: &Ctx<'_>, ops: &[Operation]) -> Option<Vec<MemberOp>> {
    if !ctx.rt.has_members {
        return None;
    }
    ops.iter()
        .map(|op| {
            let p = op.path.as_ref()?;
            if !is_members(ctx, &p.attr) || p.sub_after_filter.is_some() {
                return None;
            }
            match (op.op, &p.filter, &op.value) {
                (OpKind::Add, None, Some(v)) => {
                    let list: Vec<&Value> = match v {
                        Value::Array(a) => a.iter().collect(),
                        other => vec![other],
                    };
                    list.into_iter()
                        .map(member)
                        .collect::<Option<Vec<_>>>()
                        .map(MemberOp::Add)
                }
                (
                    OpKind::Remove,
                    Some(Filter::Compare {
                        path,
                        op: CompareOp::Eq,
                        value: CompValue::Str(id),
                    }),
                    None,
                ) if path.name.eq_ignore_ascii_case("value")
                    && path.urn.is_none()
                    && path.sub.is_none() =>
                {
                    Some(MemberOp::Remove(vec![id.clone()]))
                }
                (OpKind::Remove, None, None) => Some(MemberOp::RemoveAll),
                (OpKind::Remove, None, Some(v))
                    if ctx.server.compat.allows(Quirk::RemoveByValue) =>
                {
                    let list: Vec<&Value> = match v {
                        Value::Array(a) => a.iter().collect(),
                        other => vec![other],
                    };
                    list.into_iter()
                        .map(|m| member(m).map(|m| m.value))
                        .collect::<Option<Vec<_>>>()
                        .map(MemberOp::Remove)
                }
                _ => None,
            }
        })
        .collect()
}

/// Applies membership changes; returns whether anything changed.
pub(super) fn apply(
    ctx: &Ctx<'_>,
    tx: &dyn Conn,
    group_id: &str,
    ops: Vec<MemberOp>,
) -> ScimResult<bool> {
    let sid = &ctx.server.id;
    let mut changed = false;
    for op in ops {
        match op {
            MemberOp::Add(mut members) => {
                super::references::resolve_by_value(
                    ctx,
                    tx,
                    &mut Default::default(),
                    Some(&mut members),
                )?;
                super::references::skip_unknown_members(ctx, tx, Some(&mut members))?;
                if ctx.server.checks_references("members") {
                    super::references::check(ctx, tx, &Default::default(), Some(&members))?;
                }
                let mut fresh = Vec::new();
                for m in members {
                    if tx
                        .member(sid, group_id, &m.value)
                        .map_err(store_err(ctx))?
                        .as_ref()
                        != Some(&m)
                    {
                        fresh.push(m);
                    }
                }
                changed |= !fresh.is_empty();
                tx.change_members(sid, group_id, &fresh, &[])
                    .map_err(store_err(ctx))?;
            }
            MemberOp::Remove(ids) => {
                for id in ids {
                    if tx
                        .member(sid, group_id, &id)
                        .map_err(store_err(ctx))?
                        .is_none()
                    {
                        return Err(ScimError::no_target(format!(
                            "no member with value {id:?} in this group"
                        )));
                    }
                    tx.change_members(sid, group_id, &[], std::slice::from_ref(&id))
                        .map_err(store_err(ctx))?;
                    changed = true;
                }
            }
            MemberOp::RemoveAll => {
                changed |= tx
                    .remove_all_members(sid, group_id)
                    .map_err(store_err(ctx))?
                    > 0;
            }
        }
    }
    Ok(changed)
}
