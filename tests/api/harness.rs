//! Test-harness features over HTTP: the request inspector (JSON, filters, HAR, redaction,
//! quirks, ring size), the admin API (token, ephemeral servers, reset, snapshots), rate limits
//! under concurrent clients, and fault injection.

use crate::common;

use common::{OTHER, TestApp, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

const LIMITED: &str = r#"
id: limited
tokens: [tok-limited]
resource_types:
  User: {}
  Group: {}
inspector: { capacity: 5, body_limit: 40 }
rate_limits:
  write: 10/hour
  read: 1000/s
faults:
  - { methods: [GET], path: /Groups*, error_rate: 1.0, status: 503, next: 2 }
  - { resource_type: User, methods: [DELETE], latency_ms: 150 }
"#;

async fn app() -> TestApp {
    TestApp::spawn(&[("other.yaml", OTHER), ("limited.yaml", LIMITED)]).await
}

async fn requests(app: &TestApp, server: &str, query: &str) -> Vec<Value> {
    let (s, b) = app
        .admin(
            Method::GET,
            &format!("/admin/servers/{server}/requests{query}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b["requests"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_is_recorded_with_its_response_and_filters_work() {
    let app = app().await;
    // Entra sends "Replace" and "False": the quirks applied are recorded.
    let id = app.user("other", "jo").await;
    let (s, _) = app
        .patch(
            "other",
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.get("other", "/Users/missing").await;
    assert_eq!(s, 404);
    let all = requests(&app, "other", "").await;
    assert_eq!(all.len(), 3);
    let patch = &all[1];
    assert_eq!(patch["method"], "PATCH");
    assert_eq!(patch["path"], format!("/Users/{id}"));
    assert_eq!(patch["status"], 200);
    let quirks: Vec<&str> = patch["quirks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q.as_str().unwrap())
        .collect();
    assert!(
        quirks.contains(&"capitalized_ops") && quirks.contains(&"boolean_strings"),
        "{quirks:?}"
    );
    assert!(patch["request_body"].as_str().unwrap().contains("Replace"));
    assert!(
        patch["response_body"]
            .as_str()
            .unwrap()
            .contains("\"active\":false")
    );
    let auth = patch["request_headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "authorization")
        .unwrap();
    assert_eq!(auth[1], "Bearer [redacted]", "tokens never reach the log");
    let missing = &all[0];
    assert_eq!(missing["status"], 404);
    assert!(
        missing["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("missing")
    );
    // Filters: status (exact or class), method, path.
    assert_eq!(requests(&app, "other", "?status=404").await.len(), 1);
    assert_eq!(requests(&app, "other", "?status=2xx").await.len(), 2);
    assert_eq!(requests(&app, "other", "?method=patch").await.len(), 1);
    assert_eq!(requests(&app, "other", "?path=missing").await.len(), 1);
    // Servers keep their own logs.
    assert!(requests(&app, "limited", "").await.is_empty());
    // HAR export.
    let (s, har) = app
        .admin(Method::GET, "/admin/servers/other/requests.har", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(har["log"]["version"], "1.2");
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["request"]["method"], "POST", "oldest first");
    assert!(
        entries[1]["request"]["postData"]["text"]
            .as_str()
            .unwrap()
            .contains("Replace")
    );
    assert!(
        entries[1]["comment"]
            .as_str()
            .unwrap()
            .contains("capitalized_ops")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_is_a_bounded_ring_with_capped_bodies() {
    let app = app().await;
    for i in 0..8 {
        app.req(
            Method::GET,
            "limited",
            &format!("/Users?filter=userName%20eq%20%22u{i}%22"),
        )
        .send()
        .await
        .unwrap();
    }
    let all = requests(&app, "limited", "").await;
    assert_eq!(all.len(), 5, "capacity 5");
    assert!(
        all[0]["query"].as_str().unwrap().contains("u7"),
        "newest kept"
    );
    let (_, _) = app
        .post(
            "limited",
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a-rather-long-user-name-to-cap"}),
        )
        .await;
    let last = &requests(&app, "limited", "?method=POST").await[0];
    assert_eq!(last["request_body"].as_str().unwrap().len(), 40);
    assert_eq!(last["request_body_truncated"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_needs_its_token() {
    let app = app().await;
    let r = app
        .client
        .get(app.url("/admin/servers"))
        .bearer_auth("tok-other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/admin/servers"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, b) = app.admin(Method::GET, "/admin/servers", None).await;
    assert_eq!(s, 200);
    assert_eq!(b["servers"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn ephemeral_servers_are_validated_like_files_and_can_be_deleted() {
    let app = app().await;
    let yaml = "id: ci-run-1\ntokens: [tok-ci-run-1]\nresource_types:\n  User: {}\n";
    let (s, b) = app.admin(Method::POST, "/admin/servers", Some(yaml)).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["ephemeral"], true);
    let id = app.user("ci-run-1", "ci").await;
    assert!(!id.is_empty());
    // JSON works too; an invalid definition is refused with located errors.
    let json_def = r#"{"id": "ci-run-2", "tokens": ["tok-ci-run-2"], "resource_types": {"User": {"attributes": {"x": {"type": "strin"}}}}}"#;
    let (s, b) = app
        .admin(Method::POST, "/admin/servers", Some(json_def))
        .await;
    assert_error(s, &b, 400, Some("invalidSyntax"));
    assert!(
        b["detail"].as_str().unwrap().contains("admin:ci-run-2:1:"),
        "{b}"
    );
    let (s, _) = app
        .admin(
            Method::POST,
            "/admin/servers",
            Some(&json_def.replace("strin", "string")),
        )
        .await;
    assert_eq!(s, 201);
    // Same id again, or a file server's id: 409.
    let (s, _) = app.admin(Method::POST, "/admin/servers", Some(yaml)).await;
    assert_eq!(s, 409);
    let (s, _) = app
        .admin(
            Method::POST,
            "/admin/servers",
            Some("id: other\ntokens: [x]\nresource_types: {User: {}}\n"),
        )
        .await;
    assert_eq!(s, 409);
    // File servers are not deleted through the API.
    let (s, _) = app
        .admin(Method::DELETE, "/admin/servers/other", None)
        .await;
    assert_eq!(s, 409);
    let (s, _) = app
        .admin(Method::DELETE, "/admin/servers/ci-run-1", None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = app.get("ci-run-1", "/Users").await;
    assert_eq!(s, 404, "unmounted");
    // A reload keeps the remaining ephemeral server.
    app.write_def(
        "third.yaml",
        "id: third\ntokens: [tok-third]\nresource_types: {User: {}}\n",
    );
    let state = app.state.as_ref().unwrap();
    let sources = scimlab::model::Sources::new(app.servers_dir(), app.profiles_dir());
    scimlab::reload::reload(&state.reloader(), &sources).unwrap();
    assert_eq!(app.get("ci-run-2", "/Users").await.0, 200);
    assert_eq!(app.get("third", "/Users").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_snapshot_and_restore() {
    let app = app().await;
    app.user("other", "keep").await;
    let (s, _) = app
        .admin(
            Method::POST,
            "/admin/servers/other/snapshots",
            Some(r#"{"name": "before"}"#),
        )
        .await;
    assert_eq!(s, 201);
    app.user("other", "later").await;
    let (s, b) = app
        .admin(Method::POST, "/admin/servers/other/reset", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["deleted"], 2);
    assert_eq!(app.get("other", "/Users").await.1["totalResults"], 0);
    let (s, b) = app
        .admin(
            Method::POST,
            "/admin/servers/other/snapshots/before/restore",
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(app.names("other", "userName pr").await, ["keep"]);
    let (s, _) = app
        .admin(
            Method::POST,
            "/admin/servers/other/snapshots/nope/restore",
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, b) = app
        .admin(Method::GET, "/admin/servers/other/snapshots", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["snapshots"][0]["name"], "before");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_hold_under_concurrent_clients() {
    let app = app().await;
    // 10 writes per hour: 40 concurrent creates, exactly 10 may pass.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let req = app
            .req(Method::POST, "limited", "/Users")
            .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("c{i}")}));
        tasks.push(tokio::spawn(async move { req.send().await.unwrap() }));
    }
    let mut passed = 0;
    let mut limited = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status().as_u16() {
            201 => passed += 1,
            429 => {
                limited += 1;
                let retry: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
                let b: Value = r.json().await.unwrap();
                assert_eq!(b["status"], "429");
                assert!(b["detail"].as_str().unwrap().contains("write"), "{b}");
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!((passed, limited), (10, 30));
    // Reads are their own class.
    assert_eq!(app.get("limited", "/Users?count=1").await.0, 200);
    // The admin API changes limits at run time.
    let (s, _) = app
        .admin(
            Method::PUT,
            "/admin/servers/limited/rate-limits",
            Some(r#"{"read": "2/hour"}"#),
        )
        .await;
    assert_eq!(s, 200);
    let statuses = [
        app.get("limited", "/Users").await.0,
        app.get("limited", "/Users").await.0,
        app.get("limited", "/Users").await.0,
    ];
    assert_eq!(statuses, [200, 200, 429]);
    let (s, _) = app
        .admin(
            Method::PUT,
            "/admin/servers/limited/rate-limits",
            Some(r#"{"read": "2/fortnight"}"#),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .admin(Method::DELETE, "/admin/servers/limited/rate-limits", None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.get("limited", "/Users").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_injected_as_declared_and_marked_in_the_log() {
    let app = app().await;
    // YAML: the next 2 GETs on /Groups* answer 503, then normal service.
    let statuses = [
        app.get("limited", "/Groups").await.0,
        app.get("limited", "/Groups").await.0,
        app.get("limited", "/Groups").await.0,
    ];
    assert_eq!(statuses, [503, 503, 200]);
    let log = requests(&app, "limited", "?path=/Groups").await;
    assert!(log[2]["fault"].as_str().unwrap().contains("faults[0]"));
    assert!(log[0]["fault"].is_null());
    // Latency on DELETE of users.
    let (s, b) = app
        .post(
            "limited",
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "slow"}),
        )
        .await;
    assert_eq!(s, 201);
    let started = std::time::Instant::now();
    assert_eq!(
        app.delete("limited", &format!("/Users/{}", b["id"].as_str().unwrap()))
            .await,
        204
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    // Admin rules: every POST to /Users answers 500 for the next request only.
    let (s, _) = app
        .admin(
            Method::PUT,
            "/admin/servers/other/faults",
            Some(r#"[{"methods": ["POST"], "path": "/Users", "error_rate": 1.0, "status": 500, "next": 1}]"#),
        )
        .await;
    assert_eq!(s, 200);
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "f"});
    let (s, b) = app.post("other", "/Users", body.clone()).await;
    assert_error(s, &b, 500, None);
    assert!(b["detail"].as_str().unwrap().contains("injected"));
    assert_eq!(app.post("other", "/Users", body).await.0, 201);
    let (s, _) = app
        .admin(
            Method::PUT,
            "/admin/servers/other/faults",
            Some(r#"[{"status": 404}]"#),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn per_type_limits_and_ui_pages_export_reset_and_detail() {
    let app = app().await;
    let (s, _) = app
        .admin(
            Method::PUT,
            "/admin/servers/other/rate-limits",
            Some(r#"{"per_type": {"User": "1/hour"}}"#),
        )
        .await;
    assert_eq!(s, 200);
    let id = app.user("other", "only").await;
    assert_eq!(
        app.get("other", "/Users").await.0,
        429,
        "User's bucket is empty"
    );
    assert_eq!(
        app.get("other", "/Groups").await.0,
        200,
        "Groups have no limit"
    );
    app.admin(Method::DELETE, "/admin/servers/other/rate-limits", None)
        .await;

    let page = |path: &str| {
        let url = app.url(path);
        let client = app.client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, html) = page(&format!("/ui/servers/other/types/User/{id}")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("&quot;userName&quot;: &quot;only&quot;"),
        "{html}"
    );
    assert!(html.contains("lastModified"), "detail shows meta");
    let (s, _) = page("/ui/servers/other/types/User/nope").await;
    assert_eq!(s, 404);
    // A recorded exchange in full: the request as the client sent it (token redacted).
    let seq = requests(&app, "other", "?method=POST").await[0]["seq"]
        .as_i64()
        .unwrap();
    let (s, html) = page(&format!("/ui/servers/other/requests/{seq}")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Bearer [redacted]") && !html.contains("tok-other"),
        "{html}"
    );
    assert!(
        html.contains("&quot;userName&quot;: &quot;only&quot;"),
        "{html}"
    );
    assert_eq!(page("/ui/servers/other/requests/999999").await.0, 404);
    let (s, html) =
        page("/ui/servers/other/types/User?filter=userName%20eq%20%22only%22&startIndex=1").await;
    assert_eq!(s, 200);
    assert!(html.contains("1 result(s)"), "{html}");
    let r = app
        .client
        .get(app.url("/ui/servers/other/export"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("other.json")
    );
    let export: Value = r.json().await.unwrap();
    assert_eq!(export["resources"].as_array().unwrap().len(), 1);
    // Reset: a form post without the session's CSRF token is refused (wherever it comes
    // from); the page's own form resets and redirects.
    let r = app
        .client
        .post(app.url("/ui/servers/other/reset"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.get("other", "/Users").await.1["totalResults"], 1);
    let (cookie, csrf) = app.ui_session("/ui/servers/other").await;
    let r = app
        .client
        .post(app.url("/ui/servers/other/reset"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.get("other", "/Users").await.1["totalResults"], 1);
    let r = app
        .client
        .post(app.url("/ui/servers/other/reset"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection());
    assert_eq!(app.get("other", "/Users").await.1["totalResults"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_captured_session_replays_against_another_server() {
    let copy = OTHER
        .replace("id: other", "id: replica")
        .replace("tok-other", "tok-replica");
    let app = TestApp::spawn(&[("other.yaml", OTHER), ("replica.yaml", &copy)]).await;
    // An Entra-style session: create, deactivate with "Replace"/"False", look up, delete.
    let id = app.user("other", "entra.user").await;
    app.patch(
        "other",
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    app.get("other", "/Users?filter=userName%20eq%20%22entra.user%22")
        .await;
    let (_, har) = app
        .admin(Method::GET, "/admin/servers/other/requests.har", None)
        .await;
    let file = app.dir.path().join("session.har");
    std::fs::write(&file, har.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .arg("replay")
        .arg(&file)
        .args(["--to", &app.base("replica"), "--token", "tok-replica"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("3 request(s) replayed, 0 with another status"),
        "{text}"
    );
    // The replica now holds the same user, deactivated: the PATCH hit the new id.
    let (_, list) = app.get("replica", "/Users").await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["active"], false);
    // A wrong token: every status differs, exit 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .arg("replay")
        .arg(&file)
        .args(["--to", &app.base("replica"), "--token", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
