//! The schema catalogue: RFC 7643 schema representations (core, extensions, Okta, agents)
//! checked and embedded by `build.rs`, parsed once into typed [`SchemaDef`]s.

pub mod check;

use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

include!(concat!(env!("OUT_DIR"), "/schemas.rs"));

/// Well-known URNs the engine refers to by name.
pub mod urn {
    pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    pub const OKTA_ENTITLEMENT: &str = "urn:okta:scim:schemas:core:1.0:Entitlement";
    pub const OKTA_ROLE: &str = "urn:okta:scim:schemas:core:1.0:Role";
    pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
    pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
    pub const SERVICE_PROVIDER_CONFIG: &str =
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
    pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
    pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
    pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
    Request,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    #[default]
    None,
    Server,
    Global,
}

/// One attribute definition, serialised exactly as `/Schemas` shows it (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: AttrType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    #[serde(default)]
    pub uniqueness: Uniqueness,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<AttributeDef>,
    /// A regular expression the value's text must match when the server is strict. Not an
    /// RFC 7643 characteristic (`/Schemas` omits it; the description says it in words).
    #[serde(default, skip_serializing)]
    pub pattern: Option<Pattern>,
    /// The profile rule that shaped this attribute, if any. Not part of the RFC representation:
    /// `/Schemas` shows its effect (mutability, returned, required, canonicalValues).
    #[serde(skip)]
    pub rule: Option<ProfileRule>,
}

/// Mutability rules a profile can set; `/Schemas` shows `writeOnce` as `immutable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RuleMutability {
    /// May be set and changed.
    ReadWrite,
    /// May be set at creation or later while it has no value; never changed once set.
    WriteOnce,
    /// May be set only when the resource is created; never changed afterwards.
    Immutable,
    /// The application never sets or changes it; requests that try are refused.
    ReadOnly,
}

impl RuleMutability {
    pub fn name(self) -> &'static str {
        match self {
            RuleMutability::ReadWrite => "readWrite",
            RuleMutability::WriteOnce => "writeOnce",
            RuleMutability::Immutable => "immutable",
            RuleMutability::ReadOnly => "readOnly",
        }
    }

    /// The RFC 7643 mutability that represents this rule in `/Schemas`.
    pub fn served(self) -> Mutability {
        match self {
            RuleMutability::ReadWrite => Mutability::ReadWrite,
            RuleMutability::WriteOnce | RuleMutability::Immutable => Mutability::Immutable,
            RuleMutability::ReadOnly => Mutability::ReadOnly,
        }
    }
}

/// A value pattern, such as the MAC and EUI-64 address forms RFC 9944 gives. Anchor it
/// (`^…$`) to constrain the whole value.
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    pub fn new(text: &str) -> Result<Pattern, String> {
        regex::Regex::new(text)
            .map(Pattern)
            .map_err(|e| format!("pattern {text:?} is not a regular expression: {e}"))
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    /// Whether a value's text (a string, or an integer written in decimal) matches.
    pub fn matches(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pattern, D::Error> {
        let text = String::deserialize(d)?;
        Pattern::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Which profiles set an attribute's rules, so a refusal can name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRule {
    /// `hr` or `hr, it`.
    pub profiles: String,
    pub mutability: Option<RuleMutability>,
}

impl AttributeDef {
    /// A single-valued simple attribute whose values are unique (RFC 7643 §2.4): the store
    /// indexes it and refuses a second resource with its value, so an `eq` on it finds at most
    /// one resource.
    pub fn unique_key(&self) -> bool {
        self.ty != AttrType::Complex && !self.multi_valued && self.uniqueness != Uniqueness::None
    }

    /// Case-insensitive lookup of a sub-attribute (attribute names are case-insensitive).
    pub fn sub(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema (core or extension) as served by `/Schemas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaDef {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub attributes: Vec<AttributeDef>,
}

impl SchemaDef {
    pub fn attr(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// Every schema shipped in `schemas/`, parsed once.
pub struct Catalogue {
    pub schemas: Vec<SchemaDef>,
}

impl Catalogue {
    pub fn get(&self, urn: &str) -> Option<&SchemaDef> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The schema whose `name` is `name` (how a resource type named `User` finds its schema).
    pub fn by_name(&self, name: &str) -> Option<&SchemaDef> {
        self.schemas
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

/// The embedded catalogue. The files were checked by `build.rs`, so parsing cannot fail
/// unless the typed model and the checker disagree, which the tests below catch.
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| Catalogue {
        schemas: EMBEDDED_SCHEMAS
            .iter()
            .map(|(file, _, json)| {
                serde_json::from_str(json)
                    .unwrap_or_else(|e| panic!("embedded schema {file} does not parse: {e}"))
            })
            .collect(),
    });
    &CATALOGUE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_schema_parses_into_the_typed_model() {
        let cat = catalogue();
        assert_eq!(cat.schemas.len(), EMBEDDED_SCHEMAS.len());
        for required in [
            urn::USER,
            urn::GROUP,
            urn::ENTERPRISE_USER,
            urn::OKTA_ENTITLEMENT,
            urn::OKTA_ROLE,
            urn::SCHEMA,
            urn::RESOURCE_TYPE,
            urn::SERVICE_PROVIDER_CONFIG,
            "urn:ietf:params:scim:schemas:core:2.0:Agent",
            "urn:ietf:params:scim:schemas:core:2.0:AgenticApplication",
        ] {
            assert!(
                cat.get(required).is_some(),
                "{required} missing from catalogue"
            );
        }
        let user = cat.get(urn::USER).unwrap();
        assert_eq!(
            user.attr("USERNAME").unwrap().uniqueness,
            Uniqueness::Server
        );
        assert_eq!(user.attr("password").unwrap().returned, Returned::Never);
    }

    #[test]
    fn checker_reports_each_problem_with_its_attribute() {
        let bad = r#"{"id":"x","name":"N","attributes":[
            {"name":"a","type":"strin"},
            {"name":"A","type":"string","mutability":"sometimes"},
            {"name":"c","type":"string","subAttributes":[]},
            {"name":"d","type":"complex","subAttributes":[{"name":"e","type":"complex","subAttributes":[]}]}]}"#;
        let errs = check::check_schema_document(bad).unwrap_err();
        let all = errs.join("\n");
        assert!(all.contains("\"id\" must be a schema URN"), "{all}");
        assert!(all.contains("attribute \"a\": \"type\""), "{all}");
        assert!(all.contains("attribute \"A\": defined twice"), "{all}");
        assert!(all.contains("attribute \"A\": \"mutability\""), "{all}");
        assert!(all.contains("attribute \"c\": only complex"), "{all}");
        assert!(
            all.contains("attribute \"d.e\": sub-attributes cannot be complex"),
            "{all}"
        );
    }

    #[test]
    fn generator_refuses_a_directory_with_a_malformed_schema() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ok.json"),
            r#"{"id":"urn:x","name":"X","attributes":[]}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.json"), "{not json").unwrap();
        let err = check::generate(dir.path(), dir.path()).unwrap_err();
        assert!(err.contains("bad.json: not JSON"), "{err}");
        std::fs::remove_file(dir.path().join("bad.json")).unwrap();
        check::generate(dir.path(), dir.path()).unwrap();
        let code = std::fs::read_to_string(dir.path().join("schemas.rs")).unwrap();
        assert!(code.contains("\"urn:x\""));
    }
}
