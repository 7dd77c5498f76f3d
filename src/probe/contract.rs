//! `--contract servers.d/app.yaml`: a scimlab definition (profiles applied) is the
//! specification of the server under test. The server must advertise its resource types and
//! attributes with the same characteristics, and enforce them: canonical values, uniqueness,
//! immutable and writeOnce values, required attributes.

use super::{Probe, TypeInfo};
use crate::client::ClientError;
use crate::model::{ResourceType, ServerModel};
use crate::schema::{AttrType, AttributeDef, Mutability, Uniqueness};
use serde_json::{Value, json};

/// Differences between a contract attribute and the served one, named by path.
fn differences(path: &str, want: &AttributeDef, got: &AttributeDef, out: &mut Vec<String>) {
    let mut diff = |what: &str, w: String, g: String| {
        if w != g {
            out.push(format!("{path}: {what} {w} (served {g})"));
        }
    };
    diff("type", format!("{:?}", want.ty), format!("{:?}", got.ty));
    diff(
        "multiValued",
        want.multi_valued.to_string(),
        got.multi_valued.to_string(),
    );
    diff(
        "required",
        want.required.to_string(),
        got.required.to_string(),
    );
    diff(
        "caseExact",
        want.case_exact.to_string(),
        got.case_exact.to_string(),
    );
    diff(
        "mutability",
        format!("{:?}", want.mutability),
        format!("{:?}", got.mutability),
    );
    diff(
        "returned",
        format!("{:?}", want.returned),
        format!("{:?}", got.returned),
    );
    diff(
        "uniqueness",
        format!("{:?}", want.uniqueness),
        format!("{:?}", got.uniqueness),
    );
    let mut a = want.canonical_values.clone();
    let mut b = got.canonical_values.clone();
    a.sort();
    b.sort();
    diff("canonicalValues", format!("{a:?}"), format!("{b:?}"));
    for sub in &want.sub_attributes {
        match got.sub(&sub.name) {
            Some(s) => differences(&format!("{path}.{}", sub.name), sub, s, out),
            None => out.push(format!("{path}.{} is not served", sub.name)),
        }
    }
}

/// Sets `name` in the core schema (`urn` None) or an extension of a generated resource.
fn set(doc: &mut Value, urn: Option<&str>, name: &str, v: Value) {
    match urn {
        None => doc[name] = v,
        Some(u) => {
            if !doc[u].is_object() {
                doc[u] = json!({});
                if let Some(s) = doc["schemas"].as_array_mut() {
                    s.push(json!(u));
                }
            }
            doc[u][name] = v;
        }
    }
}

fn unset(doc: &mut Value, urn: Option<&str>, name: &str) {
    let target = match urn {
        None => doc.as_object_mut(),
        Some(u) => doc.get_mut(u).and_then(Value::as_object_mut),
    };
    if let Some(o) = target {
        o.retain(|k, _| !k.eq_ignore_ascii_case(name));
    }
}

impl Probe<'_> {
    pub(super) async fn contract(&mut self, model: &ServerModel) -> Result<(), ClientError> {
        let mut problems = Vec::new();
        for rt in &model.resource_types {
            let Some(t) = self.type_named(&rt.name) else {
                problems.push(format!("{} is not advertised", rt.name));
                continue;
            };
            if !t.endpoint.eq_ignore_ascii_case(&rt.endpoint) {
                problems.push(format!(
                    "{}: endpoint {} (served {})",
                    rt.name, rt.endpoint, t.endpoint
                ));
            }
            if !t.schema.eq_ignore_ascii_case(&rt.schema.id) {
                problems.push(format!(
                    "{}: schema {} (served {})",
                    rt.name, rt.schema.id, t.schema
                ));
            }
            for e in &rt.extensions {
                match t
                    .extensions
                    .iter()
                    .find(|(u, _)| u.eq_ignore_ascii_case(&e.schema.id))
                {
                    Some((_, req)) if *req != e.required => problems.push(format!(
                        "{}: extension {} required {} (served {req})",
                        rt.name, e.schema.id, e.required
                    )),
                    Some(_) => {}
                    None => problems.push(format!(
                        "{}: extension {} is not advertised",
                        rt.name, e.schema.id
                    )),
                }
            }
        }
        self.outcome(
            "contract.resource_types",
            "",
            problems.is_empty(),
            "the contract's resource types, endpoints, schemas and extensions",
            if problems.is_empty() {
                "all advertised as declared".into()
            } else {
                problems.join("; ")
            },
            Some("GET /ResourceTypes"),
        );
        let mut diffs = Vec::new();
        for rt in &model.resource_types {
            for schema in rt.schemas() {
                let Some(served) = self.schema(&schema.id).cloned() else {
                    diffs.push(format!("{} is not served", schema.id));
                    continue;
                };
                for attr in &schema.attributes {
                    match served.attr(&attr.name) {
                        Some(s) => differences(
                            &format!("{}:{}", schema.id, attr.name),
                            attr,
                            s,
                            &mut diffs,
                        ),
                        None => diffs.push(format!("{}:{} is not served", schema.id, attr.name)),
                    }
                }
            }
        }
        diffs.sort();
        diffs.dedup();
        self.outcome(
            "contract.attributes",
            "",
            diffs.is_empty(),
            "every attribute as the contract declares it",
            if diffs.is_empty() {
                "all served as declared".into()
            } else {
                diffs.join("; ")
            },
            Some("GET /Schemas"),
        );
        let mut tried = [false; 4];
        for rt in &model.resource_types {
            let Some(t) = self.type_named(&rt.name) else {
                continue;
            };
            self.enforcement(rt, &t, &mut tried).await?;
        }
        for (done, id) in tried.iter().zip([
            "contract.canonical",
            "contract.unique",
            "contract.immutable",
            "contract.required",
        ]) {
            if !done {
                self.skip(id, "", "the contract declares no such attribute");
            }
        }
        Ok(())
    }

    /// Tries each rule the contract declares on `rt`'s simple string attributes.
    async fn enforcement(
        &mut self,
        rt: &ResourceType,
        t: &TypeInfo,
        tried: &mut [bool; 4],
    ) -> Result<(), ClientError> {
        let mut attrs: Vec<(Option<String>, AttributeDef)> = rt
            .schema
            .attributes
            .iter()
            .map(|a| (None, a.clone()))
            .collect();
        for e in &rt.extensions {
            attrs.extend(
                e.schema
                    .attributes
                    .iter()
                    .map(|a| (Some(e.schema.id.clone()), a.clone())),
            );
        }
        for (urn, a) in attrs {
            if a.ty != AttrType::String || a.multi_valued || a.mutability == Mutability::ReadOnly {
                continue;
            }
            let subject = format!("{}.{}", rt.name, a.name);
            let urn = urn.as_deref();
            if !a.canonical_values.is_empty() {
                tried[0] = true;
                let mut doc = self.sample(t, false);
                set(&mut doc, urn, &a.name, json!("scimlab-probe-not-canonical"));
                let r = self.create(t, &doc).await?;
                self.outcome(
                    "contract.canonical",
                    &subject,
                    r.status == 400,
                    format!("400 for a value outside {:?}", a.canonical_values),
                    r.brief(),
                    Some(&r.request),
                );
            }
            if a.uniqueness != Uniqueness::None && a.canonical_values.is_empty() {
                tried[1] = true;
                let value = json!(self.unique(&a.name));
                let mut first = self.sample(t, false);
                set(&mut first, urn, &a.name, value.clone());
                let f = self.create(t, &first).await?;
                let mut second = self.sample(t, false);
                set(&mut second, urn, &a.name, value.clone());
                let s = self.create(t, &second).await?;
                self.outcome(
                    "contract.unique",
                    &subject,
                    f.status == 201 && s.status == 409,
                    "201, then 409 for the same value",
                    format!("{}, then {}", f.status, s.brief()),
                    Some(&s.request),
                );
            }
            if a.mutability == Mutability::Immutable && a.canonical_values.is_empty() {
                tried[2] = true;
                let mut doc = self.sample(t, false);
                set(&mut doc, urn, &a.name, json!(self.unique(&a.name)));
                let c = self.create(t, &doc).await?;
                if let Some(id) = c.at("id").as_str().map(str::to_string) {
                    let mut changed = c.json.clone().unwrap_or_default();
                    set(&mut changed, urn, &a.name, json!(self.unique(&a.name)));
                    let r = self
                        .client
                        .send("PUT", &format!("{}/{id}", t.endpoint), Some(&changed))
                        .await?;
                    self.outcome(
                        "contract.immutable",
                        &subject,
                        r.status == 400 && r.at("scimType") == "mutability",
                        "400 with scimType mutability",
                        r.brief(),
                        Some(&r.request),
                    );
                } else {
                    self.outcome(
                        "contract.immutable",
                        &subject,
                        false,
                        "201 for the first create",
                        c.brief(),
                        Some(&c.request),
                    );
                }
            }
            if a.required {
                tried[3] = true;
                let mut doc = self.sample(t, false);
                unset(&mut doc, urn, &a.name);
                let r = self.create(t, &doc).await?;
                self.outcome(
                    "contract.required",
                    &subject,
                    r.status == 400,
                    format!("400 without {}", a.name),
                    r.brief(),
                    Some(&r.request),
                );
            }
        }
        Ok(())
    }
}
