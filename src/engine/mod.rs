//! The generic resource engine: create, read, replace, patch, delete and search for every
//! resource type, driven by the compiled model. Functions block (they call the store); the
//! HTTP layer runs them off the async runtime.

pub mod bulk;
mod cursor;
pub mod events;
mod issued;
mod lifecycle;
mod members;
mod references;
mod render;
mod rules;
mod validate;

pub use lifecycle::live_type;
pub use render::{Projection, Rendered, RenderedList, etag};
pub use validate::{Mode, normalize};

use crate::error::{ScimError, ScimResult};
use crate::filter;
use crate::model::{ResourceType, ServerModel, persona, query};
use crate::schema::urn;
use crate::store::{self, Member, Row, Store, StoreError, UniqueValues};
use serde_json::{Map, Value};

/// What an operation works on: the store, the server's model snapshot, one resource type, and
/// the base URL for `meta.location`.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub server: &'a ServerModel,
    pub rt: &'a ResourceType,
    /// `http://host/scim-identifier/{id}/scim/v2`
    pub base: &'a str,
}

/// A rendered resource with its version (for `ETag`) and location (for `Location`).
#[derive(Debug)]
pub struct Output {
    pub body: Rendered,
    pub etag: String,
    pub location: String,
    /// A create answered with the resource it collided with (`create_conflict:
    /// return_existing`): 200, not 201.
    pub existing: bool,
}

/// `startIndex`, `count`, `filter`, `sortBy`, `sortOrder` of a search.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    /// RFC 9865 §2: present (empty for the first page) when the client pages by cursor.
    pub cursor: Option<String>,
}

pub use crate::vocab::time::{normalize_datetime, now};

/// Maps store failures to SCIM errors; unique violations name the attribute.
pub(crate) fn store_err<'a>(ctx: &'a Ctx<'_>) -> impl Fn(StoreError) -> ScimError + 'a {
    move |e| match e {
        StoreError::Unique { attribute } => {
            let attr = attribute.unwrap_or_else(|| "a unique attribute".into());
            ScimError::uniqueness(format!(
                "another {} on this server already has this {attr}",
                ctx.rt.name
            ))
        }
        other => ScimError::internal(other),
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unique { .. } => {
                ScimError::uniqueness("a unique attribute value is already used on this server")
            }
            other => ScimError::internal(other),
        }
    }
}

/// Whether `new` gives every unique attribute of `rt` the value `old` gives it: then the
/// write cannot take a value another resource holds, and the store need not look (a PATCH of
/// other attributes, the common case, skips a query).
fn unique_values(
    rt: &ResourceType,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> UniqueValues {
    fn value<'a>(doc: &'a Map<String, Value>, ext: Option<&str>, name: &str) -> Option<&'a Value> {
        match ext {
            None => doc.get(name),
            Some(urn) => doc.get(urn)?.as_object()?.get(name),
        }
    }
    let kept = rt.unique_attributes().all(|(s, core, a)| {
        let ext = (!core).then_some(s.id.as_str());
        value(old, ext, &a.name) == value(new, ext, &a.name)
    });
    match kept {
        true => UniqueValues::Kept,
        false => UniqueValues::MayChange,
    }
}

fn not_found(rt: &ResourceType, id: &str) -> ScimError {
    ScimError::not_found(format!("no {} with id {id:?} on this server", rt.name))
}

/// Checks `If-Match` (a list of entity tags or `*`) against the current version.
fn check_if_match(if_match: Option<&str>, version: i64) -> ScimResult<()> {
    let Some(header) = if_match else {
        return Ok(());
    };
    let current = format!("\"{version}\"");
    let ok = header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == current);
    if ok {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "If-Match {header} does not match the current version {}; fetch the resource again",
            etag(version)
        )))
    }
}

fn to_doc_string(doc: &Map<String, Value>) -> String {
    serde_json::to_string(doc).unwrap_or_else(|_| "{}".into())
}

fn load(ctx: &Ctx<'_>, conn: &dyn store::Conn, id: &str) -> ScimResult<Row> {
    match conn.get(&ctx.server.id, id).map_err(store_err(ctx))? {
        // Outside the profiles' view a resource does not exist for this server's clients.
        Some(row) if row.resource_type == ctx.rt.name && rules::visible(ctx, conn, id)? => Ok(row),
        _ => Err(not_found(ctx.rt, id)),
    }
}

/// A written (or read) resource whose answer is rendered after its transaction: a write's
/// commit then never waits for JSON to be written, and the one writer is free sooner.
struct Written {
    row: Row,
    derived: render::Derived,
    existing: bool,
}

/// Reads, inside the transaction, what rendering `row` with `proj` needs from other rows.
fn written(
    ctx: &Ctx<'_>,
    conn: &dyn store::Conn,
    row: Row,
    proj: &Projection,
) -> ScimResult<Written> {
    written_with(ctx, conn, row, proj, None)
}

/// As [`written`], with the `groups` of the page (or of the new resource) already known.
fn written_with(
    ctx: &Ctx<'_>,
    conn: &dyn store::Conn,
    row: Row,
    proj: &Projection,
    groups: Option<&render::GroupsByMember>,
) -> ScimResult<Written> {
    let derived = render::Derived::read(ctx, conn, &row.id, proj, groups)?;
    Ok(Written {
        row,
        derived,
        existing: false,
    })
}

impl Written {
    fn output(self, ctx: &Ctx<'_>, proj: &Projection) -> ScimResult<Output> {
        let row = &self.row;
        Ok(Output {
            body: render::render(ctx, row, proj, self.derived)?,
            etag: etag(row.version),
            location: render::location(ctx, &ctx.rt.endpoint, &row.id),
            existing: self.existing,
        })
    }
}

/// The whole resource as a client would read it, for events that carry it.
fn full_document(ctx: &Ctx<'_>, tx: &dyn store::Conn, row: &Row) -> ScimResult<Value> {
    let proj = Projection::default();
    let derived = render::Derived::read(ctx, tx, &row.id, &proj, None)?;
    render::render(ctx, row, &proj, derived).map(|r| r.to_value())
}

/// Stores the group's members: adds new ones, updates changed ones, removes the rest.
fn sync_members(
    ctx: &Ctx<'_>,
    tx: &dyn store::Conn,
    id: &str,
    old: &[Member],
    new: &[Member],
) -> ScimResult<bool> {
    let before: std::collections::HashMap<&str, &Member> =
        old.iter().map(|m| (m.value.as_str(), m)).collect();
    let after: std::collections::HashSet<&str> = new.iter().map(|m| m.value.as_str()).collect();
    let upsert: Vec<Member> = new
        .iter()
        .filter(|m| before.get(m.value.as_str()) != Some(m))
        .cloned()
        .collect();
    let remove: Vec<String> = old
        .iter()
        .filter(|m| !after.contains(m.value.as_str()))
        .map(|m| m.value.clone())
        .collect();
    if upsert.is_empty() && remove.is_empty() {
        return Ok(false);
    }
    tx.change_members(&ctx.server.id, id, &upsert, &remove)
        .map_err(store_err(ctx))?;
    Ok(true)
}

/// POST: validates and stores a new resource.
pub fn create(ctx: &Ctx<'_>, input: &Value, proj: &Projection) -> ScimResult<Output> {
    let mut n = normalize(ctx.server, ctx.rt, input, Mode::Create)?;
    validate::check_create(ctx.rt, &n.doc)?;
    issued::assign(ctx.rt, &mut n.doc);
    let ts = now();
    let mut row = Row {
        // Time-ordered (RFC 9562 version 7): a new id goes at the end of the by-id index, on
        // the page the previous creates changed, instead of dirtying a page at random.
        id: uuid::Uuid::now_v7().to_string(),
        resource_type: ctx.rt.name.clone(),
        version: 1,
        created: ts.clone(),
        last_modified: ts,
        doc: String::new(),
    };
    let done = write(ctx, |tx| {
        references::resolve_by_value(ctx, tx, &mut n.doc, n.members.as_mut())?;
        references::skip_unknown_members(ctx, tx, n.members.as_mut())?;
        references::check(ctx, tx, &n.doc, n.members.as_deref())?;
        rules::check_assignments(ctx, tx, &n.doc)?;
        let revived = lifecycle::revive(ctx, tx, &n.doc)?;
        let inserted = revived.is_none();
        if let Some(revived) = revived {
            row = revived;
        } else {
            row.doc = to_doc_string(&n.doc);
            if let Err(e) = tx.insert(ctx.server, &row) {
                if matches!(e, StoreError::Unique { .. })
                    && let Some(out) = lifecycle::existing(ctx, tx, &n.doc, proj)?
                {
                    return Ok(out);
                }
                return Err(store_err(ctx)(e));
            }
        }
        rules::check_in_view(ctx, tx, &row.id)?;
        if let Some(members) = &n.members {
            sync_members(ctx, tx, &row.id, &[], members)?;
        }
        let full = || full_document(ctx, tx, &row);
        events::record(ctx, tx, &row.id, events::Change::Create(&n.doc), full)?;
        // A resource inserted with a new id is in no group yet: its groups are not looked up
        // (a revived one's are).
        let no_groups = inserted.then(render::GroupsByMember::new);
        written_with(ctx, tx, row, proj, no_groups.as_ref())
    })?;
    done.output(ctx, proj)
}

/// Runs a create, PUT, PATCH or DELETE of `ctx`'s resource type in the store's write. Where
/// every check that may refuse it comes before its first change, the write shares its
/// transaction without a savepoint of its own ([`store::Store::write_checked_first`]). Not
/// so for a type with a view (a written resource is checked against it), with members (they
/// are stored before the document, which may then be refused) or with soft deletes (a revive
/// deletes before it inserts).
fn write<T>(ctx: &Ctx<'_>, f: impl FnOnce(&dyn store::Conn) -> ScimResult<T>) -> ScimResult<T> {
    if ctx.rt.view.is_none() && !ctx.rt.has_members && !lifecycle::soft_delete(ctx) {
        ctx.store.write_checked_first(f)
    } else {
        ctx.store.write(f)
    }
}

/// GET by id.
pub fn get(ctx: &Ctx<'_>, id: &str, proj: &Projection) -> ScimResult<Output> {
    if ctx.rt.view.is_some() || render::Derived::wants_members(ctx, proj) {
        // The view's filter and the members are read by statements of their own.
        return ctx
            .store
            .read_point(|c| {
                let row = load(ctx, c, id)?;
                written(ctx, c, row, proj)
            })?
            .output(ctx, proj);
    }
    // One statement reads the row and, when wanted, its groups.
    let (server, with_groups) = (ctx.server.id.as_str(), render::wants_groups(ctx.rt, proj));
    let found = ctx.store.read_single(|c| {
        if with_groups {
            c.get_with_groups(server, id)
        } else {
            Ok(c.get(server, id)?.map(|row| (row, Vec::new())))
        }
    });
    match found.map_err(store_err(ctx))? {
        Some((row, groups)) if row.resource_type == ctx.rt.name => Written {
            row,
            derived: render::Derived::of_groups(with_groups.then_some(groups)),
            existing: false,
        }
        .output(ctx, proj),
        _ => Err(not_found(ctx.rt, id)),
    }
}

/// PUT: replaces the resource, keeping what clients cannot send (readOnly, writeOnly) and
/// refusing changes to immutable values.
pub fn replace(
    ctx: &Ctx<'_>,
    id: &str,
    input: &Value,
    if_match: Option<&str>,
    proj: &Projection,
) -> ScimResult<Output> {
    let mut n = normalize(ctx.server, ctx.rt, input, Mode::Replace)?;
    let done = write(ctx, |tx| {
        let mut row = load(ctx, tx, id)?;
        check_if_match(if_match, row.version)?;
        let old: Map<String, Value> =
            serde_json::from_str(&row.doc).map_err(ScimError::internal)?;
        validate::carry_over(ctx.rt, &mut n.doc, &old, Mode::Replace)?;
        references::resolve_by_value(ctx, tx, &mut n.doc, n.members.as_mut())?;
        references::skip_unknown_members(ctx, tx, n.members.as_mut())?;
        references::check(ctx, tx, &n.doc, n.members.as_deref())?;
        rules::check_assignments(ctx, tx, &n.doc)?;
        let mut changed = n.doc != old;
        if let Some(members) = &n.members {
            let old_members = tx
                .stored_members(&ctx.server.id, id)
                .map_err(store_err(ctx))?;
            changed |= sync_members(ctx, tx, id, &old_members, members)?;
        }
        if changed {
            row.version += 1;
            row.last_modified = now();
            row.doc = to_doc_string(&n.doc);
            let unique = unique_values(ctx.rt, &old, &n.doc);
            tx.update(ctx.server, &row, unique)
                .map_err(store_err(ctx))?;
            rules::check_in_view(ctx, tx, id)?;
            let full = || full_document(ctx, tx, &row);
            events::record(ctx, tx, id, events::Change::Put(&old, &n.doc), full)?;
        }
        written(ctx, tx, row, proj)
    })?;
    done.output(ctx, proj)
}

/// PATCH: applies every operation to a working copy, validates the result as a whole, and
/// stores it only if all of that succeeds. The version changes only if the resource did.
///
/// The operations are applied on a reader, outside the single write transaction, so a large
/// PatchOp never holds up writes to other servers: the write then only checks that the
/// resource is still at the version the work started from (else the work is redone, and after
/// a few lost races it is done inside the transaction).
pub fn patch(
    ctx: &Ctx<'_>,
    id: &str,
    input: &Value,
    if_match: Option<&str>,
    proj: &Projection,
) -> ScimResult<Output> {
    persona::check_patch(ctx.server, input)?;
    let ops = crate::patch::parse(input, &ctx.server.compat, ctx.server.patch_max_operations)?;
    if let Some(member_ops) = members::member_ops(ctx, &ops) {
        // Row by row in the store: no document work to move out of the transaction.
        let done = ctx.store.write(|tx| {
            let mut row = load(ctx, tx, id)?;
            check_if_match(if_match, row.version)?;
            if members::apply(ctx, tx, id, member_ops)? {
                row.version += 1;
                row.last_modified = now();
                // Only the version and time change.
                tx.update(ctx.server, &row, UniqueValues::Kept)
                    .map_err(store_err(ctx))?;
                let doc: Map<String, Value> =
                    serde_json::from_str(&row.doc).map_err(ScimError::internal)?;
                let full = || full_document(ctx, tx, &row);
                events::record(ctx, tx, id, events::Change::Patch(&doc, &doc, true), full)?;
            }
            written(ctx, tx, row, proj)
        })?;
        return done.output(ctx, proj);
    }
    // A few operations on a resource without members cost what a PUT does, which also runs
    // inside its write: read the row once, on the writer. Anything larger is applied outside
    // the write and then checked against the row as it is now, so that it never holds the one
    // writer (other virtual servers' writes wait on it) for longer than a PUT.
    const IN_WRITE_OPS: usize = 4;
    const OPTIMISTIC_TRIES: usize = 3;
    let tries = if ctx.rt.has_members || ops.len() > IN_WRITE_OPS {
        OPTIMISTIC_TRIES
    } else {
        0
    };
    for _ in 0..tries {
        let prepared = ctx.store.read(|c| {
            let row = load(ctx, c, id)?;
            check_if_match(if_match, row.version)?;
            patched(ctx, c, row, &ops)
        })?;
        let done = write(ctx, |tx| {
            let row = load(ctx, tx, id)?;
            let members_now = match &prepared.old_members {
                Some(_) => Some(
                    tx.stored_members(&ctx.server.id, id)
                        .map_err(store_err(ctx))?,
                ),
                None => None,
            };
            if row.version != prepared.row.version || members_now != prepared.old_members {
                return Ok(None);
            }
            store_patched(ctx, tx, prepared, proj).map(Some)
        })?;
        if let Some(done) = done {
            return done.output(ctx, proj);
        }
    }
    let done = write(ctx, |tx| {
        let row = load(ctx, tx, id)?;
        check_if_match(if_match, row.version)?;
        let prepared = patched(ctx, tx, row, &ops)?;
        store_patched(ctx, tx, prepared, proj)
    })?;
    done.output(ctx, proj)
}

/// A PATCH applied to a resource as read: the new document, not yet stored.
struct Patched {
    row: Row,
    old: Map<String, Value>,
    old_members: Option<Vec<Member>>,
    new: validate::Normalized,
}

/// Applies `ops` to `row` (read through `conn`) and validates the result.
fn patched(
    ctx: &Ctx<'_>,
    conn: &dyn store::Conn,
    row: Row,
    ops: &[crate::patch::Operation],
) -> ScimResult<Patched> {
    let old: Map<String, Value> = serde_json::from_str(&row.doc).map_err(ScimError::internal)?;
    let old_members = if ctx.rt.has_members {
        Some(
            conn.stored_members(&ctx.server.id, &row.id)
                .map_err(store_err(ctx))?,
        )
    } else {
        None
    };
    let new = patch_document(ctx.server, ctx.rt, &old, old_members.as_deref(), ops)?;
    Ok(Patched {
        row,
        old,
        old_members,
        new,
    })
}

/// The document work of a PATCH, without the store: applies `ops` to a copy of `old` (with
/// `members` inlined for group types) and validates the result as a whole.
fn patch_document(
    server: &ServerModel,
    rt: &ResourceType,
    old: &Map<String, Value>,
    members: Option<&[Member]>,
    ops: &[crate::patch::Operation],
) -> ScimResult<validate::Normalized> {
    let mut working = old.clone();
    let list: Vec<Value> = members
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let mut o = Map::new();
            o.insert("value".into(), Value::String(m.value.clone()));
            if let Some(d) = &m.display {
                o.insert("display".into(), Value::String(d.clone()));
            }
            if let Some(t) = &m.member_type {
                o.insert("type".into(), Value::String(t.clone()));
            }
            Value::Object(o)
        })
        .collect();
    if !list.is_empty() {
        working.insert("members".into(), Value::Array(list));
    }
    crate::patch::apply(rt, &mut working, ops, &server.compat)?;
    let mut new = normalize(server, rt, &Value::Object(working), Mode::Patch)?;
    validate::carry_over(rt, &mut new.doc, old, Mode::Patch)?;
    Ok(new)
}

/// What a create checks of a body before it touches the store: the verdict `scimlab lint`
/// gives, from the same code. (References to other resources and uniqueness need the data.)
pub fn validate_create(server: &ServerModel, rt: &ResourceType, input: &Value) -> ScimResult<()> {
    let n = normalize(server, rt, input, Mode::Create)?;
    validate::check_create(rt, &n.doc)
}

/// What a PATCH checks of a PatchOp applied to the stored document `old`, without the store.
pub fn validate_patch(
    server: &ServerModel,
    rt: &ResourceType,
    old: &Map<String, Value>,
    input: &Value,
) -> ScimResult<()> {
    let ops = crate::patch::parse(input, &server.compat, server.patch_max_operations)?;
    patch_document(server, rt, old, rt.has_members.then_some(&[][..]), &ops).map(|_| ())
}

/// Stores a patched resource inside the write transaction `tx`: references, assignments and
/// the data view are checked against the data as it is now.
fn store_patched(
    ctx: &Ctx<'_>,
    tx: &dyn store::Conn,
    p: Patched,
    proj: &Projection,
) -> ScimResult<Written> {
    let Patched {
        mut row,
        old,
        old_members,
        new: mut n,
    } = p;
    let id = row.id.clone();
    references::resolve_by_value(ctx, tx, &mut n.doc, n.members.as_mut())?;
    references::skip_unknown_members(ctx, tx, n.members.as_mut())?;
    references::check(ctx, tx, &n.doc, n.members.as_deref())?;
    rules::check_assignments(ctx, tx, &n.doc)?;
    let doc_changed = n.doc != old;
    let mut members_changed = false;
    if let (Some(old_members), Some(new_members)) = (&old_members, &n.members) {
        members_changed = sync_members(ctx, tx, &id, old_members, new_members)?;
    }
    if doc_changed || members_changed {
        row.version += 1;
        row.last_modified = now();
        row.doc = to_doc_string(&n.doc);
        tx.update(ctx.server, &row, unique_values(ctx.rt, &old, &n.doc))
            .map_err(store_err(ctx))?;
        rules::check_in_view(ctx, tx, &id)?;
        let change = events::Change::Patch(&old, &n.doc, members_changed);
        let full = || full_document(ctx, tx, &row);
        events::record(ctx, tx, &id, change, full)?;
    }
    written(ctx, tx, row, proj)
}

/// DELETE: removes the resource and its memberships.
pub fn delete(ctx: &Ctx<'_>, id: &str, if_match: Option<&str>) -> ScimResult<()> {
    write(ctx, |tx| {
        let row = load(ctx, tx, id)?;
        check_if_match(if_match, row.version)?;
        if lifecycle::soft_delete(ctx) {
            lifecycle::bury(ctx, tx, &row)?;
        } else {
            tx.delete(&ctx.server.id, id).map_err(store_err(ctx))?;
        }
        events::record(ctx, tx, id, events::Change::Delete, || Ok(Value::Null))
    })
}

/// A SearchRequest body (RFC 7644 §3.4.3).
pub fn search_request(body: &Value) -> ScimResult<(ListQuery, Projection)> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
    let get = |k: &str| {
        obj.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v)
    };
    let text = |k: &str| -> ScimResult<Option<String>> {
        match get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Array(a)) if k.ends_with("ttributes") => Ok(Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            Some(_) => Err(ScimError::invalid_value(format!("{k} has the wrong type"))),
        }
    };
    let int = |k: &str| -> ScimResult<Option<i64>> {
        match get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| ScimError::invalid_value(format!("{k} must be an integer"))),
        }
    };
    let query = ListQuery {
        filter: text("filter")?,
        sort_by: text("sortBy")?,
        sort_order: text("sortOrder")?,
        start_index: int("startIndex")?,
        count: int("count")?,
        cursor: text("cursor")?,
    };
    let proj = Projection::new(
        text("attributes")?.as_deref(),
        text("excludedAttributes")?.as_deref(),
    )?;
    Ok((query, proj))
}

/// A search over one resource type: filter, sort, page, project.
pub fn list(ctx: &Ctx<'_>, q: &ListQuery, proj: &Projection) -> ScimResult<ListPage> {
    let planned = plan(ctx, q)?;
    run_search(ctx, q, proj, &planned)
}

/// The usual IdP lookup (`userName eq "…"`, `id eq "…"`): a search by index whose filter
/// matches at most one resource through a unique index. It runs like a GET, on a point
/// reader; `None` when the request is not one (run it with [`list`], where scans wait for
/// a search slot).
pub fn lookup(ctx: &Ctx<'_>, q: &ListQuery, proj: &Projection) -> ScimResult<Option<ListPage>> {
    let planned = plan(ctx, q)?;
    if !planned.is_lookup() {
        return Ok(None);
    }
    run_search(ctx, q, proj, &planned).map(Some)
}

/// A list request checked against its resource type, ready to run.
struct Planned<'a, 'q> {
    by_cursor: Option<&'q str>,
    search: store::Search<'a>,
    count: usize,
}

impl Planned<'_, '_> {
    /// Paged by index, with a filter that finds at most one resource by a unique index.
    fn is_lookup(&self) -> bool {
        self.by_cursor.is_none()
            && (self.search.query.as_ref()).is_some_and(query::Query::at_most_one)
    }
}

fn plan<'a, 'q>(ctx: &Ctx<'a>, q: &'q ListQuery) -> ScimResult<Planned<'a, 'q>> {
    let by_cursor = paging_method(ctx, q)?;
    let requested = match q.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => {
            let parsed = filter::parse_with(f, &ctx.server.compat)?;
            persona::check_filter(ctx.server, &parsed)?;
            Some(parsed)
        }
        None => None,
    };
    let filter = rules::within_view(ctx, requested);
    let query = match &filter {
        Some(f) => Some(query::check(f, ctx.rt)?),
        None => None,
    };
    let descending = match q.sort_order.as_deref() {
        None => false,
        Some(o) if o.eq_ignore_ascii_case("ascending") => false,
        Some(o) if o.eq_ignore_ascii_case("descending") => true,
        Some(o) => {
            return Err(ScimError::invalid_value(format!(
                "sortOrder must be ascending or descending, not {o:?}"
            )));
        }
    };
    let sort = match q.sort_by.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(query::sort(ctx.rt, s, descending)?),
        None => None,
    };
    // RFC 7644 §3.4.2.4 (and RFC 9865 §2.4): a negative count is 0; count is capped.
    let pagination = &ctx.server.pagination;
    let count = (q.count.map(|c| c.max(0) as usize))
        .unwrap_or(pagination.default_page_size)
        .min(pagination.max_page_size);
    Ok(Planned {
        by_cursor,
        search: store::Search { query, sort },
        count,
    })
}

fn run_search(
    ctx: &Ctx<'_>,
    q: &ListQuery,
    proj: &Projection,
    planned: &Planned<'_, '_>,
) -> ScimResult<ListPage> {
    let Planned {
        by_cursor,
        search,
        count,
    } = planned;
    if let Some(cursor) = by_cursor {
        return page_by_cursor(ctx, q, proj, search, cursor, *count);
    }
    // RFC 7644 §3.4.2.4: startIndex < 1 is 1.
    let start = q.start_index.unwrap_or(1).max(1) as usize;
    let page = |c: &dyn store::Conn| {
        let (total, rows) = c
            .list(&ctx.server.id, &ctx.rt.name, search, start - 1, *count)
            .map_err(store_err(ctx))?;
        let resources = render_page(ctx, c, &rows, proj)?;
        Ok(ListPage::by_index(total, start, resources))
    };
    if planned.is_lookup() {
        ctx.store.read_point(page)
    } else {
        ctx.store.read(page)
    }
}

/// How a list request pages (RFC 9865 §2): `Some(cursor)` by cursor (empty: the first page),
/// `None` by index. A request that names neither gets the server's default; a method the
/// server does not offer is a 501.
fn paging_method<'q>(ctx: &Ctx<'_>, q: &'q ListQuery) -> ScimResult<Option<&'q str>> {
    let p = &ctx.server.pagination;
    if q.cursor.is_some() && q.start_index.is_some() {
        return Err(ScimError::invalid_value(
            "a list request pages by cursor or by startIndex, not both (RFC 9865 §2)",
        ));
    }
    let cursor = match (&q.cursor, q.start_index) {
        (Some(c), _) => Some(c.as_str()),
        (None, None) if p.cursor_by_default => Some(""),
        _ => None,
    };
    if cursor.is_some() && !p.cursor {
        return Err(ScimError::NotImplemented(
            "this server pages by startIndex only (its definition has pagination.cursor: false); leave out cursor".into(),
        ));
    }
    if cursor.is_none() && !p.index {
        return Err(ScimError::NotImplemented(
            "this server pages by cursor only (RFC 9865): send cursor= (empty) for the first page, then each page's nextCursor; startIndex is not supported".into(),
        ));
    }
    Ok(cursor)
}

/// One page by cursor (RFC 9865 §2): `nextCursor` on every page but the last, no
/// `startIndex`.
fn page_by_cursor(
    ctx: &Ctx<'_>,
    q: &ListQuery,
    proj: &Projection,
    search: &store::Search<'_>,
    cursor: &str,
    count: usize,
) -> ScimResult<ListPage> {
    let digest = cursor::query_digest(&[
        &ctx.server.id,
        &ctx.rt.name,
        q.filter.as_deref().unwrap_or(""),
        q.sort_by.as_deref().unwrap_or(""),
        q.sort_order.as_deref().unwrap_or(""),
        &proj.identity(),
    ]);
    let now = crate::vocab::time::unix_secs();
    let secret = ctx.store.cursor_key();
    let timeout = ctx.server.pagination.cursor_timeout_secs;
    let position = match cursor {
        "" => None,
        c => Some(cursor::open(secret, c, &digest, count, now, timeout)?),
    };
    let seal = |at: cursor::Position| cursor::seal(secret, &digest, count, now, &at);
    ctx.store.read(|c| {
        let page = |from| {
            // One more than the page: whether another page follows (or precedes).
            c.page_from(&ctx.server.id, &ctx.rt.name, search, from, count + 1)
                .map_err(store_err(ctx))
        };
        let (total, rows, next, previous) = match &position {
            Some(cursor::Position::Before(k)) => {
                let (total, mut rows) = page(Some(store::KeysetFrom::Before(k)))?;
                if rows.is_empty() {
                    // Nothing precedes any more (deleted meanwhile): the first page.
                    let (total, rows) = page(None)?;
                    first_page(total, rows, count, seal)
                } else {
                    let more_before = rows.len() > count;
                    rows.truncate(count);
                    rows.reverse();
                    let previous =
                        (more_before).then(|| seal(cursor::Position::Before(rows[0].1.clone())));
                    // The page this one precedes follows it.
                    let next = rows
                        .last()
                        .map(|(_, k)| seal(cursor::Position::After(k.clone())));
                    (total, rows, next, previous)
                }
            }
            Some(cursor::Position::After(k)) => {
                let (total, rows) = page(Some(store::KeysetFrom::After(k)))?;
                let (total, rows, next, _) = first_page(total, rows, count, seal);
                // A page reached by a cursor follows one (RFC 9865 `previousCursor`).
                let previous = rows
                    .first()
                    .map(|(_, k)| seal(cursor::Position::Before(k.clone())));
                (total, rows, next, previous)
            }
            None => {
                let (total, rows) = page(None)?;
                first_page(total, rows, count, seal)
            }
        };
        let rows: Vec<Row> = rows.into_iter().map(|(r, _)| r).collect();
        let resources = render_page(ctx, c, &rows, proj)?;
        Ok(ListPage {
            total,
            start_index: None,
            resources,
            next_cursor: next,
            previous_cursor: previous,
        })
    })
}

/// A cursor page: its total, rows, and next and previous cursors.
type CursorPage = (
    usize,
    Vec<(Row, store::Keyset)>,
    Option<String>,
    Option<String>,
);

/// A page read forward, as the first page of a walk has it: a `nextCursor` when more follow,
/// no `previousCursor`.
fn first_page(
    total: usize,
    mut rows: Vec<(Row, store::Keyset)>,
    count: usize,
    seal: impl Fn(cursor::Position) -> String,
) -> CursorPage {
    let more = count > 0 && rows.len() > count;
    rows.truncate(count);
    let next = (more)
        .then(|| rows.last())
        .flatten()
        .map(|(_, k)| seal(cursor::Position::After(k.clone())));
    (total, rows, next, None)
}

/// Renders a page into one buffer, with one membership query for the whole page instead of
/// one per resource.
fn render_page(
    ctx: &Ctx<'_>,
    c: &dyn store::Conn,
    rows: &[Row],
    proj: &Projection,
) -> ScimResult<RenderedList> {
    // One query for the page's groups; a single resource (a lookup) reads its own by key.
    let groups = if rows.len() > 1 && render::wants_groups(ctx.rt, proj) {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        Some(
            c.groups_of_many(&ctx.server.id, &ids)
                .map_err(store_err(ctx))?,
        )
    } else {
        None
    };
    let room = rows.iter().map(|r| render::room(ctx, r)).sum();
    let mut page = RenderedList::with_capacity(room, rows.len());
    for r in rows {
        let derived = render::Derived::read(ctx, c, &r.id, proj, groups.as_ref())?;
        page.render(ctx, r, proj, derived)?;
    }
    Ok(page)
}

/// One page of a search: a ListResponse (RFC 7644 §3.4.2), with RFC 9865's cursors when paged
/// by cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub total: usize,
    /// Present when paged by index.
    pub start_index: Option<usize>,
    pub resources: RenderedList,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
}

impl ListPage {
    pub fn by_index(total: usize, start: usize, resources: RenderedList) -> ListPage {
        ListPage {
            total,
            start_index: Some(start),
            resources,
            next_cursor: None,
            previous_cursor: None,
        }
    }

    /// The ListResponse as JSON text: the rendered resources are copied in, not re-serialised.
    pub fn to_json(&self) -> String {
        let resources = self.resources.text();
        let mut out = Vec::with_capacity(resources.len() + 256);
        // Pushed, not formatted: every list response starts here.
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(b"{\"schemas\":[\"");
        out.extend_from_slice(urn::LIST_RESPONSE.as_bytes());
        out.extend_from_slice(b"\"],\"totalResults\":");
        out.extend_from_slice(number.format(self.total).as_bytes());
        out.extend_from_slice(b",\"itemsPerPage\":");
        out.extend_from_slice(number.format(self.resources.len()).as_bytes());
        if let Some(start) = self.start_index {
            out.extend_from_slice(b",\"startIndex\":");
            out.extend_from_slice(number.format(start).as_bytes());
        }
        for (name, cursor) in [
            ("nextCursor", &self.next_cursor),
            ("previousCursor", &self.previous_cursor),
        ] {
            if let Some(c) = cursor {
                out.extend_from_slice(format!(",\"{name}\":").as_bytes());
                // A string always serialises; writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut out, c);
            }
        }
        out.extend_from_slice(b",\"Resources\":[");
        out.extend_from_slice(resources);
        out.extend_from_slice(b"]}");
        // Only `str`s and serde_json output went in: always UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }

    /// The ListResponse as a value, for callers that inspect it (UI, fuzzing, tests).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.to_json()).unwrap_or(Value::Null)
    }
}

/// `POST /.search` at the server root (RFC 7644 §3.4.3): the filter runs against every
/// resource type (a type that lacks a filtered attribute contributes nothing), and results are
/// paged across types in resource-type order. `sortBy` applies within each type.
pub fn search_all(
    store: &Store,
    server: &ServerModel,
    base: &str,
    q: &ListQuery,
    proj: &Projection,
) -> ScimResult<ListPage> {
    // Across resource types the page is assembled type by type: it pages by index only.
    if q.cursor.is_some() || !server.pagination.index {
        return Err(ScimError::NotImplemented(
            "a search at the server root pages by startIndex; page by cursor on a resource endpoint (POST /Users/.search)".into(),
        ));
    }
    let start = q.start_index.unwrap_or(1).max(1) as usize;
    let count = (q.count.map(|c| c.max(0) as usize))
        .unwrap_or(server.pagination.default_page_size)
        .min(server.pagination.max_page_size);
    let parsed = match q.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => {
            let parsed = filter::parse_with(f, &server.compat)?;
            persona::check_filter(server, &parsed)?;
            Some(parsed)
        }
        None => None,
    };
    let mut total = 0;
    let mut resources = RenderedList::default();
    let mut first_error = None;
    let mut matched_any_type = false;
    for rt in &server.resource_types {
        // A type that lacks an attribute the filter names contributes nothing.
        if let Some(e) = parsed.as_ref().and_then(|f| unknown_attribute(f, rt)) {
            first_error.get_or_insert(ScimError::invalid_filter(e.detail()));
            continue;
        }
        let ctx = Ctx {
            store,
            server,
            rt,
            base,
        };
        // First learn how many this type has, then take the slice of the page that falls in it.
        let counted = list(
            &ctx,
            &ListQuery {
                count: Some(0),
                start_index: None,
                ..q.clone()
            },
            proj,
        );
        let n = counted?.total;
        matched_any_type = true;
        // This type holds global positions [lo, hi) (0-based); the page wants [want_lo, want_hi).
        let (lo, hi) = (total, total + n);
        total += n;
        let (want_lo, want_hi) = (start - 1, start - 1 + count);
        let (from, to) = (want_lo.max(lo), want_hi.min(hi));
        if from < to {
            let slice = ListQuery {
                start_index: Some((from - lo) as i64 + 1),
                count: Some((to - from) as i64),
                ..q.clone()
            };
            resources.append(list(&ctx, &slice, proj)?.resources);
        }
    }
    if !matched_any_type && let Some(e) = first_error {
        return Err(e);
    }
    Ok(ListPage::by_index(total, start, resources))
}

/// The error of the first attribute `f` names that `rt` does not have (value-filter
/// sub-attributes are the filter compiler's to check).
fn unknown_attribute(f: &filter::Filter, rt: &ResourceType) -> Option<ScimError> {
    use filter::Filter;
    match f {
        Filter::Compare { path, .. } | Filter::Present(path) | Filter::ValuePath { path, .. } => {
            rt.resolve(path).err()
        }
        Filter::And(l, r) | Filter::Or(l, r) => {
            unknown_attribute(l, rt).or_else(|| unknown_attribute(r, rt))
        }
        Filter::Not(x) => unknown_attribute(x, rt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use serde_json::json;

    fn model(yaml: &str) -> Model {
        let file = crate::definition::load_str(std::path::Path::new("t.yaml"), yaml).unwrap();
        crate::model::compile(&[file], &[]).unwrap()
    }

    const DEF: &str = "id: t\ntokens: [t]\nresource_types:\n  User:\n    attributes:\n      badge: { type: string, mutability: immutable }\n  Group: {}\nvalidation: { strict: true }\n";

    /// A write keeps its unique values (and skips the store's check) only when every unique
    /// attribute, core or extension, is exactly as stored.
    #[test]
    fn unique_values_are_kept_only_when_every_unique_attribute_is_unchanged() {
        let m = model(&DEF.replace(
            "badge: { type: string, mutability: immutable }",
            "badge: { type: string, uniqueness: server }",
        ));
        let users = m.server("t").unwrap().by_name("User").unwrap();
        let ext = "urn:scimlab:schemas:extension:t:2.0:User";
        let doc = |name: &str, badge: &str, title: &str| {
            json!({"userName": name, "title": title, ext: {"badge": badge}})
                .as_object()
                .unwrap()
                .clone()
        };
        let old = doc("ann", "7", "x");
        let kept = |new: &Map<String, Value>| unique_values(users, &old, new);
        assert_eq!(kept(&doc("ann", "7", "y")), UniqueValues::Kept);
        assert_eq!(kept(&doc("ANN", "7", "x")), UniqueValues::MayChange);
        assert_eq!(kept(&doc("ann", "8", "x")), UniqueValues::MayChange);
        let mut no_badge = doc("ann", "7", "x");
        no_badge.remove(ext);
        assert_eq!(kept(&no_badge), UniqueValues::MayChange);
    }

    #[test]
    fn create_validation_is_the_servers() {
        let m = model(DEF);
        let s = m.server("t").unwrap();
        let users = s.by_name("User").unwrap();
        let ok = json!({"schemas": [urn::USER], "userName": "a"});
        assert!(validate_create(s, users, &ok).is_ok());
        let e = validate_create(s, users, &json!({"schemas": [urn::USER]})).unwrap_err();
        assert_eq!(
            (e.status(), e.scim_type()),
            (400, Some(crate::error::ScimType::InvalidValue))
        );
        let e = validate_create(
            s,
            users,
            &json!({"schemas": [urn::USER], "userName": "a", "x": 1}),
        )
        .unwrap_err();
        assert!(e.detail().contains("unknown attribute"), "{}", e.detail());
    }

    #[test]
    fn a_patch_is_applied_whole_or_not_at_all_in_memory() {
        let m = model(DEF);
        let s = m.server("t").unwrap();
        let users = s.by_name("User").unwrap();
        let ext = "urn:scimlab:schemas:extension:t:2.0:User";
        let mut old = Map::new();
        old.insert("userName".into(), json!("a"));
        old.insert(ext.into(), json!({"badge": "B-1"}));
        let ops = |o: Value| json!({"schemas": [urn::PATCH_OP], "Operations": o});
        assert!(
            validate_patch(
                s,
                users,
                &old,
                &ops(json!([{"op": "replace", "path": "displayName", "value": "D"}]))
            )
            .is_ok()
        );
        // An immutable value set once cannot change; the whole PatchOp fails.
        let e = validate_patch(
            s,
            users,
            &old,
            &ops(json!([
                {"op": "replace", "path": "displayName", "value": "D"},
                {"op": "replace", "path": format!("{ext}:badge"), "value": "B-2"}
            ])),
        )
        .unwrap_err();
        assert_eq!(
            e.scim_type(),
            Some(crate::error::ScimType::Mutability),
            "{}",
            e.detail()
        );
        // A filter that selects nothing on this document: noTarget.
        let e = validate_patch(
            s,
            users,
            &old,
            &ops(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}])),
        )
        .unwrap_err();
        assert_eq!(e.scim_type(), Some(crate::error::ScimType::NoTarget));
    }
}
