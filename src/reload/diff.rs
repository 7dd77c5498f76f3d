//! What a definition change did, in words: servers, resource types and attributes added,
//! removed or changed. Logged on every reload and shown in `/healthz`.

use crate::model::{Model, ResourceType, ServerModel};
use std::collections::BTreeSet;

/// Attribute names of a resource type, qualified by schema for extensions.
fn attributes(rt: &ResourceType) -> BTreeSet<String> {
    rt.schemas()
        .flat_map(|s| {
            let prefix = if s.id == rt.schema.id {
                String::new()
            } else {
                format!("{}:", s.id)
            };
            s.attributes
                .iter()
                .map(move |a| format!("{prefix}{}", a.name))
        })
        .collect()
}

fn server_changes(old: &ServerModel, new: &ServerModel, out: &mut Vec<String>) {
    let id = &new.id;
    for rt in &new.resource_types {
        match old.by_name(&rt.name) {
            None => out.push(format!(
                "{id}: resource type {} added at {}",
                rt.name, rt.endpoint
            )),
            Some(before) => {
                if before.endpoint != rt.endpoint {
                    out.push(format!(
                        "{id}: {} moved from {} to {}",
                        rt.name, before.endpoint, rt.endpoint
                    ));
                }
                let (a, b) = (attributes(before), attributes(rt));
                for added in b.difference(&a) {
                    out.push(format!("{id}: {} attribute {added} added", rt.name));
                }
                for removed in a.difference(&b) {
                    out.push(format!(
                        "{id}: {} attribute {removed} removed (stored values are kept)",
                        rt.name
                    ));
                }
                let changed: Vec<&str> = rt
                    .schemas()
                    .flat_map(|s| s.attributes.iter())
                    .filter(|attr| {
                        before
                            .schemas()
                            .flat_map(|s| s.attributes.iter())
                            .any(|x| x.name == attr.name && x != *attr)
                    })
                    .map(|a| a.name.as_str())
                    .collect();
                for name in changed {
                    out.push(format!("{id}: {} attribute {name} changed", rt.name));
                }
            }
        }
    }
    for rt in &old.resource_types {
        if new.by_name(&rt.name).is_none() {
            out.push(format!(
                "{id}: resource type {} removed (its data stays in the database)",
                rt.name
            ));
        }
    }
    if old.tokens != new.tokens {
        out.push(format!("{id}: tokens changed"));
    }
    if old.strict != new.strict || old.check_references != new.check_references {
        out.push(format!("{id}: validation changed"));
    }
    if (old.default_count, old.max_results, old.max_payload_bytes)
        != (new.default_count, new.max_results, new.max_payload_bytes)
    {
        out.push(format!("{id}: limits changed"));
    }
}

/// Every difference between two models, one line each.
pub fn diff(old: &Model, new: &Model) -> Vec<String> {
    let mut out = Vec::new();
    for (id, server) in &new.servers {
        match old.servers.get(id) {
            None => out.push(format!("server {id} added ({})", server.source.display())),
            // Reused as compiled before: nothing to compare.
            Some(before) if std::sync::Arc::ptr_eq(before, server) => {}
            Some(before) => server_changes(before, server, &mut out),
        }
    }
    for id in old.servers.keys() {
        if !new.servers.contains_key(id) {
            out.push(format!(
                "server {id} removed (its data stays in the database)"
            ));
        }
    }
    out
}
