//! `scimlab lint`: static validation of SCIM messages — resources (type detected from
//! `schemas`), PatchOps, BulkRequests and SearchRequests — before they reach a server.
//!
//! Two layers, one verdict. The **verdict** comes from the very functions the server runs on a
//! request body (`engine::validate_create`, `engine::validate_patch`,
//! `engine::bulk::validate_request`, the filter parser and compiler), on the compiled model of
//! a definition (or of the RFC catalogue), so lint and server never disagree about a payload.
//! A **walk** then explains it: every finding with its JSON location, attribute path and RFC
//! section, several per file, plus warnings for what a server silently ignores (readOnly
//! attributes, nulls). A walk error the server's code does not confirm is reported as a
//! warning, and a refusal the walk did not explain is reported as the server words it.
//!
//! What needs the server's data is outside lint: uniqueness against stored resources,
//! references to other resources, and PATCH filters that select nothing.

mod positions;

use crate::engine;
use crate::error::ScimError;
use crate::model::{AttrPath, ResourceType, ServerModel, Target};
use crate::schema::{AttrType, AttributeDef, Mutability, urn};
use positions::Positions;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The built-in catalogue lint uses without `--definition`.
const RFC_DEFINITION: &str = r#"
id: rfc
tokens: [lint]
resource_types:
  User: { extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User] }
  Group: {}
  Agent: {}
  AgenticApplication: {}
  Device:
    extensions:
      - urn:ietf:params:scim:schemas:extension:ble:2.0:Device
      - urn:ietf:params:scim:schemas:extension:dpp:2.0:Device
      - urn:ietf:params:scim:schemas:extension:ethernet-mab:2.0:Device
      - urn:ietf:params:scim:schemas:extension:fido-device-onboard:2.0:Device
      - urn:ietf:params:scim:schemas:extension:zigbee:2.0:Device
      - urn:ietf:params:scim:schemas:extension:endpointAppsExt:2.0:Device
  EndpointApp: {}
validation: { strict: true }
"#;

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a file.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub line: usize,
    pub column: usize,
    /// JSON pointer of the value concerned.
    pub pointer: String,
    /// SCIM attribute path, where one applies.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    pub rfc: &'static str,
    pub message: String,
}

/// The findings of one file (or standard input).
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    /// resource, PatchOp, BulkRequest or SearchRequest.
    pub kind: String,
    /// The resource type the message was checked against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    pub findings: Vec<Finding>,
}

impl FileReport {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

/// Which message a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Resource,
    PatchOp,
    BulkRequest,
    SearchRequest,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Resource => "resource",
            Kind::PatchOp => "PatchOp",
            Kind::BulkRequest => "BulkRequest",
            Kind::SearchRequest => "SearchRequest",
        }
    }
}

/// A compiled server to lint against.
pub struct Linter {
    server: Arc<ServerModel>,
    /// `--type`: the resource type of every message (else detected).
    resource_type: Option<String>,
    /// `--patch`: every message is a PatchOp.
    patch: bool,
}

/// Findings being collected for one text.
struct Collect<'t> {
    text: &'t str,
    positions: Positions,
    findings: Vec<Finding>,
}

impl Collect<'_> {
    fn push(
        &mut self,
        severity: Severity,
        pointer: &str,
        path: &str,
        rfc: &'static str,
        message: String,
    ) {
        let (line, column) = self.positions.of(self.text, pointer);
        self.findings.push(Finding {
            severity,
            line,
            column,
            pointer: pointer.to_string(),
            path: path.to_string(),
            rfc,
            message,
        });
    }
    fn error(&mut self, pointer: &str, path: &str, rfc: &'static str, message: String) {
        self.push(Severity::Error, pointer, path, rfc, message);
    }
    fn warn(&mut self, pointer: &str, path: &str, rfc: &'static str, message: String) {
        self.push(Severity::Warning, pointer, path, rfc, message);
    }
    fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
    /// Makes the server's verdict the file's: walk errors it does not confirm become
    /// warnings; a refusal the walk missed is reported as the server words it.
    fn reconcile(&mut self, verdict: Result<(), ScimError>, what: &str) {
        match verdict {
            Ok(()) => {
                for f in &mut self.findings {
                    if f.severity == Severity::Error {
                        f.severity = Severity::Warning;
                        f.message.push_str(" (scimlab's server accepts this)");
                    }
                }
            }
            Err(e) if !self.has_errors() => {
                self.error(
                    "",
                    "",
                    "RFC 7644 §3.12",
                    format!(
                        "the server refuses this {what}: {} {}",
                        e.status(),
                        e.detail()
                    ),
                );
            }
            Err(_) => {}
        }
    }
}

fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn type_name(t: AttrType) -> &'static str {
    match t {
        AttrType::String => "a string",
        AttrType::Boolean => "true or false",
        AttrType::Decimal => "a number",
        AttrType::Integer => "an integer",
        AttrType::DateTime => "an RFC 3339 dateTime string",
        AttrType::Binary => "a base64 string",
        AttrType::Reference => "a URI string",
        AttrType::Complex => "an object",
    }
}

impl Linter {
    /// The RFC catalogue: User (with the enterprise extension), Group, Agent,
    /// AgenticApplication, Device (RFC 9944, every extension), EndpointApp; strict.
    pub fn rfc() -> Linter {
        let file = crate::definition::load_str(std::path::Path::new("(built-in)"), RFC_DEFINITION)
            .unwrap_or_else(|d| panic!("the built-in lint definition parses: {d}"));
        let model = crate::model::compile(&[file], &[])
            .unwrap_or_else(|p| panic!("the built-in lint definition compiles: {p:?}"));
        let server = model
            .servers
            .into_values()
            .next()
            .unwrap_or_else(|| panic!("the built-in lint definition defines a server"));
        Linter::with(server)
    }

    /// A compiled definition (its profiles applied): the server's own validators.
    pub fn with(server: Arc<ServerModel>) -> Linter {
        Linter {
            server,
            resource_type: None,
            patch: false,
        }
    }

    pub fn resource_type(mut self, name: Option<String>) -> Linter {
        self.resource_type = name;
        self
    }

    pub fn patch(mut self, patch: bool) -> Linter {
        self.patch = patch;
        self
    }

    /// Lints one text.
    pub fn lint(&self, file: &str, text: &str) -> FileReport {
        let mut c = Collect {
            text,
            positions: Positions::new(text),
            findings: Vec::new(),
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                c.findings.push(Finding {
                    severity: Severity::Error,
                    line: e.line(),
                    column: e.column(),
                    pointer: String::new(),
                    path: String::new(),
                    rfc: "RFC 7644 §3.12 (invalidSyntax)",
                    message: format!("not JSON: {e}"),
                });
                return FileReport {
                    file: file.to_string(),
                    kind: "unknown".into(),
                    resource_type: None,
                    findings: c.findings,
                };
            }
        };
        let kind = self.kind(&value);
        let mut rt_name = None;
        match kind {
            Kind::Resource => match self.detect(&value) {
                Ok(rt) => {
                    rt_name = Some(rt.name.clone());
                    self.resource(&mut c, rt, &value, "");
                    c.reconcile(
                        engine::validate_create(&self.server, rt, &value),
                        "resource",
                    );
                }
                Err(why) => c.error("/schemas", "schemas", "RFC 7643 §3", why),
            },
            Kind::PatchOp => {
                let rt = self.patch_type(&value);
                rt_name = Some(rt.name.clone());
                self.patch_op(&mut c, rt, &value, "");
                let base = self.minimal(rt);
                c.reconcile(
                    engine::validate_patch(&self.server, rt, &base, &value),
                    "PatchOp",
                );
            }
            Kind::BulkRequest => {
                self.bulk(&mut c, &value);
                c.reconcile(
                    engine::bulk::validate_request(&value, &self.server),
                    "BulkRequest",
                );
            }
            Kind::SearchRequest => {
                let rt = self.named_type().unwrap_or(&self.server.resource_types[0]);
                rt_name = Some(rt.name.clone());
                self.search(&mut c, rt, &value);
            }
        }
        c.findings.sort_by_key(|f| (f.line, f.column));
        FileReport {
            file: file.to_string(),
            kind: kind.name().into(),
            resource_type: rt_name,
            findings: c.findings,
        }
    }

    fn kind(&self, v: &Value) -> Kind {
        if self.patch {
            return Kind::PatchOp;
        }
        let has = |u: &str| {
            v["schemas"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(u)))
            })
        };
        if has(urn::PATCH_OP)
            || (v.get("Operations").is_some() && v["Operations"][0].get("op").is_some())
        {
            Kind::PatchOp
        } else if has(BULK_REQUEST) || v["Operations"][0].get("method").is_some() {
            Kind::BulkRequest
        } else if has(urn::SEARCH_REQUEST) {
            Kind::SearchRequest
        } else {
            Kind::Resource
        }
    }

    fn named_type(&self) -> Option<&ResourceType> {
        self.resource_type
            .as_deref()
            .and_then(|n| self.server.by_name(n))
    }

    /// The resource type a resource body is: `--type`, else the one whose core schema its
    /// `schemas` lists.
    fn detect(&self, v: &Value) -> Result<&ResourceType, String> {
        if let Some(name) = &self.resource_type {
            return self
                .server
                .by_name(name)
                .ok_or_else(|| format!("--type {name}: this server has no such resource type"));
        }
        let listed: Vec<&str> = v["schemas"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        self.server
            .resource_types
            .iter()
            .find(|rt| listed.iter().any(|u| u.eq_ignore_ascii_case(&rt.schema.id)))
            .ok_or_else(|| {
                format!(
                    "\"schemas\" names no resource type's schema (expected one of {}); resources list their core schema URN (RFC 7643 §3)",
                    self.server.resource_types.iter().map(|r| r.schema.id.as_str()).collect::<Vec<_>>().join(", ")
                )
            })
    }

    /// A PatchOp's resource type: `--type`, else Group when it touches members, else User.
    fn patch_type(&self, v: &Value) -> &ResourceType {
        if let Some(rt) = self.named_type() {
            return rt;
        }
        let members = v.to_string().contains("\"members");
        let wanted = if members { urn::GROUP } else { urn::USER };
        self.server
            .by_schema(wanted)
            .next()
            .unwrap_or(&self.server.resource_types[0])
    }

    /// The smallest valid resource of `rt`: what lint applies a PatchOp to.
    fn minimal(&self, rt: &ResourceType) -> Map<String, Value> {
        let mut doc = Map::new();
        for a in rt
            .schema
            .attributes
            .iter()
            .filter(|a| a.required && a.mutability != Mutability::ReadOnly)
        {
            let v = match a.ty {
                AttrType::Boolean => Value::Bool(true),
                AttrType::Integer | AttrType::Decimal => Value::from(1),
                AttrType::DateTime => Value::String("2025-01-01T00:00:00.000Z".into()),
                _ => Value::String(
                    a.canonical_values
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "lint".into()),
                ),
            };
            doc.insert(a.name.clone(), v);
        }
        doc
    }

    /// Checks a resource body of type `rt` at `base` (a JSON pointer prefix).
    fn resource(&self, c: &mut Collect<'_>, rt: &ResourceType, v: &Value, base: &str) {
        let Some(obj) = v.as_object() else {
            c.error(
                base,
                "",
                "RFC 7643 §2",
                format!("a {} resource is a JSON object", rt.name),
            );
            return;
        };
        match obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("schemas")) {
            None => c.error(
                base,
                "schemas",
                "RFC 7643 §3",
                format!("\"schemas\" is missing; it must list {}", rt.schema.id),
            ),
            Some((k, s)) => {
                for (i, u) in s.as_array().into_iter().flatten().enumerate() {
                    let u = u.as_str().unwrap_or_default();
                    if !u.eq_ignore_ascii_case(&rt.schema.id) && rt.extension(u).is_none() {
                        c.error(
                            &format!("{base}/{k}/{i}"),
                            "schemas",
                            "RFC 7643 §3",
                            format!(
                                "{u:?} is not a schema of {} (its schemas: {})",
                                rt.name,
                                rt.schemas()
                                    .map(|s| s.id.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    }
                }
            }
        }
        for (k, value) in obj {
            let ptr = format!("{base}/{}", pointer_token(k));
            if k.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if k.eq_ignore_ascii_case("id") || k.eq_ignore_ascii_case("meta") {
                c.warn(&ptr, k, "RFC 7643 §3.1", format!("{k} is assigned by the service provider (readOnly); it is ignored on create and replace"));
                continue;
            }
            if let Some(ext) = rt.extension(k) {
                let listed = obj
                    .iter()
                    .find(|(s, _)| s.eq_ignore_ascii_case("schemas"))
                    .is_some_and(|(_, s)| {
                        s.as_array().is_some_and(|l| {
                            l.iter()
                                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(k)))
                        })
                    });
                if !listed {
                    c.error(
                        &ptr,
                        k,
                        "RFC 7643 §3",
                        format!("the extension {k} is used but not listed in \"schemas\""),
                    );
                }
                match value.as_object() {
                    Some(fields) => {
                        for (k2, v2) in fields {
                            let p2 = format!("{ptr}/{}", pointer_token(k2));
                            match ext.schema.attr(k2) {
                                Some(def) => self.attribute(c, def, v2, &p2, &format!("{k}:{k2}")),
                                None => self.unknown(c, &p2, &format!("{k}:{k2}"), rt),
                            }
                        }
                    }
                    None => c.error(
                        &ptr,
                        k,
                        "RFC 7643 §3",
                        format!("{k} must be an object of its schema's attributes"),
                    ),
                }
                continue;
            }
            if k.starts_with("urn:") {
                c.error(
                    &ptr,
                    k,
                    "RFC 7643 §3",
                    format!("{k} is not a schema extension of {}", rt.name),
                );
                continue;
            }
            if k.eq_ignore_ascii_case("externalId") {
                if !value.is_string() && !value.is_null() {
                    c.error(
                        &ptr,
                        k,
                        "RFC 7643 §3.1",
                        "externalId must be a string".into(),
                    );
                }
                continue;
            }
            match rt.schema.attr(k) {
                Some(def) => self.attribute(c, def, value, &ptr, &def.name),
                None => self.unknown(c, &ptr, k, rt),
            }
        }
        for def in rt
            .schema
            .attributes
            .iter()
            .filter(|a| a.required && a.mutability != Mutability::ReadOnly)
        {
            if !obj.keys().any(|k| k.eq_ignore_ascii_case(&def.name)) {
                c.error(
                    base,
                    &def.name,
                    "RFC 7643 §2.2 (required)",
                    format!("required attribute {:?} is missing", def.name),
                );
            }
        }
        for ext in &rt.extensions {
            let fields = obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&ext.schema.id))
                .map(|(_, v)| v);
            match fields {
                None if ext.required => c.error(
                    base,
                    &ext.schema.id,
                    "RFC 7643 §6 (schemaExtensions.required)",
                    format!(
                        "the extension {} is required for {}",
                        ext.schema.id, rt.name
                    ),
                ),
                Some(f) => {
                    for def in ext
                        .schema
                        .attributes
                        .iter()
                        .filter(|a| a.required && a.mutability != Mutability::ReadOnly)
                    {
                        if f.get(&def.name).is_none() {
                            c.error(
                                &format!("{base}/{}", pointer_token(&ext.schema.id)),
                                &def.name,
                                "RFC 7643 §2.2 (required)",
                                format!(
                                    "required attribute {}:{} is missing",
                                    ext.schema.id, def.name
                                ),
                            );
                        }
                    }
                }
                None => {}
            }
        }
    }

    fn unknown(&self, c: &mut Collect<'_>, ptr: &str, path: &str, rt: &ResourceType) {
        let msg = format!(
            "{path:?} is not an attribute of {} (schemas: {})",
            rt.name,
            rt.schemas()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if self.server.strict {
            c.error(
                ptr,
                path,
                "RFC 7643 §2.1; RFC 7644 §3.12 (invalidSyntax)",
                msg,
            );
        } else {
            c.warn(
                ptr,
                path,
                "RFC 7643 §2.1",
                format!("{msg}; this server drops it"),
            );
        }
    }

    /// One attribute's value against its definition.
    fn attribute(&self, c: &mut Collect<'_>, def: &AttributeDef, v: &Value, ptr: &str, path: &str) {
        if v.is_null() {
            c.warn(
                ptr,
                path,
                "RFC 7643 §2.5",
                format!("{path} is null, which means unassigned: omit it (or use a PATCH remove)"),
            );
            return;
        }
        if def.mutability == Mutability::ReadOnly {
            c.warn(
                ptr,
                path,
                "RFC 7643 §2.2 (readOnly)",
                format!(
                    "{path} is readOnly: the service provider sets it and ignores a client's value"
                ),
            );
            return;
        }
        if def.multi_valued {
            let Some(items) = v.as_array() else {
                c.error(
                    ptr,
                    path,
                    "RFC 7643 §2.4",
                    format!("{path} is multi-valued: send an array"),
                );
                return;
            };
            let primaries = items
                .iter()
                .filter(|x| x.get("primary") == Some(&Value::Bool(true)))
                .count();
            if primaries > 1 {
                c.error(
                    ptr,
                    path,
                    "RFC 7643 §2.4",
                    format!("{path}: at most one value may be primary ({primaries} are)"),
                );
            }
            for (i, x) in items.iter().enumerate() {
                self.single(c, def, x, &format!("{ptr}/{i}"), path);
            }
        } else {
            if v.is_array() {
                c.error(
                    ptr,
                    path,
                    "RFC 7643 §2.4",
                    format!("{path} is single-valued: send one value, not an array"),
                );
                return;
            }
            self.single(c, def, v, ptr, path);
        }
    }

    fn single(&self, c: &mut Collect<'_>, def: &AttributeDef, v: &Value, ptr: &str, path: &str) {
        let ok = match def.ty {
            AttrType::String | AttrType::Reference | AttrType::Binary => v.is_string(),
            AttrType::Boolean => v.is_boolean(),
            AttrType::Integer => v.is_i64() || v.is_u64(),
            AttrType::Decimal => v.is_number(),
            AttrType::DateTime => v
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            AttrType::Complex => v.is_object(),
        };
        if !ok {
            c.error(
                ptr,
                path,
                "RFC 7643 §2.3",
                format!("{path} must be {}, not {v}", type_name(def.ty)),
            );
            return;
        }
        if let (false, Some(s)) = (def.canonical_values.is_empty(), v.as_str())
            && !def
                .canonical_values
                .iter()
                .any(|x| x.eq_ignore_ascii_case(s))
            && self.server.strict
        {
            c.error(
                ptr,
                path,
                "RFC 7643 §7 (canonicalValues)",
                format!(
                    "{s:?} is not a canonical value of {path} ({})",
                    def.canonical_values.join(", ")
                ),
            );
        }
        if let Some(o) = v.as_object().filter(|_| def.ty == AttrType::Complex) {
            for (k, x) in o {
                let p = format!("{ptr}/{}", pointer_token(k));
                match def.sub(k) {
                    Some(sub) => self.attribute(c, sub, x, &p, &format!("{path}.{}", sub.name)),
                    None if self.server.strict => c.error(
                        &p,
                        &format!("{path}.{k}"),
                        "RFC 7643 §2.3.8",
                        format!("{k:?} is not a sub-attribute of {path}"),
                    ),
                    None => {}
                }
            }
        }
    }

    /// Checks a PatchOp for `rt`.
    fn patch_op(&self, c: &mut Collect<'_>, rt: &ResourceType, v: &Value, base: &str) {
        let schemas_ok = v["schemas"]
            .as_array()
            .is_some_and(|s| s.iter().any(|u| u == urn::PATCH_OP));
        if !schemas_ok {
            c.error(
                &format!("{base}/schemas"),
                "schemas",
                "RFC 7644 §3.5.2",
                format!("a PatchOp has \"schemas\": [\"{}\"]", urn::PATCH_OP),
            );
        }
        let Some(ops) = v["Operations"].as_array() else {
            c.error(
                base,
                "Operations",
                "RFC 7644 §3.5.2",
                "a PatchOp needs an \"Operations\" array".into(),
            );
            return;
        };
        if ops.is_empty() {
            c.error(
                &format!("{base}/Operations"),
                "Operations",
                "RFC 7644 §3.5.2",
                "\"Operations\" is empty".into(),
            );
        }
        if ops.len() > self.server.patch_max_operations {
            c.error(
                &format!("{base}/Operations"),
                "Operations",
                "RFC 7644 §3.5.2",
                format!(
                    "{} operations; this server accepts at most {}",
                    ops.len(),
                    self.server.patch_max_operations
                ),
            );
        }
        for (i, op) in ops.iter().enumerate() {
            let p = format!("{base}/Operations/{i}");
            let name = op["op"].as_str().unwrap_or_default();
            let kind = name.to_ascii_lowercase();
            if !["add", "remove", "replace"].contains(&kind.as_str()) {
                c.error(
                    &format!("{p}/op"),
                    "op",
                    "RFC 7644 §3.5.2",
                    format!("\"op\" must be add, remove or replace, not {}", op["op"]),
                );
                continue;
            }
            if name != kind
                && !self
                    .server
                    .compat
                    .allows(crate::model::compat::Quirk::CapitalizedOps)
            {
                c.error(&format!("{p}/op"), "op", "RFC 7644 §3.5.2", format!("\"op\": {name:?} is capitalised; write {kind:?} (Entra sends this without ?aadOptscim062020)"));
            }
            let value = op.get("value");
            match (kind.as_str(), value) {
                ("remove", _) if op.get("path").is_none() => c.error(&p, "path", "RFC 7644 §3.5.2.2 (noTarget)", "remove needs a \"path\"".into()),
                ("add" | "replace", None) => c.error(&p, "value", "RFC 7644 §3.5.2.1", format!("{kind} needs a \"value\"")),
                ("add" | "replace", Some(Value::Null)) => c.error(&format!("{p}/value"), "value", "RFC 7644 §3.5.2.2", "a null value does not clear an attribute: use {\"op\": \"remove\", \"path\": …}".to_string()),
                _ => {}
            }
            match op.get("path") {
                None => {
                    if let Some(Value::Object(fields)) = value {
                        for (k, x) in fields {
                            let pp = format!("{p}/value/{}", pointer_token(k));
                            if let Some(ext) = rt.extension(k) {
                                for (k2, x2) in x.as_object().into_iter().flatten() {
                                    let p2 = format!("{pp}/{}", pointer_token(k2));
                                    match ext.schema.attr(k2) {
                                        Some(def) => {
                                            self.attribute(c, def, x2, &p2, &format!("{k}:{k2}"))
                                        }
                                        None => self.unknown(c, &p2, &format!("{k}:{k2}"), rt),
                                    }
                                }
                            } else if let Some(def) = rt.schema.attr(k) {
                                self.attribute(c, def, x, &pp, &def.name);
                            } else if !["schemas", "meta", "id"]
                                .iter()
                                .any(|s| s.eq_ignore_ascii_case(k))
                            {
                                self.unknown(c, &pp, k, rt);
                            }
                        }
                    } else if kind != "remove" {
                        c.error(
                            &format!("{p}/value"),
                            "value",
                            "RFC 7644 §3.5.2",
                            "without a \"path\", \"value\" is an object of attributes".into(),
                        );
                    }
                }
                Some(Value::String(path)) => {
                    self.patch_path(c, rt, &kind, path, value, &format!("{p}/path"))
                }
                Some(_) => c.error(
                    &format!("{p}/path"),
                    "path",
                    "RFC 7644 §3.5.2",
                    "\"path\" is a string".into(),
                ),
            }
        }
    }

    fn patch_path(
        &self,
        c: &mut Collect<'_>,
        rt: &ResourceType,
        kind: &str,
        path: &str,
        value: Option<&Value>,
        ptr: &str,
    ) {
        let parsed = match crate::patch::PatchPath::parse(path) {
            Ok(p) => p,
            Err(e) => {
                c.error(
                    ptr,
                    path,
                    "RFC 7644 §3.5.2 (invalidPath)",
                    e.detail().to_string(),
                );
                return;
            }
        };
        if crate::patch::extension_named(rt, &parsed).is_some() {
            // A whole extension: its attributes are checked with the value.
            return;
        }
        let res = match rt.resolve(&parsed.attr) {
            Ok(Target::Doc(r)) => r,
            Ok(_) => {
                c.error(
                    ptr,
                    path,
                    "RFC 7643 §3.1 (mutability)",
                    format!("{path} is readOnly"),
                );
                return;
            }
            Err(e) => {
                c.error(
                    ptr,
                    path,
                    "RFC 7644 §3.5.2 (invalidPath)",
                    e.detail().to_string(),
                );
                return;
            }
        };
        let sub = res.sub.or_else(|| {
            parsed
                .sub_after_filter
                .as_deref()
                .and_then(|s| res.attr.sub(s))
        });
        if parsed.sub_after_filter.is_some() && sub.is_none() {
            c.error(
                ptr,
                path,
                "RFC 7644 §3.5.2 (invalidPath)",
                format!(
                    "{} has no sub-attribute {:?}",
                    res.attr.name,
                    parsed.sub_after_filter.unwrap_or_default()
                ),
            );
            return;
        }
        let target = sub.unwrap_or(res.attr);
        if res.attr.mutability == Mutability::ReadOnly || target.mutability == Mutability::ReadOnly
        {
            c.error(
                ptr,
                path,
                "RFC 7643 §2.2 (mutability)",
                format!("{path} is readOnly and cannot be modified"),
            );
            return;
        }
        if let Some(f) = &parsed.filter
            && (!res.attr.multi_valued || res.attr.ty != AttrType::Complex)
        {
            c.error(
                ptr,
                path,
                "RFC 7644 §3.5.2 (invalidPath)",
                format!(
                    "[{f}] needs a multi-valued complex attribute; {} is not one",
                    res.attr.name
                ),
            );
            return;
        }
        if kind == "remove" {
            return;
        }
        let Some(v) = value.filter(|v| !v.is_null()) else {
            return;
        };
        let vptr = ptr.trim_end_matches("/path").to_string() + "/value";
        if parsed.filter.is_some() || sub.is_some() {
            if sub.is_some() {
                self.single(c, target, v, &vptr, path);
            } else {
                self.single(c, res.attr, v, &vptr, path);
            }
        } else if res.attr.multi_valued && !v.is_array() {
            // add/replace of a multi-valued attribute accepts one value or an array.
            self.single(c, res.attr, v, &vptr, path);
        } else {
            self.attribute(c, res.attr, v, &vptr, path);
        }
    }

    fn bulk(&self, c: &mut Collect<'_>, v: &Value) {
        let Some(ops) = v["Operations"].as_array() else {
            c.error(
                "",
                "Operations",
                "RFC 7644 §3.7",
                "a BulkRequest needs an \"Operations\" array".into(),
            );
            return;
        };
        let defined: Vec<&str> = ops.iter().filter_map(|o| o["bulkId"].as_str()).collect();
        let mut seen = std::collections::HashSet::new();
        for (i, op) in ops.iter().enumerate() {
            let p = format!("/Operations/{i}");
            let method = op["method"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if !["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                c.error(
                    &format!("{p}/method"),
                    "method",
                    "RFC 7644 §3.7",
                    format!(
                        "method must be POST, PUT, PATCH or DELETE, not {}",
                        op["method"]
                    ),
                );
                continue;
            }
            if let Some(b) = op["bulkId"].as_str()
                && !seen.insert(b)
            {
                c.error(
                    &format!("{p}/bulkId"),
                    "bulkId",
                    "RFC 7644 §3.7",
                    format!("bulkId {b:?} is used twice"),
                );
            }
            if method == "POST" && op["bulkId"].as_str().is_none() {
                c.error(
                    &p,
                    "bulkId",
                    "RFC 7644 §3.7",
                    "a POST operation needs a bulkId".into(),
                );
            }
            let text = op.to_string();
            for r in text.split("bulkId:").skip(1) {
                let id: String = r
                    .chars()
                    .take_while(|ch| *ch != '"' && *ch != '/' && *ch != '\\')
                    .collect();
                if !defined.contains(&id.as_str()) {
                    c.error(
                        &p,
                        "bulkId",
                        "RFC 7644 §3.7.2",
                        format!("\"bulkId:{id}\" refers to no operation's bulkId"),
                    );
                }
            }
            let path = op["path"].as_str().unwrap_or_default();
            let endpoint = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            let Some(rt) = self.server.by_endpoint(endpoint) else {
                c.error(
                    &format!("{p}/path"),
                    "path",
                    "RFC 7644 §3.7",
                    format!("{path:?} names no endpoint of this server"),
                );
                continue;
            };
            match (method.as_str(), op.get("data")) {
                ("DELETE", _) => {}
                (_, None) => c.error(
                    &p,
                    "data",
                    "RFC 7644 §3.7",
                    format!("{method} needs \"data\""),
                ),
                ("PATCH", Some(d)) => self.patch_op(c, rt, d, &format!("{p}/data")),
                (_, Some(d)) => self.resource(c, rt, d, &format!("{p}/data")),
            }
        }
    }

    fn search(&self, c: &mut Collect<'_>, rt: &ResourceType, v: &Value) {
        if let Some(f) = v.get("filter") {
            match f.as_str() {
                Some(text) => {
                    let compiled = crate::filter::parse_with(text, &self.server.compat)
                        .and_then(|ast| crate::model::query::check(&ast, rt).map(|_| ()));
                    if let Err(e) = compiled {
                        c.error(
                            "/filter",
                            "filter",
                            "RFC 7644 §3.4.2.2 (invalidFilter)",
                            e.detail().to_string(),
                        );
                    }
                }
                None => c.error(
                    "/filter",
                    "filter",
                    "RFC 7644 §3.4.3",
                    "filter is a string".into(),
                ),
            }
        }
        if let Some(s) = v.get("sortBy") {
            let ok = s
                .as_str()
                .and_then(|s| AttrPath::parse(s).ok())
                .is_some_and(|p| rt.resolve(&p).is_ok());
            if !ok {
                c.error(
                    "/sortBy",
                    "sortBy",
                    "RFC 7644 §3.4.2.3",
                    format!("sortBy {s} names no attribute of {}", rt.name),
                );
            }
        }
        if let Some(o) = v.get("sortOrder")
            && !o
                .as_str()
                .is_some_and(|o| o == "ascending" || o == "descending")
        {
            c.error(
                "/sortOrder",
                "sortOrder",
                "RFC 7644 §3.4.2.3",
                format!("sortOrder is \"ascending\" or \"descending\", not {o}"),
            );
        }
        for k in ["startIndex", "count"] {
            if let Some(x) = v.get(k)
                && !x.is_i64()
            {
                c.error(
                    &format!("/{k}"),
                    k,
                    "RFC 7644 §3.4.2.4",
                    format!("{k} is an integer, not {x}"),
                );
            }
        }
        for k in ["attributes", "excludedAttributes"] {
            for (i, a) in v
                .get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let ok = a
                    .as_str()
                    .and_then(|s| AttrPath::parse(s).ok())
                    .is_some_and(|p| rt.resolve(&p).is_ok());
                if !ok {
                    c.warn(
                        &format!("/{k}/{i}"),
                        k,
                        "RFC 7644 §3.4.2.5",
                        format!("{a} names no attribute of {}", rt.name),
                    );
                }
            }
        }
    }
}

/// Renders reports as `file:line:column: severity: message [path] (RFC …)` lines.
pub fn text(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        for f in &r.findings {
            let path = if f.path.is_empty() {
                String::new()
            } else {
                format!(" [{}]", f.path)
            };
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            out.push_str(&format!(
                "{}:{}:{}: {sev}: {}{path} ({})\n",
                r.file, f.line, f.column, f.message, f.rfc
            ));
        }
    }
    let errors: usize = reports.iter().map(FileReport::errors).sum();
    let warnings: usize = reports.iter().map(|r| r.findings.len() - r.errors()).sum();
    out.push_str(&format!(
        "lint: {} file(s), {errors} error(s), {warnings} warning(s)\n",
        reports.len()
    ));
    out
}
