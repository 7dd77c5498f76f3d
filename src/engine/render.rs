//! Stored documents → response bodies: `returned` characteristics, `attributes` /
//! `excludedAttributes`, derived `groups`, `members` with `$ref`, and `meta`.

use super::Ctx;
use crate::error::ScimResult;
use crate::model::AttrPath;
use crate::schema::{AttributeDef, Returned};
use crate::store::Conn;
use crate::store::{self, Row};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// `attributes` / `excludedAttributes` query parameters (RFC 7644 §3.9).
#[derive(Debug, Clone, Default)]
pub struct Projection {
    attributes: Vec<(String, Option<AttrPath>)>,
    excluded: Vec<(String, Option<AttrPath>)>,
    /// No body at all: the caller keeps only the location and version (Bulk operations).
    no_body: bool,
}

/// One list parameter: every entry an attribute path (RFC 7644 §3.9) or a schema URN.
fn parse_list(param: &str, s: Option<&str>) -> ScimResult<Vec<(String, Option<AttrPath>)>> {
    let mut out = Vec::new();
    for x in s
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
    {
        let path = AttrPath::parse(x).map_err(|e| {
            let why = if x.contains('[') {
                "a value filter cannot select attributes".to_string()
            } else {
                e.detail().to_string()
            };
            crate::error::ScimError::invalid_value(format!(
                "{param}: {x:?} is not an attribute path ({why}); RFC 7644 §3.9 takes attribute names such as emails or emails.value"
            ))
        })?;
        out.push((x.to_string(), Some(path)));
    }
    Ok(out)
}

#[derive(Debug, PartialEq)]
enum Want {
    No,
    All,
    Only(Vec<String>),
    Except(Vec<String>),
}

impl Projection {
    /// The projection `attributes` and `excludedAttributes` ask for; an entry that is not an
    /// attribute path is a 400 (silently dropping it would return bare resources).
    pub fn new(attributes: Option<&str>, excluded: Option<&str>) -> ScimResult<Projection> {
        Ok(Projection {
            attributes: parse_list("attributes", attributes)?,
            excluded: parse_list("excludedAttributes", excluded)?,
            no_body: false,
        })
    }

    /// For callers that use only an operation's location and version (Bulk answers with
    /// those, RFC 7644 §3.7): the resource is not rendered.
    pub fn no_body() -> Projection {
        Projection {
            no_body: true,
            ..Projection::default()
        }
    }

    /// The parameters as given, for telling one query from another (cursor paging).
    pub fn identity(&self) -> String {
        let names = |l: &[(String, Option<AttrPath>)]| {
            l.iter()
                .map(|(raw, _)| raw.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!("{}|{}", names(&self.attributes), names(&self.excluded))
    }

    /// Entries of `list` naming `attr` (of schema `urn`): `Some(None)` for the whole attribute,
    /// `Some(Some(subs))` for some sub-attributes, `None` when not named.
    fn named(
        list: &[(String, Option<AttrPath>)],
        urn: &str,
        attr: &str,
    ) -> Option<Option<Vec<String>>> {
        let mut subs = Vec::new();
        for (raw, path) in list {
            if raw.eq_ignore_ascii_case(urn) {
                return Some(None);
            }
            let Some(p) = path else { continue };
            // Unqualified names match core and extension attributes alike.
            let urn_ok = p.urn.as_ref().is_none_or(|u| u.eq_ignore_ascii_case(urn));
            if urn_ok && p.name.eq_ignore_ascii_case(attr) {
                match &p.sub {
                    None => return Some(None),
                    Some(s) => subs.push(s.to_ascii_lowercase()),
                }
            }
        }
        if subs.is_empty() {
            None
        } else {
            Some(Some(subs))
        }
    }

    fn want(&self, urn: &str, attr: &AttributeDef) -> Want {
        match attr.returned {
            Returned::Never => return Want::No,
            Returned::Always => return Want::All,
            _ => {}
        }
        if !self.attributes.is_empty() {
            return match Self::named(&self.attributes, urn, &attr.name) {
                Some(None) => Want::All,
                Some(Some(subs)) => Want::Only(subs),
                None => Want::No,
            };
        }
        if attr.returned == Returned::Request {
            return Want::No;
        }
        if self.excluded.is_empty() {
            // The usual request: asked for every attribute of every resource rendered.
            return Want::All;
        }
        match Self::named(&self.excluded, urn, &attr.name) {
            Some(None) => Want::No,
            Some(Some(subs)) => Want::Except(subs),
            None => Want::All,
        }
    }
}

/// Applies sub-attribute selection to a complex value (or each value of a multi-valued one).
fn select(value: Value, attr: &AttributeDef, want: &Want) -> Option<Value> {
    let keep = |name: &str| -> bool {
        let sub = attr.sub(name);
        if sub.is_some_and(|s| s.returned == Returned::Never) {
            return false;
        }
        if sub.is_some_and(|s| s.returned == Returned::Always) {
            return true;
        }
        let lname = name.to_ascii_lowercase();
        match want {
            Want::Only(subs) => subs.contains(&lname),
            Want::Except(subs) => !subs.contains(&lname),
            _ => true,
        }
    };
    let filter_obj = |v: Value| -> Option<Value> {
        match v {
            Value::Object(m) => {
                let m: Map<String, Value> = m.into_iter().filter(|(k, _)| keep(k)).collect();
                if m.is_empty() {
                    None
                } else {
                    Some(Value::Object(m))
                }
            }
            other => Some(other),
        }
    };
    match (want, value) {
        (Want::No, _) => None,
        (Want::All, v) => Some(v),
        (_, Value::Array(items)) => {
            let items: Vec<Value> = items.into_iter().filter_map(filter_obj).collect();
            if items.is_empty() {
                None
            } else {
                Some(Value::Array(items))
            }
        }
        (_, v) => filter_obj(v),
    }
}

/// Location of a resource: `{base}{endpoint}/{id}`.
pub fn location(ctx: &Ctx<'_>, endpoint: &str, id: &str) -> String {
    location_parts(ctx, endpoint, id).concat()
}

/// [`location`] in pieces, for writing it without building it first.
fn location_parts<'a>(ctx: &Ctx<'a>, endpoint: &'a str, id: &'a str) -> [&'a str; 4] {
    [ctx.base, endpoint, "/", id]
}

/// The weak ETag of a version: `W/"{version}"`.
pub fn etag(version: i64) -> String {
    ["W/\"", itoa::Buffer::new().format(version), "\""].concat()
}

/// Derived values fetched for a whole page at once.
pub type GroupsByMember = std::collections::HashMap<String, Vec<store::GroupRef>>;

/// Whether rendering `rt` with `proj` needs the derived `groups` attribute.
pub fn wants_groups(rt: &crate::model::ResourceType, proj: &Projection) -> bool {
    rt.has_groups && wants(rt, proj, "groups")
}

fn wants(rt: &crate::model::ResourceType, proj: &Projection, name: &str) -> bool {
    !proj.no_body && (rt.schema.attr(name)).is_some_and(|a| proj.want(&rt.schema.id, a) != Want::No)
}

/// What rendering a resource reads besides its row: a group's `members` (RFC 7643 §4.2) and a
/// member's `groups` (§4.1.2). Read in the row's own transaction; the text is written after
/// it, so a write renders its answer once the one writer is free for the next.
#[derive(Debug, Default)]
pub struct Derived {
    members: Option<Vec<store::Member>>,
    groups: Option<Vec<store::GroupRef>>,
}

impl Derived {
    /// Reads what rendering resource `id` with `proj` needs; `page` holds the groups already
    /// fetched for a whole page.
    pub fn read(
        ctx: &Ctx<'_>,
        conn: &dyn Conn,
        id: &str,
        proj: &Projection,
        page: Option<&GroupsByMember>,
    ) -> ScimResult<Derived> {
        let (rt, server) = (ctx.rt, ctx.server.id.as_str());
        let members = if Self::wants_members(ctx, proj) {
            Some(conn.members_of(server, id).map_err(super::store_err(ctx))?)
        } else {
            None
        };
        let groups = if !wants_groups(rt, proj) {
            None
        } else if let Some(map) = page {
            Some(map.get(id).cloned().unwrap_or_default())
        } else {
            Some(conn.groups_of(server, id).map_err(super::store_err(ctx))?)
        };
        Ok(Derived { members, groups })
    }

    /// Whether rendering with `proj` needs a group's `members`.
    pub fn wants_members(ctx: &Ctx<'_>, proj: &Projection) -> bool {
        ctx.rt.has_members
            && wants(ctx.rt, proj, "members")
            && !crate::model::persona::omits_members(ctx.server)
    }

    /// What [`Derived::read`] would read, for a resource that needs no `members` and whose
    /// `groups` (if `proj` wants them) were read with its row.
    pub fn of_groups(groups: Option<Vec<store::GroupRef>>) -> Derived {
        Derived {
            members: None,
            groups,
        }
    }
}

/// A resource rendered as JSON text: what a response carries. Rendered from the stored text,
/// which is not parsed where no projection or derived value needs it (the stored values are
/// already canonical), so a page of resources is mostly copied, not rebuilt.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered(String);

impl Rendered {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The document as a value, for the callers that inspect it (UI, events, fuzzing).
    pub fn to_value(&self) -> Value {
        value_of(&self.0)
    }
}

/// Rendered text as a value (it is always JSON; `Null` would mean a bug, not bad input).
fn value_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A page's resources rendered one after another into one buffer, not each into its own (a
/// buffer per resource, allocated on the reading thread and freed on the one that answers,
/// cost more than the copy it saved): the members of a ListResponse's `Resources`,
/// comma-separated, copied into the response whole.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RenderedList {
    /// Only `str`s and serde_json output go in: UTF-8 throughout.
    text: Vec<u8>,
    /// Where each resource's text ends.
    ends: Vec<usize>,
}

impl RenderedList {
    /// Room for `resources` resources of `bytes` in all.
    pub fn with_capacity(bytes: usize, resources: usize) -> RenderedList {
        RenderedList {
            text: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(resources),
        }
    }

    /// Renders `row` after the resources already here; on an error the list is as it was.
    pub fn render(
        &mut self,
        ctx: &Ctx<'_>,
        row: &Row,
        proj: &Projection,
        derived: Derived,
    ) -> ScimResult<()> {
        let at = self.separate();
        match write(ctx, row, proj, derived, &mut self.text) {
            Ok(()) => {
                self.ends.push(self.text.len());
                Ok(())
            }
            Err(e) => {
                self.text.truncate(at);
                Err(e)
            }
        }
    }

    /// Adds a document built as a value (discovery documents).
    pub fn push_value(&mut self, v: &Value) {
        self.separate();
        // A `Value` always serialises; writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.text, v);
        self.ends.push(self.text.len());
    }

    /// Adds `other`'s resources after these.
    pub fn append(&mut self, other: RenderedList) {
        if other.ends.is_empty() {
            return;
        }
        self.separate();
        let start = self.text.len();
        self.text.extend_from_slice(&other.text);
        self.ends.extend(other.ends.iter().map(|e| e + start));
    }

    /// The comma before a resource that follows another; returns where it began.
    fn separate(&mut self) -> usize {
        let at = self.text.len();
        if !self.ends.is_empty() {
            self.text.push(b',');
        }
        at
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each resource's JSON text, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|e| e + 1));
        (starts.zip(&self.ends))
            .map(|(from, &to)| std::str::from_utf8(&self.text[from..to]).unwrap_or_default())
    }

    /// Each resource as a value, for the callers that inspect them (UI).
    pub fn values(&self) -> impl Iterator<Item = Value> {
        self.iter().map(value_of)
    }

    /// The resources' text, comma-separated: the inside of a JSON array.
    pub(super) fn text(&self) -> &[u8] {
        &self.text
    }
}

/// A stored object's members as unparsed JSON text, in stored order. A document has a dozen
/// or so members, so a linear search beats hashing every name.
struct RawObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawObject<'a> {
    /// Removes and returns the member `name` (names are stored canonical: compared exactly).
    fn take(&mut self, name: &str) -> Option<&'a RawValue> {
        let i = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(i).1)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Members<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<RawObject<'a>, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                // A borrowed name unless it has escapes (never, for schema names).
                while let Some((Key(k), v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((k, v));
                }
                Ok(RawObject(members))
            }
        }
        d.deserialize_map(Members(std::marker::PhantomData))
    }
}

#[derive(serde::Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

fn raw_object<'a>(id: &str, text: &'a str) -> ScimResult<RawObject<'a>> {
    serde_json::from_str(text).map_err(|_| {
        crate::error::ScimError::internal(format!("stored document {id} is not an object"))
    })
}

/// JSON object text written member by member, straight into a buffer (one response's, or one
/// page's); nested objects are written in place ([`ObjectText::open`]), not built apart and
/// copied in.
struct ObjectText<'b> {
    text: &'b mut Vec<u8>,
}

/// Where a nested object opened by [`ObjectText::open`] starts.
struct Opened(usize);

impl<'b> ObjectText<'b> {
    /// Begins an object at the end of `text`; [`ObjectText::end`] ends it.
    fn begin(text: &'b mut Vec<u8>) -> ObjectText<'b> {
        text.push(b'{');
        ObjectText { text }
    }

    fn key(&mut self, name: &str) {
        // A member follows another unless it is the first of its object.
        if self.text.last() != Some(&b'{') {
            self.text.push(b',');
        }
        // Names come from schemas; escaping keeps any name valid JSON.
        self.json_str(name);
        self.text.push(b':');
    }

    /// `s` as a JSON string.
    fn json_str(&mut self, s: &str) {
        if needs_escape(s) {
            return self.json_str_of(&[s]);
        }
        self.text.reserve(s.len() + 2);
        self.text.push(b'"');
        self.text.extend_from_slice(s.as_bytes());
        self.text.push(b'"');
    }

    /// The concatenation of `parts` as one JSON string. Most values (ids, timestamps, URLs)
    /// need no escaping and are copied as they are; the rest go through serde_json (writing
    /// into a Vec cannot fail).
    fn json_str_of(&mut self, parts: &[&str]) {
        self.text.push(b'"');
        for part in parts {
            if !needs_escape(part) {
                self.text.extend_from_slice(part.as_bytes());
            } else {
                // serde_json writes the part with its own quotes: keep what is between them.
                let at = self.text.len();
                let _ = serde_json::to_writer(&mut *self.text, part);
                let end = self.text.len() - 1;
                self.text.copy_within(at + 1..end, at);
                self.text.truncate(end - 1);
            }
        }
        self.text.push(b'"');
    }

    fn raw(&mut self, name: &str, json: &str) {
        self.key(name);
        self.text.extend_from_slice(json.as_bytes());
    }

    fn string(&mut self, name: &str, s: &str) {
        self.key(name);
        self.json_str(s);
    }

    fn value(&mut self, name: &str, v: &Value) {
        self.key(name);
        let _ = serde_json::to_writer(&mut *self.text, v);
    }

    fn strings(&mut self, name: &str, list: &[&str]) {
        self.key(name);
        self.text.push(b'[');
        for (i, s) in list.iter().enumerate() {
            if i > 0 {
                self.text.push(b',');
            }
            self.json_str(s);
        }
        self.text.push(b']');
    }

    /// Starts member `name` as an object written in place; [`ObjectText::close`] ends it.
    fn open(&mut self, name: &str) -> Opened {
        let at = self.text.len();
        self.key(name);
        self.text.push(b'{');
        Opened(at)
    }

    /// Ends an object begun by [`ObjectText::open`]; an object left empty is taken out again.
    fn close(&mut self, opened: Opened) {
        if self.text.last() == Some(&b'{') {
            self.text.truncate(opened.0);
        } else {
            self.text.push(b'}');
        }
    }

    fn end(self) {
        self.text.push(b'}');
    }
}

/// Whether `s` has a character a JSON string escapes. Every byte is looked at, without
/// stopping at the first: that loop is vectorised, and nearly every string here is clean.
fn needs_escape(s: &str) -> bool {
    (s.bytes()).fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// Writes one stored attribute value as `want` asks: copied as stored when it is wanted whole
/// and has no `$ref` to derive, else parsed, given its references and projected.
fn put_attribute(
    ctx: &Ctx<'_>,
    out: &mut ObjectText,
    attr: &AttributeDef,
    want: &Want,
    raw: &RawValue,
) -> ScimResult<()> {
    if *want == Want::All && attr.sub("$ref").is_none() {
        out.raw(&attr.name, raw.get());
        return Ok(());
    }
    let v: Value = serde_json::from_str(raw.get()).map_err(crate::error::ScimError::internal)?;
    if let Some(v) = select(with_refs(ctx, attr, v), attr, want) {
        out.value(&attr.name, &v);
    }
    Ok(())
}

/// Renders one stored resource, with the derived values read for it.
pub fn render(
    ctx: &Ctx<'_>,
    row: &Row,
    proj: &Projection,
    derived: Derived,
) -> ScimResult<Rendered> {
    let mut text = Vec::with_capacity(room(ctx, row));
    write(ctx, row, proj, derived, &mut text)?;
    // Only `str`s and serde_json output went in: always UTF-8.
    Ok(Rendered(String::from_utf8(text).unwrap_or_default()))
}

/// The room `row` takes rendered: the stored text, plus what rendering adds (`schemas`, `id`,
/// `meta` with its location), so that a buffer is not grown as it is written.
pub fn room(ctx: &Ctx<'_>, row: &Row) -> usize {
    row.doc.len() + 2 * ctx.base.len() + 512
}

/// Writes one stored resource as a JSON object at the end of `text`.
fn write(
    ctx: &Ctx<'_>,
    row: &Row,
    proj: &Projection,
    mut derived: Derived,
    text: &mut Vec<u8>,
) -> ScimResult<()> {
    if proj.no_body {
        text.extend_from_slice(b"{}");
        return Ok(());
    }
    let rt = ctx.rt;
    let mut doc = raw_object(&row.id, &row.doc)?;
    let mut out = ObjectText::begin(text);
    // Extensions appear in `schemas` when the resource has them, projected away or not.
    let mut schemas = vec![rt.schema.id.as_str()];
    let extensions: Vec<_> = (rt.extensions.iter())
        .filter_map(|ext| {
            let raw = doc.take(ext.schema.id.as_str())?;
            raw.get().starts_with('{').then_some((ext, raw))
        })
        .collect();
    schemas.extend(extensions.iter().map(|(ext, _)| ext.schema.id.as_str()));
    out.strings("schemas", &schemas);
    out.string("id", &row.id);
    let common = crate::model::path::common();
    if let Some(raw) = doc.take("externalId")
        && let Some(attr) = common.attr("externalId")
    {
        let want = proj.want(&rt.schema.id, attr);
        if want != Want::No {
            put_attribute(ctx, &mut out, attr, &want, raw)?;
        }
    }
    for attr in &rt.schema.attributes {
        let want = proj.want(&rt.schema.id, attr);
        if want == Want::No {
            continue;
        }
        let value = if rt.has_members && attr.name == "members" {
            derived.members.take().and_then(|m| members_value(ctx, m))
        } else if rt.has_groups && attr.name == "groups" {
            derived.groups.take().and_then(|g| groups_value(ctx, g))
        } else {
            if let Some(raw) = doc.take(attr.name.as_str()) {
                put_attribute(ctx, &mut out, attr, &want, raw)?;
            }
            continue;
        };
        if let Some(v) = value.and_then(|v| select(with_refs(ctx, attr, v), attr, &want)) {
            out.value(&attr.name, &v);
        }
    }
    for (ext, raw) in extensions {
        let mut fields = raw_object(&row.id, raw.get())?;
        // Left out when the projection keeps none of its attributes.
        let opened = out.open(&ext.schema.id);
        for attr in &ext.schema.attributes {
            let want = proj.want(&ext.schema.id, attr);
            if want == Want::No {
                continue;
            }
            if let Some(raw) = fields.take(attr.name.as_str()) {
                put_attribute(ctx, &mut out, attr, &want, raw)?;
            }
        }
        out.close(opened);
    }
    if let Some(meta_def) = common.attr("meta") {
        let want = proj.want(&rt.schema.id, meta_def);
        if want == Want::All {
            let opened = out.open("meta");
            put_meta(ctx, &mut out, row);
            out.close(opened);
        } else if want != Want::No {
            // Some sub-attributes asked for or excluded (rare): projected as a value.
            let mut meta_text = Vec::with_capacity(256);
            let mut meta = ObjectText::begin(&mut meta_text);
            put_meta(ctx, &mut meta, row);
            meta.end();
            let v =
                serde_json::from_slice(&meta_text).map_err(crate::error::ScimError::internal)?;
            if let Some(m) = select(v, meta_def, &want) {
                out.value("meta", &m);
            }
        }
    }
    out.end();
    Ok(())
}

/// `meta`'s members (RFC 7643 §3.1), written in place: `location` and `version` are not
/// built as strings first.
fn put_meta(ctx: &Ctx<'_>, out: &mut ObjectText, row: &Row) {
    let rt = ctx.rt;
    out.string("resourceType", &rt.name);
    out.string("created", &row.created);
    out.string("lastModified", &row.last_modified);
    out.key("location");
    out.json_str_of(&location_parts(ctx, &rt.endpoint, &row.id));
    out.key("version");
    // [`etag`] as a JSON string, its quotes escaped as they are written.
    out.text.extend_from_slice(b"\"W/\\\"");
    (out.text).extend_from_slice(itoa::Buffer::new().format(row.version).as_bytes());
    out.text.extend_from_slice(b"\\\"\"");
}

/// `$ref` of a complex attribute whose `value` names a resource of this server (the
/// enterprise `manager`, RFC 7643 §4.3): derived from `value` like members' (clients' own
/// `$ref` values are not stored, so the server's reference is always the current one).
fn with_refs(ctx: &Ctx<'_>, attr: &AttributeDef, mut v: Value) -> Value {
    let Some(ref_def) = attr.sub("$ref") else {
        return v;
    };
    let Some(endpoint) = (ref_def.reference_types.iter()).find_map(|t| endpoint_of(ctx, Some(t)))
    else {
        return v;
    };
    let mut fill = |o: &mut Value| {
        if let Some(o) = o.as_object_mut()
            && !o.contains_key("$ref")
            && let Some(Value::String(id)) = o.get("value")
        {
            let href = location(ctx, endpoint, id);
            o.insert("$ref".into(), Value::String(href));
        }
    };
    match &mut v {
        Value::Array(items) => items.iter_mut().for_each(&mut fill),
        other => fill(other),
    }
    v
}

fn endpoint_of<'a>(ctx: &'a Ctx<'_>, resource_type: Option<&str>) -> Option<&'a str> {
    resource_type
        .and_then(|t| ctx.server.by_name(t))
        .map(|rt| rt.endpoint.as_str())
}

fn members_value(ctx: &Ctx<'_>, members: Vec<store::Member>) -> Option<Value> {
    if members.is_empty() {
        return None;
    }
    let list = members
        .into_iter()
        .map(|m| {
            let mut o = Map::new();
            o.insert("value".into(), Value::String(m.value.clone()));
            if let Some(ep) = endpoint_of(ctx, m.member_type.as_deref()) {
                o.insert("$ref".into(), Value::String(location(ctx, ep, &m.value)));
            }
            if let Some(d) = m.display {
                o.insert("display".into(), Value::String(d));
            }
            if let Some(t) = m.member_type {
                o.insert("type".into(), Value::String(t));
            }
            Value::Object(o)
        })
        .collect();
    Some(Value::Array(list))
}

fn groups_value(ctx: &Ctx<'_>, groups: Vec<store::GroupRef>) -> Option<Value> {
    if groups.is_empty() {
        return None;
    }
    let list = groups
        .into_iter()
        .map(|g| {
            let mut o = Map::new();
            o.insert("value".into(), Value::String(g.id.clone()));
            if let Some(ep) = endpoint_of(ctx, Some(&g.resource_type)) {
                o.insert("$ref".into(), Value::String(location(ctx, ep, &g.id)));
            }
            if let Some(d) = g.display {
                o.insert("display".into(), Value::String(d));
            }
            o.insert("type".into(), Value::String("direct".into()));
            Value::Object(o)
        })
        .collect();
    Some(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{self, Ctx};
    use crate::schema::urn;
    use serde_json::json;

    const DEF: &str = "id: t\ntokens: [t]\nresource_types:\n  User:\n    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]\n  Group: {}\n";
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    /// Rendering from stored text must give what a client would get from the parsed document:
    /// values copied as stored, projections applied, `$ref` derived, extensions listed.
    #[test]
    fn rendered_text_is_the_projected_document() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let file = crate::definition::load_str(std::path::Path::new("t.yaml"), DEF).unwrap();
        let model = crate::model::compile(&[file], &[]).unwrap();
        let server = model.server("t").unwrap();
        store.apply_indexes(server, None).unwrap();
        let ctx = Ctx {
            store: &store,
            server,
            rt: server.by_name("User").unwrap(),
            base: "http://h/scim",
        };
        let boss = engine::create(
            &ctx,
            &json!({"schemas": [urn::USER], "userName": "boss"}),
            &Projection::default(),
        )
        .unwrap()
        .body
        .to_value();
        let boss_id = boss["id"].as_str().unwrap();
        let created = engine::create(
            &ctx,
            &json!({
                "schemas": [urn::USER, ENTERPRISE],
                "userName": "ann",
                "externalId": "e-1",
                "name": {"givenName": "Ann", "familyName": "Lee"},
                "emails": [{"value": "a@x.org", "type": "work", "primary": true}],
                ENTERPRISE: {"employeeNumber": "7", "manager": {"value": boss_id}}
            }),
            &Projection::default(),
        )
        .unwrap();
        let full = created.body.to_value();
        let id = full["id"].as_str().unwrap();
        assert!(created.body.as_str().starts_with("{\"schemas\":"));
        assert_eq!(full["schemas"], json!([urn::USER, ENTERPRISE]));
        assert_eq!(full["externalId"], "e-1");
        assert_eq!(
            full["name"],
            json!({"givenName": "Ann", "familyName": "Lee"})
        );
        assert_eq!(
            full[ENTERPRISE]["manager"],
            json!({"value": boss_id, "$ref": format!("http://h/scim/Users/{boss_id}")})
        );
        assert_eq!(
            full["meta"]["location"],
            format!("http://h/scim/Users/{id}")
        );

        let get = |attributes: Option<&str>, excluded: Option<&str>| {
            let proj = Projection::new(attributes, excluded).unwrap();
            engine::get(&ctx, id, &proj).unwrap().body.to_value()
        };
        assert_eq!(get(None, None), full);
        let some = get(Some("emails.value,name.givenName"), None);
        assert_eq!(some["emails"], json!([{"value": "a@x.org"}]));
        assert_eq!(some["name"], json!({"givenName": "Ann"}));
        assert!(some.get("externalId").is_none() && some.get("userName").is_none());
        assert_eq!(some["id"], id);
        // An extension projected away is still one of the resource's schemas.
        let without = get(None, Some(ENTERPRISE));
        assert!(without.get(ENTERPRISE).is_none());
        assert_eq!(without["schemas"], json!([urn::USER, ENTERPRISE]));
        // meta's sub-attributes are projected like any complex attribute's.
        let no_location = get(None, Some("meta.location"));
        assert!(no_location["meta"].get("location").is_none());
        assert_eq!(no_location["meta"]["version"], full["meta"]["version"]);
        assert_eq!(no_location["meta"]["resourceType"], "User");
        let version = get(Some("meta.version"), None);
        assert_eq!(version["meta"], json!({"version": full["meta"]["version"]}));
        assert!(get(None, Some("meta")).get("meta").is_none());
        let only = get(Some(&format!("{ENTERPRISE}:manager")), None);
        assert_eq!(
            only[ENTERPRISE],
            json!({"manager": full[ENTERPRISE]["manager"]})
        );

        // A page is rendered into one buffer: each resource as a GET renders it, in order,
        // and the ListResponse carries them as its Resources.
        let page =
            engine::list(&ctx, &engine::ListQuery::default(), &Projection::default()).unwrap();
        let resources: Vec<Value> = page.resources.values().collect();
        assert_eq!(resources, [boss.clone(), full.clone()]);
        assert_eq!(page.to_value()["Resources"], json!(resources));
        assert_eq!(page.to_value()["itemsPerPage"], 2);
        // Lists appended (a search across types) and values pushed stay separate resources.
        let mut all = RenderedList::default();
        all.append(RenderedList::default());
        all.push_value(&json!({"n": 0}));
        all.append(page.resources.clone());
        all.append(RenderedList::default());
        all.push_value(&json!({"n": 3}));
        let texts: Vec<&str> = all.iter().collect();
        assert_eq!(texts.len(), 4);
        assert_eq!(all.len(), 4);
        assert_eq!(texts[0], r#"{"n":0}"#);
        assert_eq!(texts[1..3], page.resources.iter().collect::<Vec<_>>()[..]);
        assert_eq!(texts[3], r#"{"n":3}"#);
        let array: Value =
            serde_json::from_str(&format!("[{}]", std::str::from_utf8(all.text()).unwrap()))
                .unwrap();
        assert_eq!(array.as_array().unwrap().len(), 4);
        // A resource that fails to render leaves the page as it was.
        let mut one = RenderedList::default();
        one.push_value(&json!({}));
        let broken = Row {
            id: "x".into(),
            resource_type: "User".into(),
            version: 1,
            created: String::new(),
            last_modified: String::new(),
            doc: "[1]".into(),
        };
        let before = one.clone();
        assert!(
            one.render(&ctx, &broken, &Projection::default(), Derived::default())
                .is_err()
        );
        assert_eq!(one, before);
    }

    /// Text written in pieces, escaped or not, and objects opened in place must be the JSON
    /// serde_json would write for the same value; an object left empty leaves no trace.
    #[test]
    fn object_text_writes_what_serde_json_would() {
        let awkward = "say \"hi\"\\ \u{1}\ttab é 🙂";
        // Written after what a buffer already holds, as a page's resources are.
        let mut text = b"before,".to_vec();
        let mut out = ObjectText::begin(&mut text);
        let empty = out.open("first-and-empty");
        out.close(empty);
        out.string("plain", "2024-01-01T00:00:00Z");
        out.string("awkward", awkward);
        out.key("joined");
        out.json_str_of(&["a\"", "plain", awkward, ""]);
        let nested = out.open("nested");
        out.strings("list", &["x", awkward]);
        let inner = out.open("inner-empty");
        out.close(inner);
        out.raw("n", "1");
        out.close(nested);
        let empty = out.open("last-and-empty");
        out.close(empty);
        out.end();
        let text = String::from_utf8(text).unwrap();
        let text = text.strip_prefix("before,").unwrap();
        let parsed: Value = serde_json::from_str(text).expect(text);
        assert_eq!(
            parsed,
            json!({
                "plain": "2024-01-01T00:00:00Z",
                "awkward": awkward,
                "joined": format!("a\"plain{awkward}"),
                "nested": {"list": ["x", awkward], "n": 1}
            })
        );
        assert_eq!(etag(12), "W/\"12\"");
    }
}
