//! The SQL plan derived from a compiled server: one partial expression index per unique or
//! commonly filtered attribute, scoped to the server and resource type. Applying it is
//! idempotent and additive (index names carry a hash of their definition). Each backend
//! indexes the very expression its filter compiler emits.

use super::sql;
use crate::model::ServerModel;
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
    pub name: String,
    pub resource_type: String,
    /// The attribute as a client would name it, for error messages.
    pub attribute: String,
    pub unique: bool,
    /// SQL expression over `doc`, e.g. `lower(json_extract(doc,'$."userName"'))`.
    pub expression: String,
}

/// The server's indexes.
pub fn indexes_for(server: &ServerModel, dialect: Dialect) -> Vec<IndexSpec> {
    let mut out = Vec::new();
    for rt in &server.resource_types {
        let mut add = |ext: Option<&str>, name: &str, case_exact: bool, unique: bool| {
            let expression = dialect.extract(ext, name, case_exact);
            let attribute = match ext {
                Some(u) => format!("{u}:{name}"),
                None => name.to_string(),
            };
            let create = create_sql(dialect, "", server, &rt.name, unique, &expression);
            let name = match dialect {
                Dialect::Sqlite => {
                    format!(
                        "scim_{}_{}_{}_{:08x}",
                        server.id,
                        rt.name,
                        name,
                        fnv(&create)
                    )
                }
                // PostgreSQL cuts names at 63 bytes: the hash comes first, so that a cut
                // never makes two indexes share a name.
                Dialect::Postgres => {
                    let mut n = format!(
                        "scim_{:08x}_{}_{}_{}",
                        fnv(&create),
                        server.id,
                        rt.name,
                        name
                    );
                    let mut cut = n.len().min(63);
                    while !n.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    n.truncate(cut);
                    n
                }
            };
            out.push(IndexSpec {
                name,
                resource_type: rt.name.clone(),
                attribute,
                unique,
                expression,
            });
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
    out
}

/// `CREATE [UNIQUE] INDEX IF NOT EXISTS "name" ON resources(expr) WHERE <scope>`.
pub fn create_sql(
    dialect: Dialect,
    name: &str,
    server: &ServerModel,
    resource_type: &str,
    unique: bool,
    expression: &str,
) -> String {
    // PostgreSQL takes an expression that is not a plain function call only in parentheses.
    let expression = match dialect {
        Dialect::Sqlite => expression.to_string(),
        Dialect::Postgres => format!("({expression})"),
    };
    format!(
        "CREATE {}INDEX IF NOT EXISTS \"{}\" ON resources({expression}) WHERE {}",
        if unique { "UNIQUE " } else { "" },
        name.replace('"', ""),
        sql::scope("", &server.id, resource_type)
    )
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x01000193)
    })
}
