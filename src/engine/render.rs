//! Stored documents → response bodies: `returned` characteristics, `attributes` /
//! `excludedAttributes`, derived `groups`, `members` with `$ref`, and `meta`.

use super::Ctx;
use crate::error::ScimResult;
use crate::model::AttrPath;
use crate::schema::{AttributeDef, Returned};
use crate::store::Conn;
use crate::store::{self, Row};
use serde_json::{Map, Value, json};

/// `attributes` / `excludedAttributes` query parameters (RFC 7644 §3.9).
#[derive(Debug, Clone, Default)]
pub struct Projection {
    attributes: Vec<(String, Option<AttrPath>)>,
    excluded: Vec<(String, Option<AttrPath>)>,
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
        })
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
    format!("{}{}/{}", ctx.base, endpoint, id)
}

pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Derived values fetched for a whole page at once.
pub type GroupsByMember = std::collections::HashMap<String, Vec<store::GroupRef>>;

/// Whether rendering `rt` with `proj` needs the derived `groups` attribute.
pub fn wants_groups(rt: &crate::model::ResourceType, proj: &Projection) -> bool {
    rt.has_groups
        && rt
            .schema
            .attr("groups")
            .is_some_and(|a| proj.want(&rt.schema.id, a) != Want::No)
}

/// Renders one stored resource. `conn` is used for derived values (members, groups) unless
/// `groups` were fetched for the whole page.
pub fn render(
    ctx: &Ctx<'_>,
    conn: &dyn Conn,
    row: &Row,
    proj: &Projection,
    groups: Option<&GroupsByMember>,
) -> ScimResult<Value> {
    let rt = ctx.rt;
    let mut doc: Map<String, Value> = match serde_json::from_str(&row.doc) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(crate::error::ScimError::internal(format!(
                "stored document {} is not an object",
                row.id
            )));
        }
    };
    let mut out = Map::new();
    let mut schemas = vec![Value::String(rt.schema.id.clone())];
    out.insert("id".into(), Value::String(row.id.clone()));
    let common = crate::model::path::common();
    if let Some(v) = doc.remove("externalId")
        && let Some(attr) = common.attr("externalId")
        && proj.want(&rt.schema.id, attr) != Want::No
    {
        out.insert("externalId".into(), v);
    }
    for attr in &rt.schema.attributes {
        let want = proj.want(&rt.schema.id, attr);
        if want == Want::No {
            continue;
        }
        let value = if rt.has_members && attr.name == "members" {
            if crate::model::persona::omits_members(ctx.server) {
                continue;
            }
            members_value(ctx, conn, &row.id)?
        } else if rt.has_groups && attr.name == "groups" {
            let list = match groups {
                Some(map) => map.get(&row.id).cloned().unwrap_or_default(),
                None => conn
                    .groups_of(&ctx.server.id, &row.id)
                    .map_err(super::store_err(ctx))?,
            };
            groups_value(ctx, list)
        } else {
            doc.remove(&attr.name)
        };
        if let Some(v) = value.and_then(|v| select(with_refs(ctx, attr, v), attr, &want)) {
            out.insert(attr.name.clone(), v);
        }
    }
    for ext in &rt.extensions {
        let Some(Value::Object(mut fields)) = doc.remove(&ext.schema.id) else {
            continue;
        };
        let mut ext_out = Map::new();
        for attr in &ext.schema.attributes {
            let want = proj.want(&ext.schema.id, attr);
            if let Some(v) = fields
                .remove(&attr.name)
                .and_then(|v| select(with_refs(ctx, attr, v), attr, &want))
            {
                ext_out.insert(attr.name.clone(), v);
            }
        }
        schemas.push(Value::String(ext.schema.id.clone()));
        if !ext_out.is_empty() {
            out.insert(ext.schema.id.clone(), Value::Object(ext_out));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    if let Some(meta_def) = common.attr("meta") {
        let want = proj.want(&rt.schema.id, meta_def);
        let meta = json!({
            "resourceType": rt.name,
            "created": row.created,
            "lastModified": row.last_modified,
            "location": location(ctx, &rt.endpoint, &row.id),
            "version": etag(row.version),
        });
        if let Some(m) = select(meta, meta_def, &want) {
            out.insert("meta".into(), m);
        }
    }
    Ok(Value::Object(out))
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

fn members_value(ctx: &Ctx<'_>, conn: &dyn Conn, id: &str) -> ScimResult<Option<Value>> {
    let members = conn
        .members_of(&ctx.server.id, id)
        .map_err(super::store_err(ctx))?;
    if members.is_empty() {
        return Ok(None);
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
    Ok(Some(Value::Array(list)))
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
