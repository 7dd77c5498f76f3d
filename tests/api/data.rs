//! Seed data and the data commands: determinism (same seed → byte-identical export), export →
//! import round trips, seeding on start, every shipped profile seeds valid data, and the CLI.

use crate::common;

use common::TestApp;
use scimlab::data;
use scimlab::model::{ServerModel, Sources};
use scimlab::seed::Request;
use scimlab::store::Store;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn shipped_profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

/// A server applying `profiles` (shipped packs), compiled from a temporary directory.
fn server(profiles: &[&str]) -> Arc<ServerModel> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        format!(
            "id: s\ntokens: [t]\nprofiles: [{}]\nresource_types:\n  User: {{}}\n  Group: {{}}\n",
            profiles.join(", ")
        ),
    )
    .unwrap();
    let model = Sources::new(dir.path(), shipped_profiles())
        .compile()
        .unwrap_or_else(|e| panic!("{profiles:?}: {e:?}"));
    model.server("s").unwrap().clone()
}

fn seeded_export(server: &ServerModel, req: &Request) -> String {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    data::Workspace::seed_store(&store, server, req).unwrap();
    data::export(&store, &server.id).unwrap()
}

#[test]
fn same_seed_gives_byte_identical_exports_and_another_seed_does_not() {
    let s = server(&["it", "security"]);
    let req = Request {
        users: 300,
        groups: 12,
        seed: 42,
    };
    let a = seeded_export(&s, &req);
    let b = seeded_export(&s, &req);
    assert_eq!(a, b, "same seed, same bytes");
    let c = seeded_export(&s, &Request { seed: 43, ..req });
    assert_ne!(a, c);
    // It is realistic: managers, several email domains, licenses on everyone, groups with members.
    let export: serde_json::Value = serde_json::from_str(&a).unwrap();
    let users: Vec<&serde_json::Value> = export["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resourceType"] == "User")
        .collect();
    assert_eq!(users.len(), 300);
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let with_manager = users
        .iter()
        .filter(|u| u["doc"][ent]["manager"]["value"].is_string())
        .count();
    assert!(with_manager > 200, "{with_manager} users have a manager");
    let domains: std::collections::BTreeSet<&str> = users
        .iter()
        .filter_map(|u| u["doc"]["userName"].as_str()?.split('@').nth(1))
        .collect();
    assert!(domains.len() >= 2, "{domains:?}");
    let licensed = users
        .iter()
        .filter(|u| {
            u["doc"]["entitlements"]
                .as_array()
                .is_some_and(|e| e.iter().filter(|x| x["type"] == "License").count() == 1)
        })
        .count();
    assert_eq!(
        licensed, 300,
        "License is required and single-valued in profile it"
    );
    let inactive = users.iter().filter(|u| u["doc"]["active"] == false).count();
    assert!((3..60).contains(&inactive), "{inactive} inactive of 300");
    let memberships = export["memberships"].as_array().unwrap().len();
    // 12 groups: 12 department groups (each with all its users) out of 13 departments.
    assert!(
        memberships >= 250,
        "department groups hold their users: {memberships}"
    );
}

#[test]
fn export_import_round_trips_exactly_and_import_refuses_to_merge() {
    let s = server(&["hr"]);
    let dir = tempfile::tempdir().unwrap();
    let one = Store::open(&dir.path().join("one.db")).unwrap();
    data::Workspace::seed_store(
        &one,
        &s,
        &Request {
            users: 120,
            groups: 8,
            seed: 5,
        },
    )
    .unwrap();
    let exported = data::export(&one, "s").unwrap();
    let two = Store::open(&dir.path().join("two.db")).unwrap();
    two.apply_indexes(&s, None).unwrap();
    let n = data::import(&two, &s, &exported, false).unwrap();
    assert!(n > 120);
    assert_eq!(data::export(&two, "s").unwrap(), exported);
    // Not into a server that holds data, unless asked to replace it.
    let err = data::import(&two, &s, &exported, false).unwrap_err();
    assert!(err.to_string().contains("--replace"), "{err}");
    data::import(&two, &s, &exported, true).unwrap();
    assert_eq!(data::export(&two, "s").unwrap(), exported);
    // Garbage is refused without touching the data.
    assert!(data::import(&two, &s, "{\"nope\": 1}", true).is_err());
    assert_eq!(data::export(&two, "s").unwrap(), exported);
    assert_eq!(data::reset(&two, "s").unwrap(), n);
    assert!(
        data::export(&two, "s")
            .unwrap()
            .contains("\"resources\": []")
    );
}

#[test]
fn every_shipped_profile_compiles_alone_and_seeds_valid_data() {
    let packs = scimlab::definition::yaml_files(&shipped_profiles());
    assert_eq!(packs.len(), 13, "the 13 application contexts");
    for pack in packs {
        let id = pack.file_stem().unwrap().to_string_lossy().to_string();
        let s = server(&[&id]);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let report = data::Workspace::seed_store(
            &store,
            &s,
            &Request {
                users: 60,
                groups: 6,
                seed: 1,
            },
        )
        .unwrap_or_else(|e| panic!("profile {id}: {e}"));
        assert_eq!(report.users, 60, "profile {id}");
        // Every seeded user is served: inside the view, valid under the profile's rules.
        let rt = s.by_name("User").unwrap();
        let ctx = scimlab::engine::Ctx {
            store: &store,
            server: &s,
            rt,
            base: "http://x",
        };
        let page = scimlab::engine::list(
            &ctx,
            &scimlab::engine::ListQuery::default(),
            &scimlab::engine::Projection::default(),
        )
        .unwrap()
        .to_value();
        assert_eq!(
            page["totalResults"], 60,
            "profile {id}: all seeded users visible"
        );
        for u in page["Resources"].as_array().unwrap() {
            scimlab::engine::normalize(&s, rt, u, scimlab::engine::Mode::Create)
                .unwrap_or_else(|e| panic!("profile {id}: seeded user invalid: {}", e.detail()));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_fills_an_empty_server_on_start_only() {
    let app = TestApp::shipped().await;
    let (s, b) = shipped_get(&app, "hr-portal", "dev-token-hr", "/Users?count=1").await;
    assert_eq!(s, 200);
    assert_eq!(b["totalResults"], 200);
    let (_, groups) = shipped_get(&app, "hr-portal", "dev-token-hr", "/Groups?count=0").await;
    assert_eq!(groups["totalResults"], 16);
    // sales-crm only holds go-to-market staff.
    let (_, crm) = shipped_get(
        &app,
        "sales-crm",
        "dev-token-sales",
        "/Users?filter=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department%20eq%20%22Engineering%22",
    )
    .await;
    assert_eq!(crm["totalResults"], 0);
    // Preparing again (a restart or reload) does not seed a second time.
    let state = app.state.as_ref().unwrap();
    let model = state.model.load_full();
    data::prepare(&state.store, model.server("hr-portal").unwrap(), None).unwrap();
    let (_, b) = shipped_get(&app, "hr-portal", "dev-token-hr", "/Users?count=0").await;
    assert_eq!(b["totalResults"], 200);
}

/// GET with a shipped server's own token.
async fn shipped_get(
    app: &TestApp,
    server: &str,
    token: &str,
    path: &str,
) -> (u16, serde_json::Value) {
    let r = app
        .client
        .get(format!("{}{path}", app.base(server)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (s, b, _) = common::split(r).await;
    (s, b)
}

fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .args(args)
        .arg("--servers")
        .arg(dir.join("servers.d"))
        .arg("--profiles")
        .arg(shipped_profiles())
        .arg("--db")
        .arg(dir.join("cli.db"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn data_commands_servers_seed_export_reset_import() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("servers.d")).unwrap();
    std::fs::write(
        dir.path().join("servers.d/crm.yaml"),
        "id: crm\ntokens: [t]\nprofiles: [sales]\nresource_types:\n  User: {}\n  Group: {}\n",
    )
    .unwrap();
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "seed", "crm", "--users", "40", "--groups", "4", "--seed", "9",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("seeded 40 user(s), 4 group(s)"), "{out}");
    let (ok, out, _) = cli(dir.path(), &["servers"]);
    assert!(ok);
    assert!(
        out.contains("crm") && out.contains("User=40") && out.contains("Group=4"),
        "{out}"
    );
    let (ok, exported, _) = cli(dir.path(), &["export", "crm"]);
    assert!(ok);
    let file = dir.path().join("crm.json");
    std::fs::write(&file, &exported).unwrap();
    let (ok, _, err) = cli(dir.path(), &["import", "crm", file.to_str().unwrap()]);
    assert!(!ok && err.contains("--replace"), "{err}");
    let (ok, out, _) = cli(dir.path(), &["reset", "crm"]);
    assert!(ok && out.contains("deleted"), "{out}");
    let (ok, out, _) = cli(dir.path(), &["servers"]);
    assert!(ok && out.contains("empty"), "{out}");
    let (ok, _, err) = cli(dir.path(), &["import", "crm", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (_, again, _) = cli(dir.path(), &["export", "crm"]);
    assert_eq!(again, exported);
    let (ok, _, err) = cli(dir.path(), &["export", "nope"]);
    assert!(!ok && err.contains("no server \"nope\""), "{err}");
}
