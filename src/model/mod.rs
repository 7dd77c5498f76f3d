//! The compiled model: definitions + catalogue → one [`ServerModel`] per virtual server, with
//! resolved schemas, attribute lookup, discovery documents and the SQL index plan. Handlers only
//! ever read this; they never look at YAML.

pub use crate::vocab::compat;
mod compile;
mod discovery;
mod faults;
mod handle;
pub mod limits;
pub mod path;
pub mod persona;
mod profiles;
pub mod query;

pub use compile::{Sources, compile, compile_file, compile_reusing};
pub use faults::FaultRule;
pub use handle::{ModelHandle, RebuildError};
pub use path::{AttrPath, Resolved, Target};

use crate::schema::{AttributeDef, SchemaDef};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that is being served: one compiled model per virtual server.
#[derive(Debug, Default)]
pub struct Model {
    pub servers: BTreeMap<String, Arc<ServerModel>>,
}

impl Model {
    pub fn server(&self, id: &str) -> Option<&Arc<ServerModel>> {
        self.servers.get(id)
    }

    /// Marks the servers compiled from `files` (in-memory definitions) as ephemeral. Call it on
    /// a freshly compiled model, whose servers nothing else holds yet.
    pub fn mark_ephemeral(&mut self, files: &[crate::definition::LoadedFile]) {
        for server in self.servers.values_mut() {
            if files.iter().any(|f| f.path == server.source)
                && let Some(s) = Arc::get_mut(server)
            {
                s.ephemeral = true;
            }
        }
    }
}

/// One virtual server, compiled.
#[derive(Debug)]
pub struct ServerModel {
    pub id: String,
    pub description: String,
    /// The definition file this server came from.
    pub source: PathBuf,
    pub tokens: Vec<String>,
    /// Authentication besides `tokens`.
    pub auth: crate::definition::AuthDef,
    /// The headers `auth` authenticates by: the request inspector redacts them.
    pub secret_headers: Arc<[String]>,
    /// Lifecycle policies (RFC behaviour by default).
    pub lifecycle: crate::definition::LifecycleDef,
    /// A provider persona's limits, if the server reproduces one.
    pub persona: Option<crate::definition::PersonaDef>,
    pub resource_types: Vec<ResourceType>,
    /// Every schema this server serves in `/Schemas`, in a stable order.
    pub schemas: Vec<Arc<SchemaDef>>,
    pub strict: bool,
    /// Reference attributes whose values must resolve (`members`, `entitlements`, ...).
    pub check_references: Vec<String>,
    pub default_count: usize,
    pub max_results: usize,
    pub max_payload_bytes: usize,
    /// Bulk `maxOperations`; Bulk bodies are limited by `bulk_max_payload_bytes`.
    pub bulk_max_operations: usize,
    pub bulk_max_payload_bytes: usize,
    /// Most operations in one PatchOp.
    pub patch_max_operations: usize,
    /// How lists page (RFC 9865).
    pub pagination: Pagination,
    /// Discovery documents without `meta.location` (added per request from the base URL).
    pub discovery: discovery::Discovery,
    /// IdP deviations this server accepts.
    pub compat: compat::Compat,
    /// Profiles applied, in the order the definition lists them.
    pub profiles: Vec<String>,
    /// Entitlement and role categories from the profiles, with their items.
    pub catalogue: Vec<Category>,
    /// Seed data for an empty server.
    pub seed: Option<crate::definition::SeedDef>,
    /// How seed data looks (merged from the profiles).
    pub seed_shape: crate::definition::SeedShape,
    /// What the request inspector records.
    pub inspector: crate::definition::InspectorDef,
    /// Token-bucket rate limits.
    pub limits: limits::Limits,
    /// Fault rules from the definition.
    pub faults: Vec<FaultRule>,
    /// SCIM events (RFC 9967), when the definition asks for them.
    pub events: Option<crate::definition::EventsDef>,
    /// The RS256 key that signs them, when `events.signing.alg` is RS256.
    pub event_key: Option<EventKey>,
    /// Created through the admin API, not from a file; gone on restart.
    pub ephemeral: bool,
    /// A hash of what this server was compiled from (its file's text, the profile packs):
    /// a reload reuses the server when it is unchanged.
    pub inputs: u64,
}

impl ServerModel {
    /// Resource type by endpoint path segment (`Users`), case-insensitively.
    pub fn by_endpoint(&self, segment: &str) -> Option<&ResourceType> {
        (self.endpoint_index(segment)).map(|i| &self.resource_types[i])
    }

    /// The index of the resource type served at `/{segment}` (case-insensitive).
    pub fn endpoint_index(&self, segment: &str) -> Option<usize> {
        self.resource_types
            .iter()
            .position(|rt| rt.endpoint[1..].eq_ignore_ascii_case(segment))
    }

    pub fn by_name(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types
            .iter()
            .find(|rt| rt.name.eq_ignore_ascii_case(name))
    }

    /// Resource types whose core schema is `urn` (e.g. every Okta entitlement category).
    pub fn by_schema<'a>(&'a self, urn: &'a str) -> impl Iterator<Item = &'a ResourceType> + 'a {
        self.resource_types
            .iter()
            .filter(move |rt| rt.schema.id.eq_ignore_ascii_case(urn))
    }

    /// Names (lower-case) of every writeOnly attribute and sub-attribute this server serves:
    /// values that are never shown back (passwords).
    pub fn write_only_names(&self) -> std::collections::HashSet<String> {
        fn walk(attrs: &[AttributeDef], out: &mut std::collections::HashSet<String>) {
            for a in attrs {
                if a.mutability == crate::schema::Mutability::WriteOnly {
                    out.insert(a.name.to_ascii_lowercase());
                }
                walk(&a.sub_attributes, out);
            }
        }
        let mut out = std::collections::HashSet::new();
        for s in &self.schemas {
            walk(&s.attributes, &mut out);
        }
        out
    }

    /// Replaces, anywhere in `v` (a resource, an export, a logged request body), the value of
    /// every member named like one of this server's writeOnly attributes.
    pub fn redact_write_only(&self, v: &mut serde_json::Value) {
        fn walk(v: &mut serde_json::Value, names: &std::collections::HashSet<String>) {
            match v {
                serde_json::Value::Object(o) => {
                    for (k, x) in o.iter_mut() {
                        if names.contains(&k.to_ascii_lowercase()) {
                            *x = serde_json::Value::String("[writeOnly: not shown]".into());
                        } else {
                            walk(x, names);
                        }
                    }
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, names)),
                _ => {}
            }
        }
        let names = self.write_only_names();
        if !names.is_empty() {
            walk(v, &names);
        }
    }

    pub fn checks_references(&self, attribute: &str) -> bool {
        self.check_references
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }
}

/// A served resource type.
#[derive(Debug)]
pub struct ResourceType {
    pub name: String,
    /// With the leading slash: `/Users`.
    pub endpoint: String,
    pub description: String,
    pub schema: Arc<SchemaDef>,
    pub extensions: Vec<Extension>,
    /// Group-like: `members` is kept in the membership table, not in the document.
    pub has_members: bool,
    /// User-like: a read-only `groups` attribute derived from memberships.
    pub has_groups: bool,
    /// The profiles' data filter: only matching resources exist for this server's clients.
    pub view: Option<View>,
}

/// A data filter from profiles.
#[derive(Debug)]
pub struct View {
    pub filter: crate::filter::Filter,
    /// The filter as text, for error messages.
    pub text: String,
    /// Which profiles it comes from.
    pub profiles: String,
}

/// An entitlement or role category from profiles (Okta's per-type rules).
#[derive(Debug, Clone)]
pub struct Category {
    /// Resource type name (`Entitlement`, `License`, `Role`).
    pub name: String,
    pub kind: crate::definition::CategoryKind,
    /// The resource type whose resources are assigned these items (`User`).
    pub applies_to: String,
    pub required: bool,
    pub multi_valued: bool,
    pub items: Vec<crate::definition::CatalogueItem>,
    pub profiles: Vec<String>,
}

#[derive(Debug)]
pub struct Extension {
    pub schema: Arc<SchemaDef>,
    pub required: bool,
}

impl ResourceType {
    /// The core schema followed by every extension schema.
    pub fn schemas(&self) -> impl Iterator<Item = &SchemaDef> {
        std::iter::once(&*self.schema).chain(self.extensions.iter().map(|e| &*e.schema))
    }

    /// The attributes whose values no two resources of a server may share, each with its
    /// schema and whether that is the core schema (an extension's sit under its URN).
    pub fn unique_attributes(&self) -> impl Iterator<Item = (&SchemaDef, bool, &AttributeDef)> {
        self.schemas().flat_map(move |s| {
            let core = s.id == self.schema.id;
            (s.attributes.iter())
                .filter(|a| a.unique_key())
                .map(move |a| (s, core, a))
        })
    }

    pub fn extension(&self, urn: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|e| e.schema.id.eq_ignore_ascii_case(urn))
    }

    pub fn core_attr(&self, name: &str) -> Option<&AttributeDef> {
        self.schema.attr(name)
    }
}

/// How a server's lists page (RFC 9865 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pagination {
    pub cursor: bool,
    pub index: bool,
    /// A request that names no method pages by cursor.
    pub cursor_by_default: bool,
    pub default_page_size: usize,
    pub max_page_size: usize,
    pub cursor_timeout_secs: u64,
}

/// An RS256 key for SETs: the private key (PEM) and the public JWK receivers verify with.
#[derive(Debug, Clone)]
pub struct EventKey {
    pub private_pem: String,
    pub kid: String,
    /// The public key as a JWK (RFC 7517).
    pub jwk: serde_json::Value,
}
