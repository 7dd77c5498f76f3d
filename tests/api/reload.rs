//! Hot reload under load: add, change, break, fix and remove definitions while a client keeps
//! making requests; no request fails because of a reload and every change becomes visible.
use crate::common;
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const BASE_DEF: &str =
    "id: live\ntokens: [tok-live]\nresource_types:\n  User: {}\n  Entitlement: {}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn definitions_change_live_and_a_broken_file_never_takes_a_server_down() {
    let app = Arc::new(TestApp::spawn_watched(&[("live.yaml", BASE_DEF)]).await);
    let user = app.user("live", "steady").await;

    // A client that keeps reading the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (app, stop, ok, failed) = (app.clone(), stop.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (s, _) = app.get("live", &format!("/Users/{user}")).await;
                let counter = if s == 200 { &ok } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // Add a server.
    app.write_def(
        "second.yaml",
        "id: second\ntokens: [tok-second]\nresource_types:\n  User: {}\n",
    );
    eventually("server added", || async {
        app.get("second", "/ResourceTypes").await.0 == 200
    })
    .await;

    // Change one: drop Entitlement, add Group and a custom attribute.
    app.write_def("live.yaml", "id: live\ntokens: [tok-live]\nresource_types:\n  User:\n    attributes:\n      badge: { type: string }\n  Group: {}\n");
    eventually("Group served", || async {
        app.get("live", "/Groups").await.0 == 200
    })
    .await;
    let (s, _) = app.get("live", "/Entitlements").await;
    assert_eq!(s, 404, "removed resource type is unmounted");
    let (_, schema) = app
        .get(
            "live",
            "/Schemas/urn:scimlab:schemas:extension:live:2.0:User",
        )
        .await;
    assert_eq!(schema["attributes"][0]["name"], "badge");
    let health = app.health().await;
    let messages = health["last_reload"]["messages"].to_string();
    assert!(
        messages.contains("resource type Group added")
            && messages.contains("resource type Entitlement removed"),
        "{health}"
    );

    // Break it: the last good definition keeps serving and the error is located.
    app.write_def(
        "live.yaml",
        "id: live\ntokens: [tok-live]\nresource_types:\n  User: {}\n  Group:\n    endpoint: 42x\n",
    );
    eventually("reload failure reported", || async {
        app.health().await["last_reload"]["ok"] == false
    })
    .await;
    let health = app.health().await;
    assert_eq!(health["status"], "degraded");
    let live = health["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("live.yaml"))
        .unwrap()
        .clone();
    assert_eq!(live["ok"], false);
    assert!(
        live["errors"][0]
            .as_str()
            .unwrap()
            .contains("live.yaml:6:5: endpoint \"42x\""),
        "{live}"
    );
    let second = health["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("second.yaml"))
        .unwrap()
        .clone();
    assert_eq!(second["ok"], true);
    assert_eq!(
        app.get("live", "/Groups").await.0,
        200,
        "old model still serves"
    );

    // Fix it.
    app.write_def("live.yaml", BASE_DEF);
    eventually("recovered", || async {
        app.health().await["last_reload"]["ok"] == true
    })
    .await;
    eventually("Entitlements back", || async {
        app.get("live", "/Entitlements").await.0 == 200
    })
    .await;

    // Remove a file: its server is unmounted.
    std::fs::remove_file(app.servers_dir().join("second.yaml")).unwrap();
    eventually("server removed", || async {
        app.get("second", "/ResourceTypes").await.0 == 404
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    client.await.unwrap();
    assert!(ok.load(Ordering::Relaxed) > 10, "the client loop ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "a request failed during a reload"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_uniqueness_that_existing_data_violates_is_a_reload_error() {
    let def = |uniq: &str| {
        format!(
            "id: u\ntokens: [tok-u]\nresource_types:\n  User:\n    attributes:\n      badge: {{ type: string{uniq} }}\n"
        )
    };
    let app = TestApp::spawn_watched(&[("u.yaml", &def(""))]).await;
    let mk = |n: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": n, "urn:scimlab:schemas:extension:u:2.0:User": {"badge": "B-1"}});
    let (_, a) = app.post("u", "/Users", mk("a")).await;
    let (_, b) = app.post("u", "/Users", mk("b")).await;
    app.write_def("u.yaml", &def(", uniqueness: server"));
    eventually("reload refused", || async {
        app.health().await["last_reload"]["ok"] == false
    })
    .await;
    let msg = app.health().await["last_reload"]["messages"].to_string();
    for id in [&a["id"], &b["id"]] {
        assert!(
            msg.contains(id.as_str().unwrap()),
            "conflicting ids named: {msg}"
        );
    }
    // The old definition still serves: duplicates are still accepted.
    assert_eq!(app.post("u", "/Users", mk("c")).await.0, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_attribute_keeps_its_data_and_comes_back() {
    let with = "id: k\ntokens: [tok-k]\nresource_types:\n  User:\n    attributes:\n      badge: { type: string }\n      level: { type: integer }\n";
    let without = "id: k\ntokens: [tok-k]\nresource_types:\n  User:\n    attributes:\n      level: { type: integer }\n";
    let ext = "urn:scimlab:schemas:extension:k:2.0:User";
    let app = TestApp::spawn_watched(&[("k.yaml", with)]).await;
    let (_, u) = app.post("k", "/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "kept", ext: {"badge": "B-7", "level": 2}})).await;
    let path = format!("/Users/{}", u["id"].as_str().unwrap());
    app.write_def("k.yaml", without);
    eventually("badge no longer served", || async {
        app.get("k", &path).await.1[ext].get("badge").is_none()
    })
    .await;
    // Writes under the new definition do not lose the stored value.
    let (s, b) = app
        .patch(
            "k",
            &path,
            json!([{"op": "replace", "path": "displayName", "value": "K"}]),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let mut doc: Value = b.clone();
    doc.as_object_mut().unwrap().remove("meta");
    assert_eq!(app.put("k", &path, doc).await.0, 200);
    app.write_def("k.yaml", with);
    eventually("badge back", || async {
        app.get("k", &path).await.1[ext]["badge"] == "B-7"
    })
    .await;
}

/// Admin creates and deletes racing with reloads: one writer, so no change is lost. Every
/// created server is served, every deleted one is gone, and no deleted one comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admin_changes_and_reloads_lose_nothing() {
    let app = TestApp::spawn_watched(&[("full.yaml", common::FULL)]).await;
    let state = app.state.clone().unwrap();
    let sources = scimlab::model::Sources::new(app.servers_dir(), app.profiles_dir());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Reloads fire all along: direct ones, and the watcher's after file writes.
    let reloader = {
        let (state, sources, stop) = (state.clone(), sources.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                scimlab::reload::reload(&state.reloader(), &sources).unwrap();
                n += 1;
            }
            n
        })
    };
    let toucher = {
        let (dir, stop) = (app.servers_dir(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                // As editors save: a temporary file renamed over the definition.
                let tmp = dir.with_file_name(".extra.tmp");
                std::fs::write(&tmp, format!("id: extra\ndescription: touch {i}\ntokens: [tok-extra]\nresource_types: {{ User: {{}} }}\n")).unwrap();
                std::fs::rename(&tmp, dir.join("extra.yaml")).unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(15)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/admin/servers"),
            app.admin_token(),
        );
        tasks.push(tokio::spawn(async move {
            let id = format!("ci-{i}");
            let yaml = format!("id: {id}\ntokens: [tok-{id}]\nresource_types:\n  User: {{}}\n");
            let r = client
                .post(&url)
                .bearer_auth(&token)
                .body(yaml)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            if i % 2 == 0 {
                let r = client
                    .delete(format!("{url}/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reloads = reloader.await.unwrap();
    toucher.await.unwrap();
    assert!(reloads >= 1, "reloads ran beside the changes ({reloads})");
    // Let the watcher's last reload finish, then check twice (a late reload changes nothing).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..2 {
        for i in 0..20 {
            let id = format!("ci-{i}");
            let (s, _) = app.get(&id, "/ServiceProviderConfig").await;
            assert_eq!(s, if i % 2 == 0 { 404 } else { 200 }, "{id}");
        }
        scimlab::reload::reload(&state.reloader(), &sources).unwrap();
    }
}
