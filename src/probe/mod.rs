//! `scimlab probe`: a black-box conformance run against a live SCIM service provider.
//!
//! The run reads the server's discovery documents, then exercises every advertised resource
//! type with data generated from the server's own `/Schemas`, and checks what it gets against
//! RFC 7643/7644 ([`catalogue`] lists every check with its section). Optional phases replay
//! the request sequences real identity providers send ([`idp`]) and hold the server to a
//! scimlab definition ([`contract`]). Everything it creates carries the run prefix and is
//! deleted at the end, in reverse order of creation.
//!
//! The phases live in their own files: [`discovery`], [`resources`] (lifecycle, groups, PATCH,
//! ETags, Bulk), [`search`], [`errors`]. [`data`] generates resources from served schemas.

pub mod catalogue;
mod contract;
mod data;
mod discovery;
mod errors;
mod idp;
pub mod report;
mod resources;
mod search;

pub use crate::client::{Auth, Transport};
pub use report::{Report, Status};

use crate::client::{Answer, Client, ClientError};
use crate::model::ServerModel;
use crate::schema::SchemaDef;
use report::CheckResult;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Instant;

/// Identity providers whose request sequences `--as` replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Idp {
    Okta,
    Entra,
    Onelogin,
}

/// What to probe and how.
#[derive(Clone)]
pub struct Options {
    /// The SCIM base URL (`/Users` hangs off it).
    pub base: String,
    pub auth: Auth,
    pub transport: Transport,
    /// Downgrade the deviations in the compat list to warnings.
    pub compat: bool,
    pub idps: Vec<Idp>,
    /// A compiled scimlab definition the server must honour.
    pub contract: Option<Arc<ServerModel>>,
    pub skip_cleanup: bool,
    /// Most resources the run may create.
    pub max_resources: usize,
    /// Run identifier in the prefix of created resources (random when None).
    pub run_id: Option<String>,
}

impl Options {
    pub fn new(base: &str) -> Options {
        Options {
            base: base.trim_end_matches('/').to_string(),
            auth: Auth::default(),
            transport: Transport::default(),
            compat: false,
            idps: Vec::new(),
            contract: None,
            skip_cleanup: false,
            max_resources: 200,
            run_id: None,
        }
    }
}

/// A resource type as the server advertises it.
#[derive(Debug, Clone)]
pub(crate) struct TypeInfo {
    pub name: String,
    /// With the leading slash.
    pub endpoint: String,
    pub schema: String,
    /// (schema URN, required)
    pub extensions: Vec<(String, bool)>,
}

pub(crate) struct Probe<'a> {
    client: Client,
    opts: &'a Options,
    report: Report,
    prefix: String,
    counter: usize,
    /// (endpoint, id) of everything created, in order.
    created: Vec<(String, String)>,
    spc: Value,
    types: Vec<TypeInfo>,
    /// Served schemas by lower-case URN.
    schemas: HashMap<String, SchemaDef>,
    progress: &'a mut (dyn FnMut(&str) + Send + Sync),
}

/// Runs the probe; `progress` hears each phase as it starts.
pub async fn run(
    opts: &Options,
    progress: &mut (dyn FnMut(&str) + Send + Sync),
) -> Result<Report, ClientError> {
    let started = Instant::now();
    let run_id = opts
        .run_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_string());
    let prefix = format!("scimlab-probe-{run_id}-");
    let mut p = Probe {
        client: Client::new(&opts.base, &opts.auth, &opts.transport)?,
        opts,
        report: Report::new(&opts.base, opts.compat, &prefix),
        prefix,
        counter: 0,
        created: Vec::new(),
        spc: Value::Null,
        types: Vec::new(),
        schemas: HashMap::new(),
        progress,
    };
    let outcome = p.phases().await;
    if !opts.skip_cleanup {
        p.cleanup().await;
    }
    outcome?;
    let mut report = p.report;
    report.finish(started.elapsed().as_millis() as u64);
    Ok(report)
}

impl Probe<'_> {
    async fn phases(&mut self) -> Result<(), ClientError> {
        (self.progress)("discovery");
        if !self.discovery().await? {
            return Ok(());
        }
        (self.progress)("lifecycle");
        self.lifecycle().await?;
        (self.progress)("groups");
        self.groups().await?;
        (self.progress)("search");
        self.search().await?;
        (self.progress)("patch");
        self.patch().await?;
        (self.progress)("etag and bulk");
        self.etag().await?;
        self.bulk().await?;
        (self.progress)("errors");
        self.errors().await?;
        for idp in self.opts.idps.clone() {
            (self.progress)(match idp {
                Idp::Okta => "okta",
                Idp::Entra => "entra",
                Idp::Onelogin => "onelogin",
            });
            self.idp(idp).await?;
        }
        if let Some(model) = self.opts.contract.clone() {
            (self.progress)("contract");
            self.contract(&model).await?;
        }
        self.content_types();
        Ok(())
    }

    /// Records one outcome of check `id` about `subject`.
    fn outcome(
        &mut self,
        id: &str,
        subject: &str,
        ok: bool,
        expected: impl Display,
        got: impl Display,
        request: Option<&str>,
    ) -> bool {
        let def = catalogue::check(id);
        let title = if subject.is_empty() {
            def.title.to_string()
        } else {
            format!("{} ({subject})", def.title)
        };
        self.report.record(CheckResult {
            id: id.to_string(),
            phase: id.split('.').next().unwrap_or("probe").to_string(),
            title,
            rfc: def.rfc.to_string(),
            status: if ok { Status::Pass } else { Status::Fail },
            expected: expected.to_string(),
            got: self.client.scrub(&got.to_string()),
            request: request.map(|r| self.client.scrub(r)),
        });
        ok
    }

    fn skip(&mut self, id: &str, subject: &str, why: &str) {
        let def = catalogue::check(id);
        self.report.record(CheckResult {
            id: id.to_string(),
            phase: id.split('.').next().unwrap_or("probe").to_string(),
            title: if subject.is_empty() {
                def.title.to_string()
            } else {
                format!("{} ({subject})", def.title)
            },
            rfc: def.rfc.to_string(),
            status: Status::Skip,
            expected: String::new(),
            got: why.to_string(),
            request: None,
        });
    }

    fn warn(&mut self, id: &str, subject: &str, what: String, request: &str) {
        let def = catalogue::check(id);
        self.report.record(CheckResult {
            id: id.to_string(),
            phase: id.split('.').next().unwrap_or("probe").to_string(),
            title: format!("{} ({subject})", def.title),
            rfc: def.rfc.to_string(),
            status: Status::Warn,
            expected: "a stable answer".into(),
            got: what,
            request: Some(request.to_string()),
        });
    }

    /// A unique value for this run.
    fn unique(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{}{what}{}", self.prefix, self.counter)
    }

    fn config_supported(&self, feature: &str) -> bool {
        self.spc[feature]["supported"].as_bool() == Some(true)
    }

    fn type_named(&self, name: &str) -> Option<TypeInfo> {
        self.types
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    fn schema(&self, urn: &str) -> Option<&SchemaDef> {
        self.schemas.get(&urn.to_ascii_lowercase())
    }

    /// POST a new resource, counted against the cap and remembered for cleanup. A 5xx is
    /// retried once; if the retry works the run notes a transient instability.
    async fn create(&mut self, t: &TypeInfo, body: &Value) -> Result<Answer, ClientError> {
        self.create_with(t, body, &[]).await
    }

    async fn create_with(
        &mut self,
        t: &TypeInfo,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> Result<Answer, ClientError> {
        if self.created.len() >= self.opts.max_resources {
            return Err(ClientError::Setup(format!(
                "the run would create more than --max-resources {} resources",
                self.opts.max_resources
            )));
        }
        let mut a = self
            .client
            .request("POST", &t.endpoint, Some(body), extra, true)
            .await?;
        if a.status >= 500 {
            let first = a.brief();
            a = self
                .client
                .request("POST", &t.endpoint, Some(body), extra, true)
                .await?;
            if a.status < 500 {
                self.warn(
                    "lifecycle.create",
                    &t.name,
                    format!("transient instability: the first attempt answered {first}; a retry answered {}", a.status),
                    &a.request,
                );
            }
        }
        if let Some(id) = a.at("id").as_str().filter(|_| a.status == 201) {
            self.created.push((t.endpoint.clone(), id.to_string()));
        }
        Ok(a)
    }

    /// Deletes what the run created, newest first (groups before their members).
    async fn cleanup(&mut self) {
        let created = std::mem::take(&mut self.created);
        for (endpoint, id) in created.iter().rev() {
            let _ = self
                .client
                .send("DELETE", &format!("{endpoint}/{id}"), None)
                .await;
        }
    }

    /// PATCHes `path` with the operations `ops`, then reads the resource back.
    async fn patch_then_get(
        &self,
        path: &str,
        ops: Value,
    ) -> Result<(Answer, Answer), ClientError> {
        let a = self
            .client
            .send("PATCH", path, Some(&patch_body(ops)))
            .await?;
        let after = self.client.send("GET", path, None).await?;
        Ok((a, after))
    }

    /// Forgets a created resource the run deleted itself.
    fn forget(&mut self, id: &str) {
        self.created.retain(|(_, x)| x != id);
    }

    /// `http.content_type`, from every answer of the run.
    fn content_types(&mut self) {
        let wrong = self
            .client
            .wrong_content_types
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default();
        let got = match wrong.len() {
            0 => "every answer with a body was application/scim+json".to_string(),
            n => format!(
                "{n} answer(s) were not, e.g. {}",
                wrong.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            ),
        };
        self.outcome(
            "http.content_type",
            "",
            wrong.is_empty(),
            "Content-Type: application/scim+json",
            got,
            None,
        );
    }
}

/// A PatchOp of `ops`.
fn patch_body(ops: Value) -> Value {
    serde_json::json!({"schemas": [crate::schema::urn::PATCH_OP], "Operations": ops})
}

/// Whether `a` answered a PATCH: 200 with the resource, or 204 (RFC 7644 §3.5.2).
fn patched(a: &Answer) -> bool {
    a.status == 204 || (a.status == 200 && a.json.is_some())
}

/// Whether `a` is a SCIM ListResponse.
fn is_list(a: &Answer) -> bool {
    a.status == 200
        && a.at("schemas")
            .as_array()
            .is_some_and(|s| s.iter().any(|u| u == crate::schema::urn::LIST_RESPONSE))
}

/// The `Resources` of a ListResponse (an absent member is no resources).
fn resources(a: &Answer) -> Vec<Value> {
    a.at("Resources").as_array().cloned().unwrap_or_default()
}

/// A filter query string value, percent-encoded.
fn q(filter: &str) -> String {
    form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

/// Where `scimlab probe` writes its results.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// The JSON report on standard output instead of the readable one.
    pub json: bool,
    /// A JUnit XML file for CI systems.
    pub junit: Option<std::path::PathBuf>,
}

/// `scimlab probe`: runs, prints the report (progress on stderr), writes JUnit; true when no
/// check failed.
pub async fn command(opts: &Options, out: &Output) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let mut progress = |phase: &str| {
        if tty {
            eprintln!("\x1b[2m… {phase}\x1b[0m");
        } else {
            eprintln!("… {phase}");
        }
    };
    let report = run(opts, &mut progress).await?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text(std::io::stdout().is_terminal()));
    }
    if let Some(path) = &out.junit {
        std::fs::write(path, report.junit())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(report.ok())
}

/// Compiles a definition file as a contract; every problem, located, in the error.
pub fn load_contract(
    path: &std::path::Path,
    profiles: &std::path::Path,
) -> anyhow::Result<Arc<ServerModel>> {
    crate::model::compile_file(path, profiles).map_err(|problems| {
        anyhow::anyhow!(
            "the contract {} does not compile:\n{}",
            path.display(),
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}
