//! A checked filter and sort ([`crate::model::query`]) as PostgreSQL over `jsonb` documents
//! (alias `r`), with the SCIM semantics of the SQLite compiler (`super::super::filter`):
//! text compares under the "C" collation and folds ASCII only, numbers and booleans compare
//! as JSON values, a missing value is unknown (NOT of unknown holds), multi-valued attributes
//! are `EXISTS` over their elements, members and groups come from the membership table.

use super::sql::{elements, json, scalar_text, text};
use crate::filter::CompareOp;
use crate::model::query::{Elements, Operand, Query, Sort, SortKey, Test};
use crate::schema::AttrType;
use crate::store::Keyset;
use crate::store::sort::{keyset_condition, value_order};
use tokio_postgres::types::{IsNull, ToSql, Type};

/// A bound parameter; every placeholder carries an explicit cast, so the value's own type
/// is the one the statement expects.
#[derive(Debug, Clone)]
pub enum Param {
    Text(String),
    Int(i64),
    Json(serde_json::Value),
    Texts(Vec<String>),
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(s) => s.to_sql(ty, out),
            Param::Int(i) => i.to_sql(ty, out),
            Param::Json(v) => tokio_postgres::types::Json(v).to_sql(ty, out),
            Param::Texts(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(s) => s.to_sql_checked(ty, out),
            Param::Int(i) => i.to_sql_checked(ty, out),
            Param::Json(v) => tokio_postgres::types::Json(v).to_sql_checked(ty, out),
            Param::Texts(v) => v.to_sql_checked(ty, out),
        }
    }
}

/// A WHERE clause and its parameters (placeholders numbered from the first `bind`).
#[derive(Debug, Default)]
pub struct Clause {
    pub sql: String,
    pub params: Vec<Param>,
}

/// Binds parameters as `$n::type`.
#[derive(Debug, Default)]
pub struct Binder {
    pub params: Vec<Param>,
}

impl Binder {
    pub fn bind(&mut self, p: Param) -> String {
        let cast = match &p {
            Param::Text(_) => "text",
            Param::Int(_) => "bigint",
            Param::Json(_) => "jsonb",
            Param::Texts(_) => "text[]",
        };
        self.params.push(p);
        format!("${}::{cast}", self.params.len())
    }
}

/// Compiles a checked query, binding after the parameters already in `b`.
pub fn filter(q: &Query<'_>, b: &mut Binder) -> String {
    match q {
        Query::Const(true) => "TRUE".into(),
        Query::Const(false) => "FALSE".into(),
        Query::And(l, r) => format!("({} AND {})", filter(l, b), filter(r, b)),
        Query::Or(l, r) => format!("({} OR {})", filter(l, b), filter(r, b)),
        Query::Not(x) => format!("NOT COALESCE({}, FALSE)", filter(x, b)),
        Query::HasExtension(urn) => format!("(r.doc ? {})", b.bind(Param::Text(urn.to_string()))),
        Query::Test {
            operand: Operand::Doc(res),
            test: Test::Exists,
            ..
        } => format!(
            "({} IS NOT NULL)",
            json(
                "r.doc",
                res.extension,
                &res.attr.name,
                res.sub.map(|s| s.name.as_str())
            )
        ),
        // The prefilter only spares SQLite parsing documents; jsonb is parsed already.
        Query::Test { operand, test, .. } => self::test(&operand_sql(operand), test, b),
        Query::Any {
            elements: el,
            res,
            cond,
            ..
        } => {
            let cond = filter(cond, b);
            match el {
                Elements::Doc(_) => format!(
                    "EXISTS (SELECT 1 FROM {} e(value) WHERE {cond})",
                    elements(&json("r.doc", res.extension, &res.attr.name, None))
                ),
                Elements::Members(_) => format!(
                    "EXISTS (SELECT 1 FROM memberships m WHERE m.server_id=r.server_id AND m.group_id=r.id AND {cond})"
                ),
                Elements::Groups(_) => format!(
                    "EXISTS (SELECT 1 FROM memberships m WHERE m.server_id=r.server_id AND m.member_id=r.id AND {cond})"
                ),
            }
        }
    }
}

/// An operand as text (for string, time, presence tests) and, where it is a JSON value, as
/// `jsonb` (for number and boolean tests).
struct OperandSql {
    text: String,
    json: Option<String>,
}

fn operand_sql(o: &Operand<'_>) -> OperandSql {
    let plain = |s: &str| OperandSql {
        text: s.to_string(),
        json: None,
    };
    match o {
        Operand::Id => plain("(r.id COLLATE \"C\")"),
        Operand::Created => plain("(r.created COLLATE \"C\")"),
        Operand::LastModified => plain("(r.last_modified COLLATE \"C\")"),
        Operand::ResourceType => plain("(r.resource_type COLLATE \"C\")"),
        Operand::Version => plain("(('W/\"' || r.version || '\"') COLLATE \"C\")"),
        Operand::Doc(res) => {
            let sub = res.sub.map(|s| s.name.as_str());
            OperandSql {
                text: text("r.doc", res.extension, &res.attr.name, sub),
                json: Some(json("r.doc", res.extension, &res.attr.name, sub)),
            }
        }
        Operand::Element(Elements::Doc(_), None) => OperandSql {
            text: scalar_text("e.value"),
            json: Some("e.value".into()),
        },
        Operand::Element(Elements::Doc(_), Some(def)) => OperandSql {
            text: text("e.value", None, &def.name, None),
            json: Some(json("e.value", None, &def.name, None)),
        },
        Operand::Element(Elements::Members(_), def) => match def.map(|d| d.name.as_str()) {
            Some("display") => plain("(m.display COLLATE \"C\")"),
            Some("type") => plain("(m.member_type COLLATE \"C\")"),
            _ => plain("(m.member_id COLLATE \"C\")"),
        },
        Operand::Element(Elements::Groups(_), def) => match def.map(|d| d.name.as_str()) {
            Some("display") => plain(
                "((SELECT g.doc->>'displayName' FROM resources g WHERE g.server_id=m.server_id AND g.id=m.group_id) COLLATE \"C\")",
            ),
            Some("type") => plain("('direct' COLLATE \"C\")"),
            _ => plain("(m.group_id COLLATE \"C\")"),
        },
    }
}

fn test(o: &OperandSql, t: &Test, b: &mut Binder) -> String {
    let expr = &o.text;
    let json = o.json.as_deref().unwrap_or(expr);
    match t {
        Test::IsNull => format!("{expr} IS NULL"),
        Test::NotNull => format!("{expr} IS NOT NULL"),
        Test::NonEmpty => format!("COALESCE({expr} <> '', FALSE)"),
        Test::Exists => "TRUE".into(),
        Test::Bool(v) => format!(
            "{json} = {}",
            b.bind(Param::Json(serde_json::Value::Bool(*v)))
        ),
        Test::Number(op, n) => format!(
            "(jsonb_typeof({json}) = 'number' AND {json} {} {})",
            ordering(*op),
            b.bind(Param::Json(serde_json::Value::Number(n.clone())))
        ),
        Test::Time(op, t) => format!(
            "{expr} {} {}",
            ordering(*op),
            b.bind(Param::Text(t.clone()))
        ),
        Test::Text {
            op,
            value,
            case_exact,
        } => {
            let lhs = if *case_exact {
                expr.to_string()
            } else {
                format!("lower({expr})")
            };
            let len = value.chars().count() as i64;
            let v = b.bind(Param::Text(value.clone()));
            match op {
                CompareOp::Co => format!("strpos({lhs}, {v}) > 0"),
                CompareOp::Sw => format!("left({lhs}, ({})::int) = {v}", b.bind(Param::Int(len))),
                CompareOp::Ew => format!("right({lhs}, ({})::int) = {v}", b.bind(Param::Int(len))),
                _ => format!("{lhs} {} ({v} COLLATE \"C\")", ordering(*op)),
            }
        }
    }
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

/// What a sort key's SQL value is, so that a cursor's keyset binds back as the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Text,
    Json,
    Int,
}

/// The value resources are ordered by (folded unless case-exact) and its kind.
pub fn key_expr(sort: &Sort<'_>) -> (String, KeyKind) {
    let is_text = |ty: AttrType| {
        !matches!(
            ty,
            AttrType::Integer | AttrType::Decimal | AttrType::Boolean
        )
    };
    let (expr, kind) = match sort.key {
        SortKey::Id => ("(r.id COLLATE \"C\")".to_string(), KeyKind::Text),
        SortKey::Created => ("(r.created COLLATE \"C\")".into(), KeyKind::Text),
        SortKey::LastModified => ("(r.last_modified COLLATE \"C\")".into(), KeyKind::Text),
        SortKey::ResourceType => ("(r.resource_type COLLATE \"C\")".into(), KeyKind::Text),
        SortKey::Version => ("r.version".into(), KeyKind::Int),
        SortKey::FirstValue(res) => {
            let first = format!("{}->0", json("r.doc", res.extension, &res.attr.name, None));
            if is_text(res.attr.ty) {
                (scalar_text(&first), KeyKind::Text)
            } else {
                (format!("({first})"), KeyKind::Json)
            }
        }
        SortKey::PrimaryElement(res, sub) => {
            let (value, kind) = if is_text(sub.ty) {
                (text("e.value", None, &sub.name, None), KeyKind::Text)
            } else {
                (json("e.value", None, &sub.name, None), KeyKind::Json)
            };
            (
                format!(
                    "(SELECT {value} FROM {} WITH ORDINALITY e(value, i) ORDER BY (e.value->'primary') IS DISTINCT FROM 'true'::jsonb, e.i LIMIT 1)",
                    elements(&json("r.doc", res.extension, &res.attr.name, None))
                ),
                kind,
            )
        }
        SortKey::Doc(res) => {
            let sub = res.sub.map(|s| s.name.as_str());
            if is_text(res.leaf().ty) {
                (
                    text("r.doc", res.extension, &res.attr.name, sub),
                    KeyKind::Text,
                )
            } else {
                (
                    json("r.doc", res.extension, &res.attr.name, sub),
                    KeyKind::Json,
                )
            }
        }
    };
    if sort.fold && kind == KeyKind::Text {
        (format!("lower({expr})"), kind)
    } else {
        (expr, kind)
    }
}

/// `ORDER BY` terms of a sort (insertion order breaks ties, added by the caller).
pub fn order_by(sort: &Sort<'_>) -> String {
    value_order(&key_expr(sort).0, sort.descending)
}

/// Cursor paging's key expression, its kind and `ORDER BY` (see the SQLite `keyset_order`).
pub fn keyset_order(sort: Option<&Sort<'_>>, backward: bool) -> (String, KeyKind, String) {
    let seq = if backward { "r.seq DESC" } else { "r.seq ASC" };
    match sort {
        Some(s) => {
            let (expr, kind) = key_expr(s);
            let order = format!("{}, {seq}", value_order(&expr, s.descending != backward));
            (expr, kind, order)
        }
        None => ("NULL::text".to_string(), KeyKind::Text, seq.to_string()),
    }
}

/// The keyset condition of cursor paging (see the SQLite `after`).
pub fn after(
    expr: &str,
    kind: KeyKind,
    descending: bool,
    backward: bool,
    last: &Keyset,
    b: &mut Binder,
) -> String {
    let seq = b.bind(Param::Int(last.seq));
    let key = match (&last.key, kind) {
        (serde_json::Value::Null, _) => None,
        (serde_json::Value::String(s), KeyKind::Text) => Some(format!(
            "({} COLLATE \"C\")",
            b.bind(Param::Text(s.clone()))
        )),
        (v, KeyKind::Int) => Some(b.bind(Param::Int(v.as_i64().unwrap_or(0)))),
        (v, _) => Some(b.bind(Param::Json(v.clone()))),
    };
    keyset_condition(expr, descending, backward, &seq, key.as_deref())
}
