//! Discovery endpoints are generated from each server's compiled model and tell the truth.
use crate::common;
use common::*;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread")]
async fn service_provider_config_is_scim_json_and_truthful() {
    let app = TestApp::default().await;
    let (s, b, h) = app
        .send(Method::GET, "full", "/ServiceProviderConfig", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "application/scim+json");
    assert_eq!(
        b["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    );
    assert_eq!(b["patch"]["supported"], true);
    assert_eq!(b["bulk"]["supported"], true);
    assert_eq!(b["bulk"]["maxOperations"], 1000);
    assert_eq!(b["etag"]["supported"], true);
    assert_eq!(b["filter"]["maxResults"], 1000);
    assert_eq!(b["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(
        b["meta"]["location"],
        format!("{}/ServiceProviderConfig", app.base("full"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_types_list_exactly_what_the_definition_serves() {
    let app = TestApp::default().await;
    let (s, b) = app.get("full", "/ResourceTypes").await;
    assert_eq!(s, 200);
    let mut names: Vec<&str> = b["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["Agent", "Entitlement", "Group", "Role", "User"]);
    assert_eq!(b["totalResults"], 5);
    let (s, user) = app.get("full", "/ResourceTypes/User").await;
    assert_eq!(s, 200);
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], "urn:ietf:params:scim:schemas:core:2.0:User");
    let exts: Vec<&str> = user["schemaExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["schema"].as_str().unwrap())
        .collect();
    assert_eq!(
        exts,
        [
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:scimlab:schemas:extension:full:2.0:User"
        ]
    );

    // The other server serves only User and Group: Entitlements are absent and 404.
    let (_, b) = app.get("other", "/ResourceTypes").await;
    assert_eq!(b["totalResults"], 2);
    let (s, b) = app.get("other", "/Entitlements").await;
    assert_error(s, &b, 404, None);
    let (s, b) = app.get("other", "/ResourceTypes/Entitlement").await;
    assert_error(s, &b, 404, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_include_custom_attributes_in_a_per_server_extension() {
    let app = TestApp::default().await;
    let urn = "urn:scimlab:schemas:extension:full:2.0:User";
    let (s, b) = app.get("full", &format!("/Schemas/{urn}")).await;
    assert_eq!(s, 200, "{b}");
    let region = b["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "region")
        .unwrap();
    assert_eq!(
        region["canonicalValues"],
        serde_json::json!(["AMER", "EMEA"])
    );
    let secret = b["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "secret")
        .unwrap();
    assert_eq!(secret["returned"], "never");
    let (_, list) = app.get("full", "/Schemas").await;
    let ids: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&urn) && ids.contains(&"urn:okta:scim:schemas:core:1.0:Entitlement"));
    let (_, other) = app.get("other", "/Schemas").await;
    let ids: Vec<&str> = other["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&urn),
        "custom schema leaked to another server"
    );
    let (s, b) = app.get("full", "/Schemas/urn:nope").await;
    assert_error(s, &b, 404, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_refuses_writes_and_filters() {
    let app = TestApp::default().await;
    for path in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/Schemas",
        "/ResourceTypes/User",
    ] {
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let (s, b, _) = app
                .send(m.clone(), "full", path, Some(serde_json::json!({})))
                .await;
            assert_error(s, &b, 405, None);
        }
    }
    let (s, b) = app.get("full", "/Schemas?filter=id%20pr").await;
    assert_error(s, &b, 403, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_servers_and_routes_are_scim_404s() {
    let app = TestApp::default().await;
    let (s, b) = app.get("nope", "/Users").await;
    assert_error(s, &b, 404, None);
    assert!(
        b["detail"].as_str().unwrap().contains("full"),
        "lists loaded servers: {b}"
    );
    let (s, b) = app.get("full", "/Widgets").await;
    assert_error(s, &b, 404, None);
    let (s, b) = app.get("full", "/Users/a/b").await;
    assert_error(s, &b, 404, None);
    let (s, b, _) = split(app.client.get(app.url("/elsewhere")).send().await.unwrap()).await;
    assert_error(s, &b, 404, None);
    let (s, b) = app.get("full", "/Bulk").await;
    assert_error(s, &b, 405, None);
    let (s, b) = app.get("full", "/Me").await;
    assert_error(s, &b, 501, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_open_and_lists_servers() {
    let app = TestApp::default().await;
    app.user("full", "counted").await;
    let (s, b, _) = split(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    let users = b["servers"][0]["resource_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "User")
        .unwrap()
        .clone();
    assert_eq!(users["count"], 1, "{b}");
    assert_eq!(s, 200);
    assert_eq!(b["status"], "ok");
    let ids: Vec<&str> = b["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["full", "other"]);
}
