//! The SQL plan derived from a compiled server: one expression index per commonly filtered
//! or unique attribute, on `(server_id, resource_type, <expression>)` and shared by every
//! server and resource type that indexes the same expression. Applying it is idempotent and
//! additive (index names carry a hash of their definition). Each backend indexes the very
//! expression its filter compiler emits.
//!
//! Not one partial index per server: every write to `resources` opens every index of the
//! table, matching or not, so writes slowed with the number of servers (measured: 200 servers,
//! 1,000 partial indexes, a create took 4 ms on SQLite and 5.5 ms on PostgreSQL instead of
//! 0.3 and 1.1 ms). Unique attributes are therefore enforced by the store, which checks the
//! value inside the write's transaction: a server's writes are serialised on both backends
//! (one writer connection on SQLite, an advisory lock per server on PostgreSQL), so the check
//! is exact.

use super::sql;
use crate::model::{ResourceType, ServerModel};
use crate::schema::AttrType;

/// The SQL dialect an index plan is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The indexed expression of a string attribute of `doc` (folded unless case-exact).
    fn extract(self, ext: Option<&str>, name: &str, case_exact: bool) -> String {
        match self {
            Dialect::Sqlite => sql::extract("doc", &sql::json_path(ext, name, None), case_exact),
            Dialect::Postgres => {
                let text = super::pg::sql::text("doc", ext, name, None);
                if case_exact {
                    text
                } else {
                    format!("lower({text})")
                }
            }
        }
    }
}

/// An index the store must have for one server (uniqueness or fast filtering).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    /// Shared by every spec with the same expression.
    pub name: String,
    pub resource_type: String,
    /// The attribute as a client would name it, for error messages.
    pub attribute: String,
    /// No two resources of the server and type may share the value (checked by the store).
    pub unique: bool,
    /// SQL expression over `doc`, e.g. `lower(json_extract(doc,'$."userName"'))`.
    pub expression: String,
}

/// The server's indexes.
pub fn indexes_for(server: &ServerModel, dialect: Dialect) -> Vec<IndexSpec> {
    let mut out = Vec::new();
    for rt in &server.resource_types {
        for_each_key(rt, dialect, |name, attribute, unique, expression| {
            out.push(IndexSpec {
                name: index_name(dialect, name, &expression),
                resource_type: rt.name.clone(),
                attribute,
                unique,
                expression,
            });
        });
    }
    out
}

/// The unique attributes of one resource type as (attribute as clients name it, expression):
/// what a write must check.
fn unique_keys(rt: &ResourceType, dialect: Dialect) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for_each_key(rt, dialect, |_, attribute, unique, expression| {
        if unique {
            out.push((attribute, expression));
        }
    });
    out
}

/// The unique attributes of a resource type as (schema, whether it is the core schema, name,
/// case-exact): what its unique checks are written from.
type UniqueSignature = Vec<(String, bool, String, bool)>;

/// Unique checks, (attribute, query), per thread.
type UniqueChecks = std::rc::Rc<Vec<(String, String)>>;

thread_local! {
    /// Checks already written, by dialect and what they were written from: every write
    /// checks, and writing the SQL again cost a create more than running it.
    static CHECKS: std::cell::RefCell<Vec<(Dialect, UniqueSignature, UniqueChecks)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// [`unique_checks`], kept per thread for each resource-type shape (most servers' `User` share
/// one). A reload that changes the unique attributes changes the shape.
pub fn cached_unique_checks(rt: &ResourceType, dialect: Dialect) -> UniqueChecks {
    let signature = || {
        (rt.unique_attributes())
            .map(|(s, core, a)| (s.id.as_str(), core, a.name.as_str(), a.case_exact))
    };
    let matches = |sig: &UniqueSignature| {
        sig.len() == signature().count()
            && sig
                .iter()
                .zip(signature())
                .all(|((s, core, n, c), theirs)| (s.as_str(), *core, n.as_str(), *c) == theirs)
    };
    CHECKS.with_borrow_mut(|cache| {
        if let Some((.., checks)) = cache
            .iter()
            .find(|(d, sig, _)| *d == dialect && matches(sig))
        {
            return checks.clone();
        }
        if cache.len() >= 64 {
            cache.clear();
        }
        let checks = UniqueChecks::new(unique_checks(rt, dialect));
        let sig = signature()
            .map(|(s, core, n, c)| (s.to_string(), core, n.to_string(), c))
            .collect();
        cache.push((dialect, sig, checks.clone()));
        checks
    })
}

/// For each unique attribute of `rt`: the attribute as clients name it, and a query that
/// tells whether another resource of the server and type holds the value the new document
/// gives it. Its parameters, in order: server id, resource type, id, document.
fn unique_checks(rt: &ResourceType, dialect: Dialect) -> Vec<(String, String)> {
    let ([server, resource_type, id], new_doc) = match dialect {
        Dialect::Sqlite => (["?1", "?2", "?3"], "(SELECT ?4 AS doc)"),
        Dialect::Postgres => (["$1", "$2", "$3"], "(SELECT $4::text::jsonb AS doc) d"),
    };
    unique_keys(rt, dialect)
        .into_iter()
        .map(|(attribute, e)| {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM resources WHERE server_id={server} AND resource_type={resource_type} \
                 AND id <> {id} AND {e} = (SELECT {e} FROM {new_doc}))"
            );
            (attribute, sql)
        })
        .collect()
}

/// Calls `f(name, attribute, unique, expression)` for each indexed attribute of `rt`.
fn for_each_key(
    rt: &ResourceType,
    dialect: Dialect,
    mut f: impl FnMut(&str, String, bool, String),
) {
    let mut add = |ext: Option<&str>, name: &str, case_exact: bool, unique: bool| {
        let attribute = match ext {
            Some(u) => format!("{u}:{name}"),
            None => name.to_string(),
        };
        f(
            name,
            attribute,
            unique,
            dialect.extract(ext, name, case_exact),
        );
    };
    add(None, "externalId", true, false);
    for schema in rt.schemas() {
        let ext = (schema.id != rt.schema.id).then_some(schema.id.as_str());
        for a in &schema.attributes {
            let simple = a.ty != AttrType::Complex && !a.multi_valued;
            if a.unique_key() {
                add(ext, &a.name, a.case_exact, true);
            } else if simple && ext.is_none() && a.name == "displayName" {
                add(ext, &a.name, a.case_exact, false);
            }
        }
    }
}

/// `scim_<hash>_<attribute>`: the hash of the definition comes first, so that PostgreSQL's
/// 63-byte cut never makes two indexes share a name.
fn index_name(dialect: Dialect, name: &str, expression: &str) -> String {
    let mut n = format!(
        "scim_{:08x}_{name}",
        fnv(&create_sql(dialect, "", expression))
    );
    let mut cut = n.len().min(63);
    while !n.is_char_boundary(cut) {
        cut -= 1;
    }
    n.truncate(cut);
    n
}

/// `CREATE INDEX IF NOT EXISTS "name" ON resources(server_id, resource_type, expr)`.
pub fn create_sql(dialect: Dialect, name: &str, expression: &str) -> String {
    // PostgreSQL takes an expression that is not a plain function call only in parentheses.
    let expression = match dialect {
        Dialect::Sqlite => expression.to_string(),
        Dialect::Postgres => format!("({expression})"),
    };
    format!(
        "CREATE INDEX IF NOT EXISTS \"{}\" ON resources(server_id, resource_type, {expression})",
        name.replace('"', "")
    )
}

/// The first group of resources of `spec`'s server and type that share a value of its
/// attribute, as their comma-joined `id`s; none when the values are unique. Resources without
/// the attribute share nothing.
pub fn duplicates_sql(dialect: Dialect, spec: &IndexSpec, server_id: &str) -> String {
    let aggregate = match dialect {
        Dialect::Sqlite => "group_concat(id)",
        Dialect::Postgres => "string_agg(id, ',')",
    };
    format!(
        "SELECT {aggregate} FROM resources WHERE {} AND {e} IS NOT NULL GROUP BY {e} HAVING count(*) > 1 LIMIT 1",
        sql::scope("", server_id, &spec.resource_type),
        e = spec.expression
    )
}

/// Whether an index definition (as the database reports it) is one of the per-server partial
/// indexes of earlier versions, which the shared ones replace.
pub fn is_legacy_index(name: &str, definition: &str) -> bool {
    name.starts_with("scim_") && definition.contains(" WHERE ")
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x01000193)
    })
}
