//! `scimlab lint`: lint and server agree on a corpus of valid and invalid payloads (the
//! server's status on POST/PATCH against lint's verdict), and the command reports findings
//! with their locations.

use crate::common;

use common::TestApp;
use scimlab::lint::{Linter, Severity};
use serde_json::{Value, json};

const APP: &str = r#"
id: app
tokens: [tok-app]
resource_types:
  User:
    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]
    attributes:
      region: { type: string, canonical_values: [AMER, EMEA] }
      badge: { type: string, mutability: immutable }
      level: { type: integer }
      hired: { type: dateTime }
      tags: { type: string, multi_valued: true }
  Group: {}
validation:
  strict: true
"#;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const EXT: &str = "urn:scimlab:schemas:extension:app:2.0:User";

/// Resource bodies, each with a fresh userName where it has one.
fn resources() -> Vec<Value> {
    vec![
        json!({"schemas": [USER], "userName": "U"}),
        json!({"schemas": [USER], "userName": "U", "name": {"givenName": "A", "familyName": "B"}, "active": true}),
        json!({"schemas": [USER], "userName": "U", "emails": [{"value": "a@example.com", "type": "work", "primary": true}]}),
        json!({"schemas": [USER], "userName": "U", "emails": [{"value": "a@example.com", "primary": true}, {"value": "b@example.com", "primary": true}]}),
        json!({"schemas": [USER], "userName": "U", "emails": {"value": "single@example.com"}}),
        json!({"schemas": [USER], "userName": "U", "emails": [{"value": "a@example.com", "type": "pager"}]}),
        json!({"schemas": [USER], "userName": 42}),
        json!({"schemas": [USER]}),
        json!({"schemas": [USER], "userName": "U", "active": "yes"}),
        json!({"schemas": [USER], "userName": "U", "unknownThing": 1}),
        json!({"schemas": [USER], "userName": "U", "id": "mine", "meta": {"created": "x"}}),
        json!({"schemas": [USER], "userName": "U", "groups": [{"value": "g"}]}),
        json!({"schemas": [USER], "userName": "U", "title": null}),
        json!({"schemas": [USER, ENT], "userName": "U", ENT: {"employeeNumber": "7", "costCenter": "C"}}),
        json!({"schemas": [USER], "userName": "U", ENT: {"employeeNumber": "7"}}),
        json!({"schemas": [USER, ENT], "userName": "U", ENT: {"nope": 1}}),
        json!({"schemas": [USER, "urn:example:unknown"], "userName": "U"}),
        json!({"schemas": [USER, EXT], "userName": "U", EXT: {"region": "EMEA", "level": 3, "hired": "2024-01-02T03:04:05Z", "tags": ["a"]}}),
        json!({"schemas": [USER, EXT], "userName": "U", EXT: {"region": "APAC"}}),
        json!({"schemas": [USER, EXT], "userName": "U", EXT: {"level": "three"}}),
        json!({"schemas": [USER, EXT], "userName": "U", EXT: {"hired": "yesterday"}}),
        json!({"schemas": [USER, EXT], "userName": "U", EXT: {"tags": "a"}}),
        json!({"schemas": [USER, EXT], "userName": "U", EXT: {"badge": "B-1"}}),
        json!({"schemas": [USER], "userName": "U", "name": {"givenName": "A", "nickname": "x"}}),
        json!({"schemas": [USER], "userName": "U", "name": "Ann"}),
        json!({"userName": "U"}),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G"}),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}),
        json!([1, 2]),
    ]
}

/// PatchOps, applied to a user that has only its userName.
fn patches() -> Vec<Value> {
    let ops = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    vec![
        ops(json!([{"op": "replace", "path": "displayName", "value": "D"}])),
        ops(json!([{"op": "replace", "value": {"displayName": "D", "active": false}}])),
        ops(
            json!([{"op": "add", "path": "emails", "value": [{"value": "a@example.com", "type": "work"}]}]),
        ),
        ops(
            json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "w@example.com"}]),
        ),
        ops(
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "w@example.com"}]),
        ),
        ops(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}])),
        ops(json!([{"op": "remove", "path": "title"}])),
        ops(json!([{"op": "remove"}])),
        ops(json!([{"op": "Replace", "path": "displayName", "value": "D"}])),
        ops(json!([{"op": "replace", "path": "displayName", "value": null}])),
        ops(json!([{"op": "replace", "path": "active", "value": "False"}])),
        ops(json!([{"op": "replace", "path": "groups", "value": [{"value": "g"}]}])),
        ops(json!([{"op": "replace", "path": "id", "value": "x"}])),
        ops(json!([{"op": "replace", "path": "nope", "value": "x"}])),
        ops(json!([{"op": "replace", "path": "emails[type eq", "value": "x"}])),
        ops(json!([{"op": "move", "path": "displayName", "value": "x"}])),
        ops(json!([{"op": "replace", "path": format!("{EXT}:region"), "value": "APAC"}])),
        ops(json!([{"op": "replace", "path": format!("{EXT}:region"), "value": "AMER"}])),
        ops(json!([{"op": "replace", "path": format!("{EXT}:level"), "value": "x"}])),
        ops(json!([{"op": "add", "path": format!("{EXT}:badge"), "value": "B"}])),
        ops(json!([{"op": "replace", "value": {"name.givenName": "G"}}])),
        ops(json!([{"op": "replace", "value": {ENT: {"employeeNumber": "1"}}}])),
        ops(json!([{"op": "replace", "path": "displayName", "value": "D"}, {"op": "remove"}])),
        json!({"Operations": [{"op": "replace", "path": "displayName", "value": "D"}]}),
        ops(json!([])),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_and_server_agree_on_every_payload() {
    let app = TestApp::spawn(&[("app.yaml", APP)]).await;
    let model =
        scimlab::model::compile_file(&app.servers_dir().join("app.yaml"), &app.profiles_dir())
            .unwrap();
    let linter = Linter::with(model);
    let mut disagreements = Vec::new();
    for (i, mut body) in resources().into_iter().enumerate() {
        if body.get("userName").is_some_and(Value::is_string) {
            body["userName"] = json!(format!("user-{i}"));
        }
        let endpoint = if body.to_string().contains("core:2.0:Group") {
            "/Groups"
        } else {
            "/Users"
        };
        let (status, answer) = app.post("app", endpoint, body.clone()).await;
        let report = linter.lint(
            &format!("resource {i}"),
            &serde_json::to_string_pretty(&body).unwrap(),
        );
        let lint_ok = report.errors() == 0;
        assert!(status == 201 || status == 400, "{status} {answer}");
        if lint_ok != (status == 201) {
            disagreements.push(format!(
                "resource {i} {body}: server {status} {answer}; lint {:?}",
                report.findings
            ));
        }
    }
    for (i, body) in patches().into_iter().enumerate() {
        let id = app.user("app", &format!("patched-{i}")).await;
        let (status, answer, _) = app
            .send(
                reqwest::Method::PATCH,
                "app",
                &format!("/Users/{id}"),
                Some(body.clone()),
            )
            .await;
        let report = linter.lint(&format!("patch {i}"), &body.to_string());
        assert_eq!(report.kind, "PatchOp");
        let lint_ok = report.errors() == 0;
        if lint_ok != (status == 200) {
            disagreements.push(format!(
                "patch {i} {body}: server {status} {answer}; lint {:?}",
                report.findings
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn findings_carry_location_path_and_rfc() {
    let text = "{\n  \"schemas\": [\"urn:ietf:params:scim:schemas:core:2.0:User\"],\n  \"userName\": \"a\",\n  \"emails\": [\n    {\"value\": \"x@y.z\", \"type\": \"pager\"}\n  ],\n  \"id\": \"mine\"\n}";
    let r = Linter::rfc().lint("u.json", text);
    assert_eq!(r.kind, "resource");
    assert_eq!(r.resource_type.as_deref(), Some("User"));
    let pager = r
        .findings
        .iter()
        .find(|f| f.message.contains("pager"))
        .unwrap();
    assert_eq!((pager.line, pager.column), (5, 24));
    assert_eq!(pager.path, "emails.type");
    assert_eq!(pager.severity, Severity::Error);
    assert!(pager.rfc.contains("canonicalValues"));
    let id = r.findings.iter().find(|f| f.path == "id").unwrap();
    assert_eq!((id.severity, id.line, id.column), (Severity::Warning, 7, 3));
    // Bulk: bulkId misuse, operations linted as what they carry.
    let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Users", "data": {"schemas": [USER], "userName": "x"}},
        {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": "bulkId:nobody"}]}},
        {"method": "PATCH", "path": "/Users/1", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove"}]}}
    ]});
    let r = Linter::rfc().lint("bulk.json", &serde_json::to_string_pretty(&bulk).unwrap());
    assert_eq!(r.kind, "BulkRequest");
    let messages: Vec<&str> = r.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("needs a bulkId")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("bulkId:nobody")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("remove needs a \"path\"")),
        "{messages:?}"
    );
    // SearchRequest: the filter goes through the server's parser and compiler.
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq", "sortOrder": "up"});
    let r = Linter::rfc().lint("search.json", &search.to_string());
    assert_eq!(r.kind, "SearchRequest");
    assert_eq!(r.errors(), 2, "{:?}", r.findings);
    // Not JSON: one finding at the parser's position.
    let r = Linter::rfc().lint("bad.json", "{\n  \"a\": ,\n}");
    assert_eq!((r.findings[0].line, r.findings[0].column), (2, 8));
}

#[test]
fn the_command_reads_files_and_stdin_and_says_json() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        json!({"schemas": [USER], "userName": "a"}).to_string(),
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"schemas\": [\"urn:ietf:params:scim:schemas:core:2.0:User\"],\n \"userName\": 1}",
    )
    .unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, out) = run(&["lint", good.to_str().unwrap()], None);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(
        &["lint", good.to_str().unwrap(), bad.to_str().unwrap()],
        None,
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("bad.json:2:2: error: userName must be a string"),
        "{out}"
    );
    let (code, out) = run(
        &["lint", "--stdin", "--patch", "--json"],
        Some("{\"Operations\": [{\"op\": \"remove\"}]}"),
    );
    assert_eq!(code, Some(1));
    let reports: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0]["file"], "<stdin>");
    assert_eq!(reports[0]["kind"], "PatchOp");
    assert!(
        reports[0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rfc"].as_str().unwrap().contains("noTarget"))
    );
    // A definition's own rules: a canonical value of its custom attribute.
    let def = dir.path().join("app.yaml");
    std::fs::write(&def, APP).unwrap();
    let apac = dir.path().join("apac.json");
    std::fs::write(
        &apac,
        json!({"schemas": [USER, EXT], "userName": "a", EXT: {"region": "APAC"}}).to_string(),
    )
    .unwrap();
    let packs = dir.path().join("profiles");
    std::fs::create_dir(&packs).unwrap();
    let (code, out) = run(
        &[
            "lint",
            "--definition",
            def.to_str().unwrap(),
            "--profiles",
            packs.to_str().unwrap(),
            apac.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not a canonical value"), "{out}");
    // The same payload against the RFC catalogue: the extension is unknown there.
    let (code, out) = run(&["lint", apac.to_str().unwrap()], None);
    assert_eq!(code, Some(1));
    assert!(out.contains("not a schema of User"), "{out}");
}
