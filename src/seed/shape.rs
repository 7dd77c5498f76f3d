//! The look of seed data: the embedded defaults (`templates/seed/defaults.yaml`), the value
//! patterns (handlebars) merged with the profiles' overrides, and fitting a generated document
//! to what the server's effective schema serves.

use super::{Rng, SeedError};
use crate::definition::SeedShape;
use crate::definition::patterns::{PATTERNS, registry};
use crate::model::ResourceType;
use crate::schema::{self, AttrType, AttributeDef, Mutability, urn};
use handlebars::{Context, Handlebars};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The shipped defaults, embedded at build time.
const DEFAULTS: &str = include_str!("../../templates/seed/defaults.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub patterns: BTreeMap<String, String>,
    pub organization: String,
    pub domains: Vec<String>,
    pub home_domains: Vec<String>,
    pub active_rate: f64,
    /// Department → its job titles.
    pub departments: BTreeMap<String, Vec<String>>,
    pub cost_centers: Vec<String>,
    pub locations: Vec<Location>,
    pub streets: Vec<String>,
    pub given_names: Vec<String>,
    pub family_names: Vec<String>,
    pub middle_initials: Vec<String>,
    pub teams: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country: String,
}

/// The embedded defaults; a test checks they parse and every pattern compiles.
pub fn defaults() -> &'static Defaults {
    static PARSED: LazyLock<Defaults> = LazyLock::new(|| {
        serde_saphyr::from_str(DEFAULTS).expect("templates/seed/defaults.yaml is checked by tests")
    });
    &PARSED
}

/// The compiled patterns plus the lists values are drawn from, for one server.
pub struct Patterns {
    hb: Handlebars<'static>,
    shape: SeedShape,
    active_rate: f64,
}

impl Patterns {
    pub fn new(defaults: &Defaults, shape: &SeedShape) -> Result<Patterns, SeedError> {
        let mut hb = registry();
        for name in PATTERNS {
            let template = shape
                .patterns
                .get(*name)
                .or_else(|| defaults.patterns.get(*name))
                .map(String::as_str)
                .unwrap_or("");
            hb.register_template_string(name, template)
                .map_err(|e| SeedError::Pattern {
                    name: name.to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(Patterns {
            hb,
            shape: shape.clone(),
            active_rate: shape.active_rate.unwrap_or(defaults.active_rate),
        })
    }

    /// Renders pattern `name` with `vars`, made a template context by the caller: handlebars
    /// would otherwise copy every variable into a new context for each pattern, and a user
    /// renders nine.
    fn render(&self, name: &str, vars: &Context) -> Result<String, SeedError> {
        self.hb
            .render_with_context(name, vars)
            .map_err(|e| SeedError::Pattern {
                name: name.to_string(),
                message: e.to_string(),
            })
    }

    pub fn teams(&self) -> Vec<String> {
        if self.shape.groups.is_empty() {
            defaults().teams.clone()
        } else {
            self.shape.groups.clone()
        }
    }

    pub fn group_name(&self, department: &str) -> Result<String, SeedError> {
        let vars = Context::from(json!({ "department": department }));
        self.render("group_name", &vars)
    }

    /// Draws one user's values. Departments, titles, cost centres and cities come from the
    /// server's effective canonical values when its profiles declare them.
    pub fn draw(&self, rng: &mut Rng, rt: &ResourceType, n: usize) -> Value {
        let d = defaults();
        let canonical = |path: &str| -> Vec<String> {
            crate::model::AttrPath::parse(path)
                .ok()
                .and_then(|p| match rt.resolve(&p) {
                    Ok(crate::model::Target::Doc(r)) => Some(r.leaf().canonical_values.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let departments = canonical(&format!("{}:department", urn::ENTERPRISE_USER));
        let department = if departments.is_empty() {
            let keys: Vec<&String> = d.departments.keys().collect();
            rng.pick(&keys).to_string()
        } else {
            rng.pick(&departments).clone()
        };
        let titles = canonical("title");
        let title = if titles.is_empty() {
            match d.departments.get(&department) {
                Some(t) if !t.is_empty() => rng.pick(t).clone(),
                _ => rng
                    .pick(d.departments.values().next().map_or(&[][..], |v| v))
                    .clone(),
            }
        } else {
            rng.pick(&titles).clone()
        };
        let cost_centers = canonical(&format!("{}:costCenter", urn::ENTERPRISE_USER));
        let cost_center = rng
            .pick(if cost_centers.is_empty() {
                &d.cost_centers
            } else {
                &cost_centers
            })
            .clone();
        let cities = canonical("addresses.locality");
        let location = if cities.is_empty() {
            rng.pick(&d.locations).clone()
        } else {
            let city = rng.pick(&cities).clone();
            d.locations
                .iter()
                .find(|l| l.city.eq_ignore_ascii_case(&city))
                .cloned()
                .unwrap_or(super::shape::Location {
                    city,
                    region: String::new(),
                    postal_code: String::new(),
                    country: String::new(),
                })
        };
        let domains = if self.shape.domains.is_empty() {
            &d.domains
        } else {
            &self.shape.domains
        };
        json!({
            "n": n,
            "given": rng.pick(&d.given_names),
            "middle": rng.pick(&d.middle_initials),
            "family": rng.pick(&d.family_names),
            "domain": rng.pick(domains),
            "home_domain": rng.pick(&d.home_domains),
            "department": department,
            "title": title,
            "cost_center": cost_center,
            "street_number": 1 + rng.below(9899),
            "street": rng.pick(&d.streets),
            "city": location.city,
            "region": location.region,
            "postal_code": location.postal_code,
            "country": location.country,
            "digits": rng.digits(10),
            "organization": d.organization,
        })
    }

    /// A full User document from drawn values (fitted to the schema later).
    pub fn user_doc(&self, rng: &mut Rng, v: &Value) -> Result<Value, SeedError> {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let vars = &Context::from(v.clone());
        let user_name = self.render("user_name", vars)?;
        let display = self.render("display_name", vars)?;
        let mut address = json!({
            "type": "work",
            "primary": true,
            "streetAddress": self.render("street_address", vars)?,
            "locality": s("city"),
        });
        for (key, var) in [
            ("region", "region"),
            ("postalCode", "postal_code"),
            ("country", "country"),
        ] {
            if !s(var).is_empty() {
                address[key] = json!(s(var));
            }
        }
        let mut doc = json!({
            "userName": user_name,
            "externalId": self.render("external_id", vars)?,
            "name": {
                "givenName": s("given"),
                "middleName": s("middle"),
                "familyName": s("family"),
                "formatted": format!("{} {}. {}", s("given"), s("middle"), s("family")),
            },
            "displayName": display,
            "title": s("title"),
            "userType": "Employee",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "active": rng.chance(self.active_rate),
            "emails": [
                {"value": self.render("email_work", vars)?, "type": "work", "primary": true},
                {"value": self.render("email_home", vars)?, "type": "home"},
            ],
            "phoneNumbers": [
                {"value": self.render("phone_work", vars)?, "type": "work"},
                {"value": self.render("phone_mobile", vars)?, "type": "mobile"},
            ],
            "addresses": [address],
        });
        doc[urn::ENTERPRISE_USER] = json!({
            "employeeNumber": self.render("employee_number", vars)?,
            "costCenter": s("cost_center"),
            "organization": s("organization"),
            "division": s("department"),
            "department": s("department"),
        });
        Ok(doc)
    }
}

/// Fills attributes no pattern produces: every required one, and the server's own custom
/// attributes that have canonical values or are dates (so custom extensions look lived-in).
pub fn fill_required(rng: &mut Rng, rt: &ResourceType, doc: &mut Value, n: usize) {
    let catalogue = schema::catalogue();
    for s in rt.schemas() {
        let custom = catalogue.get(&s.id).is_none();
        for attr in &s.attributes {
            let present = if s.id == rt.schema.id {
                doc.get(&attr.name).is_some()
            } else {
                doc.get(&s.id).and_then(|e| e.get(&attr.name)).is_some()
            };
            if present || attr.mutability == Mutability::ReadOnly {
                continue;
            }
            let simple = attr.ty != AttrType::Complex && !attr.multi_valued;
            let wanted = attr.required
                || (custom
                    && simple
                    && (!attr.canonical_values.is_empty() || attr.ty == AttrType::DateTime));
            if !wanted {
                continue;
            }
            let Some(value) = sample(rng, attr, n) else {
                continue;
            };
            if s.id == rt.schema.id {
                doc[&attr.name] = value;
            } else {
                if !doc.get(&s.id).is_some_and(Value::is_object) {
                    doc[&s.id] = json!({});
                }
                doc[&s.id][&attr.name] = value;
            }
        }
    }
}

fn sample(rng: &mut Rng, attr: &AttributeDef, n: usize) -> Option<Value> {
    let one = |rng: &mut Rng, a: &AttributeDef| -> Option<Value> {
        Some(match a.ty {
            _ if !a.canonical_values.is_empty() => json!(rng.pick(&a.canonical_values)),
            AttrType::String => json!(format!("{}-{n}", a.name)),
            AttrType::Reference => json!(format!("https://example.com/{}/{n}", a.name)),
            AttrType::Boolean => json!(rng.chance(0.5)),
            AttrType::Integer => json!(rng.below(1000)),
            AttrType::Decimal => json!(rng.below(100_000) as f64 / 100.0),
            AttrType::DateTime => json!(super::timestamp(rng.below(20_000))),
            AttrType::Binary => json!("c2NpbWxhYg=="),
            AttrType::Complex => return None,
        })
    };
    let value = if attr.ty == AttrType::Complex {
        let mut o = Map::new();
        for sub in &attr.sub_attributes {
            if sub.required || sub.name == "value" {
                o.insert(sub.name.clone(), one(rng, sub)?);
            }
        }
        Value::Object(o)
    } else {
        one(rng, attr)?
    };
    Some(if attr.multi_valued {
        json!([value])
    } else {
        value
    })
}

/// Drops what the resource type does not serve (attributes, sub-attributes, extensions) and
/// sets `schemas`, so a profile that hides an attribute gets seed data without it.
pub fn fit(rt: &ResourceType, doc: &mut Value) {
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    let mut schemas = vec![json!(rt.schema.id)];
    obj.retain(|key, value| {
        if key == "externalId" {
            return true;
        }
        if let Some(ext) = rt.extension(key) {
            if let Some(fields) = value.as_object_mut() {
                fields.retain(|k, v| match ext.schema.attr(k) {
                    Some(a) => {
                        fit_value(a, v);
                        true
                    }
                    None => false,
                });
                if fields.is_empty() {
                    return false;
                }
            }
            schemas.push(json!(ext.schema.id));
            return true;
        }
        match rt.schema.attr(key) {
            Some(a) => {
                fit_value(a, value);
                true
            }
            None => false,
        }
    });
    obj.insert("schemas".into(), Value::Array(schemas));
}

fn fit_value(attr: &AttributeDef, value: &mut Value) {
    if attr.ty != AttrType::Complex {
        return;
    }
    let keep = |o: &mut Map<String, Value>| o.retain(|k, _| attr.sub(k).is_some());
    match value {
        Value::Object(o) => keep(o),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(keep),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::patterns::check_pattern;

    #[test]
    fn defaults_parse_and_every_default_pattern_compiles() {
        let d = defaults();
        for name in PATTERNS {
            let t = d
                .patterns
                .get(*name)
                .unwrap_or_else(|| panic!("default {name} missing"));
            check_pattern(name, t).unwrap();
        }
        assert!(d.departments.len() >= 13);
        assert!(check_pattern("user_name", "{{#if}").is_err());
        assert!(check_pattern("nope", "x").is_err());
    }

    #[test]
    fn helpers_render() {
        let mut h = registry();
        h.register_template_string("t", "{{lower a}}|{{upper a}}|{{pad n 4}}|{{slice d 1 3}}")
            .unwrap();
        let out = h
            .render("t", &json!({"a": "Ab", "n": 7, "d": "01234"}))
            .unwrap();
        assert_eq!(out, "ab|AB|0007|12");
    }
}
