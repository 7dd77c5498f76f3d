//! Attribute paths (`vocab::path`) resolved against a resource type: the one place that knows
//! where an attribute lives in a stored document.

use super::ResourceType;
use crate::error::{ScimError, ScimResult};
use crate::schema::{AttrType, AttributeDef, Mutability, Returned, SchemaDef, Uniqueness};
use std::sync::LazyLock;

pub use crate::vocab::path::{AttrPath, is_urn, valid_name};

/// Where a resolved attribute lives.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// `id`, a column of its own.
    Id,
    /// `meta.*` (the sub-attribute, if any), columns of their own.
    Meta(Option<&'a AttributeDef>),
    /// `schemas`, derived from the document.
    Schemas,
    /// An attribute stored in the document (`externalId` included).
    Doc(Resolved<'a>),
}

/// An attribute (and optional sub-attribute) of a resource type's schema.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// `Some(urn)` when the attribute lives in an extension object of the document.
    pub extension: Option<&'a str>,
    pub attr: &'a AttributeDef,
    pub sub: Option<&'a AttributeDef>,
}

impl<'a> Resolved<'a> {
    /// The definition the path ends at.
    pub fn leaf(&self) -> &'a AttributeDef {
        self.sub.unwrap_or(self.attr)
    }

    /// Canonical client-facing name, e.g. `emails.value`.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(u) = self.extension {
            s.push_str(u);
            s.push(':');
        }
        s.push_str(&self.attr.name);
        if let Some(sub) = self.sub {
            s.push('.');
            s.push_str(&sub.name);
        }
        s
    }
}

/// The common attributes every resource has (RFC 7643 §3.1), typed like schema attributes.
pub fn common() -> &'static SchemaDef {
    static COMMON: LazyLock<SchemaDef> = LazyLock::new(|| {
        let attr = |name: &str, ty, case_exact, mutability, returned, subs: Vec<AttributeDef>| {
            AttributeDef {
                name: name.into(),
                ty,
                multi_valued: false,
                description: std::string::String::new(),
                required: false,
                canonical_values: vec![],
                case_exact,
                mutability,
                returned,
                uniqueness: Uniqueness::None,
                reference_types: vec![],
                sub_attributes: subs,
                pattern: None,
                rule: None,
            }
        };
        use AttrType::*;
        use Mutability::*;
        let meta_subs = vec![
            attr(
                "resourceType",
                String,
                true,
                ReadOnly,
                Returned::Default,
                vec![],
            ),
            attr(
                "created",
                DateTime,
                false,
                ReadOnly,
                Returned::Default,
                vec![],
            ),
            attr(
                "lastModified",
                DateTime,
                false,
                ReadOnly,
                Returned::Default,
                vec![],
            ),
            attr(
                "location",
                Reference,
                true,
                ReadOnly,
                Returned::Default,
                vec![],
            ),
            attr("version", String, true, ReadOnly, Returned::Default, vec![]),
        ];
        SchemaDef {
            id: "common".into(),
            name: "common".into(),
            description: std::string::String::new(),
            attributes: vec![
                attr("id", String, true, ReadOnly, Returned::Always, vec![]),
                attr(
                    "externalId",
                    String,
                    true,
                    ReadWrite,
                    Returned::Default,
                    vec![],
                ),
                attr(
                    "meta",
                    Complex,
                    false,
                    ReadOnly,
                    Returned::Default,
                    meta_subs,
                ),
                attr("schemas", String, true, ReadOnly, Returned::Always, vec![]),
            ],
        }
    });
    &COMMON
}

impl ResourceType {
    /// Resolves a client path. Unqualified names are looked up in the core schema, then the
    /// common attributes, then (for convenience, as many clients do) the extensions.
    pub fn resolve(&self, path: &AttrPath) -> ScimResult<Target<'_>> {
        let unknown = || {
            ScimError::invalid_path(format!(
                "{path} is not an attribute of resource type {} (schemas: {})",
                self.name,
                self.schemas()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        let (extension, attr) = match &path.urn {
            Some(urn) if urn.eq_ignore_ascii_case(&self.schema.id) => {
                (None, self.schema.attr(&path.name).ok_or_else(unknown)?)
            }
            Some(urn) => {
                let ext = self.extension(urn).ok_or_else(unknown)?;
                (
                    Some(ext.schema.id.as_str()),
                    ext.schema.attr(&path.name).ok_or_else(unknown)?,
                )
            }
            None => {
                if let Some(a) = self.schema.attr(&path.name) {
                    (None, a)
                } else if let Some(a) = common().attr(&path.name) {
                    return self.resolve_common(a, path).ok_or_else(unknown);
                } else {
                    self.extensions
                        .iter()
                        .find_map(|e| {
                            e.schema
                                .attr(&path.name)
                                .map(|a| (Some(e.schema.id.as_str()), a))
                        })
                        .ok_or_else(unknown)?
                }
            }
        };
        let sub = match &path.sub {
            None => None,
            Some(s) => Some(attr.sub(s).ok_or_else(unknown)?),
        };
        Ok(Target::Doc(Resolved {
            extension,
            attr,
            sub,
        }))
    }

    fn resolve_common(
        &self,
        attr: &'static AttributeDef,
        path: &AttrPath,
    ) -> Option<Target<'static>> {
        match attr.name.as_str() {
            "id" if path.sub.is_none() => Some(Target::Id),
            "schemas" if path.sub.is_none() => Some(Target::Schemas),
            "meta" => match &path.sub {
                None => Some(Target::Meta(None)),
                Some(s) => attr.sub(s).map(|d| Target::Meta(Some(d))),
            },
            "externalId" if path.sub.is_none() => Some(Target::Doc(Resolved {
                extension: None,
                attr,
                sub: None,
            })),
            _ => None,
        }
    }
}
