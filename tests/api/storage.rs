//! Storage guarantees: one winner among concurrent creates; acknowledged writes survive kill -9.
use crate::common;
use common::*;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_user_name_yield_exactly_one_201() {
    let app = std::sync::Arc::new(TestApp::default().await);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.post("full", "/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Race"})).await.0
        }));
    }
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
    assert_eq!(app.names("full", "userName pr").await, ["Race"]);
}

fn start(dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(dir.join("kill.db"))
        .arg("--servers")
        .arg(dir.join("servers.d"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, port: u16) {
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("server did not start");
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("servers.d")).unwrap();
    std::fs::write(dir.path().join("servers.d/full.yaml"), common::FULL).unwrap();
    let client = common::http().build().unwrap();
    let port = common::free_port();
    let mut child = start(dir.path(), port);
    wait_ready(&client, port).await;
    let base = format!("http://127.0.0.1:{port}/scim-identifier/full/scim/v2");
    let mut ids = Vec::new();
    for i in 0..40 {
        let r = client
            .post(format!("{base}/Users"))
            .bearer_auth("tok-full")
            .header("content-type", "application/scim+json")
            .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("durable{i}")}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    child.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
    child.wait().unwrap();
    let port = common::free_port();
    let mut child = start(dir.path(), port);
    wait_ready(&client, port).await;
    let base = format!("http://127.0.0.1:{port}/scim-identifier/full/scim/v2");
    for id in &ids {
        let r = client
            .get(format!("{base}/Users/{id}"))
            .bearer_auth("tok-full")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "user {id} lost after kill -9");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn no_watch_ignores_edits_until_sighup() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("servers.d")).unwrap();
    let def = "id: hup\ntokens: [tok-hup]\nresource_types:\n  User: {}\n";
    std::fs::write(dir.path().join("servers.d/hup.yaml"), def).unwrap();
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args([
            "serve",
            "--no-watch",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--db",
        ])
        .arg(dir.path().join("hup.db"))
        .arg("--servers")
        .arg(dir.path().join("servers.d"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = common::http().build().unwrap();
    wait_ready(&client, port).await;
    let groups = || {
        client
            .get(format!(
                "http://127.0.0.1:{port}/scim-identifier/hup/scim/v2/Groups"
            ))
            .bearer_auth("tok-hup")
            .send()
    };
    assert_eq!(groups().await.unwrap().status(), 404);
    std::fs::write(
        dir.path().join("servers.d/hup.yaml"),
        format!("{def}  Group: {{}}\n"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        groups().await.unwrap().status(),
        404,
        "--no-watch must not reload on edits"
    );
    let ok = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    eventually("SIGHUP to reload", || async {
        groups().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Point reads (GET by id, /healthz) run on async workers; they must not wait behind slow
/// searches, which hold their own readers. Every duration is compared with the scans' own
/// latency under the same load, so a busy machine slows both sides alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_reads_stay_fast_while_slow_scans_run() {
    let def = "id: big\ntokens: [tok-big]\nresource_types: { User: {}, Group: {} }\nseed: { users: 12000, groups: 0, seed: 7 }\n";
    let app = TestApp::spawn(&[("big.yaml", def)]).await;
    let (_, page) = app.get("big", "/Users?count=1").await;
    let id = page["Resources"][0]["id"].as_str().unwrap().to_string();
    let scan = "/Users?filter=emails%20co%20%22no-such-mail%22&count=1";
    let started = std::time::Instant::now();
    let (s, b) = app.get("big", scan).await;
    assert_eq!(s, 200, "{b}");
    let one_scan = started.elapsed();
    // Six clients scanning without pause: more than the readers searches may use.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut scanners = Vec::new();
    for _ in 0..6 {
        let (client, url, stop) = (
            app.client.clone(),
            format!("{}{scan}", app.base("big")),
            stop.clone(),
        );
        scanners.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = std::time::Instant::now();
                client
                    .get(&url)
                    .bearer_auth("tok-big")
                    .send()
                    .await
                    .unwrap();
                took.push(t.elapsed());
            }
            took
        }));
    }
    tokio::time::sleep(one_scan).await;
    let mut point = Vec::new();
    let mut health = Vec::new();
    for _ in 0..20 {
        let t = std::time::Instant::now();
        let (s, _) = app.get("big", &format!("/Users/{id}")).await;
        assert_eq!(s, 200);
        point.push(t.elapsed());
        let t = std::time::Instant::now();
        app.health().await;
        health.push(t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut scans = Vec::new();
    for s in scanners {
        scans.extend(s.await.unwrap());
    }
    point.sort();
    health.sort();
    scans.sort();
    let (p, h) = (point[point.len() / 2], health[health.len() / 2]);
    let loaded_scan = scans[scans.len() / 2];
    eprintln!(
        "one scan {one_scan:?}; while {} scans ran (median {loaded_scan:?}): GET by id median {p:?}, /healthz median {h:?}",
        scans.len()
    );
    assert!(
        scans.len() >= 6,
        "the scans ran meanwhile ({})",
        scans.len()
    );
    // Waiting behind a scan would cost about half a loaded scan at the median.
    assert!(
        p < loaded_scan / 4 && h < loaded_scan / 4,
        "GET {p:?}, healthz {h:?}, a scan under the same load {loaded_scan:?}"
    );
}
