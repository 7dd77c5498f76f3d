//! Filter → SQL over the stored documents (alias `r`): the store's compilation of the filter
//! AST (`crate::filter`), with SCIM semantics (caseExact, typed comparisons, value paths). Multi-valued attributes become
//! `EXISTS` over `json_each`, group membership becomes `EXISTS` over the membership table, and
//! single-valued attributes compare the very expression the index plan indexed.

use super::sql::{json_path, literal};
use crate::error::{ScimError, ScimResult};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::model::{AttrPath, Resolved, ResourceType, Target, path::common};
use crate::schema::{AttrType, AttributeDef};
use rusqlite::types::Value as SqlValue;

/// A WHERE clause and its bound parameters.
#[derive(Debug, Default)]
pub struct SqlFilter {
    pub clause: String,
    pub params: Vec<SqlValue>,
}

/// Compiles `filter` for resources of `rt`.
pub fn compile(filter: &Filter, rt: &ResourceType) -> ScimResult<SqlFilter> {
    let mut c = Compiler {
        rt,
        params: Vec::new(),
    };
    let clause = c.node(filter, None)?;
    Ok(SqlFilter {
        clause,
        params: c.params,
    })
}

/// How values of one multi-valued attribute are reached inside an `EXISTS`.
#[derive(Clone, Copy)]
enum Elements<'a> {
    /// `json_each` rows aliased `e`.
    Json(&'a AttributeDef),
    /// Group members: membership rows `m` of the group `r`.
    Members(&'a AttributeDef),
    /// Groups of a member: membership rows `m` whose member is `r`.
    Groups(&'a AttributeDef),
}

impl<'a> Elements<'a> {
    fn attr(&self) -> &'a AttributeDef {
        match *self {
            Elements::Json(a) | Elements::Members(a) | Elements::Groups(a) => a,
        }
    }
}

struct Compiler<'a> {
    rt: &'a ResourceType,
    params: Vec<SqlValue>,
}

fn filter_err(e: ScimError) -> ScimError {
    ScimError::invalid_filter(e.detail)
}

impl<'a> Compiler<'a> {
    fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }

    fn node(&mut self, f: &Filter, scope: Option<Elements<'a>>) -> ScimResult<String> {
        Ok(match f {
            Filter::And(l, r) => format!("({} AND {})", self.node(l, scope)?, self.node(r, scope)?),
            Filter::Or(l, r) => format!("({} OR {})", self.node(l, scope)?, self.node(r, scope)?),
            Filter::Not(x) => format!("NOT COALESCE({}, 0)", self.node(x, scope)?),
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
                format!("NOT COALESCE({}, 0)", self.node(&eq, scope)?)
            }
            Filter::Compare { path, op, value } => match scope {
                Some(el) => {
                    let (expr, def) = self.element_expr(el, path)?;
                    self.compare(&expr, def, *op, value, &path.to_string())?
                }
                None => self.resource_compare(path, *op, value)?,
            },
            Filter::Present(path) => match scope {
                Some(el) => {
                    let (expr, _) = self.element_expr(el, path)?;
                    format!("COALESCE({expr} <> '', 0)")
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
                let el = self.elements(&res);
                let inner = self.node(filter, Some(el))?;
                let exists = self.exists(el, &res, &inner)?;
                match (el, needle(filter, res.attr)) {
                    (Elements::Json(_), Some((n, case_exact))) => {
                        self.with_prefilter(n, case_exact, exists)
                    }
                    _ => exists,
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
            Elements::Json(res.attr)
        }
    }

    fn exists(&self, el: Elements<'a>, res: &Resolved<'a>, cond: &str) -> ScimResult<String> {
        Ok(match el {
            Elements::Json(_) => format!(
                "EXISTS (SELECT 1 FROM json_each(r.doc, {}) e WHERE {cond})",
                literal(&json_path(res.extension, &res.attr.name, None))
            ),
            Elements::Members(_) => format!(
                "EXISTS (SELECT 1 FROM memberships m WHERE m.server_id=r.server_id AND m.group_id=r.id AND {cond})"
            ),
            Elements::Groups(_) => format!(
                "EXISTS (SELECT 1 FROM memberships m WHERE m.server_id=r.server_id AND m.member_id=r.id AND {cond})"
            ),
        })
    }

    /// Expression of a sub-attribute of one element (`type` inside `emails[...]`).
    fn element_expr(
        &self,
        el: Elements<'a>,
        path: &AttrPath,
    ) -> ScimResult<(String, &'a AttributeDef)> {
        let attr = el.attr();
        if path.urn.is_some() || path.sub.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "inside {}[...] name sub-attributes only, not {path}",
                attr.name
            )));
        }
        self.element_sub(el, &path.name)
    }

    fn element_sub(&self, el: Elements<'a>, name: &str) -> ScimResult<(String, &'a AttributeDef)> {
        let attr = el.attr();
        if attr.ty != AttrType::Complex {
            // A simple multi-valued attribute: its values are the elements themselves.
            return Ok(("e.value".into(), attr));
        }
        let def = attr.sub(name).ok_or_else(|| {
            ScimError::invalid_filter(format!("{name:?} is not a sub-attribute of {}", attr.name))
        })?;
        let expr = match (el, def.name.as_str()) {
            (Elements::Json(_), n) => format!("json_extract(e.value, {})", literal(&format!("$.\"{n}\""))),
            (Elements::Members(_), "value") => "m.member_id".into(),
            (Elements::Members(_), "display") => "m.display".into(),
            (Elements::Members(_), "type") => "m.member_type".into(),
            (Elements::Groups(_), "value") => "m.group_id".into(),
            (Elements::Groups(_), "display") => "(SELECT json_extract(g.doc,'$.\"displayName\"') FROM resources g WHERE g.server_id=m.server_id AND g.id=m.group_id)".into(),
            (Elements::Groups(_), "type") => "'direct'".into(),
            (_, n) => return Err(ScimError::invalid_filter(format!("cannot filter on {}.{n}", attr.name))),
        };
        Ok((expr, def))
    }

    fn resource_compare(
        &mut self,
        path: &AttrPath,
        op: CompareOp,
        value: &CompValue,
    ) -> ScimResult<String> {
        let shown = path.to_string();
        match self.rt.resolve(path).map_err(filter_err)? {
            Target::Id => self.compare(
                "r.id",
                common().attr("id").unwrap_or_else(|| unreachable!()),
                op,
                value,
                &shown,
            ),
            Target::Meta(Some(def)) => {
                let column = match def.name.as_str() {
                    "created" => "r.created",
                    "lastModified" => "r.last_modified",
                    "resourceType" => "r.resource_type",
                    "version" => "('W/\"' || r.version || '\"')",
                    _ => {
                        return Err(ScimError::invalid_filter(format!(
                            "filtering on meta.{} is not supported",
                            def.name
                        )));
                    }
                };
                self.compare(column, def, op, value, &shown)
            }
            Target::Meta(None) => Err(ScimError::invalid_filter(
                "meta is complex; name a sub-attribute such as meta.lastModified",
            )),
            Target::Schemas => match (op, value) {
                (CompareOp::Eq, CompValue::Str(u))
                    if u.eq_ignore_ascii_case(&self.rt.schema.id) =>
                {
                    Ok("1".into())
                }
                (CompareOp::Eq, CompValue::Str(u)) => Ok(match self.rt.extension(u) {
                    Some(e) => format!(
                        "json_type(r.doc, {}) IS NOT NULL",
                        literal(&format!("$.\"{}\"", e.schema.id))
                    ),
                    None => "0".into(),
                }),
                _ => Err(ScimError::invalid_filter(
                    "schemas supports only eq \"<schema URN>\"",
                )),
            },
            Target::Doc(res) => {
                if res.attr.multi_valued {
                    let el = self.elements(&res);
                    let (expr, def) =
                        self.element_sub(el, res.sub.map(|s| s.name.as_str()).unwrap_or("value"))?;
                    let cond = self.compare(&expr, def, op, value, &shown)?;
                    let exists = self.exists(el, &res, &cond)?;
                    return Ok(match (el, searchable(def, op, value)) {
                        (Elements::Json(_), Some(n)) => {
                            self.with_prefilter(n, def.case_exact, exists)
                        }
                        _ => exists,
                    });
                }
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
                let expr = format!(
                    "json_extract(r.doc,{})",
                    literal(&json_path(
                        res.extension,
                        &res.attr.name,
                        res.sub.map(|s| s.name.as_str())
                    ))
                );
                let cond = self.compare(&expr, leaf, op, value, &shown)?;
                // An indexed `eq` needs no help; substring tests scan, so prefilter them.
                Ok(match searchable(leaf, op, value) {
                    Some(n) if op != CompareOp::Eq => self.with_prefilter(n, leaf.case_exact, cond),
                    _ => cond,
                })
            }
        }
    }

    /// `instr(doc, needle) > 0 AND cond`. Whenever `cond` holds for a string attribute equal to,
    /// containing, starting or ending with `needle`, the needle also occurs in the document's
    /// JSON text (it has no character JSON escapes), so this is equivalent to `cond` but rejects
    /// most rows without parsing their JSON.
    fn with_prefilter(&mut self, needle: &str, case_exact: bool, cond: String) -> String {
        if needle.is_empty()
            || needle
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control())
        {
            return cond;
        }
        if case_exact {
            let p = self.bind(SqlValue::Text(needle.to_string()));
            return format!("(instr(r.doc, {p}) > 0 AND {cond})");
        }
        // LIKE folds ASCII case like lower() does, without copying the document.
        let escaped: String = needle
            .chars()
            .flat_map(|c| {
                if matches!(c, '%' | '_' | '^') {
                    vec!['^', c]
                } else {
                    vec![c]
                }
            })
            .collect();
        let p = self.bind(SqlValue::Text(format!("%{escaped}%")));
        format!("(r.doc LIKE {p} ESCAPE '^' AND {cond})")
    }

    fn resource_present(&mut self, path: &AttrPath) -> ScimResult<String> {
        Ok(match self.rt.resolve(path).map_err(filter_err)? {
            Target::Id | Target::Meta(_) | Target::Schemas => "1".into(),
            Target::Doc(res) if res.attr.multi_valued => {
                let el = self.elements(&res);
                let cond = match res.sub {
                    Some(s) => format!("COALESCE({} <> '', 0)", self.element_sub(el, &s.name)?.0),
                    None => "1".into(),
                };
                self.exists(el, &res, &cond)?
            }
            Target::Doc(res) => {
                let p = literal(&json_path(
                    res.extension,
                    &res.attr.name,
                    res.sub.map(|s| s.name.as_str()),
                ));
                if res.leaf().ty == AttrType::Complex {
                    format!("json_type(r.doc,{p}) IS NOT NULL")
                } else {
                    format!("COALESCE(json_extract(r.doc,{p}) <> '', 0)")
                }
            }
        })
    }

    /// `expr op value`, typed by `def`. `ne` never reaches here (it is `NOT eq`).
    fn compare(
        &mut self,
        expr: &str,
        def: &AttributeDef,
        op: CompareOp,
        value: &CompValue,
        shown: &str,
    ) -> ScimResult<String> {
        let mismatch = |want: &str| {
            ScimError::invalid_filter(format!(
                "{shown} is of type {:?}; compare it with {want}, not {value}",
                def.ty
            ))
        };
        if let CompValue::Null = value {
            return match op {
                CompareOp::Eq => Ok(format!("{expr} IS NULL")),
                _ => Err(ScimError::invalid_filter(format!(
                    "null can only be compared with eq or ne ({shown})"
                ))),
            };
        }
        let sql_op = match op {
            CompareOp::Eq | CompareOp::Ne => "=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => "",
        };
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
                let p = self.bind(SqlValue::Integer(*b as i64));
                Ok(format!("{expr} = {p}"))
            }
            AttrType::Integer | AttrType::Decimal => {
                let CompValue::Num(n) = value else {
                    return Err(mismatch("a number"));
                };
                if sql_op.is_empty() {
                    return Err(ScimError::invalid_filter(format!(
                        "{} does not apply to the number {shown}",
                        op.as_str()
                    )));
                }
                let v = match n.as_i64() {
                    Some(i) => SqlValue::Integer(i),
                    None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
                };
                let p = self.bind(v);
                Ok(format!("{expr} {sql_op} {p}"))
            }
            AttrType::Binary if op.is_ordering() => Err(ScimError::invalid_filter(format!(
                "{shown} is binary; {} does not apply",
                op.as_str()
            ))),
            AttrType::DateTime if !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) => {
                let CompValue::Str(s) = value else {
                    return Err(mismatch("a dateTime string"));
                };
                let normal = crate::vocab::time::normalize_datetime(s).ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "{s:?} is not an RFC 3339 dateTime (for {shown})"
                    ))
                })?;
                let p = self.bind(SqlValue::Text(normal));
                Ok(format!("{expr} {sql_op} {p}"))
            }
            _ => {
                let CompValue::Str(s) = value else {
                    return Err(mismatch("a \"string\""));
                };
                // SQLite's lower() folds ASCII only; fold the parameter the same way so the
                // comparison (and the index on lower(...)) agree.
                let (lhs, s) = if def.case_exact {
                    (expr.to_string(), s.clone())
                } else {
                    (format!("lower({expr})"), s.to_ascii_lowercase())
                };
                if s.is_empty() && matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
                    return Ok(format!("{expr} IS NOT NULL"));
                }
                let len = s.chars().count() as i64;
                Ok(match op {
                    CompareOp::Co => format!("instr({lhs}, {}) > 0", self.bind(SqlValue::Text(s))),
                    CompareOp::Sw => {
                        let l = self.bind(SqlValue::Integer(len));
                        format!("substr({lhs}, 1, {l}) = {}", self.bind(SqlValue::Text(s)))
                    }
                    CompareOp::Ew => {
                        let l = self.bind(SqlValue::Integer(-len));
                        format!("substr({lhs}, {l}) = {}", self.bind(SqlValue::Text(s)))
                    }
                    _ => format!("{lhs} {sql_op} {}", self.bind(SqlValue::Text(s))),
                })
            }
        }
    }
}

/// The string a comparison requires to occur in the attribute's value, if any.
fn searchable<'v>(def: &AttributeDef, op: CompareOp, value: &'v CompValue) -> Option<&'v str> {
    match (def.ty, op, value) {
        (
            AttrType::String | AttrType::Reference,
            CompareOp::Eq | CompareOp::Co | CompareOp::Sw | CompareOp::Ew,
            CompValue::Str(s),
        ) => Some(s),
        _ => None,
    }
}

/// The longest string that every value matching `f` (inside `attr[...]`) must contain, with
/// its attribute's case-exactness: from the comparisons that `f` requires (its `and` chain).
fn needle<'f>(f: &'f Filter, attr: &AttributeDef) -> Option<(&'f str, bool)> {
    match f {
        Filter::And(l, r) => match (needle(l, attr), needle(r, attr)) {
            (Some(a), Some(b)) => Some(if b.0.len() > a.0.len() { b } else { a }),
            (a, b) => a.or(b),
        },
        Filter::Compare { path, op, value } if path.urn.is_none() && path.sub.is_none() => {
            let def = attr.sub(&path.name)?;
            searchable(def, *op, value).map(|s| (s, def.case_exact))
        }
        _ => None,
    }
}
