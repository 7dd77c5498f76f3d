//! Resources generated from the server's own `/Schemas`: every required attribute, and with
//! `full` also the writable simple attributes (so PUT can show what persists), each with a
//! value of its type, canonical where the schema lists canonical values, unique to the run.

use super::{Probe, TypeInfo};
use crate::schema::{AttrType, AttributeDef, Mutability, Returned};
use serde_json::{Map, Value, json};

/// Attributes a generated resource never sets: server-assigned, or relations set elsewhere.
const NOT_GENERATED: &[&str] = &[
    "id",
    "meta",
    "schemas",
    "members",
    "groups",
    "password",
    "manager",
    "entitlements",
    "roles",
    "x509Certificates",
    "photos",
];

impl Probe<'_> {
    /// A resource of type `t`.
    pub(super) fn sample(&mut self, t: &TypeInfo, full: bool) -> Value {
        let mut doc = Map::new();
        let mut schemas = vec![Value::String(t.schema.clone())];
        if let Some(core) = self.schema(&t.schema).cloned() {
            for attr in &core.attributes {
                if let Some(v) = self.attr_value(t, attr, full) {
                    doc.insert(attr.name.clone(), v);
                }
            }
        }
        for (urn, required) in t.extensions.clone() {
            let Some(ext) = self.schema(&urn).cloned() else {
                continue;
            };
            let mut inner = Map::new();
            for attr in &ext.attributes {
                if let Some(v) = self.attr_value(t, attr, full) {
                    inner.insert(attr.name.clone(), v);
                }
            }
            if !inner.is_empty() || required {
                schemas.push(Value::String(urn.clone()));
                doc.insert(urn, Value::Object(inner));
            }
        }
        doc.insert("schemas".into(), Value::Array(schemas));
        Value::Object(doc)
    }

    fn attr_value(&mut self, t: &TypeInfo, attr: &AttributeDef, full: bool) -> Option<Value> {
        let writable = !matches!(attr.mutability, Mutability::ReadOnly);
        if !writable
            || NOT_GENERATED
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&attr.name))
        {
            return None;
        }
        let wanted = attr.required
            || (full
                && attr.mutability != Mutability::WriteOnly
                && attr.returned != Returned::Never
                && attr.ty != AttrType::Reference
                && attr.ty != AttrType::Binary);
        if !wanted {
            return None;
        }
        // Okta's entitlement schemas want `type` to name the resource type.
        if attr.name == "type" && !attr.multi_valued && attr.canonical_values.is_empty() {
            return Some(json!(t.name));
        }
        let one = self.value_of(attr)?;
        Some(if attr.multi_valued { json!([one]) } else { one })
    }

    fn value_of(&mut self, attr: &AttributeDef) -> Option<Value> {
        let name = attr.name.to_ascii_lowercase();
        if let Some(c) = attr.canonical_values.first() {
            return Some(json!(c));
        }
        Some(match attr.ty {
            AttrType::String if name.contains("email") => {
                json!(format!("{}@example.com", self.unique("mail")))
            }
            AttrType::String if name == "locale" => json!("en-US"),
            AttrType::String if name == "preferredlanguage" => json!("en-US"),
            AttrType::String if name == "timezone" => json!("Europe/Berlin"),
            AttrType::String if formatted(&name).is_some() => formatted(&name)?,
            AttrType::String => json!(self.unique(&attr.name)),
            AttrType::Boolean => json!(true),
            AttrType::Integer => json!(7),
            AttrType::Decimal => json!(2.5),
            AttrType::DateTime => json!("2025-01-02T03:04:05Z"),
            AttrType::Binary => json!("AAEC"),
            AttrType::Reference => json!("https://example.com/scimlab-probe"),
            AttrType::Complex => {
                let mut o = Map::new();
                for sub in &attr.sub_attributes {
                    if sub.mutability == Mutability::ReadOnly
                        || sub.ty == AttrType::Reference
                        || sub.name == "$ref"
                    {
                        continue;
                    }
                    let v = match (name.as_str(), sub.name.as_str()) {
                        ("emails", "value") => json!(format!("{}@example.com", self.unique("m"))),
                        ("phonenumbers", "value") => json!("+1 555 0100"),
                        (_, "primary") => json!(true),
                        (_, "type") => match sub.canonical_values.first() {
                            Some(c) => json!(c),
                            None => json!("work"),
                        },
                        (_, "display") => continue,
                        // RFC 9944 §7.1: a BLE passkey has six digits.
                        (n, "key") if n.contains(":pairingpasskey:") => json!(123456),
                        _ if sub.required || !attr.multi_valued => self.value_of(sub)?,
                        (_, "value") => self.value_of(sub)?,
                        _ => continue,
                    };
                    o.insert(sub.name.clone(), v);
                }
                if o.is_empty() {
                    return None;
                }
                Value::Object(o)
            }
        })
    }
}

/// A value in the form the RFCs give an attribute of this (lower-case) name, where a
/// made-up string would be refused: RFC 9944's MAC and EUI-64 addresses (locally
/// administered, so never a real device's).
pub(super) fn formatted(name: &str) -> Option<Value> {
    if name.ends_with("macaddress") || name == "separatebroadcastaddress" {
        Some(json!("02:00:5E:10:00:01"))
    } else if name.contains("eui64") {
        Some(json!("02:00:5E:FF:FE:10:00:01"))
    } else {
        None
    }
}

/// Whether a client never gets this attribute back (writeOnly, or returned never).
fn never_returned(def: Option<&AttributeDef>) -> bool {
    def.is_some_and(|d| d.returned == Returned::Never || d.mutability == Mutability::WriteOnly)
}

/// The attributes of `sent` (simple, returned by default) that `got` must carry back equal:
/// what a PUT must persist. Strings compare case-insensitively unless caseExact.
pub(super) fn lost_attributes(
    sent: &Value,
    got: &Value,
    defs: &dyn Fn(&str, &str) -> Option<AttributeDef>,
) -> Vec<String> {
    let mut lost = Vec::new();
    let (Some(sent), Some(got)) = (sent.as_object(), got.as_object()) else {
        return vec!["the answer is not an object".into()];
    };
    for (k, v) in sent {
        if k == "schemas" {
            continue;
        }
        if k.starts_with("urn:") {
            for (k2, v2) in v.as_object().into_iter().flatten() {
                let back = got.get(k).and_then(|e| e.get(k2));
                let def = defs(k, k2);
                if !never_returned(def.as_ref()) && !same(v2, back, def.as_ref()) {
                    lost.push(format!("{k}:{k2}"));
                }
            }
            continue;
        }
        let def = defs("", k);
        if !never_returned(def.as_ref()) && !same(v, got.get(k), def.as_ref()) {
            lost.push(k.clone());
        }
    }
    lost
}

fn same(sent: &Value, back: Option<&Value>, def: Option<&AttributeDef>) -> bool {
    let Some(back) = back else {
        return false;
    };
    let exact = def.is_none_or(|d| d.case_exact);
    if def.is_some_and(|d| d.ty == AttrType::DateTime)
        && let (Value::String(a), Value::String(b)) = (sent, back)
    {
        // The same instant, however written (offset, fractional seconds).
        let instant = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
        return instant(a).is_some() && instant(a) == instant(b);
    }
    match (sent, back) {
        (Value::String(a), Value::String(b)) if !exact => a.eq_ignore_ascii_case(b),
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| same(v, b.get(k), def.and_then(|d| d.sub(k)))),
        (Value::Array(a), Value::Array(b)) => {
            a.iter().all(|x| b.iter().any(|y| same(x, Some(y), def)))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => sent == back,
    }
}
