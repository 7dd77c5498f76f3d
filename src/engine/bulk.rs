//! Bulk (RFC 7644 §3.7). Operations run one by one, each in its own transaction, through the
//! same engine functions as single requests. `bulkId:` references (in paths and anywhere in
//! data) are resolved whatever the order: an operation waits until the operations it refers to
//! have run; references that cannot be resolved (unknown, failed or circular) fail it.

use super::{Ctx, Projection, create, delete, patch, replace};
use crate::error::{ScimError, ScimResult};
use crate::model::ServerModel;
use crate::store::Store;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

struct Op {
    index: usize,
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Option<Value>,
}

/// Every `bulkId:x` in a string or nested value.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:") {
                out.push(id.to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        Value::Object(o) => o.values().for_each(|x| refs(x, out)),
        _ => {}
    }
}

fn substitute(v: &mut Value, ids: &HashMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:").and_then(|b| ids.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, ids)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, ids)),
        _ => {}
    }
}

fn error_entry(op: &Op, e: &ScimError) -> Value {
    let mut entry =
        json!({"method": op.method, "status": e.status().to_string(), "response": e.body()});
    if let Some(b) = &op.bulk_id {
        entry["bulkId"] = json!(b);
    }
    entry
}

/// What a Bulk request checks of its body before it runs an operation (for `scimlab lint`).
pub fn validate_request(body: &Value, server: &ServerModel) -> ScimResult<()> {
    parse(body.clone(), server).map(|_| ())
}

/// The operations of a Bulk body, which it takes apart: each operation's data is moved, not
/// copied (a Bulk of 1,000 creates is most of a megabyte).
fn parse(mut body: Value, server: &ServerModel) -> ScimResult<(Vec<Op>, Option<usize>)> {
    let schemas_ok = body["schemas"].as_array().is_some_and(|s| {
        s.iter().any(|u| {
            u.as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(BULK_REQUEST))
        })
    });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "a Bulk body must have \"schemas\": [\"{BULK_REQUEST}\"]"
        )));
    }
    let Some(Value::Array(ops)) = body.get_mut("Operations").map(Value::take) else {
        return Err(ScimError::invalid_syntax(
            "a Bulk body needs an \"Operations\" array",
        ));
    };
    if ops.len() > server.bulk_max_operations {
        return Err(ScimError::payload_too_large(format!(
            "{} operations exceed this server's maxOperations of {}",
            ops.len(),
            server.bulk_max_operations
        )));
    }
    let fail_on_errors =
        match body.get("failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                ScimError::invalid_value("failOnErrors must be a positive integer")
            })? as usize),
        };
    let mut seen = HashMap::new();
    let parsed = ops
        .into_iter()
        .enumerate()
        .map(|(index, mut o)| {
            let n = index + 1;
            let method = o["method"]
                .as_str()
                .map(str::to_ascii_uppercase)
                .filter(|m| ["POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()));
            let method = method.ok_or_else(|| {
                ScimError::invalid_syntax(format!(
                    "operation {n}: \"method\" must be POST, PUT, PATCH or DELETE"
                ))
            })?;
            let path = o["path"]
                .as_str()
                .filter(|p| p.starts_with('/'))
                .map(str::to_string)
                .ok_or_else(|| {
                    ScimError::invalid_syntax(format!(
                        "operation {n}: \"path\" must be a path such as /Users"
                    ))
                })?;
            let bulk_id = o["bulkId"].as_str().map(str::to_string);
            if method == "POST" && bulk_id.is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {n}: POST needs a \"bulkId\""
                )));
            }
            if let Some(b) = &bulk_id
                && seen.insert(b.clone(), n).is_some()
            {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {n}: bulkId {b:?} is used twice"
                )));
            }
            let data = o.get_mut("data").map(Value::take).filter(|d| !d.is_null());
            if method != "DELETE" && data.is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {n}: {method} needs \"data\""
                )));
            }
            Ok(Op {
                index,
                method,
                path,
                bulk_id,
                version: o["version"].as_str().map(str::to_string),
                data,
            })
        })
        .collect::<ScimResult<Vec<_>>>()?;
    Ok((parsed, fail_on_errors))
}

/// Runs one operation whose references are resolved; returns (status, location, version).
fn run_one(
    store: &Store,
    server: &ServerModel,
    base: &str,
    op: &Op,
    mut data: Option<Value>,
    ids: &HashMap<String, String>,
) -> ScimResult<(u16, Option<String>, Option<String>)> {
    let mut path = Value::String(op.path.clone());
    substitute(&mut path, ids);
    // A path like /Groups/bulkId:x: substitute the id segment.
    let path = path.as_str().unwrap_or_default().to_string();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.strip_prefix("bulkId:")
                .and_then(|b| ids.get(b))
                .cloned()
                .unwrap_or_else(|| s.to_string())
        })
        .collect();
    let rt = segments
        .first()
        .and_then(|e| server.by_endpoint(e))
        .ok_or_else(|| ScimError::not_found(format!("no endpoint {path}")))?;
    let ctx = Ctx {
        store,
        server,
        rt,
        base,
    };
    if let Some(d) = data.as_mut() {
        substitute(d, ids);
    }
    let proj = Projection::no_body();
    let data = data.unwrap_or(Value::Null);
    let version = op.version.as_deref();
    let out = match (op.method.as_str(), segments.len()) {
        ("POST", 1) => {
            let o = create(&ctx, &data, &proj)?;
            return Ok((201, Some(o.location), Some(o.etag)));
        }
        ("PUT", 2) => replace(&ctx, &segments[1], &data, version, &proj)?,
        ("PATCH", 2) => patch(&ctx, &segments[1], &data, version, &proj)?,
        ("DELETE", 2) => {
            delete(&ctx, &segments[1], version)?;
            return Ok((
                204,
                Some(format!("{base}{}/{}", rt.endpoint, segments[1])),
                None,
            ));
        }
        (m, _) => {
            return Err(ScimError::invalid_path(format!(
                "{m} {path} is not a Bulk operation (POST /Type, or PUT/PATCH/DELETE /Type/id)"
            )));
        }
    };
    Ok((200, Some(out.location), Some(out.etag)))
}

/// Executes a BulkRequest; blocking. The operations' writes share transactions (each
/// operation still atomic) and the response is sent once they are all committed.
pub fn execute(store: &Store, server: &ServerModel, base: &str, body: Value) -> ScimResult<Value> {
    store.batched(|| execute_ops(store, server, base, body))?
}

fn execute_ops(store: &Store, server: &ServerModel, base: &str, body: Value) -> ScimResult<Value> {
    let (mut ops, fail_on_errors) = parse(body, server)?;
    let declared: std::collections::HashSet<String> =
        ops.iter().filter_map(|o| o.bulk_id.clone()).collect();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut failed_ids: Vec<String> = Vec::new();
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    let mut errors = 0;
    'passes: while !pending.is_empty() {
        let mut progressed = false;
        let mut still = Vec::new();
        for i in pending {
            let op = &ops[i];
            let mut wanted = Vec::new();
            refs(&Value::String(op.path.clone()), &mut wanted);
            if let Some(d) = &op.data {
                refs(d, &mut wanted);
            }
            // Path segments like /Groups/bulkId:x are references too.
            wanted.extend(
                op.path
                    .split('/')
                    .filter_map(|s| s.strip_prefix("bulkId:").map(str::to_string)),
            );
            let unresolved: Vec<&String> =
                wanted.iter().filter(|w| !ids.contains_key(*w)).collect();
            let blocked_by_failure = unresolved
                .iter()
                .find(|w| failed_ids.contains(w) || !declared.contains(w.as_str()));
            let result = if let Some(w) = blocked_by_failure {
                Err(ScimError::UnresolvedBulkId(format!(
                    "bulkId {w:?} cannot be resolved: no operation created it"
                )))
            } else if !unresolved.is_empty() {
                still.push(i);
                continue;
            } else {
                let data = ops[i].data.take();
                run_one(store, server, base, &ops[i], data, &ids)
            };
            let op = &ops[i];
            progressed = true;
            results[op.index] = Some(match result {
                Ok((status, location, version)) => {
                    if let (Some(b), Some(loc)) = (&op.bulk_id, &location)
                        && op.method == "POST"
                    {
                        ids.insert(
                            b.clone(),
                            loc.rsplit('/').next().unwrap_or_default().to_string(),
                        );
                    }
                    let mut e = json!({"method": op.method, "status": status.to_string()});
                    if let Some(l) = location {
                        e["location"] = json!(l);
                    }
                    if let Some(v) = version {
                        e["version"] = json!(v);
                    }
                    if let Some(b) = &op.bulk_id {
                        e["bulkId"] = json!(b);
                    }
                    e
                }
                Err(err) => {
                    errors += 1;
                    if let Some(b) = &op.bulk_id {
                        failed_ids.push(b.clone());
                    }
                    error_entry(op, &err)
                }
            });
            if fail_on_errors.is_some_and(|n| errors >= n) {
                break 'passes;
            }
        }
        if !progressed {
            // Everything left waits on something else left: a cycle.
            for op in still.iter().map(|&i| &ops[i]) {
                results[op.index] = Some(error_entry(
                    op,
                    &ScimError::UnresolvedBulkId("circular bulkId references".into()),
                ));
            }
            break;
        }
        pending = still;
    }
    let operations: Vec<Value> = results.into_iter().flatten().collect();
    let mut out = Map::new();
    out.insert("schemas".into(), json!([BULK_RESPONSE]));
    out.insert("Operations".into(), Value::Array(operations));
    Ok(Value::Object(out))
}
