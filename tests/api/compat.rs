//! IdP personas: each deviation is accepted where the server's `compat` allows it and refused,
//! by name, where it does not.
use crate::common;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const STRICT: &str = "id: strict\ntokens: [tok-strict]\nresource_types:\n  User:\n    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]\n  Group: {}\n";
const ENTRA: &str = "id: entra\ntokens: [tok-entra]\ncompat: entra\nresource_types:\n  User:\n    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]\n  Group: {}\n";
const OKTA: &str =
    "id: okta\ntokens: [tok-okta]\ncompat: okta\nresource_types:\n  User: {}\n  Group: {}\n";
const ONELOGIN: &str = "id: onelogin\ntokens: [tok-onelogin]\ncompat: [onelogin, boolean_strings]\nresource_types:\n  User:\n    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]\n";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn app() -> TestApp {
    TestApp::spawn(&[
        ("strict.yaml", STRICT),
        ("entra.yaml", ENTRA),
        ("okta.yaml", OKTA),
        ("onelogin.yaml", ONELOGIN),
    ])
    .await
}

/// Refused on `strict` with a detail naming the quirk; accepted on `ok_on`.
fn refused(status: u16, body: &Value, quirk: &str) {
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains(quirk),
        "detail should name {quirk}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn entra_patch_deviations() {
    let app = app().await;
    for server in ["strict", "entra"] {
        let uid = app.user(server, "u").await;
        let upath = format!("/Users/{uid}");
        let (_, g) = app
            .post(
                server,
                "/Groups",
                json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": uid}]}),
            )
            .await;
        let gpath = format!("/Groups/{}", g["id"].as_str().unwrap());
        let cases: Vec<(&str, &str, Value)> = vec![
            (
                "capitalized_ops",
                &upath,
                json!([{"op": "Replace", "path": "displayName", "value": "X"}]),
            ),
            (
                "boolean_strings",
                &upath,
                json!([{"op": "replace", "path": "active", "value": "False"}]),
            ),
            (
                "manager_string",
                &upath,
                json!([{"op": "add", "path": format!("{ENT}:manager"), "value": "boss-id"}]),
            ),
            (
                "dotted_pathless_keys",
                &upath,
                json!([{"op": "replace", "value": {"name.givenName": "Given", format!("{ENT}:employeeNumber"): "42"}}]),
            ),
            (
                "remove_by_value",
                &gpath,
                json!([{"op": "remove", "path": "members", "value": [{"value": uid}]}]),
            ),
        ];
        for (quirk, path, ops) in cases {
            let (s, b) = app.patch(server, path, ops).await;
            if server == "strict" {
                refused(s, &b, quirk);
            } else {
                assert_eq!(s, 200, "{quirk}: {b}");
            }
        }
        if server == "entra" {
            let (_, u) = app.get("entra", &upath).await;
            assert_eq!(u["displayName"], "X");
            assert_eq!(u["active"], false);
            assert_eq!(u[ENT]["manager"]["value"], "boss-id");
            assert_eq!(u[ENT]["employeeNumber"], "42");
            assert_eq!(u["name"]["givenName"], "Given");
            let (_, g) = app.get("entra", &gpath).await;
            assert!(g.get("members").is_none(), "{g}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn entra_documents_and_filters() {
    let app = app().await;
    let group = json!({"schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"], "displayName": "ad"});
    let (s, b) = app.post("strict", "/Groups", group.clone()).await;
    refused(s, &b, "adscim_group_schema");
    assert_eq!(app.post("entra", "/Groups", group).await.0, 201);
    let user = json!({"schemas": [USER], "userName": "e", "active": "True", "emails": [{"value": "e@work.example", "type": "work"}]});
    let (s, b) = app.post("strict", "/Users", user.clone()).await;
    refused(s, &b, "boolean_strings");
    assert_eq!(app.post("entra", "/Users", user).await.0, 201);
    // Entra's add to an empty work email creates it (standard PATCH with a value filter).
    let id = app.user("strict", "noemail").await;
    let (s, b) = app
        .patch(
            "strict",
            &format!("/Users/{id}"),
            json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "n@x.org"}]),
        )
        .await;
    assert_eq!(
        (s, b["emails"][0].clone()),
        (200, json!({"type": "work", "value": "n@x.org"}))
    );
    // emails[type eq "work"].value eq "…"
    let filter = urlencode("emails[type eq \"work\"].value eq \"e@work.example\"");
    let (s, b) = app.get("strict", &format!("/Users?filter={filter}")).await;
    assert_eq!(s, 400);
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("filter_value_path_sub_attribute"),
        "{b}"
    );
    let (s, b) = app.get("entra", &format!("/Users?filter={filter}")).await;
    assert_eq!((s, b["totalResults"].as_u64()), (200, Some(1)), "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn okta_group_rename_with_id_and_bare_token() {
    let app = app().await;
    for server in ["strict", "okta"] {
        let (_, g) = app
            .post(
                server,
                "/Groups",
                json!({"schemas": [GROUP], "displayName": "old"}),
            )
            .await;
        let id = g["id"].as_str().unwrap();
        let (s, b) = app
            .patch(
                server,
                &format!("/Groups/{id}"),
                json!([{"op": "replace", "value": {"id": id, "displayName": "new"}}]),
            )
            .await;
        if server == "strict" {
            assert_error(s, &b, 400, Some("mutability"));
            assert!(b["detail"].as_str().unwrap().contains("id_in_patch_value"));
        } else {
            assert_eq!((s, b["displayName"].as_str()), (200, Some("new")));
        }
        // Okta's path-less {"active": false} is plain RFC 7644 and works everywhere.
        let uid = app.user(server, "deact").await;
        let (s, b) = app
            .patch(
                server,
                &format!("/Users/{uid}"),
                json!([{"op": "replace", "value": {"active": false}}]),
            )
            .await;
        assert_eq!((s, b["active"].clone()), (200, json!(false)));
    }
    let bare = |server: &str| {
        app.client
            .get(format!("{}/Users", app.base(server)))
            .header("authorization", format!("tok-{server}"))
            .send()
    };
    let (s, b, _) = split(bare("strict").await.unwrap()).await;
    assert_eq!(s, 401);
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("bearer_without_prefix"),
        "{b}"
    );
    assert_eq!(bare("okta").await.unwrap().status(), 200);
    let (s, _, _) = split(
        app.client
            .get(format!("{}/Users", app.base("okta")))
            .header("authorization", "tok-strict")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401, "a bare token still has to be this server's");
}

#[tokio::test(flavor = "multi_thread")]
async fn onelogin_enterprise_urn() {
    let app = app().await;
    let old = "urn:scim:schemas:extension:enterprise:2.0";
    let body =
        |n: &str| json!({"schemas": [USER, old], "userName": n, old: {"department": "Sales"}});
    let (s, b) = app.post("strict", "/Users", body("a")).await;
    assert_eq!(s, 400);
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("onelogin_enterprise_urn"),
        "{b}"
    );
    let (s, b, _) = app
        .send(Method::POST, "onelogin", "/Users", Some(body("b")))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b[ENT]["department"], "Sales");
    assert!(b.get(old).is_none());
}

#[test]
fn unknown_compat_names_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.yaml"),
        "id: x\ntokens: [t]\ncompat: [entra, okta_magic]\nresource_types:\n  User: {}\n",
    )
    .unwrap();
    let err = scimlab::model::Sources::new(dir.path(), dir.path().join("profiles"))
        .compile()
        .unwrap_err();
    assert_eq!((err[0].line, err[0].column), (3, 1));
    assert!(
        err[0].message.contains("\"okta_magic\""),
        "{}",
        err[0].message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn okta_references_by_value() {
    let app = app().await;
    for server in ["strict", "okta"] {
        let (_, u) = app.post(server, "/Users", json!({"schemas": [USER], "userName": "Jane.Doe", "emails": [{"value": "jane@corp.example", "type": "work"}]})).await;
        let uid = u["id"].as_str().unwrap().to_string();
        for by in ["jane.doe", "JANE@corp.example"] {
            let (s, b) = app.post(server, "/Groups", json!({"schemas": [GROUP], "displayName": format!("g-{by}"), "members": [{"value": by}]})).await;
            if server == "strict" {
                refused(s, &b, "references_by_value");
            } else {
                assert_eq!(s, 201, "{b}");
                assert_eq!(
                    b["members"][0]["value"],
                    uid.as_str(),
                    "{by} resolved to the id"
                );
            }
        }
        // A value that names nothing is left alone (references are not checked here).
        let (s, b) = app.post(server, "/Groups", json!({"schemas": [GROUP], "displayName": "dangling", "members": [{"value": "nobody"}]})).await;
        assert_eq!(
            (s, b["members"][0]["value"].as_str()),
            (201, Some("nobody"))
        );
        // Adding by value through the membership fast path too.
        let gid = b["id"].as_str().unwrap();
        let (s, b) = app
            .patch(
                server,
                &format!("/Groups/{gid}"),
                json!([{"op": "add", "path": "members", "value": [{"value": "jane.doe"}]}]),
            )
            .await;
        if server == "strict" {
            refused(s, &b, "references_by_value");
        } else {
            assert_eq!(b["members"][1]["value"], uid.as_str(), "{b}");
        }
    }
}
