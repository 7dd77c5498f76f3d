//! IdP personas: the known deviations of real identity providers from RFC 7644, each accepted
//! only when a server's `compat` enables it. A strict server refuses them with an error that
//! names the deviation, so connector developers see what they sent wrong.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quirk {
    /// PATCH `"op": "Replace"` / `"Add"` / `"Remove"` (Entra without `aadOptscim062020`).
    CapitalizedOps,
    /// Booleans sent as strings: `"value": "False"` (Entra).
    BooleanStrings,
    /// `{"op":"Remove","path":"members","value":[{"value":"<id>"}]}` (Entra).
    RemoveByValue,
    /// Enterprise `manager` sent as a bare string id (Entra).
    ManagerString,
    /// The extra `…/ADSCIM/2.0/Group` schema URN in Group `schemas` (Entra).
    AdscimGroupSchema,
    /// Path-less replace whose keys are dotted or URN-qualified paths (Entra with the flag).
    DottedPathlessKeys,
    /// `emails[type eq "work"].value eq "x"`: a sub-attribute after a value filter (Entra).
    FilterValuePathSubAttribute,
    /// `id` inside a PATCH value, e.g. group rename `{"id": …, "displayName": …}` (Okta, Entra).
    IdInPatchValue,
    /// `Authorization: <token>` without the `Bearer ` prefix (Okta, reported in the wild).
    BearerWithoutPrefix,
    /// `urn:scim:schemas:extension:enterprise:2.0` for the enterprise extension (OneLogin).
    OneLoginEnterpriseUrn,
    /// Group members and managers referenced by userName/email (or group displayName) instead
    /// of id (Okta, reported in the wild).
    ReferencesByValue,
    /// A required string attribute sent as `""` (Entra, for attributes mapped from empty
    /// source fields).
    EmptyRequiredString,
}

pub const ALL: &[Quirk] = &[
    Quirk::CapitalizedOps,
    Quirk::BooleanStrings,
    Quirk::RemoveByValue,
    Quirk::ManagerString,
    Quirk::AdscimGroupSchema,
    Quirk::DottedPathlessKeys,
    Quirk::FilterValuePathSubAttribute,
    Quirk::IdInPatchValue,
    Quirk::BearerWithoutPrefix,
    Quirk::OneLoginEnterpriseUrn,
    Quirk::ReferencesByValue,
    Quirk::EmptyRequiredString,
];

pub const ADSCIM_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
pub const ONELOGIN_ENTERPRISE: &str = "urn:scim:schemas:extension:enterprise:2.0";

impl Quirk {
    pub fn name(self) -> &'static str {
        match self {
            Quirk::CapitalizedOps => "capitalized_ops",
            Quirk::BooleanStrings => "boolean_strings",
            Quirk::RemoveByValue => "remove_by_value",
            Quirk::ManagerString => "manager_string",
            Quirk::AdscimGroupSchema => "adscim_group_schema",
            Quirk::DottedPathlessKeys => "dotted_pathless_keys",
            Quirk::FilterValuePathSubAttribute => "filter_value_path_sub_attribute",
            Quirk::IdInPatchValue => "id_in_patch_value",
            Quirk::BearerWithoutPrefix => "bearer_without_prefix",
            Quirk::OneLoginEnterpriseUrn => "onelogin_enterprise_urn",
            Quirk::ReferencesByValue => "references_by_value",
            Quirk::EmptyRequiredString => "empty_required_string",
        }
    }

    /// Which IdP is known to send it, for error messages.
    pub fn who(self) -> &'static str {
        match self {
            Quirk::IdInPatchValue => "Okta and Microsoft Entra ID",
            Quirk::BearerWithoutPrefix | Quirk::ReferencesByValue => "Okta",
            Quirk::OneLoginEnterpriseUrn => "OneLogin",
            _ => "Microsoft Entra ID",
        }
    }

    pub fn persona(self) -> &'static str {
        match self {
            Quirk::BearerWithoutPrefix | Quirk::ReferencesByValue => "okta",
            Quirk::OneLoginEnterpriseUrn => "onelogin",
            _ => "entra",
        }
    }

    pub fn parse(name: &str) -> Option<Quirk> {
        ALL.iter().copied().find(|q| q.name() == name)
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The quirks a persona accepts.
pub fn persona(name: &str) -> Option<Vec<Quirk>> {
    use Quirk::*;
    Some(match name {
        "strict" => vec![],
        "okta" => vec![IdInPatchValue, BearerWithoutPrefix, ReferencesByValue],
        "entra" => vec![
            CapitalizedOps,
            BooleanStrings,
            RemoveByValue,
            ManagerString,
            AdscimGroupSchema,
            DottedPathlessKeys,
            FilterValuePathSubAttribute,
            IdInPatchValue,
            EmptyRequiredString,
        ],
        "onelogin" => vec![OneLoginEnterpriseUrn],
        _ => return None,
    })
}

/// The quirks one server accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compat {
    quirks: Vec<Quirk>,
}

impl Compat {
    pub fn new(mut quirks: Vec<Quirk>) -> Compat {
        quirks.sort();
        quirks.dedup();
        Compat { quirks }
    }

    pub fn quirks(&self) -> &[Quirk] {
        &self.quirks
    }

    /// Whether `q` may be applied; logs it at debug (inside the request's span) when it is.
    pub fn allows(&self, q: Quirk) -> bool {
        let ok = self.quirks.contains(&q);
        if ok {
            tracing::debug!(quirk = q.name(), "applied IdP quirk");
            crate::vocab::notes::note_quirk(q.name());
        }
        ok
    }

    /// The error detail for a refused deviation.
    pub fn refusal(q: Quirk, what: &str) -> String {
        format!(
            "{what}: not RFC 7644 ({} sends this); this server is strict about it, set `compat: {}` or `compat: [{}]` to accept it",
            q.who(),
            q.persona(),
            q.name()
        )
    }
}
