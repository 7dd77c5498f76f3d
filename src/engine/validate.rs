//! Client documents → stored documents. Canonical attribute names, typed values, readOnly
//! values dropped, required/canonical/primary rules checked, group members split out.

use crate::error::{ScimError, ScimResult};
use crate::model::compat::{ADSCIM_GROUP, Compat, ONELOGIN_ENTERPRISE, Quirk};
use crate::model::{ResourceType, ServerModel};
use crate::schema::urn;
use crate::schema::{AttrType, AttributeDef, Mutability, RuleMutability};
use crate::store::Member;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Replace,
    /// The result of applying a PatchOp to the stored document: `schemas` is derived.
    Patch,
}

/// A document ready to store, plus the group's members when the type keeps members apart.
#[derive(Debug)]
pub struct Normalized {
    pub doc: Map<String, Value>,
    pub members: Option<Vec<Member>>,
}

/// Where a value sits in a document (`emails.value`, `urn:…:User:manager`), for error
/// messages: written out only when an error names it, as normalizing visits every value.
#[derive(Clone, Copy)]
struct At<'a> {
    parent: Option<(&'a At<'a>, char)>,
    name: &'a str,
}

impl<'a> At<'a> {
    fn root(name: &'a str) -> At<'a> {
        At { parent: None, name }
    }

    /// `name` under this path, after `sep` (`.` for a sub-attribute, `:` after a schema URN).
    fn child(&'a self, sep: char, name: &'a str) -> At<'a> {
        At {
            parent: Some((self, sep)),
            name,
        }
    }
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((parent, sep)) = self.parent {
            write!(f, "{parent}{sep}")?;
        }
        f.write_str(self.name)
    }
}

struct Rules<'a> {
    strict: bool,
    compat: &'a Compat,
    /// `lifecycle.empty_string: clears`: `""` for a single-valued attribute means null.
    empty_clears: bool,
}

pub fn get_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<(&'m String, &'m Value)> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
}

pub fn normalize(
    server: &ServerModel,
    rt: &ResourceType,
    input: &Value,
    mode: Mode,
) -> ScimResult<Normalized> {
    let rules = Rules {
        strict: server.strict,
        compat: &server.compat,
        empty_clears: server.lifecycle.empty_string == crate::definition::EmptyStringPolicy::Clears,
    };
    let rewritten;
    let input = match onelogin_enterprise(rt, input, &rules)? {
        Some(v) => {
            rewritten = v;
            &rewritten
        }
        None => input,
    };
    let Some(obj) = input.as_object() else {
        return Err(ScimError::invalid_syntax(format!(
            "the body must be a JSON object holding a {} resource",
            rt.name
        )));
    };
    if mode != Mode::Patch {
        check_schemas(rt, obj, &rules)?;
    }
    let mut doc = Map::new();
    for (key, value) in obj {
        if ["schemas", "id", "meta"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key))
        {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            if value.is_null() {
                continue;
            }
            let Some(fields) = value.as_object() else {
                return Err(ScimError::invalid_syntax(format!(
                    "{key} must be an object of {} attributes",
                    ext.schema.name
                )));
            };
            let mut out = Map::new();
            for (k, v) in fields {
                match ext.schema.attr(k) {
                    Some(attr) => {
                        let urn = At::root(&ext.schema.id);
                        if let Some(v) =
                            normalize_attr(attr, v, urn.child(':', &attr.name), &rules)?
                        {
                            out.insert(attr.name.clone(), v);
                        }
                    }
                    // In a patched document these came from storage (see `carry_over`).
                    None if mode == Mode::Patch => {}
                    None => unknown(&rules, &format!("{key}:{k}"), rt)?,
                }
            }
            if !out.is_empty() {
                doc.insert(ext.schema.id.clone(), Value::Object(out));
            }
        } else if crate::model::path::is_urn(key) {
            if rules.strict && mode != Mode::Patch {
                return Err(ScimError::invalid_syntax(format!(
                    "{key} is not a schema extension of resource type {} (extensions: {})",
                    rt.name,
                    rt.extensions
                        .iter()
                        .map(|e| e.schema.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        } else if key.eq_ignore_ascii_case("externalId") {
            match value {
                Value::Null => {}
                Value::String(s) => {
                    doc.insert("externalId".into(), Value::String(s.clone()));
                }
                _ => return Err(ScimError::invalid_value("externalId must be a string")),
            }
        } else if let Some(attr) = rt.schema.attr(key) {
            if let Some(v) = normalize_attr(attr, value, At::root(&attr.name), &rules)? {
                doc.insert(attr.name.clone(), v);
            }
        } else if mode != Mode::Patch {
            unknown(&rules, key, rt)?;
        }
    }
    let members = if rt.has_members {
        Some(split_members(&mut doc)?)
    } else {
        None
    };
    check_required(rt, &doc, members.as_ref(), &rules, mode)?;
    crate::model::persona::check_values(server, &doc)?;
    if mode != Mode::Patch
        && let Some(m) = &members
    {
        crate::model::persona::check_member_count(server, m.len())?;
    }
    Ok(Normalized { doc, members })
}

fn unknown(rules: &Rules, key: &str, rt: &ResourceType) -> ScimResult<()> {
    if rules.strict {
        return Err(ScimError::invalid_syntax(format!(
            "unknown attribute {key:?} for resource type {} (schemas: {}); this server is strict, so unknown attributes are refused",
            rt.name,
            rt.schemas()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    tracing::debug!(
        attribute = key,
        "dropping unknown attribute (lenient server)"
    );
    Ok(())
}

/// OneLogin's `urn:scim:schemas:extension:enterprise:2.0`: renamed to the RFC URN when the
/// server accepts the quirk, refused by name otherwise.
fn onelogin_enterprise(
    rt: &ResourceType,
    input: &Value,
    rules: &Rules,
) -> ScimResult<Option<Value>> {
    let Some(obj) = input.as_object() else {
        return Ok(None);
    };
    let in_schemas = get_ci(obj, "schemas")
        .and_then(|(_, v)| v.as_array())
        .is_some_and(|l| {
            l.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(ONELOGIN_ENTERPRISE))
            })
        });
    let key = obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case(ONELOGIN_ENTERPRISE))
        .cloned();
    if !in_schemas && key.is_none() {
        return Ok(None);
    }
    if rt.extension(urn::ENTERPRISE_USER).is_none()
        || !rules.compat.allows(Quirk::OneLoginEnterpriseUrn)
    {
        return Err(ScimError::invalid_syntax(Compat::refusal(
            Quirk::OneLoginEnterpriseUrn,
            &format!(
                "{ONELOGIN_ENTERPRISE} is not the enterprise extension URN; RFC 7643 §4.3 names it {}",
                urn::ENTERPRISE_USER
            ),
        )));
    }
    let mut out = obj.clone();
    if let Some(k) = key
        && let Some(v) = out.remove(&k)
    {
        out.insert(urn::ENTERPRISE_USER.to_string(), v);
    }
    if let Some(Value::Array(list)) = out.get_mut("schemas") {
        for u in list.iter_mut() {
            if u.as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(ONELOGIN_ENTERPRISE))
            {
                *u = Value::String(urn::ENTERPRISE_USER.to_string());
            }
        }
    }
    Ok(Some(Value::Object(out)))
}

fn check_schemas(rt: &ResourceType, obj: &Map<String, Value>, rules: &Rules) -> ScimResult<()> {
    let Some((_, schemas)) = get_ci(obj, "schemas") else {
        return Err(ScimError::invalid_syntax(format!(
            "\"schemas\" is missing; it must list {}",
            rt.schema.id
        )));
    };
    let Some(list) = schemas
        .as_array()
        .filter(|l| l.iter().all(Value::is_string))
    else {
        return Err(ScimError::invalid_syntax(
            "\"schemas\" must be an array of schema URNs",
        ));
    };
    let list: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    if !list.iter().any(|u| u.eq_ignore_ascii_case(&rt.schema.id)) {
        return Err(ScimError::invalid_value(format!(
            "\"schemas\" must include {} for a {} resource",
            rt.schema.id, rt.name
        )));
    }
    for u in list {
        if u.eq_ignore_ascii_case(ADSCIM_GROUP) && rt.has_members {
            if rules.compat.allows(Quirk::AdscimGroupSchema) {
                continue;
            }
            return Err(ScimError::invalid_value(Compat::refusal(
                Quirk::AdscimGroupSchema,
                &format!(
                    "\"schemas\" lists {u}, which is not a SCIM schema of {}",
                    rt.name
                ),
            )));
        }
        if rules.strict && !u.eq_ignore_ascii_case(&rt.schema.id) && rt.extension(u).is_none() {
            return Err(ScimError::invalid_value(format!(
                "\"schemas\" lists {u}, which resource type {} does not use (allowed: {})",
                rt.name,
                rt.schemas()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

fn normalize_attr(
    attr: &AttributeDef,
    value: &Value,
    path: At<'_>,
    rules: &Rules,
) -> ScimResult<Option<Value>> {
    // readOnly values sent by clients are ignored (RFC 7644 §3.3, §3.5.1), except where a
    // profile made the attribute readOnly: then a change is refused by `carry_over` and
    // `check_create`, so the value must get there.
    if value.is_null() || (attr.mutability == Mutability::ReadOnly && attr.rule.is_none()) {
        return Ok(None);
    }
    if rules.empty_clears && !attr.multi_valued && value.as_str() == Some("") {
        crate::vocab::notes::note_policy("empty_string=clears");
        return Ok(None);
    }
    if !attr.multi_valued {
        return normalize_single(attr, value, path, rules);
    }
    let items: Vec<&Value> = match value {
        Value::Array(a) => a.iter().collect(),
        other if !rules.strict => vec![other],
        _ => {
            return Err(ScimError::invalid_value(format!(
                "{path} is multi-valued; send an array"
            )));
        }
    };
    // Equal values are kept once. A short list is compared value by value; a long one by
    // hashing each value's text, which keeps it linear.
    const COMPARED: usize = 16;
    let mut out: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let long = items.len() > COMPARED;
    for item in items {
        let Some(v) = normalize_single(attr, item, path, rules)? else {
            continue;
        };
        let new = if long {
            seen.insert(v.to_string())
        } else {
            !out.contains(&v)
        };
        if new {
            out.push(v);
        }
    }
    let primaries = out
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "{path}: at most one value may have \"primary\": true"
        )));
    }
    Ok(if out.is_empty() {
        None
    } else {
        Some(Value::Array(out))
    })
}

fn normalize_single(
    attr: &AttributeDef,
    value: &Value,
    path: At<'_>,
    rules: &Rules,
) -> ScimResult<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.ty != AttrType::Complex {
        return normalize_simple(attr, value, path, rules).map(Some);
    }
    if let (Value::String(id), "manager") = (value, attr.name.as_str()) {
        if !rules.compat.allows(Quirk::ManagerString) {
            return Err(ScimError::invalid_value(Compat::refusal(
                Quirk::ManagerString,
                &format!(
                    "{path} is the bare string {id:?}; RFC 7643 §4.3 expects {{\"value\": \"<manager id>\"}}"
                ),
            )));
        }
        let wrapped = serde_json::json!({ "value": id });
        return normalize_single(attr, &wrapped, path, rules);
    }
    let Some(fields) = value.as_object() else {
        return Err(ScimError::invalid_value(format!(
            "{path} is complex; send an object with its sub-attributes"
        )));
    };
    let mut out = Map::new();
    for (k, v) in fields {
        let Some(sub) = attr.sub(k) else {
            if rules.strict {
                return Err(ScimError::invalid_syntax(format!(
                    "{path} has no sub-attribute {k:?} (it has: {})",
                    attr.sub_attributes
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            continue;
        };
        // $ref is derived by the server from value; readOnly sub-attributes are ignored.
        if sub.name == "$ref" || sub.mutability == Mutability::ReadOnly || v.is_null() {
            continue;
        }
        out.insert(
            sub.name.clone(),
            normalize_simple(sub, v, path.child('.', &sub.name), rules)?,
        );
    }
    for sub in attr
        .sub_attributes
        .iter()
        .filter(|s| s.required && s.mutability != Mutability::ReadOnly)
    {
        if !out.contains_key(&sub.name) {
            return Err(ScimError::invalid_value(format!(
                "{path}.{} is required in every {path} value",
                sub.name
            )));
        }
    }
    Ok(if out.is_empty() {
        None
    } else {
        Some(Value::Object(out))
    })
}

fn normalize_simple(
    attr: &AttributeDef,
    value: &Value,
    path: At<'_>,
    rules: &Rules,
) -> ScimResult<Value> {
    let wrong =
        |want: &str| ScimError::invalid_value(format!("{path} must be {want}, not {value}"));
    let v = match (attr.ty, value) {
        (AttrType::String | AttrType::Reference, Value::String(_)) => value.clone(),
        (AttrType::Binary, Value::String(s)) => {
            if !s.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'\n' | b'\r')
            }) {
                return Err(wrong("base64-encoded binary"));
            }
            value.clone()
        }
        (AttrType::Boolean, Value::Bool(_)) => value.clone(),
        (AttrType::Boolean, Value::String(s))
            if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
        {
            if !rules.compat.allows(Quirk::BooleanStrings) {
                return Err(ScimError::invalid_value(Compat::refusal(
                    Quirk::BooleanStrings,
                    &format!(
                        "{path} is the string {s:?}; a SCIM boolean is true or false without quotes"
                    ),
                )));
            }
            Value::Bool(s.eq_ignore_ascii_case("true"))
        }
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => value.clone(),
        (AttrType::Decimal, Value::Number(_)) => value.clone(),
        (AttrType::DateTime, Value::String(s)) => Value::String(
            super::normalize_datetime(s)
                .ok_or_else(|| wrong("an RFC 3339 dateTime such as 2026-01-31T12:00:00Z"))?,
        ),
        (AttrType::String | AttrType::Reference | AttrType::Binary, _) => {
            return Err(wrong("a string"));
        }
        (AttrType::Boolean, _) => return Err(wrong("true or false")),
        (AttrType::Integer, _) => return Err(wrong("an integer")),
        (AttrType::Decimal, _) => return Err(wrong("a number")),
        (AttrType::DateTime, _) => return Err(wrong("a dateTime string")),
        (AttrType::Complex, _) => return Err(wrong("an object")),
    };
    // A profile's canonical values hold on lenient servers too: the profile asked for them.
    if (rules.strict || attr.rule.is_some())
        && !attr.canonical_values.is_empty()
        && let Value::String(s) = &v
    {
        let ok = attr.canonical_values.iter().any(|c| {
            if attr.case_exact {
                c == s
            } else {
                c.eq_ignore_ascii_case(s)
            }
        });
        if !ok {
            return Err(ScimError::invalid_value(format!(
                "{path} must be one of {:?}, not {s:?}{}",
                attr.canonical_values,
                by_profile(attr)
            )));
        }
    }
    if rules.strict
        && let Some(pattern) = &attr.pattern
    {
        let text = match &v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !pattern.matches(&text) {
            return Err(ScimError::invalid_value(format!(
                "{path} must match {}, not {text:?} ({})",
                pattern.as_str(),
                attr.description
            )));
        }
    }
    Ok(v)
}

fn split_members(doc: &mut Map<String, Value>) -> ScimResult<Vec<Member>> {
    let Some(Value::Array(list)) = doc.remove("members") else {
        return Ok(Vec::new());
    };
    let mut members: Vec<Member> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for m in list {
        let value = m.get("value").and_then(Value::as_str).ok_or_else(|| {
            ScimError::invalid_value("every members value needs \"value\": the id of the member")
        })?;
        let member = Member {
            value: value.to_string(),
            display: m.get("display").and_then(Value::as_str).map(str::to_string),
            member_type: m.get("type").and_then(Value::as_str).map(str::to_string),
        };
        // The same member twice is one membership; the last description wins.
        match index.get(&member.value) {
            Some(&i) => members[i] = member,
            None => {
                index.insert(member.value.clone(), members.len());
                members.push(member);
            }
        }
    }
    Ok(members)
}

fn check_required(
    rt: &ResourceType,
    doc: &Map<String, Value>,
    members: Option<&Vec<Member>>,
    rules: &Rules,
    mode: Mode,
) -> ScimResult<()> {
    // A client never reads a writeOnly value back, so a PUT need not repeat it: the stored
    // one is carried over (`carry_over`). Only a create must send it.
    let needed = |a: &&AttributeDef| {
        a.required
            && a.mutability != Mutability::ReadOnly
            && (mode == Mode::Create || a.mutability != Mutability::WriteOnly)
    };
    let missing =
        |name: &str| ScimError::invalid_value(format!("required attribute {name:?} is missing"));
    // A strict server wants a value, not a blank string, where one is required.
    let blank = |name: &str, v: Option<&Value>| -> ScimResult<()> {
        let is_blank = matches!(v, Some(Value::String(s)) if s.trim().is_empty());
        if is_blank && rules.strict && !rules.compat.allows(Quirk::EmptyRequiredString) {
            return Err(ScimError::invalid_value(Compat::refusal(
                Quirk::EmptyRequiredString,
                &format!("required attribute {name:?} is an empty string; send a value"),
            )));
        }
        Ok(())
    };
    for attr in rt.schema.attributes.iter().filter(needed) {
        let present = doc.contains_key(&attr.name)
            || (attr.name == "members" && members.is_some_and(|m| !m.is_empty()));
        if !present {
            return Err(missing(&attr.name));
        }
        blank(&attr.name, doc.get(&attr.name))?;
    }
    for ext in &rt.extensions {
        match doc.get(&ext.schema.id) {
            None if ext.required => {
                return Err(ScimError::invalid_value(format!(
                    "the extension {} is required for {}",
                    ext.schema.id, rt.name
                )));
            }
            None => {}
            Some(fields) => {
                for attr in ext.schema.attributes.iter().filter(needed) {
                    let name = format!("{}:{}", ext.schema.id, attr.name);
                    if fields.get(&attr.name).is_none() {
                        return Err(missing(&name));
                    }
                    blank(&name, fields.get(&attr.name))?;
                }
            }
        }
    }
    Ok(())
}

/// " (profile hr)" when a profile shaped `attr`, for error details.
fn by_profile(attr: &AttributeDef) -> String {
    attr.rule
        .as_ref()
        .map(|r| format!(" (profile {})", r.profiles))
        .unwrap_or_default()
}

/// The value of `attr` (of `schema`, an extension unless it is the core schema) in `doc`.
fn value_of<'d>(
    doc: &'d Map<String, Value>,
    ext: Option<&str>,
    attr: &AttributeDef,
) -> Option<&'d Value> {
    match ext {
        Some(u) => doc.get(u).and_then(|o| o.get(&attr.name)),
        None => doc.get(&attr.name),
    }
}

/// Every attribute of `rt` with the extension URN it lives under (None: core).
fn attributes(rt: &ResourceType) -> impl Iterator<Item = (Option<&str>, &AttributeDef)> {
    rt.schemas().flat_map(move |schema| {
        let ext = (schema.id != rt.schema.id).then_some(schema.id.as_str());
        schema.attributes.iter().map(move |a| (ext, a))
    })
}

/// Create rules from profiles: an attribute a profile made readOnly cannot be sent.
pub fn check_create(rt: &ResourceType, doc: &Map<String, Value>) -> ScimResult<()> {
    for (ext, attr) in attributes(rt) {
        if let Some(rule) = &attr.rule
            && rule.mutability == Some(RuleMutability::ReadOnly)
            && value_of(doc, ext, attr).is_some()
        {
            return Err(ScimError::mutability(format!(
                "{} is readOnly for this application (profile {}): it cannot be set",
                attr.name, rule.profiles
            )));
        }
    }
    Ok(())
}

/// Replace/patch rules that need the stored version: immutable values may not change, values
/// clients cannot send back (readOnly, writeOnly such as password) are kept, and profile rules
/// (readOnly, immutable, writeOnce) are enforced with errors that name the profile.
pub fn carry_over(
    rt: &ResourceType,
    new: &mut Map<String, Value>,
    old: &Map<String, Value>,
    mode: Mode,
) -> ScimResult<()> {
    keep_unserved(rt, new, old);
    for (ext, attr) in attributes(rt) {
        // Most attributes are readWrite with no profile rule: nothing below applies to them,
        // so they are not looked up (two map lookups per attribute were 7% of a PATCH).
        let ruled = attr.rule.as_ref().is_some_and(|r| r.mutability.is_some());
        let kept = match attr.mutability {
            Mutability::Immutable => true,
            Mutability::ReadOnly | Mutability::WriteOnly => mode == Mode::Replace,
            Mutability::ReadWrite => false,
        };
        if !ruled && !kept {
            continue;
        }
        let old_v = value_of(old, ext, attr);
        let new_v = value_of(new, ext, attr);
        let refuse = |why: String| Err(ScimError::mutability(format!("{} {why}", attr.name)));
        if let Some(rule) = &attr.rule
            && let Some(m) = rule.mutability
        {
            let p = &rule.profiles;
            match m {
                RuleMutability::ReadOnly if new_v != old_v => {
                    if new_v.is_none() && mode == Mode::Replace {
                        // Omitted from a PUT: kept, like any readOnly value.
                    } else {
                        return refuse(format!(
                            "is readOnly for this application (profile {p}): it cannot be set, changed or removed"
                        ));
                    }
                }
                RuleMutability::Immutable if old_v.is_none() && new_v.is_some() => {
                    return refuse(format!(
                        "is immutable (profile {p}): it can only be set when the resource is created"
                    ));
                }
                RuleMutability::Immutable | RuleMutability::WriteOnce => {
                    if let Some(old_v) = old_v {
                        match new_v {
                            Some(v) if v != old_v => {
                                return refuse(format!(
                                    "is {} (profile {p}) and already set to {old_v}; it cannot change",
                                    m.name()
                                ));
                            }
                            None if mode == Mode::Patch => {
                                return refuse(format!(
                                    "is {} (profile {p}) and already set; it cannot be removed",
                                    m.name()
                                ));
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let Some(old_v) = old_v else { continue };
        match attr.mutability {
            Mutability::Immutable => match new_v {
                Some(v) if v != old_v => {
                    return refuse("is immutable and already set; it cannot change".into());
                }
                None if mode == Mode::Patch => {
                    return refuse("is immutable and already set; it cannot be removed".into());
                }
                _ => {}
            },
            Mutability::ReadOnly | Mutability::WriteOnly
                if new_v.is_none() && mode == Mode::Replace => {}
            _ => continue,
        }
        if new_v.is_none() {
            let target = match ext {
                Some(u) => new
                    .entry(u.to_string())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut(),
                None => Some(&mut *new),
            };
            if let Some(t) = target {
                t.insert(attr.name.clone(), old_v.clone());
            }
        }
    }
    Ok(())
}

/// Stored values of attributes the current definition no longer serves (removed by a reload)
/// are kept as they are, so re-adding the attribute brings them back.
fn keep_unserved(rt: &ResourceType, new: &mut Map<String, Value>, old: &Map<String, Value>) {
    for (key, value) in old {
        if key == "externalId" || key == "members" {
            continue;
        }
        match rt.extension(key) {
            Some(ext) => {
                let Some(old_fields) = value.as_object() else {
                    continue;
                };
                for (k, v) in old_fields {
                    if ext.schema.attr(k).is_none() {
                        let entry = new
                            .entry(ext.schema.id.clone())
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let Some(o) = entry.as_object_mut() {
                            o.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            None if key == &rt.schema.id || rt.schema.attr(key).is_some() => {}
            None => {
                new.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn server() -> crate::model::Model {
        let def = "id: t\ntokens: [t]\nresource_types:\n  User:\n    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]\n";
        let file = crate::definition::load_str(std::path::Path::new("t.yaml"), def).unwrap();
        crate::model::compile(&[file], &[]).unwrap()
    }

    /// Equal values of a multi-valued attribute are kept once, in a short list (compared
    /// value by value) as in a long one (compared by text), whatever the order of their
    /// sub-attributes; values that differ are all kept.
    #[test]
    fn equal_values_are_kept_once() {
        let model = server();
        let server = model.server("t").unwrap();
        let rt = server.by_name("User").unwrap();
        for n in [3, 40] {
            let mut emails: Vec<Value> = (0..n)
                .map(|i| json!({"value": format!("u{i}@x.org"), "type": "work"}))
                .collect();
            emails.push(json!({"type": "work", "value": "u1@x.org"}));
            emails.push(json!({"value": "u2@x.org", "type": "work"}));
            let doc = json!({"schemas": [urn::USER], "userName": "u", "emails": emails});
            let n_doc = normalize(server, rt, &doc, Mode::Create).unwrap().doc;
            let kept = n_doc["emails"].as_array().unwrap();
            assert_eq!(
                kept.len(),
                n,
                "{n} distinct values sent, twice for two of them"
            );
            assert_eq!(kept[1], json!({"value": "u1@x.org", "type": "work"}));
        }
    }

    /// An error names the value's full path: schema URN, attribute and sub-attribute.
    #[test]
    fn errors_name_the_path_of_the_value() {
        let model = server();
        let server = model.server("t").unwrap();
        let rt = server.by_name("User").unwrap();
        let urn = urn::ENTERPRISE_USER;
        let doc =
            json!({"schemas": [urn::USER, urn], "userName": "u", urn: {"manager": {"value": 5}}});
        let e = normalize(server, rt, &doc, Mode::Create).unwrap_err();
        assert!(
            e.detail()
                .starts_with(&format!("{urn}:manager.value must be a string")),
            "{}",
            e.detail()
        );
        let doc = json!({"schemas": [urn::USER], "userName": "u", "name": {"givenName": true}});
        let e = normalize(server, rt, &doc, Mode::Create).unwrap_err();
        assert!(
            e.detail().starts_with("name.givenName must be a string"),
            "{}",
            e.detail()
        );
    }
}
