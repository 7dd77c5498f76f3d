//! Data management over a compiled model and its store: preparing a server when it is mounted
//! (catalogue items, seed data), listing servers with their counts, reset, and the export
//! format that import reads back exactly. Used by the CLI and by the server itself.

use crate::definition::CategoryKind;
use crate::engine::{Mode, normalize};
use crate::model::{Model, ServerModel, Sources};
use crate::seed::{self, SeedError};
use crate::store::{Member, Row, Store, StoreError, UniqueValues};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Version of the export format, written into every export.
pub const EXPORT_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("no server {0:?} is defined (see `scimlab servers`)")]
    UnknownServer(String),
    #[error("{0}")]
    Definitions(String),
    #[error("catalogue item {id:?} of {category}: {detail}")]
    Catalogue {
        category: String,
        id: String,
        detail: String,
    },
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("import: {0}")]
    Import(String),
}

/// Makes a server ready to serve: its indexes, its profiles' catalogue items (created or
/// updated to match the profile), and its seed data if it is empty. `before` is the server as
/// this process served it until now, if it did (see [`Store::apply_indexes`]).
pub fn prepare(
    store: &Store,
    server: &ServerModel,
    before: Option<&ServerModel>,
) -> Result<(), DataError> {
    // Replicas starting together prepare each server once: the second finds it done.
    store.exclusive(&format!("prepare {}", server.id), || {
        prepare_without_seed(store, server, before)?;
        seed::seed_if_empty(store, server)?;
        Ok(())
    })?
}

/// Deletes a served server's data; its profiles' catalogue (definition, not data) comes back
/// at once. Returns how many resources were deleted.
pub fn reset_served(store: &Store, server: &ServerModel) -> Result<usize, DataError> {
    let n = reset(store, &server.id)?;
    sync_catalogue(store, server)?;
    Ok(n)
}

/// Stores every catalogue item as a resource of its category with the profile's id. Items
/// already stored are updated only if the profile changed them; nothing is deleted.
fn sync_catalogue(store: &Store, server: &ServerModel) -> Result<(), DataError> {
    if server.catalogue.is_empty() {
        return Ok(());
    }
    store.write(|tx| {
        for cat in &server.catalogue {
            let Some(rt) = server.by_name(&cat.name) else {
                continue;
            };
            for item in &cat.items {
                let mut doc = json!({
                    "schemas": [rt.schema.id],
                    "displayName": item.display_name,
                });
                if cat.kind == CategoryKind::Entitlement {
                    doc["type"] = json!(cat.name);
                }
                if !item.description.is_empty() {
                    doc["description"] = json!(item.description);
                }
                let bad = |detail: String| DataError::Catalogue {
                    category: cat.name.clone(),
                    id: item.id.clone(),
                    detail,
                };
                let n = normalize(server, rt, &doc, Mode::Create)
                    .map_err(|e| bad(e.detail().to_string()))?;
                let text = serde_json::to_string(&n.doc).unwrap_or_default();
                match tx.get(&server.id, &item.id)? {
                    None => {
                        // Dated at the seed epoch, not now: exports stay reproducible.
                        let ts = seed::EPOCH_STAMP.to_string();
                        tx.insert(
                            server,
                            &Row {
                                id: item.id.clone(),
                                resource_type: rt.name.clone(),
                                version: 1,
                                created: ts.clone(),
                                last_modified: ts,
                                doc: text,
                            },
                        )?;
                    }
                    Some(row) if row.resource_type != rt.name => {
                        return Err(bad(format!(
                            "the id is already used by a {} on server {}",
                            row.resource_type, server.id
                        )));
                    }
                    Some(mut row) => {
                        let old: Value = serde_json::from_str(&row.doc).unwrap_or(Value::Null);
                        if old != Value::Object(n.doc.clone()) {
                            row.version += 1;
                            row.last_modified = crate::engine::now();
                            row.doc = text;
                            tx.update(server, &row, UniqueValues::MayChange)?;
                        }
                    }
                }
            }
        }
        Ok(())
    })
}

/// One stored resource in an export: everything needed to restore it exactly.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportedResource {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub created: String,
    pub last_modified: String,
    /// The stored document (canonical attribute names, no `id`/`meta`).
    pub doc: Value,
}

/// One group membership in an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportedMembership {
    pub group: String,
    pub member: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_type: Option<String>,
}

/// `scimlab export`: resources in insertion order (the order lists page in), then memberships.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Export {
    pub scimlab_export: u32,
    pub server: String,
    pub resources: Vec<ExportedResource>,
    pub memberships: Vec<ExportedMembership>,
}

/// All of a server's data as export text (pretty JSON, stable order).
pub fn export(store: &Store, server_id: &str) -> Result<String, DataError> {
    let (rows, members) = store
        .read(|c| Ok::<_, StoreError>((c.all_rows(server_id)?, c.all_memberships(server_id)?)))?;
    let export = Export {
        scimlab_export: EXPORT_FORMAT,
        server: server_id.to_string(),
        resources: rows
            .into_iter()
            .map(|r| ExportedResource {
                doc: serde_json::from_str(&r.doc).unwrap_or(Value::Null),
                resource_type: r.resource_type,
                id: r.id,
                version: r.version,
                created: r.created,
                last_modified: r.last_modified,
            })
            .collect(),
        memberships: members
            .into_iter()
            .map(|(group, m)| ExportedMembership {
                group,
                member: m.value,
                display: m.display,
                member_type: m.member_type,
            })
            .collect(),
    };
    Ok(serde_json::to_string_pretty(&export).unwrap_or_default())
}

/// Loads export text into `server`. The server must hold no data unless `replace` (then its
/// data is deleted first, in the same transaction). Returns the number of resources.
pub fn import(
    store: &Store,
    server: &ServerModel,
    text: &str,
    replace: bool,
) -> Result<usize, DataError> {
    let export: Export = serde_json::from_str(text)
        .map_err(|e| DataError::Import(format!("not a scimlab export: {e}")))?;
    if export.scimlab_export != EXPORT_FORMAT {
        return Err(DataError::Import(format!(
            "export format {} is not supported (this scimlab reads {EXPORT_FORMAT})",
            export.scimlab_export
        )));
    }
    for r in &export.resources {
        if server
            .by_name(crate::engine::live_type(&r.resource_type))
            .is_none()
        {
            return Err(DataError::Import(format!(
                "resource {} is a {}, which server {} does not serve",
                r.id, r.resource_type, server.id
            )));
        }
        if !r.doc.is_object() {
            return Err(DataError::Import(format!(
                "resource {}: doc must be a JSON object",
                r.id
            )));
        }
    }
    store.write(|tx| {
        let existing: i64 = tx.counts(&server.id)?.iter().map(|(_, n)| n).sum();
        if existing > 0 {
            if !replace {
                return Err(DataError::Import(format!(
                    "server {} already holds {existing} resource(s); reset it or pass --replace",
                    server.id
                )));
            }
            tx.delete_server(&server.id)?;
        }
        for r in &export.resources {
            tx.insert(
                server,
                &Row {
                    id: r.id.clone(),
                    resource_type: r.resource_type.clone(),
                    version: r.version,
                    created: r.created.clone(),
                    last_modified: r.last_modified.clone(),
                    doc: r.doc.to_string(),
                },
            )
            .map_err(|e| match e {
                StoreError::Unique { attribute } => DataError::Import(format!(
                    "resource {} breaks uniqueness ({}) on server {}",
                    r.id,
                    attribute.as_deref().unwrap_or("a unique attribute"),
                    server.id
                )),
                other => other.into(),
            })?;
        }
        let mut by_group: Vec<(String, Vec<Member>)> = Vec::new();
        for m in &export.memberships {
            let member = Member {
                value: m.member.clone(),
                display: m.display.clone(),
                member_type: m.member_type.clone(),
            };
            match by_group.last_mut() {
                Some((g, list)) if *g == m.group => list.push(member),
                _ => by_group.push((m.group.clone(), vec![member])),
            }
        }
        for (group, members) in by_group {
            tx.change_members(&server.id, &group, &members, &[])?;
        }
        Ok(export.resources.len())
    })
}

/// Deletes every resource of a server; returns how many there were.
pub fn reset(store: &Store, server_id: &str) -> Result<usize, DataError> {
    Ok(store.write(|tx| tx.delete_server(server_id))?)
}

/// Definitions plus database, for the data commands of the CLI.
pub struct Workspace {
    pub model: Result<Model, Vec<String>>,
    pub store: Store,
}

impl Workspace {
    pub fn open(sources: &Sources, db: &crate::store::Location) -> anyhow::Result<Workspace> {
        let model = sources
            .compile()
            .map_err(|p| p.iter().map(ToString::to_string).collect());
        let store =
            Store::connect(db).map_err(|e| anyhow::anyhow!("opening database {db}: {e}"))?;
        Ok(Workspace { model, store })
    }

    /// The server's compiled definition; every definition problem if they do not compile.
    pub fn server(&self, id: &str) -> Result<&ServerModel, DataError> {
        match &self.model {
            Ok(m) => m
                .server(id)
                .map(|s| &**s)
                .ok_or_else(|| DataError::UnknownServer(id.to_string())),
            Err(problems) => Err(DataError::Definitions(format!(
                "the definitions do not compile:\n{}",
                problems.join("\n")
            ))),
        }
    }

    /// `scimlab servers`: each server with its status and counts, and data without a definition.
    pub fn servers_table(&self) -> Result<String, DataError> {
        let counts = self.store.read(|c| c.all_counts())?;
        let mut out = String::new();
        let mut listed = std::collections::BTreeSet::new();
        match &self.model {
            Ok(model) => {
                for s in model.servers.values() {
                    let mine: Vec<String> = counts
                        .iter()
                        .filter(|(id, _, _)| *id == s.id)
                        .map(|(_, t, n)| format!("{t}={n}"))
                        .collect();
                    listed.insert(s.id.clone());
                    out.push_str(&format!(
                        "{:<24} ok        {:<40} {}\n",
                        s.id,
                        s.source.display(),
                        if mine.is_empty() {
                            "empty".into()
                        } else {
                            mine.join(" ")
                        }
                    ));
                }
            }
            Err(problems) => {
                out.push_str("definitions do not compile; nothing is served until fixed:\n");
                for p in problems {
                    out.push_str(&format!("  {p}\n"));
                }
            }
        }
        let mut orphans: Vec<&str> = counts
            .iter()
            .map(|(id, _, _)| id.as_str())
            .filter(|id| !listed.contains(*id))
            .collect();
        orphans.dedup();
        for id in orphans {
            let mine: Vec<String> = counts
                .iter()
                .filter(|(i, _, _)| i == id)
                .map(|(_, t, n)| format!("{t}={n}"))
                .collect();
            out.push_str(&format!(
                "{id:<24} no-def    {:<40} {}\n",
                "(data kept; no definition)",
                mine.join(" ")
            ));
        }
        Ok(out)
    }

    pub fn reset(&self, id: &str) -> Result<usize, DataError> {
        // A server whose definition is gone can still be reset.
        if let Ok(model) = &self.model
            && model.server(id).is_none()
        {
            let has_data = self
                .store
                .read(|c| c.counts(id))?
                .iter()
                .any(|(_, n)| *n > 0);
            if !has_data {
                return Err(DataError::UnknownServer(id.to_string()));
            }
        }
        reset(&self.store, id)
    }

    pub fn export(&self, id: &str) -> Result<String, DataError> {
        self.server(id)?;
        export(&self.store, id)
    }

    pub fn import(&self, id: &str, text: &str, replace: bool) -> Result<usize, DataError> {
        import(&self.store, self.server(id)?, text, replace)
    }

    pub fn seed(&self, id: &str, req: &seed::Request) -> Result<seed::Report, DataError> {
        Workspace::seed_store(&self.store, self.server(id)?, req)
    }

    /// Seeds `server` in `store` after making sure its catalogue items exist.
    pub fn seed_store(
        store: &Store,
        server: &ServerModel,
        req: &seed::Request,
    ) -> Result<seed::Report, DataError> {
        prepare_without_seed(store, server, None)?;
        Ok(seed::seed(store, server, req)?)
    }
}

/// Indexes and catalogue, so explicit seeding can assign catalogue items.
fn prepare_without_seed(
    store: &Store,
    server: &ServerModel,
    before: Option<&ServerModel>,
) -> Result<(), DataError> {
    store.apply_indexes(server, before)?;
    sync_catalogue(store, server)
}
