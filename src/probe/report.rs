//! A probe run's results and their three renderings: a terminal report with a prioritised fix
//! summary, JSON (schema: `schemas/probe-report.schema.json`, `scimlab probe --report-schema`)
//! and JUnit XML for CI systems.

use super::catalogue::{self, Compat};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Version of the JSON report format.
pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// A deviation `--compat` forgives, or a transient problem (a 5xx that a retry cured).
    Warn,
    /// Not applicable to this server (e.g. sorting when sort.supported is false).
    Skip,
}

/// One check's outcome. A check can be made several times (per resource type); each time is
/// one result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CheckResult {
    /// Stable check id, e.g. `search.case_insensitive`.
    pub id: String,
    /// Phase of the run: discovery, lifecycle, groups, search, patch, etag, bulk, errors,
    /// okta, entra, onelogin, contract.
    pub phase: String,
    /// What was checked, with the subject (e.g. the resource type).
    pub title: String,
    /// The RFC section (or IdP guide) the check enforces.
    pub rfc: String,
    pub status: Status,
    /// What the standard wants.
    pub expected: String,
    /// What the server did.
    pub got: String,
    /// The request that showed it (`METHOD path`), credentials never included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// One entry of the fix summary.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Fix {
    /// `P1` (fix first) to `P3`.
    pub priority: String,
    pub trouble: String,
    pub fix: String,
    pub rationale: String,
    /// Failed checks this fix explains.
    pub explains: usize,
    pub checks: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub warnings: usize,
    pub skipped: usize,
}

/// The JSON report (`--json`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Report {
    /// Format version ([`REPORT_VERSION`]).
    pub version: u32,
    /// scimlab's version.
    pub tool: String,
    pub target: String,
    /// `strict` or `compat`.
    pub mode: String,
    /// Version of the list of deviations `--compat` forgives.
    pub compat_list_version: u32,
    /// Prefix of every resource the run created.
    pub run_prefix: String,
    pub started: String,
    pub duration_ms: u64,
    pub summary: Summary,
    pub results: Vec<CheckResult>,
    pub fixes: Vec<Fix>,
}

impl Report {
    pub fn new(target: &str, compat: bool, run_prefix: &str) -> Report {
        Report {
            version: REPORT_VERSION,
            tool: format!("scimlab {}", env!("CARGO_PKG_VERSION")),
            target: target.to_string(),
            mode: if compat { "compat" } else { "strict" }.into(),
            compat_list_version: catalogue::COMPAT_VERSION,
            run_prefix: run_prefix.to_string(),
            started: crate::vocab::time::now(),
            duration_ms: 0,
            summary: Summary::default(),
            results: Vec::new(),
            fixes: Vec::new(),
        }
    }

    /// Records a check's outcome; a failure `--compat` forgives becomes a warning.
    pub fn record(&mut self, mut r: CheckResult) {
        if r.status == Status::Fail
            && self.mode == "compat"
            && let Compat::Forgiven(why) = catalogue::check(&r.id).compat
        {
            r.status = Status::Warn;
            r.got = format!("{} (forgiven by --compat: {why})", r.got);
        }
        self.results.push(r);
    }

    /// Counts and the fix summary, once every check ran.
    pub fn finish(&mut self, duration_ms: u64) {
        self.duration_ms = duration_ms;
        let mut s = Summary::default();
        for r in &self.results {
            match r.status {
                Status::Pass => s.passed += 1,
                Status::Fail => s.failed += 1,
                Status::Warn => s.warnings += 1,
                Status::Skip => s.skipped += 1,
            }
        }
        self.summary = s;
        let mut by_fix: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for r in self.results.iter().filter(|r| r.status == Status::Fail) {
            let checks = by_fix.entry(catalogue::check(&r.id).fix).or_default();
            if !checks.contains(&r.id) {
                checks.push(r.id.clone());
            }
        }
        let mut fixes: Vec<Fix> = by_fix
            .into_iter()
            .map(|(key, checks)| {
                let def = catalogue::fix(key);
                let explains = self
                    .results
                    .iter()
                    .filter(|r| r.status == Status::Fail && checks.contains(&r.id))
                    .count();
                Fix {
                    priority: format!("P{}", def.priority),
                    trouble: def.trouble.into(),
                    fix: def.fix.into(),
                    rationale: def.rationale.into(),
                    explains,
                    checks,
                }
            })
            .collect();
        fixes.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then(b.explains.cmp(&a.explains))
        });
        self.fixes = fixes;
    }

    pub fn ok(&self) -> bool {
        self.summary.failed == 0
    }

    /// The readable report; `colour` adds ANSI colours (terminals only).
    pub fn text(&self, colour: bool) -> String {
        let paint = |code: &str, s: &str| {
            if colour {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scimlab probe of {} ({} mode, compat list v{})",
            self.target, self.mode, self.compat_list_version
        );
        let mut phase = "";
        for r in &self.results {
            if r.phase != phase {
                phase = &r.phase;
                let _ = writeln!(out, "\n{}", paint("1", phase));
            }
            let mark = match r.status {
                Status::Pass => paint("32", "PASS"),
                Status::Fail => paint("31", "FAIL"),
                Status::Warn => paint("33", "WARN"),
                Status::Skip => paint("2", "SKIP"),
            };
            let _ = writeln!(out, "  {mark} {} [{}] {}", r.id, r.rfc, r.title);
            if matches!(r.status, Status::Fail | Status::Warn) {
                let _ = writeln!(out, "       expected: {}", r.expected);
                let _ = writeln!(out, "       got:      {}", r.got);
                if let Some(req) = &r.request {
                    let _ = writeln!(out, "       request:  {req}");
                }
            } else if r.status == Status::Skip {
                let _ = writeln!(out, "       {}", r.got);
            }
        }
        if !self.fixes.is_empty() {
            let _ = writeln!(out, "\n{}", paint("1", "What to fix first"));
            for f in &self.fixes {
                let _ = writeln!(
                    out,
                    "  {} {} ({} failed check{}: {})\n     fix: {}\n     why: {}",
                    paint(if f.priority == "P1" { "31" } else { "33" }, &f.priority),
                    f.trouble,
                    f.explains,
                    if f.explains == 1 { "" } else { "s" },
                    f.checks.join(", "),
                    f.fix,
                    f.rationale
                );
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\nprobe: {} passed, {} failed, {} warnings, {} skipped in {} ms",
            s.passed, s.failed, s.warnings, s.skipped, self.duration_ms
        );
        out
    }

    /// JUnit XML: one test suite per phase, one test case per result.
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
        let mut report = JReport::new("scimlab probe");
        let mut suites: Vec<TestSuite> = Vec::new();
        for r in &self.results {
            if suites.last().is_none_or(|s| s.name.as_str() != r.phase) {
                suites.push(TestSuite::new(r.phase.clone()));
            }
            let status = match r.status {
                // A warning does not fail the build; its text says what it forgave.
                Status::Pass | Status::Warn => TestCaseStatus::success(),
                Status::Skip => TestCaseStatus::skipped(),
                Status::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(format!("expected {}; got {}", r.expected, r.got));
                    s
                }
            };
            let mut case = TestCase::new(format!("{} {}", r.id, r.title), status);
            case.set_classname(format!("scimlab.probe.{}", r.phase));
            let mut text = format!("{}\nexpected: {}\ngot: {}", r.rfc, r.expected, r.got);
            if let Some(req) = &r.request {
                text.push_str(&format!("\nrequest: {req}"));
            }
            case.set_system_out(text);
            if let Some(suite) = suites.last_mut() {
                suite.add_test_case(case);
            }
        }
        report.add_test_suites(suites);
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- junit: {e} -->"))
    }

    /// The JSON Schema of the report format.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default()
    }
}
