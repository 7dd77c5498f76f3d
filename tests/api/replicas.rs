//! Two scimlab replicas on one PostgreSQL database: anything written or created through one is
//! served by the other at once, uniqueness holds across them, and a replica killed mid-load
//! loses no acknowledged write. These run in the suite's PostgreSQL pass (`SCIMLAB_TEST_DB`);
//! `.ci/run` sets `SCIMLAB_REQUIRE_POSTGRES` so that there they cannot be skipped.

use crate::common::{self, FULL, Options, TestApp, on_postgres};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

const LIMITED: &str = "id: limited\ntokens: [tok-limited]\nresource_types: { User: {} }\nrate_limits: { read: 10/hour }\n";

/// Two replicas over the same definitions and one fresh database; None without PostgreSQL.
async fn pair() -> Option<(TestApp, TestApp)> {
    if !on_postgres() {
        assert!(
            std::env::var("SCIMLAB_REQUIRE_POSTGRES").is_err(),
            "SCIMLAB_REQUIRE_POSTGRES is set but SCIMLAB_TEST_DB is not"
        );
        eprintln!("skipped: the replica tests need SCIMLAB_TEST_DB (PostgreSQL)");
        return None;
    }
    let defs = [("full.yaml", FULL), ("limited.yaml", LIMITED)];
    let a = TestApp::spawn(&defs).await;
    let db = a.store_location();
    let b = TestApp::spawn_with(
        &defs,
        Options {
            db: Some(db),
            ..Options::default()
        },
    )
    .await;
    Some((a, b))
}

fn user(name: &str) -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_through_one_replica_are_read_through_the_other_at_once() {
    let Some((a, b)) = pair().await else { return };
    let id = a.user("full", "alice").await;
    let (s, got, h) = b
        .send(Method::GET, "full", &format!("/Users/{id}"), None)
        .await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["userName"], "alice");
    assert_eq!(h["etag"], "W/\"1\"");
    // A change on B is what A reads next, version and all.
    let (s, _, _) = b
        .send(
            Method::PATCH,
            "full",
            &format!("/Users/{id}"),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Alice A."}]}),
            ),
        )
        .await;
    assert_eq!(s, 200);
    let (s, got, h) = a
        .send(Method::GET, "full", &format!("/Users/{id}"), None)
        .await;
    assert_eq!((s, got["displayName"].as_str()), (200, Some("Alice A.")));
    assert_eq!(h["etag"], "W/\"2\"");
    // Memberships made on A are the user's groups on B; filters and counts agree.
    let (s, g) = a
        .post(
            "full",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "eng", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    let (_, got) = b.get("full", &format!("/Users/{id}")).await;
    assert_eq!(got["groups"][0]["display"], "eng", "{got}");
    let (_, list) = b
        .get("full", "/Users?filter=displayName%20sw%20%22alice%22")
        .await;
    assert_eq!(list["totalResults"], 1, "{list}");
    // An If-Match with the version read on one replica is honoured on the other.
    let (s, _, _) = b
        .send(Method::DELETE, "full", &format!("/Users/{id}"), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(a.get("full", &format!("/Users/{id}")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_user_name_raced_over_two_replicas_is_created_once() {
    let Some((a, b)) = pair().await else { return };
    let apps = std::sync::Arc::new((a, b));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let apps = apps.clone();
            tokio::spawn(async move {
                let app = if i % 2 == 0 { &apps.0 } else { &apps.1 };
                app.post("full", "/Users", user("Racer")).await.0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        31,
        "{statuses:?}"
    );
    let (_, list) = apps
        .1
        .get("full", "/Users?filter=userName%20eq%20%22racer%22")
        .await;
    assert_eq!(list["totalResults"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_snapshots_and_the_request_log_are_shared() {
    let Some((a, b)) = pair().await else { return };
    let def = "id: ci-shared\ntokens: [tok-ci-shared]\nresource_types: { User: {} }\n";
    let (s, body) = a.admin(Method::POST, "/admin/servers", Some(def)).await;
    assert_eq!(s, 201, "{body}");
    // B has never heard of it: the first request finds it in the database.
    let id = b.user("ci-shared", "bob").await;
    assert_eq!(a.get("ci-shared", &format!("/Users/{id}")).await.0, 200);
    // Creating it again on the other replica is a conflict.
    let (s, _) = b.admin(Method::POST, "/admin/servers", Some(def)).await;
    assert_eq!(s, 409);
    // A snapshot taken on A is listed (and restorable) on B.
    let (s, _) = a
        .admin(
            Method::POST,
            "/admin/servers/ci-shared/snapshots",
            Some(r#"{"name": "one"}"#),
        )
        .await;
    assert_eq!(s, 201);
    let (_, snaps) = b
        .admin(Method::GET, "/admin/servers/ci-shared/snapshots", None)
        .await;
    assert_eq!(snaps["snapshots"][0]["name"], "one", "{snaps}");
    // B's requests show in A's request log (each replica writes its log within 100 ms).
    let started = Instant::now();
    loop {
        let (_, log) = a
            .admin(Method::GET, "/admin/servers/ci-shared/requests", None)
            .await;
        let seen = log["requests"].as_array().unwrap().iter().any(|r| {
            r["method"] == "POST"
                && r["status"] == 201
                && r["path"].as_str().unwrap_or("").ends_with("/Users")
        });
        if seen {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Deleted on A: B stops serving it within a few polls.
    let (s, _) = a
        .admin(Method::DELETE, "/admin/servers/ci-shared", None)
        .await;
    assert_eq!(s, 204);
    let started = Instant::now();
    while b.get("ci-shared", "/Users").await.0 != 404 {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_holds_for_the_endpoint_whichever_replica_answers() {
    let Some((a, b)) = pair().await else { return };
    // 10 reads an hour, spent alternately on both replicas: the 11th is refused on either.
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(app.get("limited", "/Users").await.0, 200, "read {i}");
    }
    for app in [&a, &b] {
        let (s, body, h) = app.send(Method::GET, "limited", "/Users", None).await;
        assert_eq!(s, 429, "{body}");
        assert!(h.contains_key("retry-after"));
    }
    // Both replicas report the same tokens left.
    let (_, limits) = b
        .admin(Method::GET, "/admin/servers/limited/rate-limits", None)
        .await;
    assert!(limits["tokens"][0][1].as_f64().unwrap() < 1.0, "{limits}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_load_loses_no_acknowledged_write() {
    let Some((a, _b)) = pair().await else { return };
    let db = a.store_location().to_url();
    // The victim: a real `scimlab serve` process on the same database.
    let port = common::free_port();
    let mut child = common::serve_command(port, &db, a.servers_dir())
        .arg("--no-watch")
        .arg("--profiles")
        .arg(a.profiles_dir())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}/scim-identifier/full/scim/v2");
    let client = reqwest::Client::new();
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    let up = common::answers_soon(&healthz, Some(&mut child)).await;
    assert!(up, "the replica did not start");
    // Eight writers create users until the connection breaks under them.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    let sent = client
                        .post(format!("{base}/Users"))
                        .bearer_auth("tok-full")
                        .header("content-type", "application/scim+json")
                        .body(user(&format!("w{w}-{i}")).to_string())
                        .send()
                        .await;
                    let Ok(r) = sent else { break };
                    if r.status() != 201 {
                        break;
                    }
                    let Ok(body) = r.json::<serde_json::Value>().await else {
                        break;
                    };
                    acknowledged.push(body["id"].as_str().unwrap().to_string());
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(
        acknowledged.len() > 20,
        "too few writes before the kill: {}",
        acknowledged.len()
    );
    // The surviving replica has every acknowledged user.
    for id in &acknowledged {
        assert_eq!(
            a.get("full", &format!("/Users/{id}")).await.0,
            200,
            "lost {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_database_migrates_into_postgres_with_what_clients_see() {
    if !on_postgres() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("before.db");
    let defs = [("full.yaml", FULL)];
    let old = TestApp::spawn_with(
        &defs,
        Options {
            db: Some(scimlab::store::Location::Sqlite(file.clone())),
            ..Options::default()
        },
    )
    .await;
    let alice = old.user("full", "alice").await;
    let bob = old.user("full", "bob").await;
    let (s, _, _) = old
        .send(
            Method::PATCH,
            "full",
            &format!("/Users/{bob}"),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]}),
            ),
        )
        .await;
    assert_eq!(s, 200);
    let (s, group) = old
        .post(
            "full",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "eng", "members": [{"value": bob}, {"value": alice}]}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = old
        .admin(
            Method::POST,
            "/admin/servers/full/snapshots",
            Some(r#"{"name": "s1"}"#),
        )
        .await;
    assert_eq!(s, 201);
    let before_list = old
        .get("full", "/Users?sortBy=userName&sortOrder=descending")
        .await
        .1;
    let before_group = old
        .get(
            "full",
            &format!("/Groups/{}", group["id"].as_str().unwrap()),
        )
        .await
        .1;
    // Locations name the serving address, which differs between the two servers.
    let old_addr = old.addr.to_string();
    let same = |before: &serde_json::Value, after: &serde_json::Value, new_addr: &str| {
        assert_eq!(
            before.to_string().replace(&old_addr, "HOST"),
            after.to_string().replace(new_addr, "HOST")
        );
    };
    drop(old);

    let base = std::env::var("SCIMLAB_TEST_DB").unwrap();
    let url = scimlab::store::pg::fresh_database(&base, "migrate").unwrap();
    let run = |to: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
            .arg("migrate")
            .arg("--from")
            .arg(&file)
            .args(["--to", to])
            .output()
            .unwrap()
    };
    let out = run(&url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("resources: 3") && stdout.contains("memberships: 2"),
        "{stdout}"
    );
    // A second copy into the same database is refused: it is not empty any more.
    let again = run(&url);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds 3 resources"));

    let new = TestApp::spawn_with(
        &defs,
        Options {
            db: Some(scimlab::store::Location::Postgres(url)),
            ..Options::default()
        },
    )
    .await;
    let (_, after_list) = new
        .get("full", "/Users?sortBy=userName&sortOrder=descending")
        .await;
    let new_addr = new.addr.to_string();
    same(&before_list, &after_list, &new_addr);
    let (_, after_group) = new
        .get(
            "full",
            &format!("/Groups/{}", group["id"].as_str().unwrap()),
        )
        .await;
    same(&before_group, &after_group, &new_addr);
    let (_, h) = {
        let (s, _, h) = new
            .send(Method::GET, "full", &format!("/Users/{bob}"), None)
            .await;
        (s, h)
    };
    assert_eq!(h["etag"], "W/\"2\"");
    let (_, snaps) = new
        .admin(Method::GET, "/admin/servers/full/snapshots", None)
        .await;
    assert_eq!(snaps["snapshots"][0]["name"], "s1");
    // New writes continue the sequence: a new user lists after the copied ones.
    new.user("full", "carol").await;
    let (_, list) = new.get("full", "/Users").await;
    let names: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ui_session_opened_on_one_replica_works_on_the_other() {
    let Some((a, b)) = pair().await else { return };
    a.user("full", "dora").await;
    // The page (and its CSRF token) came from A; the form goes to B, as a load balancer may
    // send it.
    let (cookie, csrf) = a.ui_session("/ui/servers/full").await;
    let forged = b
        .client
        .post(b.url("/ui/servers/full/reset"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let r = b
        .client
        .post(b.url("/ui/servers/full/reset"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    assert_eq!(a.get("full", "/Users").await.1["totalResults"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_and_rate_limits_set_on_one_replica_apply_on_the_other() {
    let Some((a, b)) = pair().await else { return };
    let faults = r#"[{"methods": ["GET"], "path": "/Users*", "error_rate": 1.0, "status": 503}]"#;
    let (s, body) = a
        .admin(Method::PUT, "/admin/servers/full/faults", Some(faults))
        .await;
    assert_eq!(s, 200, "{body}");
    let started = Instant::now();
    while b.get("full", "/Users").await.0 != 503 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B never took the fault"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, on_b) = b
        .admin(Method::GET, "/admin/servers/full/faults", None)
        .await;
    assert_eq!(on_b["admin"][0]["status"], 503, "{on_b}");
    let (s, _) = a
        .admin(Method::DELETE, "/admin/servers/full/faults", None)
        .await;
    assert_eq!(s, 204);
    let started = Instant::now();
    while b.get("full", "/Users").await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B kept the fault"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A rate-limit override set on B holds on A, and its tokens are the shared ones.
    let (s, body) = b
        .admin(
            Method::PUT,
            "/admin/servers/full/rate-limits",
            Some(r#"{"read": "3/hour"}"#),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let started = Instant::now();
    loop {
        let (_, limits) = a
            .admin(Method::GET, "/admin/servers/full/rate-limits", None)
            .await;
        if limits["in_force"]["read"].is_object() || limits["in_force"]["read"].is_string() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{limits}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut statuses = Vec::new();
    for i in 0..4 {
        let app = if i % 2 == 0 { &a } else { &b };
        statuses.push(app.get("full", "/Users").await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}
