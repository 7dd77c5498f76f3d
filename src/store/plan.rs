//! The SQL plan derived from a compiled server: one partial expression index per unique or
//! commonly filtered attribute, scoped to the server and resource type. Applying it is
//! idempotent and additive (index names carry a hash of their definition).

use super::sql;
use crate::model::ServerModel;
use crate::schema::{AttrType, Uniqueness};

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
pub fn indexes_for(server: &ServerModel) -> Vec<IndexSpec> {
    let mut out = Vec::new();
    for rt in &server.resource_types {
        let mut add = |ext: Option<&str>, name: &str, case_exact: bool, unique: bool| {
            let expression = sql::extract("doc", &sql::json_path(ext, name, None), case_exact);
            let attribute = match ext {
                Some(u) => format!("{u}:{name}"),
                None => name.to_string(),
            };
            let create = create_sql("", server, &rt.name, unique, &expression);
            let name = format!(
                "scim_{}_{}_{}_{:08x}",
                server.id,
                rt.name,
                name,
                fnv(&create)
            );
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
                if simple && a.uniqueness != Uniqueness::None {
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
    name: &str,
    server: &ServerModel,
    resource_type: &str,
    unique: bool,
    expression: &str,
) -> String {
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
