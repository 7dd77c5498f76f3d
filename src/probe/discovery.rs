//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`, their
//! content, and the schema documents' shape (RFC 7643 §7, checked by the same code that
//! checks scimlab's own catalogue).

use super::{Probe, TypeInfo, is_list, resources};
use crate::client::ClientError;
use crate::schema::SchemaDef;
use serde_json::Value;

impl Probe<'_> {
    /// Reads the discovery documents; false when nothing can be probed without them.
    pub(super) async fn discovery(&mut self) -> Result<bool, ClientError> {
        let a = self
            .client
            .send("GET", "/ServiceProviderConfig", None)
            .await?;
        let spc_ok = a.status == 200 && a.json.as_ref().is_some_and(Value::is_object);
        self.outcome(
            "discovery.spc",
            "",
            spc_ok,
            "200 with a ServiceProviderConfig",
            a.brief(),
            Some(&a.request),
        );
        if spc_ok {
            self.spc = a.json.clone().unwrap_or_default();
            let missing: Vec<&str> = ["patch", "bulk", "filter", "changePassword", "sort", "etag"]
                .into_iter()
                .filter(|k| self.spc[*k]["supported"].as_bool().is_none())
                .collect();
            let schemes = self.spc["authenticationSchemes"].as_array().is_some();
            self.outcome(
                "discovery.spc.shape",
                "",
                missing.is_empty() && schemes,
                "every feature with a boolean \"supported\", and authenticationSchemes",
                if missing.is_empty() && schemes {
                    "complete".to_string()
                } else {
                    format!(
                        "missing or not boolean: {}{}",
                        missing.join(", "),
                        if schemes {
                            ""
                        } else {
                            " authenticationSchemes"
                        }
                    )
                },
                Some(&a.request),
            );
        }

        let a = self.client.send("GET", "/ResourceTypes", None).await?;
        let mut problems = Vec::new();
        if !is_list(&a) {
            problems.push(format!("not a ListResponse: {}", a.brief()));
        }
        for rt in resources(&a) {
            let name = rt["name"].as_str().unwrap_or_default();
            let endpoint = rt["endpoint"].as_str().unwrap_or_default();
            let schema = rt["schema"].as_str().unwrap_or_default();
            if name.is_empty() || !endpoint.starts_with('/') || !schema.starts_with("urn:") {
                problems.push(format!(
                    "resource type {name:?}: needs name, endpoint (/…) and schema (URN)"
                ));
                continue;
            }
            let extensions = rt["schemaExtensions"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter_map(|x| {
                            Some((
                                x["schema"].as_str()?.to_string(),
                                x["required"].as_bool().unwrap_or(false),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.types.push(TypeInfo {
                name: name.to_string(),
                endpoint: endpoint.to_string(),
                schema: schema.to_string(),
                extensions,
            });
        }
        if self.types.is_empty() && problems.is_empty() {
            problems.push("no resource types".into());
        }
        self.outcome(
            "discovery.resource_types",
            "",
            problems.is_empty(),
            "a ListResponse of resource types, each with name, endpoint and schema",
            if problems.is_empty() {
                self.types
                    .iter()
                    .map(|t| format!("{} at {}", t.name, t.endpoint))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                problems.join("; ")
            },
            Some(&a.request),
        );

        let a = self.client.send("GET", "/Schemas", None).await?;
        self.outcome(
            "discovery.schemas",
            "",
            is_list(&a),
            "a ListResponse of schemas",
            a.brief(),
            Some(&a.request),
        );
        let mut malformed = Vec::new();
        for doc in resources(&a) {
            let id = doc["id"].as_str().unwrap_or("(no id)").to_string();
            if let Err(p) = crate::schema::check::check_schema_document(&doc.to_string()) {
                malformed.push(format!("{id}: {}", p.join("; ")));
                continue;
            }
            match serde_json::from_value::<SchemaDef>(doc) {
                Ok(s) => {
                    self.schemas.insert(s.id.to_ascii_lowercase(), s);
                }
                Err(e) => malformed.push(format!("{id}: {e}")),
            }
        }
        self.outcome(
            "discovery.schemas.wellformed",
            "",
            malformed.is_empty(),
            "attributes with name, type, multiValued and valid characteristics",
            if malformed.is_empty() {
                format!("{} schema(s) well formed", self.schemas.len())
            } else {
                malformed.join(" | ")
            },
            Some(&a.request),
        );
        let mut unserved = Vec::new();
        for t in &self.types {
            for urn in std::iter::once(&t.schema).chain(t.extensions.iter().map(|(u, _)| u)) {
                if self.schema(urn).is_none() {
                    unserved.push(format!("{urn} (of {})", t.name));
                }
            }
        }
        self.outcome(
            "discovery.schemas.complete",
            "",
            unserved.is_empty(),
            "every resource type's schema and extensions in /Schemas",
            if unserved.is_empty() {
                "all served".to_string()
            } else {
                format!("not served: {}", unserved.join(", "))
            },
            Some(&a.request),
        );
        Ok(!self.types.is_empty())
    }
}
