//! Server definitions as written in `servers.d/*.yaml`: plain serde + schemars types, used only
//! by the loader and by `model::compile`. Unknown keys are errors.

mod load;
mod locate;
pub mod patterns;
mod profile;

pub use load::{
    Loaded, LoadedFile, LoadedProfile, Parsed, load_dir, load_dir_reusing, load_profiles,
    load_profiles_reusing, load_str, parse, yaml_files,
};
pub use locate::locate;
pub use profile::{
    AttributeRule, CatalogueItem, CategoryDef, CategoryKind, ProfileDef, RuleMutability, SeedShape,
};

use crate::schema::{AttrType, Mutability, Returned, Uniqueness};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// One virtual SCIM server. Served at `/scim-identifier/{id}/scim/v2/`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerDef {
    /// Identifier used in URLs (`/scim-identifier/{id}/scim/v2`): letters, digits, `-`, `_`.
    pub id: String,
    /// What this server is for; shown in `/healthz` and logs.
    #[serde(default)]
    pub description: String,
    /// Bearer tokens this server accepts. A token belongs to exactly one server. May be empty
    /// when `auth` declares another method.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Other ways clients authenticate: HTTP Basic, a custom header, OAuth 2.0 clients.
    #[serde(default)]
    pub auth: AuthDef,
    /// Resource types served, keyed by resource type name (`User`, `Group`, `Entitlement`,
    /// `Role`, `Agent`, `AgenticApplication`, or any name with an explicit `schema`).
    pub resource_types: BTreeMap<String, ResourceTypeDef>,
    /// How strictly requests are checked.
    #[serde(default)]
    pub validation: ValidationDef,
    /// Paging limits.
    #[serde(default)]
    pub limits: LimitsDef,
    /// How lists page (RFC 9865): by index (`startIndex`), by cursor, or both.
    #[serde(default)]
    pub pagination: PaginationDef,
    /// Which IdP deviations from RFC 7644 to accept: a persona (`strict`, `okta`, `entra`,
    /// `onelogin`) or a list of persona and quirk names (see README). Default `strict`.
    #[serde(default)]
    pub compat: Option<CompatDef>,
    /// Application profiles from `profiles/` this server applies, by id. See README for how
    /// several profiles combine.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Seed data that fills the server when it starts empty.
    pub seed: Option<SeedDef>,
    /// The request inspector: what is recorded of each request.
    #[serde(default)]
    pub inspector: InspectorDef,
    /// Token-bucket rate limits (`N/s`, `N/min` or `N/hour`); over the limit → 429.
    #[serde(default)]
    pub rate_limits: RateLimitsDef,
    /// Faults injected to test client resilience.
    #[serde(default)]
    pub faults: Vec<FaultDef>,
    /// SCIM events (RFC 9967): a Security Event Token for every change, polled (RFC 8936).
    #[serde(default)]
    pub events: Option<EventsDef>,
    /// Lifecycle policies: the RFC behaviour by default, or the way many providers behave.
    #[serde(default)]
    pub lifecycle: LifecycleDef,
    /// A provider persona: documented limits of a real SCIM service provider, reproduced on
    /// purpose; every refusal they cause names the limit and the persona.
    pub persona: Option<PersonaDef>,
}

/// Limits of a SCIM service provider (beside `limits`, which every server has).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonaDef {
    /// The provider, as refusals name it.
    pub name: String,
    /// Where its limits are documented.
    #[serde(default)]
    pub source: Option<String>,
    /// Filter operators it understands (`eq`, `ne`, `co`, `sw`, `ew`, `gt`, `ge`, `lt`, `le`,
    /// `pr`, `and`, `or`, `not`, and `[]` for value paths); default all.
    #[serde(default)]
    pub filter_operators: Option<Vec<String>>,
    /// Most group members one create, PUT or PATCH may add or remove.
    #[serde(default)]
    pub members_per_request: Option<usize>,
    /// Most values any multi-valued attribute of a resource holds (`members` aside).
    #[serde(default)]
    pub values_per_attribute: Option<usize>,
    /// Whether a PATCH may replace a group's whole member list or remove all its members.
    #[serde(default = "yes")]
    pub replace_members: bool,
    /// Groups come back without their members (GET and lists); members are found by
    /// filtering groups on `members`.
    #[serde(default)]
    pub omit_members: bool,
    /// Endpoints it does not have: `bulk`, `search` (`POST …/.search`).
    #[serde(default)]
    pub missing_endpoints: Vec<MissingEndpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MissingEndpoint {
    Bulk,
    Search,
}

/// How deletes, conflicting creates, unknown group members and empty strings behave. Each
/// default is RFC 7644's; any other is named in the request inspector when it changes an
/// answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleDef {
    /// `hard` (RFC 7644 §3.6: gone), or `soft`: DELETE deactivates and hides the resource,
    /// and a later create with the same unique value (`userName`) revives it, same id.
    #[serde(default)]
    pub delete: DeletePolicy,
    /// `reject` (409 `uniqueness`), or `return_existing`: a create that collides answers 200
    /// with the resource that holds the value.
    #[serde(default)]
    pub create_conflict: ConflictPolicy,
    /// Group members that name no resource of the server: `reject` the whole request (with
    /// `check_references: [members]`; without it they are not checked), or `skip` them and
    /// apply the rest.
    #[serde(default)]
    pub unknown_members: MembersPolicy,
    /// An empty string for a single-valued attribute in POST, PUT or PATCH: a `value` (RFC),
    /// or `clears` the attribute like null (as Microsoft Entra's validation sends it).
    #[serde(default)]
    pub empty_string: EmptyStringPolicy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeletePolicy {
    #[default]
    Hard,
    Soft,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    #[default]
    Reject,
    ReturnExisting,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MembersPolicy {
    #[default]
    Reject,
    Skip,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmptyStringPolicy {
    #[default]
    Value,
    Clears,
}

/// Authentication methods besides the static bearer `tokens`. Any one of them admits a request.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthDef {
    /// HTTP Basic credentials (RFC 7617).
    #[serde(default)]
    pub basic: Vec<BasicDef>,
    /// A header that must carry a value, e.g. `{name: X-API-Key, value: …}`; with
    /// `Authorization` the whole header value is compared (Okta's "HTTP header" option).
    #[serde(default)]
    pub header: Vec<HeaderAuthDef>,
    /// OAuth 2.0: a token endpoint (`…/oauth/token`) and, for `authorization_code`, an
    /// authorization endpoint with a consent page (`…/oauth/authorize`).
    pub oauth: Option<OAuthDef>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicDef {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderAuthDef {
    /// Header name (case-insensitive).
    pub name: String,
    pub value: String,
}

/// OAuth 2.0 (RFC 6749) clients of this server and the lifetimes of what it issues.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthDef {
    pub clients: Vec<OAuthClientDef>,
    /// Seconds an access token is valid (`expires_in`). Default 3600.
    #[serde(default = "access_token_lifetime")]
    pub access_token_lifetime: u64,
    /// Seconds a refresh token is valid. Default 30 days.
    #[serde(default = "refresh_token_lifetime")]
    pub refresh_token_lifetime: u64,
}

fn access_token_lifetime() -> u64 {
    3600
}
fn refresh_token_lifetime() -> u64 {
    30 * 24 * 3600
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientDef {
    pub client_id: String,
    pub client_secret: String,
    /// `client_credentials` (RFC 6749 §4.4, what Microsoft Entra's gallery validation uses)
    /// and/or `authorization_code` (§4.1, what Okta recommends for OIN apps; it comes with
    /// refresh tokens).
    pub grants: Vec<OAuthGrant>,
    /// Where the authorization endpoint may send the code (exact match), for
    /// `authorization_code`.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrant {
    ClientCredentials,
    AuthorizationCode,
}

/// What the request inspector keeps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorDef {
    /// Record requests at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Requests kept per server (the oldest are dropped).
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Bytes of each request and response body kept.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
}

impl Default for InspectorDef {
    fn default() -> Self {
        InspectorDef {
            enabled: true,
            capacity: default_capacity(),
            body_limit: default_body_limit(),
        }
    }
}

fn default_capacity() -> usize {
    1000
}
fn default_body_limit() -> usize {
    16 << 10
}

/// Rate limits by operation class and by resource type, e.g. `{read: 600/min, write: 10/s}`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsDef {
    /// GET requests and searches (`POST /.search`).
    pub read: Option<String>,
    /// POST, PUT, PATCH, DELETE and Bulk.
    pub write: Option<String>,
    /// Any request to a resource type's endpoint, by resource type name.
    #[serde(default)]
    pub per_type: BTreeMap<String, String>,
}

/// One fault rule: matching requests get latency and/or an error.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultDef {
    /// HTTP methods matched (any when empty).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path under the server's base matched, `*` as a wildcard (`/Users*`). Any when absent.
    pub path: Option<String>,
    /// Resource type matched (its endpoint and everything under it).
    pub resource_type: Option<String>,
    /// Added latency in milliseconds (the lower bound when `latency_max_ms` is set).
    #[serde(default)]
    pub latency_ms: u64,
    /// Upper bound: latency is drawn uniformly from `latency_ms..=latency_max_ms`.
    pub latency_max_ms: Option<u64>,
    /// Share of matching requests answered with `status` instead (0.0 to 1.0).
    #[serde(default)]
    pub error_rate: f64,
    /// Status of injected errors: 500, 503 or 429.
    #[serde(default = "default_fault_status")]
    pub status: u16,
    /// Only the next N matching requests (counted from load or from the admin call).
    pub next: Option<u64>,
}

fn default_fault_status() -> u16 {
    503
}

/// Seed data for an empty server: deterministic for a given `seed` number.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedDef {
    /// Number of users.
    #[serde(default)]
    pub users: usize,
    /// Number of groups (one per department first, then teams).
    #[serde(default)]
    pub groups: usize,
    /// The random seed: the same seed gives the same data.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    1
}

/// A persona name or a list of persona and quirk names.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CompatDef {
    One(String),
    Many(Vec<String>),
}

impl CompatDef {
    pub fn names(&self) -> Vec<&str> {
        match self {
            CompatDef::One(n) => vec![n.as_str()],
            CompatDef::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A resource type: its core schema, endpoint, extensions and custom attributes.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceTypeDef {
    /// Core schema URN from the catalogue. Defaults to the schema named like the resource type
    /// (`User` → `urn:ietf:params:scim:schemas:core:2.0:User`).
    pub schema: Option<String>,
    /// HTTP endpoint, e.g. `/Licenses`. Defaults to `/{name}s`.
    pub endpoint: Option<String>,
    /// Human-readable description served in `/ResourceTypes`.
    pub description: Option<String>,
    /// Schema extensions from the catalogue: a URN, or `{schema: URN, required: true}`.
    #[serde(default)]
    pub extensions: Vec<ExtensionDef>,
    /// Custom attributes, served in this server's own extension schema for this type.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeSpec>,
    /// URN of the extension schema holding `attributes`.
    /// Defaults to `urn:scimlab:schemas:extension:{server id}:2.0:{resource type}`.
    pub attributes_schema: Option<String>,
}

/// A schema extension reference.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ExtensionDef {
    /// Just the URN; the extension is optional.
    Urn(String),
    /// URN plus whether resources must carry it.
    Detailed {
        schema: String,
        #[serde(default)]
        required: bool,
    },
}

impl ExtensionDef {
    pub fn urn(&self) -> &str {
        match self {
            ExtensionDef::Urn(u) => u,
            ExtensionDef::Detailed { schema, .. } => schema,
        }
    }
    pub fn required(&self) -> bool {
        matches!(self, ExtensionDef::Detailed { required: true, .. })
    }
}

/// A custom attribute (RFC 7643 §7 characteristics, snake_case keys).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// Data type: string, boolean, decimal, integer, dateTime, binary, reference, complex.
    #[serde(rename = "type", default = "default_type")]
    pub ty: AttrType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default)]
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    /// `server` makes the value unique among this resource type on this virtual server.
    #[serde(default)]
    pub uniqueness: Uniqueness,
    /// Allowed values; enforced when `validation.strict` is true.
    #[serde(default)]
    pub canonical_values: Vec<String>,
    /// A regular expression (Rust `regex` syntax) the value must match, enforced when
    /// `validation.strict` is true; anchor it (`^…$`) to constrain the whole value. Strings,
    /// references and integers (their decimal text) only.
    pub pattern: Option<String>,
    /// For `reference` attributes: `external`, `uri`, or resource type names.
    #[serde(default)]
    pub reference_types: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// Sub-attributes of a `complex` attribute (they cannot be complex themselves).
    #[serde(default)]
    pub sub_attributes: BTreeMap<String, AttributeSpec>,
}

fn default_type() -> AttrType {
    AttrType::String
}

/// Validation strictness.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationDef {
    /// Strict: unknown attributes are rejected (400 invalidSyntax) and canonical values are
    /// enforced (400 invalidValue). Lenient: unknown attributes are dropped, any value accepted.
    #[serde(default = "yes")]
    pub strict: bool,
    /// Reference attributes whose `value` must name an existing resource on this server:
    /// any of `members`, `entitlements`, `roles`, `manager`. Empty: references are not checked.
    #[serde(default)]
    pub check_references: Vec<String>,
}

impl Default for ValidationDef {
    fn default() -> Self {
        ValidationDef {
            strict: true,
            check_references: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// How lists page (RFC 9865 §4, `pagination` in `/ServiceProviderConfig`). Page sizes
/// default to `limits.default_count` and `limits.max_results`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaginationDef {
    /// Cursor paging (`cursor`, `nextCursor`; RFC 9865 §2).
    #[serde(default)]
    pub cursor: bool,
    /// Index paging (`startIndex`; RFC 7644 §3.4.2.4). `false` makes a cursor-only server.
    #[serde(default = "yes")]
    pub index: bool,
    /// The method of a list request that names none: `index` or `cursor`.
    #[serde(default)]
    pub default: Option<PagingMethod>,
    /// Page size when the client sends no `count` (default: `limits.default_count`).
    #[serde(default)]
    pub default_page_size: Option<usize>,
    /// Largest page (default: `limits.max_results`).
    #[serde(default)]
    pub max_page_size: Option<usize>,
    /// Seconds a cursor stays valid between page requests.
    #[serde(default = "cursor_timeout")]
    pub cursor_timeout: u64,
}

impl Default for PaginationDef {
    fn default() -> Self {
        PaginationDef {
            cursor: false,
            index: true,
            default: None,
            default_page_size: None,
            max_page_size: None,
            cursor_timeout: cursor_timeout(),
        }
    }
}

fn cursor_timeout() -> u64 {
    3600
}

/// A pagination method (RFC 9865 §4 `defaultPaginationMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PagingMethod {
    Index,
    Cursor,
}

/// SCIM events (RFC 9967): what each change emits and how the SETs are signed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsDef {
    /// `notice` events name the changed attributes; `full` events carry the resource.
    #[serde(default)]
    pub payload: EventPayload,
    /// `none` (unsecured SETs), or `HS256` with `secret`.
    #[serde(default)]
    pub signing: SigningDef,
    /// `iss` of the SETs (default: the server's base URL as the client reached it).
    #[serde(default)]
    pub issuer: Option<String>,
    /// `aud` of the SETs (default: the issuer).
    #[serde(default)]
    pub audience: Vec<String>,
    /// Receivers each SET is pushed to (RFC 8935), besides being kept for polling.
    #[serde(default)]
    pub receivers: Vec<ReceiverDef>,
    /// How a failed push is retried.
    #[serde(default)]
    pub retry: RetryDef,
    /// Asynchronous requests (RFC 9967 §2.5.1): `request` (default) answers a write sent
    /// with `Prefer: respond-async` with 202 and a `Set-Txn`, and raises the completion as a
    /// `misc:asyncresp` event; `none` always answers synchronously.
    #[serde(default)]
    pub async_requests: AsyncRequests,
}

/// `securityEvents.asyncRequest` (RFC 9967 §4) as a server offers it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AsyncRequests {
    /// Every request is answered synchronously.
    None,
    /// A request with `Prefer: respond-async` is completed asynchronously.
    #[default]
    Request,
}

impl AsyncRequests {
    pub fn name(self) -> &'static str {
        match self {
            AsyncRequests::None => "none",
            AsyncRequests::Request => "request",
        }
    }
}

/// A push receiver (RFC 8935): its URL and the bearer token it wants, if any.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiverDef {
    pub url: String,
    #[serde(default)]
    pub token: Option<String>,
}

/// Retries of a push that did not reach its receiver: the wait doubles from `initial_ms` up
/// to `max_ms`; after `max_attempts` the delivery has failed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    #[serde(default = "retry_initial_ms")]
    pub initial_ms: u64,
    #[serde(default = "retry_max_ms")]
    pub max_ms: u64,
    #[serde(default = "retry_max_attempts")]
    pub max_attempts: u32,
}

impl Default for RetryDef {
    fn default() -> Self {
        RetryDef {
            initial_ms: retry_initial_ms(),
            max_ms: retry_max_ms(),
            max_attempts: retry_max_attempts(),
        }
    }
}

fn retry_initial_ms() -> u64 {
    1000
}
fn retry_max_ms() -> u64 {
    60_000
}
fn retry_max_attempts() -> u32 {
    20
}

impl RetryDef {
    /// The wait before attempt `attempt + 1`.
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let doubled = self
            .initial_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
        doubled.min(self.max_ms)
    }
}

/// Whether events carry the resource (RFC 9967 `full`) or the changed attribute names
/// (`notice`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventPayload {
    #[default]
    Notice,
    Full,
}

/// How SETs are signed (RFC 8417 §5: a SET is a JWT; unsecured or signed).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningDef {
    /// `none`, `HS256` or `RS256`.
    #[serde(default)]
    pub alg: SigningAlg,
    /// The HS256 key (at least 32 bytes).
    #[serde(default)]
    pub secret: Option<String>,
    /// The RS256 private key: a PEM file (PKCS#8 or PKCS#1), relative to the definition.
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
    /// The `kid` of the RS256 key (default: derived from the public key).
    #[serde(default)]
    pub kid: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum SigningAlg {
    #[default]
    #[serde(rename = "none")]
    None,
    HS256,
    RS256,
}

/// Paging limits.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsDef {
    /// Page size when the client sends no `count`.
    #[serde(default = "default_count")]
    pub default_count: usize,
    /// Largest page served (`filter.maxResults` in `/ServiceProviderConfig`).
    #[serde(default = "max_results")]
    pub max_results: usize,
    /// Largest request body accepted, in bytes.
    #[serde(default = "max_payload")]
    pub max_payload_bytes: usize,
    /// Most operations in one Bulk request (`bulk.maxOperations`).
    #[serde(default = "bulk_max_operations")]
    pub bulk_max_operations: usize,
    /// Largest Bulk request body, in bytes (`bulk.maxPayloadSize`).
    #[serde(default = "bulk_max_payload")]
    pub bulk_max_payload_bytes: usize,
    /// Most operations in one PATCH request (413 above it).
    #[serde(default = "patch_max_operations")]
    pub patch_max_operations: usize,
}

impl Default for LimitsDef {
    fn default() -> Self {
        LimitsDef {
            default_count: default_count(),
            max_results: max_results(),
            max_payload_bytes: max_payload(),
            bulk_max_operations: bulk_max_operations(),
            bulk_max_payload_bytes: bulk_max_payload(),
            patch_max_operations: patch_max_operations(),
        }
    }
}

fn default_count() -> usize {
    100
}
fn max_results() -> usize {
    1000
}
fn bulk_max_operations() -> usize {
    1000
}
fn patch_max_operations() -> usize {
    1000
}
fn bulk_max_payload() -> usize {
    4 << 20
}
fn max_payload() -> usize {
    1 << 20
}

/// A located problem in a definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// The JSON Schema of the definition format, for editors and `scimlab schema`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ServerDef)).unwrap_or_default()
}

/// The JSON Schema of profile packs (`profiles/*.yaml`).
pub fn profile_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ProfileDef)).unwrap_or_default()
}

impl FaultDef {
    /// Checks a fault rule as a definition or admin call gives it.
    pub fn check(&self) -> Result<(), String> {
        let f = self;
        if ![500, 503, 429].contains(&f.status) {
            return Err(format!("status {} must be 500, 503 or 429", f.status));
        }
        if !(0.0..=1.0).contains(&f.error_rate) {
            return Err("error_rate must be between 0.0 and 1.0".into());
        }
        if f.latency_max_ms.is_some_and(|m| m < f.latency_ms) {
            return Err("latency_max_ms must be at least latency_ms".into());
        }
        if f.latency_ms.max(f.latency_max_ms.unwrap_or(0)) > 60_000 {
            return Err("latency above 60 s is not a fault, it is an outage".into());
        }
        for m in &f.methods {
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.to_ascii_uppercase().as_str())
            {
                return Err(format!("method {m:?} is not one SCIM uses"));
            }
        }
        if let Some(p) = &f.path {
            if !p.starts_with('/') {
                return Err("path must start with '/', e.g. /Users*".into());
            }
            path_pattern(p).map_err(|e| format!("path {p:?} is not a valid pattern: {e}"))?;
        }
        Ok(())
    }
}

/// A path pattern: `*` matches any run of characters (slashes included), case-insensitively.
pub fn path_pattern(pattern: &str) -> Result<globset::GlobMatcher, globset::Error> {
    Ok(globset::GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .build()?
        .compile_matcher())
}
