//! PATCH (RFC 7644 §3.5.2): parse a PatchOp and apply its operations to a working copy of the
//! resource. The engine validates the result as a whole afterwards, so a failing operation or
//! an invalid result leaves the stored resource untouched.

use crate::error::{ScimError, ScimResult};
use crate::filter::{self, CompValue, CompareOp, Filter};
use crate::model::{AttrPath, ResourceType, Target};
use crate::schema::{AttrType, AttributeDef, Mutability, urn};
use crate::vocab::compat::{Compat, Quirk};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

/// `attr[filter].sub`: an attribute path, an optional value filter and an optional
/// sub-attribute after the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub_after_filter: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

impl PatchPath {
    pub fn parse(text: &str) -> ScimResult<PatchPath> {
        let text = text.trim();
        let Some(open) = text.find('[') else {
            return Ok(PatchPath {
                attr: AttrPath::parse(text)?,
                filter: None,
                sub_after_filter: None,
            });
        };
        let close = text
            .rfind(']')
            .ok_or_else(|| ScimError::invalid_path(format!("{text:?}: '[' without ']'")))?;
        if close < open {
            return Err(ScimError::invalid_path(format!("{text:?}: ']' before '['")));
        }
        let attr = AttrPath::parse(&text[..open])?;
        if attr.sub.is_some() {
            return Err(ScimError::invalid_path(format!(
                "{text:?}: a value filter follows an attribute, not a sub-attribute"
            )));
        }
        let filter = filter::parse(&text[open + 1..close])
            .map_err(|e| ScimError::invalid_path(e.detail()))?;
        let rest = &text[close + 1..];
        let sub_after_filter = match rest.strip_prefix('.') {
            Some(s) if crate::model::path::valid_name(s) => Some(s.to_string()),
            None if rest.is_empty() => None,
            _ => {
                return Err(ScimError::invalid_path(format!(
                    "{text:?}: unexpected {rest:?} after the value filter"
                )));
            }
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub_after_filter,
        })
    }
}

/// Parses a PatchOp request body of at most `max_operations` operations.
pub fn parse(body: &Value, compat: &Compat, max_operations: usize) -> ScimResult<Vec<Operation>> {
    let schemas_ok = body
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(urn::PATCH_OP))
            })
        });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "a PATCH body must have \"schemas\": [\"{}\"]",
            urn::PATCH_OP
        )));
    }
    let ops = body
        .get("Operations")
        .or_else(|| {
            body.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("operations"))
                    .map(|(_, v)| v)
            })
        })
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ScimError::invalid_syntax("a PATCH body needs a non-empty \"Operations\" array")
        })?;
    if ops.len() > max_operations {
        // As for Bulk's maxOperations (RFC 7644 §3.7.4): 413, and the limit in the detail.
        return Err(ScimError::payload_too_large(format!(
            "the PatchOp has {} operations; this server accepts at most {max_operations} per request (limits.patch_max_operations): split it",
            ops.len()
        )));
    }
    ops.iter()
        .enumerate()
        .map(|(i, o)| {
            let n = i + 1;
            let name = o.get("op").and_then(Value::as_str).unwrap_or_default();
            let op = match name.to_ascii_lowercase().as_str() {
                "add" => OpKind::Add,
                "remove" => OpKind::Remove,
                "replace" => OpKind::Replace,
                _ => {
                    return Err(ScimError::invalid_syntax(format!(
                        "operation {n}: \"op\" must be add, remove or replace, not {:?}",
                        o.get("op")
                    )));
                }
            };
            if !["add", "remove", "replace"].contains(&name) && !compat.allows(Quirk::CapitalizedOps) {
                return Err(ScimError::invalid_syntax(Compat::refusal(
                    Quirk::CapitalizedOps,
                    &format!("operation {n}: \"op\": {name:?} is capitalised; RFC 7644 §3.5.2 names it {:?}", name.to_ascii_lowercase()),
                )));
            }
            let path = match o.get("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => Some(PatchPath::parse(p)?),
                Some(_) => {
                    return Err(ScimError::invalid_path(format!(
                        "operation {n}: \"path\" must be a string"
                    )));
                }
            };
            let value = o.get("value").filter(|v| !v.is_null()).cloned();
            if op != OpKind::Remove && value.is_none() {
                return Err(ScimError::invalid_value(format!(
                    "operation {n}: {op:?} needs a \"value\""
                )));
            }
            Ok(Operation { op, path, value })
        })
        .collect()
}

/// Applies the operations in order to `doc` (a stored document, with `members` inlined for
/// group types).
pub fn apply(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    ops: &[Operation],
    compat: &Compat,
) -> ScimResult<()> {
    let mut known = Known::default();
    for op in ops {
        match &op.path {
            Some(p) => {
                if op.op == OpKind::Remove
                    && op.value.is_some()
                    && p.filter.is_none()
                    && !compat.allows(Quirk::RemoveByValue)
                {
                    return Err(ScimError::invalid_syntax(Compat::refusal(
                        Quirk::RemoveByValue,
                        &format!(
                            "remove of {} carries a \"value\"; RFC 7644 §3.5.2.2 selects values with a filter, e.g. members[value eq \"…\"]",
                            p.attr
                        ),
                    )));
                }
                match extension_named(rt, p) {
                    Some(urn) => {
                        apply_to_extension(rt, doc, op.op, urn, op.value.as_ref(), &mut known)?
                    }
                    None => apply_at(rt, doc, op.op, p, op.value.as_ref(), &mut known)?,
                }
            }
            None => {
                if op.op == OpKind::Remove {
                    return Err(ScimError::no_target(
                        "remove needs a \"path\" naming what to remove",
                    ));
                }
                let Some(Value::Object(fields)) = &op.value else {
                    return Err(ScimError::invalid_value(
                        "without a \"path\", \"value\" must be an object of attributes",
                    ));
                };
                for (k, v) in fields {
                    if ["schemas", "meta"]
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(k))
                    {
                        continue;
                    }
                    if k.eq_ignore_ascii_case("id") {
                        if compat.allows(Quirk::IdInPatchValue) {
                            continue;
                        }
                        return Err(ScimError::mutability(Compat::refusal(
                            Quirk::IdInPatchValue,
                            "the PATCH value contains \"id\", which is readOnly",
                        )));
                    }
                    if let Some(ext) = rt.extension(k) {
                        apply_to_extension(rt, doc, op.op, &ext.schema.id, Some(v), &mut known)?;
                    } else {
                        let attr = AttrPath::parse(k)?;
                        if (attr.sub.is_some() || attr.urn.is_some())
                            && !compat.allows(Quirk::DottedPathlessKeys)
                        {
                            return Err(ScimError::invalid_path(Compat::refusal(
                                Quirk::DottedPathlessKeys,
                                &format!(
                                    "the path-less PATCH value has the key {k:?}; RFC 7644 §3.5.2 expects attribute names (nest sub-attributes, or use \"path\")"
                                ),
                            )));
                        }
                        let p = PatchPath {
                            attr,
                            filter: None,
                            sub_after_filter: None,
                        };
                        apply_at(rt, doc, op.op, &p, Some(v), &mut known)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The extension a path names as a whole (`urn:…:enterprise:2.0:User`), which the attribute
/// path parser reads as attribute `User` of schema `urn:…:2.0`.
pub fn extension_named<'a>(rt: &'a ResourceType, p: &PatchPath) -> Option<&'a str> {
    let urn = p.attr.urn.as_deref()?;
    if p.attr.sub.is_some() || p.filter.is_some() || p.sub_after_filter.is_some() {
        return None;
    }
    let ext = rt.extension(&format!("{urn}:{}", p.attr.name))?;
    Some(ext.schema.id.as_str())
}

/// An operation on a whole extension (RFC 7644 §3.5.2: a path may name a complex
/// attribute; an extension's object is one). `add` and `replace` apply each attribute of the
/// value (attributes not in it are left as they are, §3.5.2.3); `remove` removes them all.
fn apply_to_extension(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    op: OpKind,
    urn: &str,
    value: Option<&Value>,
    known: &mut Known,
) -> ScimResult<()> {
    if op == OpKind::Remove {
        if let Some(k) = key_of(doc, urn) {
            doc.remove(&k);
        }
        return Ok(());
    }
    let Some(Value::Object(inner)) = value else {
        return Err(ScimError::invalid_value(format!(
            "{urn} must be given an object of extension attributes"
        )));
    };
    for (name, v) in inner {
        let p = PatchPath {
            attr: AttrPath {
                urn: Some(urn.to_string()),
                name: name.clone(),
                sub: None,
            },
            filter: None,
            sub_after_filter: None,
        };
        apply_at(rt, doc, op, &p, Some(v), known)?;
    }
    Ok(())
}

fn key_of(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Sets `map[name]` replacing any differently-cased key.
fn set(map: &mut Map<String, Value>, name: &str, value: Value) {
    if let Some(k) = key_of(map, name) {
        map.remove(&k);
    }
    map.insert(name.to_string(), value);
}

fn merge(target: &mut Value, value: &Value) {
    match (target.as_object_mut(), value.as_object()) {
        (Some(t), Some(v)) => {
            for (k, x) in v {
                set(t, k, x.clone());
            }
        }
        _ => *target = value.clone(),
    }
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// Takes the values of `key` out of `container` (moved, not copied).
fn take_list(container: &mut Map<String, Value>, key: &str) -> Vec<Value> {
    match container.remove(key) {
        Some(Value::Array(a)) => a,
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

/// A value in a form where equal JSON values are equal strings (object keys are sorted).
fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The canonical values of multi-valued attributes that a PatchOp's earlier `add`s built,
/// keyed by attribute, so that thousands of adds to one attribute stay linear. Any other
/// operation on an attribute drops its entry.
#[derive(Default)]
struct Known(std::collections::HashMap<String, std::collections::HashSet<String>>);

fn is_primary(v: &Value) -> bool {
    v.as_object()
        .and_then(|o| key_of(o, "primary").and_then(|k| o.get(&k).cloned()))
        == Some(Value::Bool(true))
}

/// Adds values to a multi-valued attribute without duplicating equal values; a new primary
/// value clears `primary` on the others. `known` holds the list's canonical values when a
/// previous add built them.
fn add_values(
    list: &mut Vec<Value>,
    new: Vec<Value>,
    known: &mut Option<std::collections::HashSet<String>>,
) {
    for v in new {
        if is_primary(&v) {
            for x in list.iter_mut() {
                if let Some(o) = x.as_object_mut()
                    && let Some(k) = key_of(o, "primary")
                {
                    o.remove(&k);
                    // The values changed, so their canonical forms did.
                    *known = None;
                }
            }
        }
        // Members equal by `value` but not in full are merged by normalisation afterwards.
        let seen = known.get_or_insert_with(|| list.iter().map(canonical).collect());
        if seen.insert(canonical(&v)) {
            list.push(v);
        }
    }
}

fn apply_at(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    op: OpKind,
    path: &PatchPath,
    value: Option<&Value>,
    known: &mut Known,
) -> ScimResult<()> {
    let res = match rt.resolve(&path.attr)? {
        Target::Doc(r) => r,
        _ => return Err(ScimError::mutability(format!("{} is readOnly", path.attr))),
    };
    let attr = res.attr;
    let known_key = format!("{}:{}", res.extension.unwrap_or(""), attr.name);
    // Only a path-less add below puts it back: every other change invalidates it.
    let mut known_values = known.0.remove(&known_key);
    let sub_name = res
        .sub
        .map(|s| s.name.clone())
        .or_else(|| path.sub_after_filter.clone());
    let sub_def = match &sub_name {
        Some(s) => Some(attr.sub(s).ok_or_else(|| {
            ScimError::invalid_path(format!("{} has no sub-attribute {s:?}", attr.name))
        })?),
        None => None,
    };
    if attr.mutability == Mutability::ReadOnly
        || sub_def.is_some_and(|s| s.mutability == Mutability::ReadOnly)
    {
        return Err(ScimError::mutability(format!(
            "{} is readOnly and cannot be modified",
            res.display()
        )));
    }
    let container = container_of(doc, res.extension)?;
    let key = key_of(container, &attr.name).unwrap_or_else(|| attr.name.clone());
    if let Some(filter) = &path.filter {
        if !attr.multi_valued || attr.ty != AttrType::Complex {
            return Err(ScimError::invalid_path(format!(
                "{}[...] needs a multi-valued complex attribute",
                attr.name
            )));
        }
        return apply_filtered(container, key, attr, filter, op, sub_name.as_deref(), value);
    }
    match (op, &sub_name, attr.multi_valued) {
        (OpKind::Remove, None, true) if value.is_some() => {
            remove_listed(container, key, value.unwrap_or(&Value::Null));
        }
        (OpKind::Remove, None, _) => {
            container.remove(&key);
        }
        (OpKind::Add, None, true) => {
            let mut list = take_list(container, &key);
            add_values(
                &mut list,
                as_list(value.unwrap_or(&Value::Null)),
                &mut known_values,
            );
            container.insert(key, Value::Array(list));
            if let Some(v) = known_values {
                known.0.insert(known_key, v);
            }
        }
        (OpKind::Replace, None, true) => {
            container.insert(key, Value::Array(as_list(value.unwrap_or(&Value::Null))));
        }
        (_, None, false) => {
            let v = value.cloned().unwrap_or(Value::Null);
            match container.get_mut(&key) {
                // Complex values merge: sub-attributes not sent are left unchanged.
                Some(existing)
                    if attr.ty == AttrType::Complex && existing.is_object() && v.is_object() =>
                {
                    merge(existing, &v)
                }
                _ => {
                    container.insert(key, v);
                }
            }
        }
        (op, Some(s), multi) => {
            on_sub_attribute(container, key, op, s, multi, value);
        }
    }
    Ok(())
}

/// The object an attribute lives in: the document, or its extension's object (created).
fn container_of<'d>(
    doc: &'d mut Map<String, Value>,
    extension: Option<&str>,
) -> ScimResult<&'d mut Map<String, Value>> {
    let Some(u) = extension else {
        return Ok(doc);
    };
    let key = key_of(doc, u).unwrap_or_else(|| u.to_string());
    let entry = doc.entry(key).or_insert_with(|| Value::Object(Map::new()));
    entry
        .as_object_mut()
        .ok_or_else(|| ScimError::invalid_value(format!("{u} must be an object")))
}

/// An operation on the values of `attr` that `filter` selects (`emails[type eq "work"]`).
fn apply_filtered(
    container: &mut Map<String, Value>,
    key: String,
    attr: &AttributeDef,
    filter: &Filter,
    op: OpKind,
    sub_name: Option<&str>,
    value: Option<&Value>,
) -> ScimResult<()> {
    let mut list = take_list(container, &key);
    let matched: Vec<usize> = (0..list.len())
        .filter(|&i| filter::matches(filter, attr, &list[i]))
        .collect();
    if matched.is_empty() {
        return match op {
            OpKind::Add => {
                // e.g. `emails[type eq "work"].value` on a user with no work email: create it.
                let mut element = seed_from_filter(filter);
                match (sub_name, value) {
                    (Some(s), Some(v)) => {
                        set(&mut element, s, v.clone());
                    }
                    (None, Some(v)) => merge_into(&mut element, v),
                    _ => {}
                }
                add_values(&mut list, vec![Value::Object(element)], &mut None);
                container.insert(key, Value::Array(list));
                Ok(())
            }
            _ => {
                if !list.is_empty() {
                    container.insert(key, Value::Array(list));
                }
                Err(ScimError::no_target(format!(
                    "no value of {} matches [{filter}]",
                    attr.name
                )))
            }
        };
    }
    match (op, sub_name) {
        (OpKind::Remove, None) => {
            let mut remove = vec![false; list.len()];
            for &i in &matched {
                remove[i] = true;
            }
            let mut i = 0;
            list.retain(|_| {
                i += 1;
                !remove[i - 1]
            });
        }
        (OpKind::Remove, Some(s)) => {
            for &i in &matched {
                if let Some(o) = list[i].as_object_mut()
                    && let Some(k) = key_of(o, s)
                {
                    o.remove(&k);
                }
            }
        }
        (_, Some(s)) => {
            for &i in &matched {
                if let Some(o) = list[i].as_object_mut() {
                    set(o, s, value.cloned().unwrap_or(Value::Null));
                }
            }
        }
        (OpKind::Replace, None) => {
            for &i in &matched {
                list[i] = value.cloned().unwrap_or(Value::Null);
            }
        }
        (OpKind::Add, None) => {
            for &i in &matched {
                merge(&mut list[i], value.unwrap_or(&Value::Null));
            }
        }
    }
    if list.is_empty() {
        container.remove(&key);
    } else {
        container.insert(key, Value::Array(list));
    }
    Ok(())
}

/// `remove` with a value list: those values go (how Entra removes group members).
fn remove_listed(container: &mut Map<String, Value>, key: String, value: &Value) {
    let remove = as_list(value);
    let whole: std::collections::HashSet<String> = remove.iter().map(canonical).collect();
    let by_value: std::collections::HashSet<String> = remove
        .iter()
        .filter_map(|r| r.get("value").map(canonical))
        .collect();
    let mut list = take_list(container, &key);
    list.retain(|x| {
        !(whole.contains(&canonical(x))
            || x.get("value")
                .is_some_and(|v| by_value.contains(&canonical(v))))
    });
    if list.is_empty() {
        container.remove(&key)
    } else {
        container.insert(key, Value::Array(list))
    };
}

/// An operation on one sub-attribute of every value (or of the single complex value).
fn on_sub_attribute(
    container: &mut Map<String, Value>,
    key: String,
    op: OpKind,
    s: &str,
    multi: bool,
    value: Option<&Value>,
) {
    let entry = container.entry(key.clone()).or_insert_with(|| {
        if multi {
            Value::Array(vec![])
        } else {
            Value::Object(Map::new())
        }
    });
    let targets: Vec<&mut Value> = match entry {
        Value::Array(items) => {
            if items.is_empty() && op != OpKind::Remove {
                items.push(Value::Object(Map::new()));
            }
            items.iter_mut().collect()
        }
        other => vec![other],
    };
    for t in targets {
        if let Some(o) = t.as_object_mut() {
            match op {
                OpKind::Remove => {
                    if let Some(k) = key_of(o, s) {
                        o.remove(&k);
                    }
                }
                _ => set(o, s, value.cloned().unwrap_or(Value::Null)),
            }
        }
    }
}

fn merge_into(element: &mut Map<String, Value>, v: &Value) {
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            set(element, k, x.clone());
        }
    }
}

/// The `attr eq value` terms of a filter, as the starting point of a new value.
fn seed_from_filter(f: &Filter) -> Map<String, Value> {
    let mut out = Map::new();
    fn walk(f: &Filter, out: &mut Map<String, Value>) {
        match f {
            Filter::And(l, r) => {
                walk(l, out);
                walk(r, out);
            }
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } => {
                let v = match value {
                    CompValue::Str(s) => Value::String(s.clone()),
                    CompValue::Bool(b) => Value::Bool(*b),
                    CompValue::Num(n) => Value::Number(n.clone()),
                    CompValue::Null => return,
                };
                out.insert(path.name.clone(), v);
            }
            _ => {}
        }
    }
    walk(f, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_with_filters_and_sub_attributes() {
        // Found by fuzzing: multi-byte characters where "urn:" would be.
        assert!(PatchPath::parse("n~\u{0}\u{6e0}\u{8}").is_err());
        assert!(PatchPath::parse("urné:x").is_err());
        let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr.name, "emails");
        assert_eq!(p.sub_after_filter.as_deref(), Some("value"));
        assert_eq!(p.filter.unwrap().to_string(), r#"type eq "work""#);
        let p = PatchPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            p.attr.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(
            (p.attr.name.as_str(), p.attr.sub.as_deref()),
            ("manager", Some("value"))
        );
        for bad in [
            "emails[type eq",
            "emails]x[",
            "name.givenName[x pr]",
            "emails[type pr]junk",
            "1abc",
        ] {
            assert!(PatchPath::parse(bad).is_err(), "{bad}");
        }
    }
}
