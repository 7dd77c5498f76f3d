//! Lifecycle policies, each both ways: hard or soft delete (a later create revives), 409 or
//! the existing resource on a colliding create, refused or skipped unknown group members,
//! `""` as a value or as a clear; the inspector names a policy when it changed the answer.

use crate::common::{TestApp, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

const RFC: &str = "id: rfc\ntokens: [tok-rfc]\nresource_types: { User: {}, Group: {} }\nvalidation: { check_references: [members] }\n";
const LENIENT: &str = r#"
id: provider
tokens: [tok-provider]
resource_types: { User: {}, Group: {} }
validation: { check_references: [members] }
lifecycle:
  delete: soft
  create_conflict: return_existing
  unknown_members: skip
  empty_string: clears
"#;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

async fn app() -> TestApp {
    TestApp::spawn(&[("rfc.yaml", RFC), ("provider.yaml", LENIENT)]).await
}

fn user(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name, "title": "Engineer", "active": true})
}

/// The policies the inspector noted on the last request of `server` to `method`.
async fn policies(app: &TestApp, server: &str, method: &str) -> Vec<String> {
    for _ in 0..250 {
        let (_, log) = app
            .admin(
                Method::GET,
                &format!("/admin/servers/{server}/requests?method={method}"),
                None,
            )
            .await;
        if let Some(last) = log["requests"].as_array().and_then(|r| r.first()) {
            return (last["policies"].as_array().into_iter().flatten())
                .map(|p| p.as_str().unwrap().to_string())
                .collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no {method} request recorded on {server}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hard_and_soft_deletes() {
    let app = app().await;
    // Hard: gone; the same userName is a new resource.
    let (_, a) = app.post("rfc", "/Users", user("ann")).await;
    let id = a["id"].as_str().unwrap();
    assert_eq!(app.delete("rfc", &format!("/Users/{id}")).await, 204);
    assert_eq!(app.get("rfc", &format!("/Users/{id}")).await.0, 404);
    let (s, again) = app.post("rfc", "/Users", user("ann")).await;
    assert_eq!(s, 201);
    assert_ne!(again["id"], a["id"]);
    assert!(policies(&app, "rfc", "DELETE").await.is_empty());

    // Soft: hidden from reads, lists and filters; the group loses the member; a create with
    // the same userName (any case) brings the same resource back, active again.
    let (_, b) = app.post("provider", "/Users", user("bob")).await;
    let id = b["id"].as_str().unwrap().to_string();
    let (_, g) = app
        .post(
            "provider",
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "team", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!(app.delete("provider", &format!("/Users/{id}")).await, 204);
    assert_eq!(policies(&app, "provider", "DELETE").await, ["delete=soft"]);
    assert_eq!(app.get("provider", &format!("/Users/{id}")).await.0, 404);
    assert_eq!(app.delete("provider", &format!("/Users/{id}")).await, 404);
    let (_, list) = app
        .get("provider", "/Users?filter=userName%20eq%20%22bob%22")
        .await;
    assert_eq!(list["totalResults"], 0, "{list}");
    let (_, all) = app.get("provider", "/Users").await;
    assert_eq!(all["totalResults"], 0, "{all}");
    let (_, group) = app
        .get(
            "provider",
            &format!("/Groups/{}", g["id"].as_str().unwrap()),
        )
        .await;
    assert!(group.get("members").is_none(), "{group}");
    let (s, back) = app
        .post(
            "provider",
            "/Users",
            json!({"schemas": [USER], "userName": "BOB", "displayName": "Bob"}),
        )
        .await;
    assert_eq!(s, 201, "{back}");
    assert_eq!(back["id"], json!(id), "revived with its id");
    assert_eq!(back["meta"]["created"], b["meta"]["created"]);
    assert_eq!(back["displayName"], "Bob");
    assert!(
        back.get("title").is_none(),
        "the new document replaces the old: {back}"
    );
    assert_eq!(
        policies(&app, "provider", "POST").await,
        ["delete=soft (revived)"]
    );
    assert_eq!(app.get("provider", &format!("/Users/{id}")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn colliding_creates_are_409_or_answered_with_the_existing_resource() {
    let app = app().await;
    app.post("rfc", "/Users", user("cat")).await;
    let (s, e) = app.post("rfc", "/Users", user("cat")).await;
    assert_error(s, &e, 409, Some("uniqueness"));

    let (_, first) = app.post("provider", "/Users", user("cat")).await;
    let (s, same) = app.post("provider", "/Users", user("CAT")).await;
    assert_eq!(s, 200, "{same}");
    assert_eq!(same["id"], first["id"]);
    assert_eq!(same["userName"], "cat", "the existing resource, unchanged");
    assert_eq!(
        policies(&app, "provider", "POST").await,
        ["create_conflict=return_existing"]
    );
    let (_, all) = app.get("provider", "/Users").await;
    assert_eq!(all["totalResults"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_members_refuse_the_patch_or_are_skipped() {
    let app = app().await;
    for (server, refused) in [("rfc", true), ("provider", false)] {
        let (_, u) = app.post(server, "/Users", user("dan")).await;
        let (_, g) = app
            .post(
                server,
                "/Groups",
                json!({"schemas": [GROUP], "displayName": "g"}),
            )
            .await;
        let gid = g["id"].as_str().unwrap().to_string();
        let ops = json!([{"op": "add", "path": "members",
                          "value": [{"value": u["id"]}, {"value": "no-such-id"}]}]);
        let (s, b) = app.patch(server, &format!("/Groups/{gid}"), ops).await;
        let (_, group) = app.get(server, &format!("/Groups/{gid}")).await;
        if refused {
            assert_error(s, &b, 400, Some("invalidValue"));
            assert!(group.get("members").is_none(), "nothing applied: {group}");
        } else {
            assert_eq!(s, 200, "{b}");
            let members = group["members"].as_array().unwrap();
            assert_eq!(members.len(), 1, "{group}");
            assert_eq!(members[0]["value"], u["id"]);
            assert_eq!(
                policies(&app, server, "PATCH").await,
                ["unknown_members=skip"]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_strings_are_values_or_clear() {
    let app = app().await;
    for (server, clears) in [("rfc", false), ("provider", true)] {
        let (_, u) = app.post(server, "/Users", user("eve")).await;
        let id = u["id"].as_str().unwrap();
        let (s, b) = app
            .patch(
                server,
                &format!("/Users/{id}"),
                json!([{"op": "replace", "path": "title", "value": ""}]),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let mut put = user("eve");
        put["nickName"] = json!("");
        let (s, p) = app.put(server, &format!("/Users/{id}"), put).await;
        assert_eq!(s, 200, "{p}");
        if clears {
            assert!(b.get("title").is_none(), "{b}");
            assert!(p.get("nickName").is_none(), "{p}");
            assert_eq!(policies(&app, server, "PUT").await, ["empty_string=clears"]);
        } else {
            assert_eq!(b["title"], "", "{b}");
            assert_eq!(p["nickName"], "", "{p}");
            assert!(policies(&app, server, "PUT").await.is_empty());
        }
    }
}

/// Exports, imports (and so snapshots) carry soft-deleted resources along: after a round
/// trip, a create still revives them.
#[tokio::test(flavor = "multi_thread")]
async fn soft_deleted_resources_survive_export_and_import() {
    let app = app().await;
    let (_, u) = app.post("provider", "/Users", user("fay")).await;
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(app.delete("provider", &format!("/Users/{id}")).await, 204);
    let text = scimlab::data::export(app.store(), "provider").unwrap();
    assert!(text.contains("User#deleted"), "{text}");
    let model = app.state.as_ref().unwrap().model.load_full();
    let server = model.server("provider").unwrap();
    scimlab::data::import(app.store(), server, &text, true).unwrap();
    assert_eq!(app.get("provider", &format!("/Users/{id}")).await.0, 404);
    let (s, back) = app.post("provider", "/Users", user("fay")).await;
    assert_eq!(s, 201);
    assert_eq!(back["id"], json!(id));
}
