//! A checked filter ([`crate::model::query::Query`]) as SQL over the stored documents (alias
//! `r`). Multi-valued attributes become `EXISTS` over `json_each`, group membership becomes
//! `EXISTS` over the membership table, and single-valued attributes compare the very
//! expression the index plan indexed. Nothing here can refuse a filter: the model did.

use super::sql::{json_path, literal};
use crate::filter::CompareOp;
use crate::model::query::{Elements, Needle, Operand, Query, Test};
use rusqlite::types::Value as SqlValue;

/// A WHERE clause and its bound parameters.
#[derive(Debug, Default)]
pub struct SqlFilter {
    pub clause: String,
    pub params: Vec<SqlValue>,
}

/// Compiles a checked query.
pub fn emit(q: &Query<'_>) -> SqlFilter {
    let mut e = Emitter { params: Vec::new() };
    let clause = e.node(q);
    SqlFilter {
        clause,
        params: e.params,
    }
}

struct Emitter {
    params: Vec<SqlValue>,
}

impl Emitter {
    fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        ["?", itoa::Buffer::new().format(self.params.len())].concat()
    }

    fn node(&mut self, q: &Query<'_>) -> String {
        match q {
            Query::Const(b) => if *b { "1" } else { "0" }.into(),
            Query::And(l, r) => format!("({} AND {})", self.node(l), self.node(r)),
            Query::Or(l, r) => format!("({} OR {})", self.node(l), self.node(r)),
            Query::Not(x) => format!("NOT COALESCE({}, 0)", self.node(x)),
            Query::HasExtension(urn) => format!(
                "json_type(r.doc, {}) IS NOT NULL",
                literal(&format!("$.\"{urn}\""))
            ),
            Query::Test {
                operand: Operand::Doc(res),
                test: Test::Exists,
                ..
            } => format!("json_type(r.doc,{}) IS NOT NULL", doc_path(res)),
            Query::Test {
                operand,
                test,
                prefilter,
            } => {
                let cond = self.test(&operand_sql(operand), test);
                self.with_prefilter(prefilter.as_ref(), cond)
            }
            Query::Any {
                elements,
                res,
                cond,
                prefilter,
            } => {
                let cond = self.node(cond);
                let exists = match elements {
                    Elements::Doc(_) => format!(
                        "EXISTS (SELECT 1 FROM json_each(r.doc, {}) e WHERE {cond})",
                        literal(&json_path(res.extension, &res.attr.name, None))
                    ),
                    Elements::Members(_) => format!(
                        "EXISTS (SELECT 1 FROM memberships m WHERE m.server_id=r.server_id AND m.group_id=r.id AND {cond})"
                    ),
                    Elements::Groups(_) => format!(
                        "EXISTS (SELECT 1 FROM memberships m WHERE m.server_id=r.server_id AND m.member_id=r.id AND {cond})"
                    ),
                };
                self.with_prefilter(prefilter.as_ref(), exists)
            }
        }
    }

    /// `instr(doc, needle) > 0 AND cond`. Whenever `cond` holds for a string attribute equal to,
    /// containing, starting or ending with `needle`, the needle also occurs in the document's
    /// JSON text (the model only offers needles JSON does not escape), so this is equivalent
    /// to `cond` but rejects most rows without parsing their JSON.
    fn with_prefilter(&mut self, needle: Option<&Needle>, cond: String) -> String {
        let Some(n) = needle else {
            return cond;
        };
        if n.case_exact {
            let p = self.bind(SqlValue::Text(n.text.clone()));
            return format!("(instr(r.doc, {p}) > 0 AND {cond})");
        }
        // LIKE folds ASCII case like lower() does, without copying the document.
        let mut escaped = String::with_capacity(n.text.len() + 2);
        for c in n.text.chars() {
            if matches!(c, '%' | '_' | '^') {
                escaped.push('^');
            }
            escaped.push(c);
        }
        let p = self.bind(SqlValue::Text(format!("%{escaped}%")));
        format!("(r.doc LIKE {p} ESCAPE '^' AND {cond})")
    }

    fn test(&mut self, expr: &str, test: &Test) -> String {
        match test {
            Test::IsNull => format!("{expr} IS NULL"),
            Test::NotNull => format!("{expr} IS NOT NULL"),
            Test::NonEmpty => format!("COALESCE({expr} <> '', 0)"),
            // Only document attributes are complex (handled in `node`); an element is there.
            Test::Exists => "1".into(),
            Test::Bool(b) => {
                let p = self.bind(SqlValue::Integer(*b as i64));
                format!("{expr} = {p}")
            }
            Test::Number(op, n) => {
                let v = match n.as_i64() {
                    Some(i) => SqlValue::Integer(i),
                    None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
                };
                let p = self.bind(v);
                format!("{expr} {} {p}", ordering(*op))
            }
            Test::Time(op, t) => {
                let p = self.bind(SqlValue::Text(t.clone()));
                format!("{expr} {} {p}", ordering(*op))
            }
            Test::Text {
                op,
                value,
                case_exact,
            } => {
                // SQLite's lower() folds ASCII only, as the model folded the value; the
                // comparison and the index on lower(...) agree.
                let lhs = if *case_exact {
                    expr.to_string()
                } else {
                    ["lower(", expr, ")"].concat()
                };
                let len = value.chars().count() as i64;
                let text = SqlValue::Text(value.clone());
                match op {
                    CompareOp::Co => format!("instr({lhs}, {}) > 0", self.bind(text)),
                    CompareOp::Sw => {
                        let l = self.bind(SqlValue::Integer(len));
                        format!("substr({lhs}, 1, {l}) = {}", self.bind(text))
                    }
                    CompareOp::Ew => {
                        let l = self.bind(SqlValue::Integer(-len));
                        format!("substr({lhs}, {l}) = {}", self.bind(text))
                    }
                    // `concat`, not `format!`: the IdP's `eq` lookup builds this on every call.
                    _ => [&lhs, " ", ordering(*op), " ", &self.bind(text)].concat(),
                }
            }
        }
    }
}

/// The JSON path literal of a document attribute.
fn doc_path(res: &crate::model::Resolved<'_>) -> String {
    literal(&json_path(
        res.extension,
        &res.attr.name,
        res.sub.map(|s| s.name.as_str()),
    ))
}

fn ordering(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        _ => "=",
    }
}

/// The SQL expression of an operand.
fn operand_sql(o: &Operand<'_>) -> String {
    match o {
        Operand::Id => "r.id".into(),
        Operand::Created => "r.created".into(),
        Operand::LastModified => "r.last_modified".into(),
        Operand::ResourceType => "r.resource_type".into(),
        Operand::Version => "('W/\"' || r.version || '\"')".into(),
        Operand::Doc(res) => ["json_extract(r.doc,", &doc_path(res), ")"].concat(),
        Operand::Element(Elements::Doc(_), None) => "e.value".into(),
        Operand::Element(Elements::Doc(_), Some(def)) => {
            format!("json_extract(e.value, {})", literal(&format!("$.\"{}\"", def.name)))
        }
        Operand::Element(Elements::Members(_), def) => match def.map(|d| d.name.as_str()) {
            Some("display") => "m.display".into(),
            Some("type") => "m.member_type".into(),
            _ => "m.member_id".into(),
        },
        Operand::Element(Elements::Groups(_), def) => match def.map(|d| d.name.as_str()) {
            Some("display") => "(SELECT json_extract(g.doc,'$.\"displayName\"') FROM resources g WHERE g.server_id=m.server_id AND g.id=m.group_id)".into(),
            Some("type") => "'direct'".into(),
            _ => "m.group_id".into(),
        },
    }
}
