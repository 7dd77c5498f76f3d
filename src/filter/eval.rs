//! In-memory evaluation of a value filter (`emails[type eq "work"]`) against one value of a
//! multi-valued complex attribute, for PATCH paths. Paths are sub-attribute names.

use super::{CompValue, CompareOp, Filter};
use crate::schema::{AttrType, AttributeDef};
use serde_json::Value;
use std::cmp::Ordering;

/// Whether `element` (one value of `attr`) satisfies `filter`.
pub fn matches(filter: &Filter, attr: &AttributeDef, element: &Value) -> bool {
    match filter {
        Filter::And(l, r) => matches(l, attr, element) && matches(r, attr, element),
        Filter::Or(l, r) => matches(l, attr, element) || matches(r, attr, element),
        Filter::Not(x) => !matches(x, attr, element),
        Filter::ValuePath { .. } => false,
        Filter::Present(p) => lookup(attr, element, &p.name).is_some_and(|(_, v)| present(v)),
        Filter::Compare { path, op, value } => {
            let found = lookup(attr, element, &path.name);
            match (found, value) {
                (None, CompValue::Null) => *op == CompareOp::Eq,
                (None, _) => *op == CompareOp::Ne,
                (Some((_, v)), CompValue::Null) => (*op == CompareOp::Ne) == present(v),
                (Some((def, v)), value) => compare(def, v, *op, value),
            }
        }
    }
}

fn present(v: &Value) -> bool {
    !matches!(v, Value::Null) && v != &Value::String(String::new())
}

/// The sub-attribute `name` of `element` (or the element itself for a simple multi-valued
/// attribute addressed as `value`).
fn lookup<'a>(
    attr: &'a AttributeDef,
    element: &'a Value,
    name: &str,
) -> Option<(Option<&'a AttributeDef>, &'a Value)> {
    match element {
        Value::Object(map) => {
            let def = attr.sub(name);
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| (def, v))
        }
        other if name.eq_ignore_ascii_case("value") => Some((Some(attr), other)),
        _ => None,
    }
}

fn compare(def: Option<&AttributeDef>, v: &Value, op: CompareOp, value: &CompValue) -> bool {
    let case_exact = def.is_some_and(|d| d.case_exact);
    let ordering = match (v, value) {
        (Value::String(a), CompValue::Str(b)) => {
            let (a, b) = if case_exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                CompareOp::Co => return a.contains(&b),
                CompareOp::Sw => return a.starts_with(&b),
                CompareOp::Ew => return a.ends_with(&b),
                _ if def.is_some_and(|d| d.ty == AttrType::DateTime) => {
                    match (
                        chrono::DateTime::parse_from_rfc3339(&a),
                        chrono::DateTime::parse_from_rfc3339(&b),
                    ) {
                        (Ok(x), Ok(y)) => x.cmp(&y),
                        _ => a.cmp(&b),
                    }
                }
                _ => a.cmp(&b),
            }
        }
        (Value::Number(a), CompValue::Num(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Less),
            _ => return false,
        },
        (Value::Bool(a), CompValue::Bool(b)) => {
            return match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                _ => false,
            };
        }
        _ => return op == CompareOp::Ne,
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{catalogue, urn};
    use serde_json::json;

    #[test]
    fn matches_values_of_a_multi_valued_attribute() {
        let user = catalogue().get(urn::USER).unwrap();
        let emails = user.attr("emails").unwrap();
        let work = json!({"value": "Bob@Example.com", "type": "work", "primary": true});
        let f = |s: &str| super::super::parse(s).unwrap();
        assert!(matches(&f(r#"type eq "WORK""#), emails, &work));
        assert!(matches(
            &f(r#"type eq "work" and primary eq true"#),
            emails,
            &work
        ));
        assert!(!matches(
            &f(r#"type eq "home" or primary eq false"#),
            emails,
            &work
        ));
        assert!(matches(&f(r#"value ew "example.COM""#), emails, &work));
        assert!(matches(&f(r#"not (type eq "home")"#), emails, &work));
        assert!(matches(&f("display eq null"), emails, &work));
        assert!(matches(&f("value pr"), emails, &work));
        assert!(!matches(&f("display pr"), emails, &work));
    }
}
