//! A filter checked against a resource type: every path resolved to where its value lives,
//! every compared value typed. This is the only place a filter is refused for what it names;
//! a storage backend turns a [`Query`] into its own query language and cannot fail doing so.

use super::{AttrPath, Resolved, ResourceType, Target, path::common};
use crate::error::{ScimError, ScimResult};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::schema::{AttrType, AttributeDef};

/// A checked filter.
#[derive(Debug, Clone)]
pub enum Query<'a> {
    Const(bool),
    And(Box<Query<'a>>, Box<Query<'a>>),
    Or(Box<Query<'a>>, Box<Query<'a>>),
    /// True when the inner query is false or unknown (a missing value).
    Not(Box<Query<'a>>),
    /// One value put to a test; `prefilter` is a string the stored document must contain for
    /// the test to hold (a backend may use it to skip documents cheaply).
    Test {
        operand: Operand<'a>,
        test: Test,
        prefilter: Option<Needle>,
    },
    /// The resource carries the extension (`schemas eq "<extension URN>"`).
    HasExtension(&'a str),
    /// Some element of a multi-valued attribute satisfies `cond` (whose operands are
    /// [`Operand::Element`]s of these elements).
    Any {
        elements: Elements<'a>,
        res: Resolved<'a>,
        cond: Box<Query<'a>>,
        prefilter: Option<Needle>,
    },
}

/// A string every matching document contains, and whether its attribute is case-exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    pub text: String,
    pub case_exact: bool,
}

/// Where a tested value comes from.
#[derive(Debug, Clone, Copy)]
pub enum Operand<'a> {
    Id,
    Created,
    LastModified,
    ResourceType,
    /// `meta.version`, as the client sees it (`W/"n"`).
    Version,
    /// A single-valued attribute (or sub-attribute) of the document.
    Doc(Resolved<'a>),
    /// Inside [`Query::Any`]: the element itself (`None`, simple multi-valued attributes) or
    /// one of its sub-attributes.
    Element(Elements<'a>, Option<&'a AttributeDef>),
}

/// How the elements of a multi-valued attribute are stored.
#[derive(Debug, Clone, Copy)]
pub enum Elements<'a> {
    /// In the document.
    Doc(&'a AttributeDef),
    /// A group's `members`: the membership table (sub-attributes value, display, type).
    Members(&'a AttributeDef),
    /// A member's `groups`: derived from the membership table (value, display, type).
    Groups(&'a AttributeDef),
}

impl<'a> Elements<'a> {
    pub fn attr(&self) -> &'a AttributeDef {
        match *self {
            Elements::Doc(a) | Elements::Members(a) | Elements::Groups(a) => a,
        }
    }
}

/// What a value must be. String values of attributes that are not case-exact are already
/// folded (ASCII, as stored indexes fold them).
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    IsNull,
    NotNull,
    /// Present: a value that is not the empty string.
    NonEmpty,
    /// A complex attribute is there at all.
    Exists,
    Bool(bool),
    /// Eq, Gt, Ge, Lt or Le.
    Number(CompareOp, serde_json::Number),
    /// A normalised RFC 3339 instant; Eq, Gt, Ge, Lt or Le.
    Time(CompareOp, String),
    Text {
        op: CompareOp,
        value: String,
        case_exact: bool,
    },
}

impl Query<'_> {
    /// Whether at most one resource can match, found through an index: an `eq` on `id`
    /// or on a unique attribute, alone or ANDed with anything else.
    pub fn at_most_one(&self) -> bool {
        match self {
            Query::And(l, r) => l.at_most_one() || r.at_most_one(),
            Query::Test {
                operand,
                test: Test::Text {
                    op: CompareOp::Eq, ..
                },
                ..
            } => match operand {
                Operand::Id => true,
                Operand::Doc(p) => p.sub.is_none() && p.attr.unique_key(),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Checks `filter` for resources of `rt`.
pub fn check<'a>(filter: &Filter, rt: &'a ResourceType) -> ScimResult<Query<'a>> {
    Checker { rt }.node(filter, None)
}

struct Checker<'a> {
    rt: &'a ResourceType,
}

fn filter_err(e: ScimError) -> ScimError {
    ScimError::invalid_filter(e.detail())
}

impl<'a> Checker<'a> {
    fn node(&self, f: &Filter, scope: Option<Elements<'a>>) -> ScimResult<Query<'a>> {
        Ok(match f {
            Filter::And(l, r) => Query::And(
                Box::new(self.node(l, scope)?),
                Box::new(self.node(r, scope)?),
            ),
            Filter::Or(l, r) => Query::Or(
                Box::new(self.node(l, scope)?),
                Box::new(self.node(r, scope)?),
            ),
            Filter::Not(x) => Query::Not(Box::new(self.node(x, scope)?)),
            Filter::Compare {
                path,
                op: CompareOp::Ne,
                value,
            } => {
                let eq = Filter::Compare {
                    path: path.clone(),
                    op: CompareOp::Eq,
                    value: value.clone(),
                };
                Query::Not(Box::new(self.node(&eq, scope)?))
            }
            Filter::Compare { path, op, value } => match scope {
                Some(el) => {
                    let def = self.element_path(el, path)?;
                    let test = compare(def, *op, value, &path.to_string())?;
                    test_of(Operand::Element(el, sub_of(el, def)), test)
                }
                None => self.resource_compare(path, *op, value)?,
            },
            Filter::Present(path) => match scope {
                Some(el) => {
                    let def = self.element_path(el, path)?;
                    test_of(Operand::Element(el, sub_of(el, def)), Test::NonEmpty)
                }
                None => self.resource_present(path)?,
            },
            Filter::ValuePath { path, filter } => {
                if scope.is_some() {
                    return Err(ScimError::invalid_filter("value filters cannot be nested"));
                }
                let res = self.resolve_doc(path)?;
                if res.sub.is_some() || !res.attr.multi_valued || res.attr.ty != AttrType::Complex {
                    return Err(ScimError::invalid_filter(format!(
                        "{path}[...] needs a multi-valued complex attribute; {} is not one",
                        res.display()
                    )));
                }
                let elements = self.elements(&res);
                let cond = self.node(filter, Some(elements))?;
                let prefilter = match elements {
                    Elements::Doc(_) => needle(filter, res.attr),
                    _ => None,
                };
                Query::Any {
                    elements,
                    res,
                    cond: Box::new(cond),
                    prefilter,
                }
            }
        })
    }

    fn resolve_doc(&self, path: &AttrPath) -> ScimResult<Resolved<'a>> {
        match self.rt.resolve(path).map_err(filter_err)? {
            Target::Doc(r) => Ok(r),
            _ => Err(ScimError::invalid_filter(format!(
                "{path} cannot be used here"
            ))),
        }
    }

    fn elements(&self, res: &Resolved<'a>) -> Elements<'a> {
        if res.extension.is_none() && self.rt.has_members && res.attr.name == "members" {
            Elements::Members(res.attr)
        } else if res.extension.is_none() && self.rt.has_groups && res.attr.name == "groups" {
            Elements::Groups(res.attr)
        } else {
            Elements::Doc(res.attr)
        }
    }

    /// A path inside `attr[...]`: a sub-attribute name only.
    fn element_path(&self, el: Elements<'a>, path: &AttrPath) -> ScimResult<&'a AttributeDef> {
        if path.urn.is_some() || path.sub.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "inside {}[...] name sub-attributes only, not {path}",
                el.attr().name
            )));
        }
        element_sub(el, &path.name)
    }

    fn resource_compare(
        &self,
        path: &AttrPath,
        op: CompareOp,
        value: &CompValue,
    ) -> ScimResult<Query<'a>> {
        let shown = path.to_string();
        match self.rt.resolve(path).map_err(filter_err)? {
            Target::Id => {
                let def = common().attr("id").unwrap_or_else(|| unreachable!());
                Ok(test_of(Operand::Id, compare(def, op, value, &shown)?))
            }
            Target::Meta(Some(def)) => {
                let operand = match def.name.as_str() {
                    "created" => Operand::Created,
                    "lastModified" => Operand::LastModified,
                    "resourceType" => Operand::ResourceType,
                    "version" => Operand::Version,
                    _ => {
                        return Err(ScimError::invalid_filter(format!(
                            "filtering on meta.{} is not supported",
                            def.name
                        )));
                    }
                };
                Ok(test_of(operand, compare(def, op, value, &shown)?))
            }
            Target::Meta(None) => Err(ScimError::invalid_filter(
                "meta is complex; name a sub-attribute such as meta.lastModified",
            )),
            Target::Schemas => match (op, value) {
                (CompareOp::Eq, CompValue::Str(u))
                    if u.eq_ignore_ascii_case(&self.rt.schema.id) =>
                {
                    Ok(Query::Const(true))
                }
                (CompareOp::Eq, CompValue::Str(u)) => Ok(match self.rt.extension(u) {
                    Some(e) => Query::HasExtension(&e.schema.id),
                    None => Query::Const(false),
                }),
                _ => Err(ScimError::invalid_filter(
                    "schemas supports only eq \"<schema URN>\"",
                )),
            },
            Target::Doc(res) if res.attr.multi_valued => {
                let elements = self.elements(&res);
                let def = element_sub(
                    elements,
                    res.sub.map(|s| s.name.as_str()).unwrap_or("value"),
                )?;
                let test = compare(def, op, value, &shown)?;
                let prefilter = match elements {
                    Elements::Doc(_) => searchable(def, op, value),
                    _ => None,
                };
                Ok(Query::Any {
                    elements,
                    res,
                    cond: Box::new(test_of(
                        Operand::Element(elements, sub_of(elements, def)),
                        test,
                    )),
                    prefilter,
                })
            }
            Target::Doc(res) => {
                let leaf = res.leaf();
                if leaf.ty == AttrType::Complex {
                    return Err(ScimError::invalid_filter(format!(
                        "{} is complex; compare one of its sub-attributes, e.g. {}.{}",
                        res.display(),
                        res.display(),
                        leaf.sub_attributes
                            .first()
                            .map(|s| s.name.as_str())
                            .unwrap_or("value")
                    )));
                }
                let test = compare(leaf, op, value, &shown)?;
                // An indexed `eq` needs no help; substring tests scan, so prefilter them.
                let prefilter = searchable(leaf, op, value).filter(|_| op != CompareOp::Eq);
                Ok(Query::Test {
                    operand: Operand::Doc(res),
                    test,
                    prefilter,
                })
            }
        }
    }

    fn resource_present(&self, path: &AttrPath) -> ScimResult<Query<'a>> {
        Ok(match self.rt.resolve(path).map_err(filter_err)? {
            Target::Id | Target::Meta(_) | Target::Schemas => Query::Const(true),
            Target::Doc(res) if res.attr.multi_valued => {
                let elements = self.elements(&res);
                let cond = match res.sub {
                    Some(s) => {
                        let def = element_sub(elements, &s.name)?;
                        test_of(
                            Operand::Element(elements, sub_of(elements, def)),
                            Test::NonEmpty,
                        )
                    }
                    None => Query::Const(true),
                };
                Query::Any {
                    elements,
                    res,
                    cond: Box::new(cond),
                    prefilter: None,
                }
            }
            Target::Doc(res) => {
                let test = if res.leaf().ty == AttrType::Complex {
                    Test::Exists
                } else {
                    Test::NonEmpty
                };
                test_of(Operand::Doc(res), test)
            }
        })
    }
}

fn test_of(operand: Operand<'_>, test: Test) -> Query<'_> {
    Query::Test {
        operand,
        test,
        prefilter: None,
    }
}

/// The element operand's sub-attribute: none when the attribute is simple (its elements are
/// the values).
fn sub_of<'a>(el: Elements<'a>, def: &'a AttributeDef) -> Option<&'a AttributeDef> {
    (el.attr().ty == AttrType::Complex).then_some(def)
}

/// The definition of sub-attribute `name` of one element.
fn element_sub<'a>(el: Elements<'a>, name: &str) -> ScimResult<&'a AttributeDef> {
    let attr = el.attr();
    if attr.ty != AttrType::Complex {
        // A simple multi-valued attribute: its values are the elements themselves.
        return Ok(attr);
    }
    let def = attr.sub(name).ok_or_else(|| {
        ScimError::invalid_filter(format!("{name:?} is not a sub-attribute of {}", attr.name))
    })?;
    let stored = match el {
        Elements::Doc(_) => true,
        Elements::Members(_) | Elements::Groups(_) => {
            matches!(def.name.as_str(), "value" | "display" | "type")
        }
    };
    if !stored {
        return Err(ScimError::invalid_filter(format!(
            "cannot filter on {}.{}",
            attr.name, def.name
        )));
    }
    Ok(def)
}

/// The test `op value` on a value typed by `def`. `ne` never reaches here (it is `not eq`).
fn compare(def: &AttributeDef, op: CompareOp, value: &CompValue, shown: &str) -> ScimResult<Test> {
    let mismatch = |want: &str| {
        ScimError::invalid_filter(format!(
            "{shown} is of type {:?}; compare it with {want}, not {value}",
            def.ty
        ))
    };
    if let CompValue::Null = value {
        return match op {
            CompareOp::Eq => Ok(Test::IsNull),
            _ => Err(ScimError::invalid_filter(format!(
                "null can only be compared with eq or ne ({shown})"
            ))),
        };
    }
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    match def.ty {
        AttrType::Complex => Err(ScimError::invalid_filter(format!(
            "{shown} is complex; compare one of its sub-attributes"
        ))),
        AttrType::Boolean => {
            let CompValue::Bool(b) = value else {
                return Err(mismatch("true or false"));
            };
            if op != CompareOp::Eq {
                return Err(ScimError::invalid_filter(format!(
                    "{shown} is boolean; only eq and ne apply, not {}",
                    op.as_str()
                )));
            }
            Ok(Test::Bool(*b))
        }
        AttrType::Integer | AttrType::Decimal => {
            let CompValue::Num(n) = value else {
                return Err(mismatch("a number"));
            };
            if substring {
                return Err(ScimError::invalid_filter(format!(
                    "{} does not apply to the number {shown}",
                    op.as_str()
                )));
            }
            Ok(Test::Number(op, n.clone()))
        }
        AttrType::Binary if op.is_ordering() => Err(ScimError::invalid_filter(format!(
            "{shown} is binary; {} does not apply",
            op.as_str()
        ))),
        AttrType::DateTime if !substring => {
            let CompValue::Str(s) = value else {
                return Err(mismatch("a dateTime string"));
            };
            let normal = crate::vocab::time::normalize_datetime(s).ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "{s:?} is not an RFC 3339 dateTime (for {shown})"
                ))
            })?;
            Ok(Test::Time(op, normal))
        }
        _ => {
            let CompValue::Str(s) = value else {
                return Err(mismatch("a \"string\""));
            };
            if s.is_empty() && substring {
                return Ok(Test::NotNull);
            }
            Ok(Test::Text {
                op,
                value: if def.case_exact {
                    s.clone()
                } else {
                    s.to_ascii_lowercase()
                },
                case_exact: def.case_exact,
            })
        }
    }
}

/// The string a comparison requires to occur in the attribute's value, if any.
fn searchable(def: &AttributeDef, op: CompareOp, value: &CompValue) -> Option<Needle> {
    match (def.ty, op, value) {
        (
            AttrType::String | AttrType::Reference,
            CompareOp::Eq | CompareOp::Co | CompareOp::Sw | CompareOp::Ew,
            CompValue::Str(s),
        ) if usable_needle(s) => Some(Needle {
            text: s.clone(),
            case_exact: def.case_exact,
        }),
        _ => None,
    }
}

/// A needle occurs verbatim in the document's JSON text only if JSON escapes none of it.
fn usable_needle(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c == '"' || c == '\\' || c.is_control())
}

/// The longest string that every value matching `f` (inside `attr[...]`) must contain: from
/// the comparisons that `f` requires (its `and` chain).
fn needle(f: &Filter, attr: &AttributeDef) -> Option<Needle> {
    match f {
        Filter::And(l, r) => match (needle(l, attr), needle(r, attr)) {
            (Some(a), Some(b)) => Some(if b.text.len() > a.text.len() { b } else { a }),
            (a, b) => a.or(b),
        },
        Filter::Compare { path, op, value } if path.urn.is_none() && path.sub.is_none() => {
            let def = attr.sub(&path.name)?;
            searchable(def, *op, value)
        }
        _ => None,
    }
}

/// A checked `sortBy` (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, Copy)]
pub struct Sort<'a> {
    pub key: SortKey<'a>,
    /// Compare folded (ASCII) values: the attribute is not case-exact.
    pub fold: bool,
    pub descending: bool,
}

/// What resources are ordered by; a resource without the value sorts last.
#[derive(Debug, Clone, Copy)]
pub enum SortKey<'a> {
    Id,
    Created,
    LastModified,
    ResourceType,
    /// The version number.
    Version,
    /// A single-valued attribute (or sub-attribute) of the document.
    Doc(Resolved<'a>),
    /// The first value of a simple multi-valued attribute.
    FirstValue(Resolved<'a>),
    /// A sub-attribute of the primary (else first) element of a complex multi-valued one.
    PrimaryElement(Resolved<'a>, &'a AttributeDef),
}

/// Checks `sort_by` for resources of `rt`.
pub fn sort<'a>(rt: &'a ResourceType, sort_by: &str, descending: bool) -> ScimResult<Sort<'a>> {
    let bad = |why: &str| ScimError::invalid_value(format!("sortBy={sort_by:?}: {why}"));
    let path = AttrPath::parse(sort_by).map_err(|e| bad(e.detail()))?;
    let exact = |key| (key, false);
    let (key, fold) = match rt.resolve(&path).map_err(|e| bad(e.detail()))? {
        Target::Id => exact(SortKey::Id),
        Target::Meta(Some(d)) => match d.name.as_str() {
            "created" => exact(SortKey::Created),
            "lastModified" => exact(SortKey::LastModified),
            "resourceType" => exact(SortKey::ResourceType),
            "version" => exact(SortKey::Version),
            _ => return Err(bad("not a sortable (simple) attribute")),
        },
        Target::Doc(res) if res.attr.multi_valued && res.attr.ty != AttrType::Complex => {
            (SortKey::FirstValue(res), !res.attr.case_exact)
        }
        Target::Doc(res) if res.attr.multi_valued => {
            let sub = (res.sub.or_else(|| res.attr.sub("value")))
                .ok_or_else(|| bad("name a sub-attribute to sort by"))?;
            (SortKey::PrimaryElement(res, sub), !sub.case_exact)
        }
        Target::Doc(res) if res.leaf().ty != AttrType::Complex => {
            (SortKey::Doc(res), !res.leaf().case_exact)
        }
        _ => return Err(bad("not a sortable (simple) attribute")),
    };
    Ok(Sort {
        key,
        fold,
        descending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn only_an_eq_on_a_unique_key_is_a_lookup() {
        let def = "id: q\ntokens: [t]\nresource_types:\n  User:\n    attributes:\n      badge: { type: string, uniqueness: server }\n  Group: {}\n";
        let file = crate::definition::load_str(Path::new("q.yaml"), def).unwrap();
        let model = crate::model::compile::compile(&[file], &[]).unwrap();
        let server = &model.servers["q"];
        let rt = server
            .resource_types
            .iter()
            .find(|r| r.name == "User")
            .unwrap();
        let lookup = |f: &str| {
            let parsed = crate::filter::parse(f).unwrap();
            check(&parsed, rt)
                .unwrap_or_else(|e| panic!("{f}: {}", e.detail()))
                .at_most_one()
        };
        for f in [
            r#"userName eq "bjensen""#,
            r#"id eq "2819c223""#,
            r#"badge eq "B-7""#,
            r#"userName eq "bjensen" and active eq true"#,
            r#"title pr and (userName eq "bjensen")"#,
        ] {
            assert!(lookup(f), "{f} finds at most one user");
        }
        for f in [
            r#"userName co "jensen""#,
            r#"userName ne "bjensen""#,
            r#"userName eq "bjensen" or userName eq "jsmith""#,
            r#"not (userName eq "bjensen")"#,
            r#"displayName eq "Babs""#,
            r#"externalId eq "701984""#,
            r#"emails[value eq "b@example.com"]"#,
            r#"name.familyName eq "Jensen""#,
        ] {
            assert!(!lookup(f), "{f} may match more than one user");
        }
    }
}
