//! Group membership, derived User.groups, and opt-in reference checks.
use crate::common;
use common::*;
use serde_json::json;

const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

#[tokio::test(flavor = "multi_thread")]
async fn members_and_derived_user_groups() {
    let app = TestApp::default().await;
    let alice = app.user("full", "alice").await;
    let bob = app.user("full", "bob").await;
    let (s, g) = app.post("full", "/Groups", json!({
        "schemas": [GROUP], "displayName": "Admins",
        "members": [{"value": alice, "display": "Alice", "type": "User"}, {"value": bob, "$ref": "ignored"}]
    })).await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(
        g["members"][0]["$ref"],
        format!("{}/Users/{alice}", app.base("full"))
    );
    assert_eq!(g["members"][0]["display"], "Alice");
    assert_eq!(
        g["members"][1]["type"], "User",
        "type falls back to the member's resource type"
    );

    let (_, u) = app.get("full", &format!("/Users/{alice}")).await;
    assert_eq!(
        u["groups"],
        json!([{"value": gid, "$ref": format!("{}/Groups/{gid}", app.base("full")), "display": "Admins", "type": "direct"}])
    );

    // Nested group membership and filters over members and groups.
    let (_, outer) = app.post("full", "/Groups", json!({"schemas": [GROUP], "displayName": "All", "members": [{"value": gid, "type": "Group"}]})).await;
    let (_, b) = app
        .get(
            "full",
            &format!(
                "/Groups?filter={}",
                urlencode(&format!("members[value eq \"{gid}\"]"))
            ),
        )
        .await;
    assert_eq!(b["totalResults"], 1);
    assert_eq!(b["Resources"][0]["id"], outer["id"]);
    assert_eq!(
        app.names("full", &format!("groups.value eq \"{gid}\""))
            .await,
        ["alice", "bob"]
    );
    assert_eq!(
        app.names("full", "groups.display eq \"admins\"").await,
        ["alice", "bob"]
    );

    // PATCH: remove one member by value filter, add one, rename.
    let (s, g2) = app.patch("full", &format!("/Groups/{gid}"), json!([
        {"op": "remove", "path": format!("members[value eq \"{bob}\"]")},
        {"op": "add", "path": "members", "value": [{"value": alice}, {"value": "dangling-id"}]},
        {"op": "replace", "value": {"displayName": "Admins 2"}}
    ])).await;
    assert_eq!(s, 200, "{g2}");
    let values: Vec<&str> = g2["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, [alice.as_str(), "dangling-id"]);
    assert_eq!(g2["displayName"], "Admins 2");
    let (_, u) = app.get("full", &format!("/Users/{bob}")).await;
    assert!(u.get("groups").is_none(), "{u}");

    // excludedAttributes=members leaves members out; members in a User write are ignored.
    let (_, b) = app
        .get("full", &format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    assert!(b.get("members").is_none());
    // Removing every member; deleting a user removes its memberships.
    app.delete("full", &format!("/Users/{alice}")).await;
    let (_, b) = app.get("full", &format!("/Groups/{gid}")).await;
    let values: Vec<&str> = b["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["dangling-id"]);
    let (s, b) = app
        .patch(
            "full",
            &format!("/Groups/{gid}"),
            json!([{"op": "remove", "path": "members"}]),
        )
        .await;
    assert_eq!(s, 200);
    assert!(b.get("members").is_none());
    // Group PUT replaces the member list.
    let (_, b) = app
        .put(
            "full",
            &format!("/Groups/{gid}"),
            json!({"schemas": [GROUP], "displayName": "X", "members": [{"value": bob}]}),
        )
        .await;
    assert_eq!(b["members"][0]["value"], bob.as_str());
    let (s, b) = app
        .post(
            "full",
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "bad", "members": [{"display": "no value"}]}),
        )
        .await;
    assert_error(s, &b, 400, Some("invalidValue"));
}

const CHECKED: &str = r#"
id: okta
tokens: [tok-okta]
resource_types:
  User:
    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]
  Group: {}
  Entitlement: {}
  License: { schema: "urn:okta:scim:schemas:core:1.0:Entitlement", endpoint: /Licenses }
  Role: {}
validation:
  check_references: [members, entitlements, roles, manager]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn checked_references_must_resolve_on_the_same_server() {
    let app = TestApp::spawn(&[("okta.yaml", CHECKED), ("other.yaml", common::OTHER)]).await;
    let ent = |t: &str| json!({"schemas": ["urn:okta:scim:schemas:core:1.0:Entitlement"], "displayName": "E", "type": t});
    let (s, lic) = app.post("okta", "/Licenses", ent("License")).await;
    assert_eq!(s, 201, "{lic}");
    let lic = lic["id"].as_str().unwrap();
    let (_, role) = app
        .post(
            "okta",
            "/Roles",
            json!({"schemas": ["urn:okta:scim:schemas:core:1.0:Role"], "displayName": "Admin"}),
        )
        .await;
    let role = role["id"].as_str().unwrap();
    let user = |ents: serde_json::Value, roles: serde_json::Value| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("u{}", uuid()), "entitlements": ents, "roles": roles
        })
    };
    let (s, u) = app
        .post(
            "okta",
            "/Users",
            user(
                json!([{"value": lic, "type": "License"}]),
                json!([{"value": role}]),
            ),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let uid = u["id"].as_str().unwrap();
    for (ents, roles) in [
        (json!([{"value": "nope", "type": "License"}]), json!([])),
        (json!([{"value": lic, "type": "Entitlement"}]), json!([])),
        (json!([]), json!([{"value": lic}])),
    ] {
        let (s, b) = app.post("okta", "/Users", user(ents, roles)).await;
        assert_error(s, &b, 400, Some("invalidValue"));
    }
    let (s, b) = app.post("okta", "/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g", "members": [{"value": "ghost"}]})).await;
    assert_error(s, &b, 400, Some("invalidValue"));
    let (s, _) = app.post("okta", "/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g", "members": [{"value": uid}]})).await;
    assert_eq!(s, 201);
    let (s, b) = app.patch("okta", &format!("/Users/{uid}"), json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "ghost"}}])).await;
    assert_error(s, &b, 400, Some("invalidValue"));
    // A user id from another server does not count.
    let foreign = app.user("other", "foreign").await;
    let (s, _) = app.post("okta", "/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "h", "members": [{"value": foreign}]})).await;
    assert_eq!(s, 400);
}

fn uuid() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn member_changes_on_a_large_group_are_row_by_row_with_rfc_semantics() {
    let app = TestApp::default().await;
    let members: Vec<serde_json::Value> = (0..3000)
        .map(|i| json!({"value": format!("m{i}")}))
        .collect();
    let (s, g) = app
        .post(
            "full",
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "big", "members": members}),
        )
        .await;
    assert_eq!(s, 201);
    let path = format!(
        "/Groups/{}?excludedAttributes=members",
        g["id"].as_str().unwrap()
    );
    let (s, b) = app.patch("full", &path, json!([{"op": "add", "path": "members", "value": [{"value": "new", "display": "New"}]}])).await;
    assert_eq!((s, b["meta"]["version"].as_str()), (200, Some("W/\"2\"")));
    assert!(b.get("members").is_none());
    // Adding an identical member changes nothing, not even the version.
    let (_, b) = app.patch("full", &path, json!([{"op": "add", "path": "members", "value": [{"value": "new", "display": "New"}]}])).await;
    assert_eq!(b["meta"]["version"], "W/\"2\"");
    let (s, b) = app
        .patch(
            "full",
            &path,
            json!([{"op": "remove", "path": "members[value eq \"m7\"]"}]),
        )
        .await;
    assert_eq!((s, b["meta"]["version"].as_str()), (200, Some("W/\"3\"")));
    let (s, b) = app
        .patch(
            "full",
            &path,
            json!([{"op": "remove", "path": "members[value eq \"m7\"]"}]),
        )
        .await;
    assert_error(s, &b, 400, Some("noTarget"));
    let (_, full) = app
        .get("full", &format!("/Groups/{}", g["id"].as_str().unwrap()))
        .await;
    let values: Vec<&str> = full["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 3000);
    assert!(!values.contains(&"m7") && values.last() == Some(&"new"));
    // Bad member values still get the general path's errors.
    let (s, b) = app
        .patch(
            "full",
            &path,
            json!([{"op": "add", "path": "members", "value": [{"display": "no value"}]}]),
        )
        .await;
    assert_error(s, &b, 400, Some("invalidValue"));
}

#[tokio::test(flavor = "multi_thread")]
async fn put_with_the_same_members_keeps_the_version() {
    let app = TestApp::default().await;
    let u = app.user("full", "same").await;
    let doc = json!({"schemas": [GROUP], "displayName": "s", "members": [{"value": u}]});
    let (_, g) = app.post("full", "/Groups", doc.clone()).await;
    let (s, b) = app
        .put(
            "full",
            &format!("/Groups/{}", g["id"].as_str().unwrap()),
            doc,
        )
        .await;
    assert_eq!((s, b["meta"]["version"].as_str()), (200, Some("W/\"1\"")));
}
