//! Application profiles as written in `profiles/*.yaml`: how one application sees a resource
//! type (which attributes, with which rules), its entitlement and role catalogue, its data
//! filter and how its seed data looks. Servers apply profiles by id (`profiles: [hr]`).

use crate::schema::Returned;
pub use crate::schema::RuleMutability;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One application profile.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileDef {
    /// Identifier servers use in `profiles: [...]`: letters, digits, `-`, `_`.
    pub id: String,
    /// What application this profile models.
    #[serde(default)]
    pub description: String,
    /// The resource type the attribute rules and data filter apply to. Default `User`.
    #[serde(default = "user")]
    pub resource_type: String,
    /// The attributes the application sees, by path (`title`, `name.givenName`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`), each with the
    /// rules it adds (`{}` for none). Attributes of the catalogue schema that no applied profile
    /// lists are not served; `userName` and the server file's own custom attributes always are.
    pub attributes: BTreeMap<String, AttributeRule>,
    /// A SCIM filter the application's view is restricted to: lists, filters and reads only see
    /// resources that match it, and writes may not leave it.
    pub data_filter: Option<String>,
    /// Entitlement and role catalogue, by category (resource type name: `Entitlement`, `License`,
    /// `Role`, ...). Categories are served as Okta Entitlement/Role resource types.
    #[serde(default)]
    pub catalogue: BTreeMap<String, CategoryDef>,
    /// How seed data for this application looks.
    #[serde(default)]
    pub seed: SeedShape,
}

fn user() -> String {
    "User".into()
}

/// What a profile says about one attribute.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeRule {
    /// When the attribute is returned (RFC 7643 §7).
    pub returned: Option<Returned>,
    /// Whether the application may change it.
    pub mutability: Option<RuleMutability>,
    /// The application needs a value. For a sub-attribute (`name.givenName`) the parent is
    /// required too.
    #[serde(default)]
    pub required: bool,
    /// The values the application accepts (enforced when the server is strict).
    pub canonical_values: Option<Vec<String>>,
}

/// Whether a catalogue category holds entitlements or roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CategoryKind {
    Entitlement,
    Role,
}

/// One entitlement category (Okta's per-type rules) with its items.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryDef {
    /// `entitlement` or `role`. Default: `role` for a category named `Role`, else `entitlement`.
    pub kind: Option<CategoryKind>,
    /// Every user needs at least one item of this category.
    #[serde(default)]
    pub required: bool,
    /// A user may hold more than one item of this category.
    #[serde(default = "yes")]
    pub multi_valued: bool,
    /// The items, served as resources with these ids.
    pub items: Vec<CatalogueItem>,
}

fn yes() -> bool {
    true
}

/// One entitlement or role.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogueItem {
    /// The resource id clients reference (`entitlements[].value`).
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub description: String,
}

/// How seeded resources look. Patterns are handlebars templates rendered per user (see README);
/// a later profile overrides an earlier one key by key.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedShape {
    /// Work email domains; users are spread over them.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Share of active users, 0.0 to 1.0.
    pub active_rate: Option<f64>,
    /// Value patterns by name (`user_name`, `email_work`, `phone_work`, `employee_number`, ...).
    #[serde(default)]
    pub patterns: BTreeMap<String, String>,
    /// Names of team groups (besides one group per department).
    #[serde(default)]
    pub groups: Vec<String>,
}
