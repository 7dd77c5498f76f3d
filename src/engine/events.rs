//! SCIM events (RFC 9967): each change to a resource becomes the claims of a Security Event
//! Token (RFC 8417), recorded in the change's own transaction so that an event exists exactly
//! when its change does. Receivers fetch them by polling (RFC 8936, `http::scim`); a slow or
//! absent receiver never touches the request that caused the event.

use super::Ctx;
use crate::definition::{EventPayload, SigningAlg};
use crate::error::{ScimError, ScimResult};
use crate::store::Conn;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::model::ServerModel;
use crate::vocab::events::{ASYNC_RESPONSE, PROV};

/// A change to one resource.
pub enum Change<'a> {
    Create(&'a Map<String, Value>),
    /// PUT: the old and the new document.
    Put(&'a Map<String, Value>, &'a Map<String, Value>),
    /// PATCH: the old and the new document, and whether the members changed.
    Patch(&'a Map<String, Value>, &'a Map<String, Value>, bool),
    Delete,
}

/// Records the SET claims of `change` to resource `id` (inside the write transaction `tx`);
/// `full` is the resource's representation for `full` events.
pub fn record(
    ctx: &Ctx<'_>,
    tx: &dyn Conn,
    id: &str,
    change: Change<'_>,
    full: impl FnOnce() -> ScimResult<Value>,
) -> ScimResult<()> {
    let Some(cfg) = &ctx.server.events else {
        return Ok(());
    };
    let kind = match cfg.payload {
        EventPayload::Notice => "notice",
        EventPayload::Full => "full",
    };
    let body = |names: Vec<String>, full: Option<Value>| match full {
        Some(data) => json!({ "data": data }),
        None => json!({ "attributes": names }),
    };
    let want_full = cfg.payload == EventPayload::Full;
    let mut events = Map::new();
    let (old, new, external) = match &change {
        Change::Create(doc) => (None, Some(*doc), doc.get("externalId")),
        Change::Put(old, new) | Change::Patch(old, new, _) => {
            (Some(*old), Some(*new), new.get("externalId"))
        }
        Change::Delete => (None, None, None),
    };
    let data = if want_full && new.is_some() {
        Some(full()?)
    } else {
        None
    };
    match &change {
        Change::Create(doc) => {
            let mut names = attribute_names(doc);
            names.push("id".into());
            names.sort();
            events.insert(format!("{PROV}:create:{kind}"), body(names, data));
        }
        Change::Put(_, new) => {
            events.insert(
                format!("{PROV}:put:{kind}"),
                body(attribute_names(new), data),
            );
        }
        Change::Patch(old, new, members) => {
            let mut names = changed_names(old, new);
            if *members && !names.iter().any(|n| n == "members") {
                names.push("members".into());
                names.sort();
            }
            events.insert(format!("{PROV}:patch:{kind}"), body(names, data));
        }
        Change::Delete => {
            events.insert(format!("{PROV}:delete"), json!({}));
        }
    }
    // A change of `active` is also an activation or deactivation.
    if let (Some(old), Some(new)) = (old, new) {
        let active = |d: &Map<String, Value>| d.get("active").and_then(Value::as_bool);
        match (active(old), active(new)) {
            (Some(true), Some(false)) => {
                events.insert(format!("{PROV}:deactivate"), json!({}));
            }
            (a, Some(true)) if a != Some(true) => {
                events.insert(format!("{PROV}:activate"), json!({}));
            }
            _ => {}
        }
    }
    let mut sub_id = json!({"format": "scim", "uri": format!("{}/{id}", ctx.rt.endpoint)});
    if let Some(e) = external {
        sub_id["externalId"] = e.clone();
    }
    write_set(ctx.server, ctx.base, tx, sub_id, events, None).map_err(super::store_err(ctx))
}

/// Records the completion of an asynchronous request (RFC 9967 §2.5.1.3): a
/// `misc:asyncresp` event whose payload is the request's outcome as one Bulk response
/// operation (`method`, `status`, `version`, `location`, and `response` on error), in
/// transaction `txn` (the `Set-Txn` the client was given, `:index` appended per Bulk
/// operation). `uri` is the resource's path relative to the base (`/Users/{id}`), or the
/// endpoint when a create failed.
pub fn record_completion(
    server: &ServerModel,
    base: &str,
    tx: &dyn Conn,
    txn: &str,
    uri: &str,
    operation: Value,
) -> ScimResult<()> {
    let mut events = Map::new();
    events.insert(ASYNC_RESPONSE.to_string(), operation);
    let sub_id = json!({"format": "scim", "uri": uri});
    Ok(write_set(server, base, tx, sub_id, events, Some(txn))?)
}

/// Writes one SET's claims (RFC 9967 §2): `events` about `sub_id`, issued by this server.
/// `txn` defaults to the SET's own `jti` (one change, one SET).
fn write_set(
    server: &ServerModel,
    base: &str,
    tx: &dyn Conn,
    sub_id: Value,
    events: Map<String, Value>,
    txn: Option<&str>,
) -> Result<(), crate::store::StoreError> {
    let Some(cfg) = &server.events else {
        return Ok(());
    };
    let issuer = cfg.issuer.clone().unwrap_or_else(|| base.to_string());
    let audience = if cfg.audience.is_empty() {
        vec![issuer.clone()]
    } else {
        cfg.audience.clone()
    };
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let claims = json!({
        "jti": jti,
        "iss": issuer,
        "aud": audience,
        "iat": crate::vocab::time::unix_secs(),
        // RFC 8417 §2.2: the transaction the event belongs to.
        "txn": txn.unwrap_or(&jti),
        "sub_id": sub_id,
        "events": events,
    });
    let receivers: Vec<String> = cfg.receivers.iter().map(|r| r.url.clone()).collect();
    tx.record_event(
        &server.id,
        &jti,
        &super::now(),
        &claims.to_string(),
        &receivers,
    )?;
    // The request inspector shows which events a request raised.
    crate::vocab::notes::note_event(&jti);
    Ok(())
}

/// Attribute names of a document as events name them: core names, and `urn:…:name` for the
/// attributes of an extension.
fn attribute_names(doc: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in doc {
        match v.as_object() {
            Some(ext) if k.starts_with("urn:") => {
                out.extend(ext.keys().map(|a| format!("{k}:{a}")));
            }
            _ => out.push(k.clone()),
        }
    }
    out.sort();
    out
}

/// Names of the attributes that differ between two documents.
fn changed_names(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    let empty = Map::new();
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for k in keys {
        let (a, b) = (old.get(k), new.get(k));
        if a == b {
            continue;
        }
        match (a.and_then(Value::as_object), b.and_then(Value::as_object)) {
            (x, y) if k.starts_with("urn:") && (x.is_some() || y.is_some()) => {
                let (x, y) = (x.unwrap_or(&empty), y.unwrap_or(&empty));
                let names: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                out.extend(
                    names
                        .into_iter()
                        .filter(|n| x.get(*n) != y.get(*n))
                        .map(|n| format!("{k}:{n}")),
                );
            }
            _ => out.push(k.clone()),
        }
    }
    out.sort();
    out
}

/// The SET as sent: a JWT with `typ` `secevent+jwt` (RFC 8417 §2.3), unsecured or signed
/// as the server's definition says.
pub fn encode(
    signing: &crate::definition::SigningDef,
    key: Option<&crate::model::EventKey>,
    claims: &str,
) -> ScimResult<String> {
    match signing.alg {
        SigningAlg::None => {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"secevent+jwt"}"#);
            Ok(format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims)))
        }
        SigningAlg::HS256 => {
            let claims: Value = serde_json::from_str(claims).map_err(ScimError::internal)?;
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.typ = Some("secevent+jwt".into());
            let secret = signing.secret.as_deref().unwrap_or_default();
            let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
            jsonwebtoken::encode(&header, &claims, &key).map_err(ScimError::internal)
        }
        SigningAlg::RS256 => {
            let claims: Value = serde_json::from_str(claims).map_err(ScimError::internal)?;
            let key = key.ok_or_else(|| ScimError::internal("RS256 without a compiled key"))?;
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
            header.typ = Some("secevent+jwt".into());
            header.kid = Some(key.kid.clone());
            let pem = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_pem.as_bytes())
                .map_err(ScimError::internal)?;
            jsonwebtoken::encode(&header, &claims, &pem).map_err(ScimError::internal)
        }
    }
}

/// A poll request (RFC 8936 §2.4): acknowledgements and errors for SETs received, and how
/// many more to return, at once or when they arrive.
#[derive(Debug, Default, PartialEq)]
pub struct Poll {
    pub ack: Vec<String>,
    /// (jti, "err: description")
    pub set_errs: Vec<(String, String)>,
    pub max_events: usize,
    pub return_immediately: bool,
}

/// Events returned when a poll names no `maxEvents`, and the most one poll returns.
pub const DEFAULT_MAX_EVENTS: usize = 100;
pub const MAX_EVENTS: usize = 1000;

impl Poll {
    pub fn parse(body: &Value) -> ScimResult<Poll> {
        let o = body.as_object().ok_or_else(|| {
            ScimError::invalid_syntax("a poll request is a JSON object (RFC 8936 §2.4)")
        })?;
        let mut poll = Poll {
            max_events: DEFAULT_MAX_EVENTS,
            ..Poll::default()
        };
        for (k, v) in o {
            match k.as_str() {
                "ack" => {
                    let list = v.as_array().ok_or_else(|| {
                        ScimError::invalid_value("ack is an array of SET jti values")
                    })?;
                    for j in list {
                        let j = j.as_str().ok_or_else(|| {
                            ScimError::invalid_value("ack is an array of SET jti values")
                        })?;
                        poll.ack.push(j.to_string());
                    }
                }
                "setErrs" => {
                    let errs = v.as_object().ok_or_else(|| {
                        ScimError::invalid_value(
                            "setErrs maps each jti to {\"err\": …, \"description\": …}",
                        )
                    })?;
                    for (jti, e) in errs {
                        let err = e["err"].as_str().ok_or_else(|| {
                            ScimError::invalid_value(format!(
                                "setErrs.{jti} needs an \"err\" string"
                            ))
                        })?;
                        let description = e["description"].as_str().unwrap_or_default();
                        poll.set_errs
                            .push((jti.clone(), format!("{err}: {description}")));
                    }
                }
                "maxEvents" => {
                    let n = v.as_u64().ok_or_else(|| {
                        ScimError::invalid_value("maxEvents is a non-negative integer")
                    })?;
                    poll.max_events = (n as usize).min(MAX_EVENTS);
                }
                "returnImmediately" => {
                    poll.return_immediately = v.as_bool().ok_or_else(|| {
                        ScimError::invalid_value("returnImmediately is true or false")
                    })?;
                }
                other => {
                    return Err(ScimError::invalid_syntax(format!(
                        "{other:?} is not a poll request member; RFC 8936 §2.4 defines ack, setErrs, maxEvents, returnImmediately"
                    )));
                }
            }
        }
        Ok(poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_requests_parse_or_say_what_is_wrong() {
        let p = Poll::parse(&json!({"ack": ["a"], "setErrs": {"b": {"err": "jwtAud", "description": "no"}}, "maxEvents": 5000, "returnImmediately": true})).unwrap();
        assert_eq!(p.ack, ["a"]);
        assert_eq!(p.set_errs, [("b".to_string(), "jwtAud: no".to_string())]);
        assert_eq!(p.max_events, MAX_EVENTS);
        assert!(p.return_immediately);
        assert_eq!(
            Poll::parse(&json!({})).unwrap().max_events,
            DEFAULT_MAX_EVENTS
        );
        for bad in [
            json!([]),
            json!({"ack": "a"}),
            json!({"maxEvents": -1}),
            json!({"nope": 1}),
            json!({"setErrs": {"a": {}}}),
        ] {
            assert!(Poll::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn changed_names_name_core_and_extension_attributes() {
        let old =
            json!({"userName": "a", "active": true, "urn:x:User": {"department": "R", "n": 1}});
        let new = json!({"userName": "a", "active": false, "urn:x:User": {"department": "S", "n": 1}, "title": "t"});
        let (old, new) = (old.as_object().unwrap(), new.as_object().unwrap());
        assert_eq!(
            changed_names(old, new),
            ["active", "title", "urn:x:User:department"]
        );
        assert_eq!(
            attribute_names(new),
            [
                "active",
                "title",
                "urn:x:User:department",
                "urn:x:User:n",
                "userName"
            ]
        );
    }
}
