//! The request pipeline below HTTP, on a real store, for property tests and fuzz targets.
//!
//! [`Pipeline`] compiles one server with every kind of attribute (strings, numbers, dates,
//! booleans, canonical values, multi-valued complex attributes, an extension, groups with
//! members), stores a few resources, and runs arbitrary input through the very code a request
//! runs: filters through parsing, SQL compilation and execution; PatchOps applied to stored
//! resources; JSON bodies through validation and storage. Each entry point returns `Err` with a
//! description when the outcome breaks a rule: a panic is the fuzzer's to catch, and an
//! internal error (5xx) for client input, or a failed PATCH that changed the resource, is a
//! violation.

use crate::engine::{self, Ctx, ListQuery, Projection};
use crate::error::ScimError;
use crate::model::{Model, ServerModel, Sources};
use crate::store::Store;
use serde_json::{Value, json};
use std::sync::Arc;

/// The server the pipeline runs, in the definition format users write.
pub const DEFINITION: &str = r#"
id: fuzz
tokens: [tok-fuzz]
resource_types:
  User:
    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]
    attributes:
      region: { type: string, canonical_values: [AMER, EMEA] }
      badge: { type: string, mutability: immutable }
      level: { type: integer }
      score: { type: decimal }
      hired: { type: dateTime }
      secret: { type: string, mutability: writeOnly, returned: never }
      tags: { type: string, multi_valued: true }
  Group: {}
validation:
  strict: true
"#;

pub struct Pipeline {
    _dir: tempfile::TempDir,
    store: Store,
    model: Arc<Model>,
    /// Ids of the stored users and the group.
    pub users: Vec<String>,
    pub group: String,
}

fn violation(what: &str, input: &str, e: &ScimError) -> Result<(), String> {
    if e.status() >= 500 {
        Err(format!("{what} {input:?} gave {e}"))
    } else {
        Ok(())
    }
}

impl Pipeline {
    /// A fresh database with the server compiled, prepared and holding a few resources.
    pub fn new() -> Pipeline {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let servers = dir.path().join("servers.d");
        std::fs::create_dir_all(&servers).expect("servers.d");
        std::fs::write(servers.join("fuzz.yaml"), DEFINITION).expect("the definition");
        let model = Sources::new(&servers, dir.path().join("profiles"))
            .compile()
            .unwrap_or_else(|p| panic!("the fuzzing definition compiles: {p:?}"));
        let store = Store::open(&dir.path().join("fuzz.db")).expect("the store opens");
        let mut p = Pipeline {
            _dir: dir,
            store,
            model: Arc::new(model),
            users: Vec::new(),
            group: String::new(),
        };
        crate::data::prepare(&p.store, p.server(), None).expect("the server is prepared");
        for (i, name) in ["bjensen", "Jane.Doe", "élodie", "o'malley"]
            .iter()
            .enumerate()
        {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "active": i % 2 == 0,
                "name": {"givenName": name, "familyName": "Fuzz"},
                "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true},
                           {"value": format!("{name}@home.example"), "type": "home"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": format!("{i}")},
                "urn:scimlab:schemas:extension:fuzz:2.0:User": {"level": i, "score": 1.5, "region": "EMEA", "hired": format!("2024-01-0{}T10:00:00Z", i + 1), "tags": ["a", "b"]},
            });
            let out = engine::create(&p.ctx("User"), &body, &Projection::default())
                .expect("a seed user is valid");
            p.users.push(
                out.body.to_value()["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        let members: Vec<Value> = p.users.iter().map(|id| json!({"value": id})).collect();
        let group = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Fuzzers", "members": members
        });
        let out = engine::create(&p.ctx("Group"), &group, &Projection::default())
            .expect("the seed group is valid");
        p.group = out.body.to_value()["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        p
    }

    fn server(&self) -> &ServerModel {
        self.model.server("fuzz").expect("the fuzz server")
    }

    fn ctx(&self, resource_type: &str) -> Ctx<'_> {
        let server = self.server();
        Ctx {
            store: &self.store,
            server,
            rt: server
                .by_name(resource_type)
                .expect("a served resource type"),
            base: "http://fuzz/scim/v2",
        }
    }

    /// A search with `filter` (and a sort) on every resource type.
    pub fn filter(&self, filter: &str) -> Result<(), String> {
        for rt in ["User", "Group"] {
            let q = ListQuery {
                filter: Some(filter.to_string()),
                sort_by: Some("meta.lastModified".into()),
                ..Default::default()
            };
            if let Err(e) = engine::list(&self.ctx(rt), &q, &Projection::default()) {
                violation("filter", filter, &e)?;
            }
        }
        Ok(())
    }

    /// A PATCH with `body` on a stored user and on the group. A refused PatchOp must leave
    /// the resource exactly as it was.
    pub fn patch(&self, body: &Value) -> Result<(), String> {
        for (rt, id) in [("User", &self.users[0]), ("Group", &self.group)] {
            let ctx = self.ctx(rt);
            let before =
                engine::get(&ctx, id, &Projection::default()).map_err(|e| e.to_string())?;
            if let Err(e) = engine::patch(&ctx, id, body, None, &Projection::default()) {
                violation("PatchOp", &body.to_string(), &e)?;
                let after =
                    engine::get(&ctx, id, &Projection::default()).map_err(|e| e.to_string())?;
                if after.body != before.body {
                    return Err(format!(
                        "the refused PatchOp {body} changed {rt} {id}: {} -> {}",
                        before.body.as_str(),
                        after.body.as_str()
                    ));
                }
            }
        }
        Ok(())
    }

    /// One PATCH, for callers that want to know whether it applied.
    pub fn patch_one(&self, resource_type: &str, id: &str, body: &Value) -> Result<(), ScimError> {
        engine::patch(
            &self.ctx(resource_type),
            id,
            body,
            None,
            &Projection::default(),
        )
        .map(|_| ())
    }

    /// One search, for callers that want to know whether it ran.
    pub fn search(&self, resource_type: &str, filter: &str) -> Result<Value, ScimError> {
        let q = ListQuery {
            filter: Some(filter.to_string()),
            ..Default::default()
        };
        engine::list(&self.ctx(resource_type), &q, &Projection::default()).map(|p| p.to_value())
    }

    /// One create, for callers that want to know whether it was stored.
    pub fn create_one(&self, resource_type: &str, body: &Value) -> Result<(), ScimError> {
        engine::create(&self.ctx(resource_type), body, &Projection::default()).map(|_| ())
    }

    /// A create (and a replace of a stored user) with `body`.
    pub fn write(&self, body: &Value) -> Result<(), String> {
        for rt in ["User", "Group"] {
            if let Err(e) = engine::create(&self.ctx(rt), body, &Projection::default()) {
                violation("create body", &body.to_string(), &e)?;
            }
        }
        if let Err(e) = engine::replace(
            &self.ctx("User"),
            &self.users[1],
            body,
            None,
            &Projection::default(),
        ) {
            violation("replace body", &body.to_string(), &e)?;
        }
        Ok(())
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new()
    }
}
