//! Lifecycle policies a definition can choose instead of RFC 7644's behaviour (`lifecycle:`):
//! soft deletes that a later create revives, creates that return the resource they collide
//! with, and group members that name nothing skipped instead of refused. Each notes itself
//! for the request inspector when it changes an answer.

use super::{Ctx, Projection, Written, store_err, written};
use crate::definition::{ConflictPolicy, DeletePolicy};
use crate::error::ScimResult;
use crate::filter;
use crate::model::query;
use crate::schema::{AttrType, Uniqueness};
use crate::store::{Conn, Row, Search};
use crate::vocab::notes::note_policy;
use serde_json::{Map, Value};

/// What marks a soft-deleted resource's stored resource type.
const TOMBSTONE: &str = "#deleted";

/// Soft-deleted resources are kept under this resource type, beside the live ones: every
/// query of the live type passes them by, and none of its unique attributes is checked
/// against them.
pub fn tombstone_type(resource_type: &str) -> String {
    format!("{resource_type}{TOMBSTONE}")
}

/// The resource type a stored type belongs to: itself, or the live type of a tombstone (for
/// exports, imports and snapshots, which carry tombstones along).
pub fn live_type(stored: &str) -> &str {
    stored.strip_suffix(TOMBSTONE).unwrap_or(stored)
}

/// Whether DELETE only hides.
pub fn soft_delete(ctx: &Ctx<'_>) -> bool {
    ctx.server.lifecycle.delete == DeletePolicy::Soft
}

/// DELETE under `delete: soft`: the resource leaves the live type (and every group), is
/// deactivated, and waits under its tombstone type with its id.
pub fn bury(ctx: &Ctx<'_>, tx: &dyn Conn, row: &Row) -> ScimResult<()> {
    let mut doc: Map<String, Value> = serde_json::from_str(&row.doc).unwrap_or_default();
    if ctx.rt.schema.attr("active").is_some() {
        doc.insert("active".into(), Value::Bool(false));
    }
    tx.delete(&ctx.server.id, &row.id).map_err(store_err(ctx))?;
    let tomb = Row {
        resource_type: tombstone_type(&ctx.rt.name),
        version: row.version + 1,
        last_modified: super::now(),
        doc: super::to_doc_string(&doc),
        ..row.clone()
    };
    tx.insert(ctx.server, &tomb).map_err(store_err(ctx))?;
    note_policy("delete=soft");
    Ok(())
}

/// A create under `delete: soft` whose unique values a buried resource holds: that resource
/// comes back (same id, `created` kept) with the new document.
pub fn revive(ctx: &Ctx<'_>, tx: &dyn Conn, doc: &Map<String, Value>) -> ScimResult<Option<Row>> {
    if !soft_delete(ctx) {
        return Ok(None);
    }
    let Some(tomb) = holder(ctx, tx, &tombstone_type(&ctx.rt.name), doc)? else {
        return Ok(None);
    };
    tx.delete(&ctx.server.id, &tomb.id)
        .map_err(store_err(ctx))?;
    let row = Row {
        resource_type: ctx.rt.name.clone(),
        version: tomb.version + 1,
        last_modified: super::now(),
        doc: super::to_doc_string(doc),
        ..tomb
    };
    tx.insert(ctx.server, &row).map_err(store_err(ctx))?;
    note_policy("delete=soft (revived)");
    Ok(Some(row))
}

/// Under `create_conflict: return_existing`, the live resource a colliding create names.
pub fn existing(
    ctx: &Ctx<'_>,
    tx: &dyn Conn,
    doc: &Map<String, Value>,
    proj: &Projection,
) -> ScimResult<Option<Written>> {
    if ctx.server.lifecycle.create_conflict != ConflictPolicy::ReturnExisting {
        return Ok(None);
    }
    let Some(row) = holder(ctx, tx, &ctx.rt.name, doc)? else {
        return Ok(None);
    };
    note_policy("create_conflict=return_existing");
    let mut out = written(ctx, tx, row, proj)?;
    out.existing = true;
    Ok(Some(out))
}

/// The resource of `resource_type` that holds one of `doc`'s server-unique core values.
fn holder(
    ctx: &Ctx<'_>,
    tx: &dyn Conn,
    resource_type: &str,
    doc: &Map<String, Value>,
) -> ScimResult<Option<Row>> {
    let unique = (ctx.rt.schema.attributes.iter()).filter(|a| {
        a.uniqueness != Uniqueness::None && !a.multi_valued && a.ty == AttrType::String
    });
    for attr in unique {
        let Some(Value::String(value)) = doc.get(&attr.name) else {
            continue;
        };
        let text = format!("{} eq {}", attr.name, Value::String(value.clone()));
        let parsed = filter::parse(&text)?;
        let q = query::check(&parsed, ctx.rt)?;
        let search = Search {
            query: Some(q),
            sort: None,
        };
        let (_, rows) = tx
            .list(&ctx.server.id, resource_type, &search, 0, 1)
            .map_err(store_err(ctx))?;
        if let Some(row) = rows.into_iter().next() {
            return Ok(Some(row));
        }
    }
    Ok(None)
}
