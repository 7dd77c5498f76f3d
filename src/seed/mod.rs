//! Deterministic, realistic seed data: users (names, emails over several domains, phones,
//! addresses, departments, titles, managers, employee numbers, an active rate), groups with a
//! realistic size distribution, and assignments of the profiles' entitlements and roles.
//!
//! Everything comes from one seeded generator, ids and timestamps included, so the same seed on
//! the same server gives byte-identical data. Value patterns are handlebars templates
//! (`templates/seed/defaults.yaml`, overridden by profile packs); the document's shape follows
//! the server's effective schema, so a profile that hides an attribute gets none.

mod shape;

use crate::engine::{Mode, normalize};
use crate::model::{ResourceType, ServerModel};
use crate::store::{self, Member, Row, Store, StoreError};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

pub use crate::definition::patterns::{PATTERNS, check_pattern};
pub use shape::{Defaults, defaults};

/// What to add.
#[derive(Debug, Clone)]
pub struct Request {
    pub users: usize,
    pub groups: usize,
    pub seed: u64,
}

/// What was added.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub users: usize,
    pub groups: usize,
    pub memberships: usize,
    pub assignments: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeded {} user(s), {} group(s), {} membership(s), {} entitlement/role assignment(s)",
            self.users, self.groups, self.memberships, self.assignments
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("server {0} serves no User resource type to seed")]
    NoUsers(String),
    #[error("seed pattern {name:?}: {message}")]
    Pattern { name: String, message: String },
    #[error("a seeded {resource_type} does not satisfy the server's rules: {detail}")]
    Invalid {
        resource_type: String,
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub use crate::vocab::rng::Rng;

/// Seeded timestamps start here and advance per resource, so exports are reproducible.
const EPOCH: &str = "2024-01-02T09:00:00Z";
/// The epoch in stored form (catalogue items are dated here).
pub const EPOCH_STAMP: &str = "2024-01-02T09:00:00.000Z";

fn timestamp(n: usize) -> String {
    let base = chrono::DateTime::parse_from_rfc3339(EPOCH).expect("valid epoch");
    crate::vocab::time::stored(
        (base + chrono::Duration::minutes(37 * n as i64)).with_timezone(&chrono::Utc),
    )
}

/// Seeds `server` only if it holds no users and no groups yet (`seed:` in a definition).
pub fn seed_if_empty(store: &Store, server: &ServerModel) -> Result<Option<Report>, SeedError> {
    let Some(def) = &server.seed else {
        return Ok(None);
    };
    let counts = store.read(|c| c.counts(&server.id))?;
    let seeded_types: Vec<&str> = server
        .resource_types
        .iter()
        .filter(|rt| rt.has_groups || rt.has_members)
        .map(|rt| rt.name.as_str())
        .collect();
    if counts
        .iter()
        .any(|(t, n)| *n > 0 && seeded_types.contains(&t.as_str()))
    {
        return Ok(None);
    }
    let report = seed(
        store,
        server,
        &Request {
            users: def.users,
            groups: def.groups,
            seed: def.seed,
        },
    )?;
    tracing::info!(server = %server.id, "{report}");
    Ok(Some(report))
}

/// Adds `req.users` users and `req.groups` groups to `server`, in one transaction.
pub fn seed(store: &Store, server: &ServerModel, req: &Request) -> Result<Report, SeedError> {
    let users_rt = server
        .resource_types
        .iter()
        .find(|rt| rt.has_groups && rt.name.eq_ignore_ascii_case("User"))
        .or_else(|| server.resource_types.iter().find(|rt| rt.has_groups))
        .ok_or_else(|| SeedError::NoUsers(server.id.clone()))?;
    let groups_rt = server.resource_types.iter().find(|rt| rt.has_members);
    let patterns = shape::Patterns::new(defaults(), &server.seed_shape)?;
    store.write(|tx| {
        let counts: HashMap<String, i64> = tx.counts(&server.id)?.into_iter().collect();
        let existing_users = *counts.get(&users_rt.name).unwrap_or(&0) as usize;
        let existing_groups = groups_rt
            .map(|g| *counts.get(&g.name).unwrap_or(&0) as usize)
            .unwrap_or(0);
        // The stream depends on the seed and on what is already there, so seeding twice adds
        // different people, and replaying the same commands gives the same data.
        let mut rng = Rng::new(
            req.seed
                ^ (existing_users as u64).wrapping_mul(0xA24B_AED4_963E_E407)
                ^ (existing_groups as u64).rotate_left(32),
        );
        let mut generator = Generator {
            server,
            rt: users_rt,
            patterns: &patterns,
            taken: tx.user_names(&server.id, &users_rt.name)?,
            by_department: BTreeMap::new(),
            report: Report::default(),
        };
        let mut user_ids = Vec::with_capacity(req.users);
        for i in 0..req.users {
            let n = existing_users + i + 1;
            let id = generator.user(tx, &mut rng, n)?;
            user_ids.push(id);
        }
        if let Some(grt) = groups_rt {
            generator.groups(tx, &mut rng, grt, req.groups, existing_groups, &user_ids)?;
        }
        Ok(generator.report)
    })
}

struct Generator<'a> {
    server: &'a ServerModel,
    rt: &'a ResourceType,
    patterns: &'a shape::Patterns,
    /// Lower-cased userNames in use.
    taken: HashSet<String>,
    /// Users of each department in creation order: (id, display name). Early ones lead.
    by_department: BTreeMap<String, Vec<(String, String)>>,
    report: Report,
}

impl Generator<'_> {
    /// Generates, validates and stores one user; returns its id.
    fn user(&mut self, tx: &dyn store::Conn, rng: &mut Rng, n: usize) -> Result<String, SeedError> {
        // A view (data filter) may refuse some draws: try a few before giving up.
        let mut last_error = None;
        for _ in 0..20 {
            let vars = self.patterns.draw(rng, self.rt, n);
            let mut doc = self.patterns.user_doc(rng, &vars)?;
            let department = vars["department"].as_str().unwrap_or_default().to_string();
            let leads = self.by_department.get(&department);
            let manager = leads.filter(|l| !l.is_empty()).map(|l| {
                let (id, name) = &l[rng.below(1 + l.len() / 8)];
                json!({"value": id, "displayName": name})
            });
            if let Some(m) = manager {
                doc[crate::schema::urn::ENTERPRISE_USER]["manager"] = m;
            }
            self.report.assignments += assign_catalogue(self.server, self.rt, rng, &mut doc);
            shape::fill_required(rng, self.rt, &mut doc, n);
            // Unique userName: the pattern may repeat for common names.
            let user_name = doc["userName"].as_str().unwrap_or_default().to_string();
            let mut unique = user_name.clone();
            let mut k = 2;
            while self.taken.contains(&unique.to_lowercase()) {
                unique = match user_name.split_once('@') {
                    Some((local, domain)) => format!("{local}{k}@{domain}"),
                    None => format!("{user_name}{k}"),
                };
                k += 1;
            }
            if unique != user_name {
                if let Some(emails) = doc["emails"].as_array_mut()
                    && let Some(first) = emails.first_mut()
                {
                    first["value"] = json!(unique);
                }
                doc["userName"] = json!(unique);
            }
            shape::fit(self.rt, &mut doc);
            let id = rng.uuid();
            self.store_new(tx, self.rt, &id, n, &doc)?;
            if let Some(view) = &self.rt.view {
                // The model checked the view when it compiled it.
                let query = crate::model::query::check(&view.filter, self.rt).map_err(|e| {
                    SeedError::Invalid {
                        resource_type: self.rt.name.clone(),
                        detail: e.detail().to_string(),
                    }
                })?;
                if !tx.satisfies(&self.server.id, &id, &query)? {
                    tx.delete(&self.server.id, &id)?;
                    last_error = Some(format!(
                        "generated users fall outside the view {} of profile {}; give the profile canonical values that match its data_filter",
                        view.text, view.profiles
                    ));
                    continue;
                }
            }
            self.taken.insert(unique.to_lowercase());
            let display = doc["displayName"].as_str().unwrap_or(&unique).to_string();
            self.by_department
                .entry(department)
                .or_default()
                .push((id.clone(), display));
            self.report.users += 1;
            return Ok(id);
        }
        Err(SeedError::Invalid {
            resource_type: self.rt.name.clone(),
            detail: last_error.unwrap_or_default(),
        })
    }

    /// Validates `doc` as the server would on create and stores it as resource `id`, dated by
    /// its sequence number `n`.
    fn store_new(
        &self,
        tx: &dyn store::Conn,
        rt: &ResourceType,
        id: &str,
        n: usize,
        doc: &Value,
    ) -> Result<(), SeedError> {
        let normalized =
            normalize(self.server, rt, doc, Mode::Create).map_err(|e| SeedError::Invalid {
                resource_type: rt.name.clone(),
                detail: e.detail().to_string(),
            })?;
        let ts = timestamp(n);
        let row = Row {
            id: id.to_string(),
            resource_type: rt.name.clone(),
            version: 1,
            created: ts.clone(),
            last_modified: ts,
            doc: serde_json::to_string(&normalized.doc).unwrap_or_default(),
        };
        Ok(tx.insert(self.server, &row)?)
    }

    /// One group per department (all its new users), then teams whose sizes fall off like a
    /// power law: a few large groups, many small ones.
    fn groups(
        &mut self,
        tx: &dyn store::Conn,
        rng: &mut Rng,
        rt: &ResourceType,
        count: usize,
        existing: usize,
        user_ids: &[String],
    ) -> Result<(), SeedError> {
        let departments: Vec<(String, Vec<String>)> = self
            .by_department
            .iter()
            .map(|(d, users)| (d.clone(), users.iter().map(|(id, _)| id.clone()).collect()))
            .collect();
        let teams = self.patterns.teams();
        let mut used_names: HashSet<String> = HashSet::new();
        for k in 0..count {
            let n = existing + k + 1;
            let (name, members): (String, Vec<String>) = if k < departments.len() {
                let (d, ids) = &departments[k];
                (self.patterns.group_name(d)?, ids.clone())
            } else {
                let t = k - departments.len();
                let name = teams[t % teams.len()].clone();
                // Zipf-like sizes: the t-th team has about a fifth of the users / (t + 1).
                let size = ((user_ids.len() as f64 * 0.2) / (t as f64 + 1.0)).ceil() as usize;
                let size = size.clamp(user_ids.len().min(3), user_ids.len());
                let mut chosen = HashSet::new();
                let mut members = Vec::with_capacity(size);
                while members.len() < size {
                    let id = &user_ids[rng.below(user_ids.len())];
                    if chosen.insert(id.clone()) {
                        members.push(id.clone());
                    }
                }
                (name, members)
            };
            let mut unique = name.clone();
            let mut i = 2;
            while !used_names.insert(unique.clone()) {
                unique = format!("{name} {i}");
                i += 1;
            }
            let id = rng.uuid();
            let doc = json!({ "schemas": [rt.schema.id], "displayName": unique });
            self.store_new(tx, rt, &id, n, &doc)?;
            let rows: Vec<Member> = members
                .into_iter()
                .map(|value| Member {
                    value,
                    display: None,
                    member_type: Some(self.rt.name.clone()),
                })
                .collect();
            self.report.memberships += rows.len();
            tx.change_members(&self.server.id, &id, &rows, &[])?;
            self.report.groups += 1;
        }
        Ok(())
    }
}

/// Gives the user items of each catalogue category: required ones always, others often;
/// single-valued categories at most one item. Returns the number of assignments.
fn assign_catalogue(
    server: &ServerModel,
    rt: &ResourceType,
    rng: &mut Rng,
    doc: &mut Value,
) -> usize {
    let mut added = 0;
    for cat in server
        .catalogue
        .iter()
        .filter(|c| c.applies_to.eq_ignore_ascii_case(&rt.name) && !c.items.is_empty())
    {
        let how_many = if cat.required || rng.chance(0.4) {
            if cat.multi_valued && rng.chance(0.3) {
                2.min(cat.items.len())
            } else {
                1
            }
        } else {
            0
        };
        let (attr, with_type) = match cat.kind {
            crate::definition::CategoryKind::Entitlement => ("entitlements", true),
            crate::definition::CategoryKind::Role => ("roles", false),
        };
        let mut picked: Vec<usize> = Vec::new();
        while picked.len() < how_many {
            let i = rng.below(cat.items.len());
            if !picked.contains(&i) {
                picked.push(i);
            }
        }
        for i in picked {
            let item = &cat.items[i];
            let mut v = Map::new();
            v.insert("value".into(), json!(item.id));
            v.insert("display".into(), json!(item.display_name));
            if with_type {
                v.insert("type".into(), json!(cat.name));
            }
            match doc.get_mut(attr).and_then(Value::as_array_mut) {
                Some(list) => list.push(Value::Object(v)),
                None => doc[attr] = json!([v]),
            }
            added += 1;
        }
    }
    added
}
