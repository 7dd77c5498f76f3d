//! Each virtual server accepts only its own tokens, and no request crosses servers.
use crate::common;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_wrong_tokens_are_401_with_www_authenticate() {
    let app = TestApp::default().await;
    let url = format!("{}/Users", app.base("full"));
    for req in [
        app.client.get(&url),
        app.client.get(&url).bearer_auth("wrong"),
        app.client.get(&url).bearer_auth("tok-other"),
        app.client
            .get(&url)
            .header("authorization", "Basic dG9rLWZ1bGw="),
    ] {
        let (s, b, h) = split(req.send().await.unwrap()).await;
        assert_error(s, &b, 401, None);
        assert!(
            h["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let (s, _, _) = split(
        app.client
            .get(&url)
            .header("authorization", "bearer tok-full")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "scheme is case-insensitive");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_never_crosses_servers() {
    let app = TestApp::default().await;
    let id = app.user("full", "shared-name").await;
    // The same userName is fine on another server: uniqueness is per server.
    let other_id = app.user("other", "shared-name").await;
    let (s, b) = app.get("other", &format!("/Users/{id}")).await;
    assert_error(s, &b, 404, None);
    assert_eq!(app.names("other", "userName pr").await, ["shared-name"]);
    let (_, list) = app.get("other", "/Users").await;
    assert_eq!(list["Resources"][0]["id"], other_id.as_str());
    let (s, _) = app
        .put(
            "other",
            &format!("/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .patch(
            "other",
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "userName", "value": "y"}]),
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(app.delete("other", &format!("/Users/{id}")).await, 404);
    let (s, b) = app.get("full", &format!("/Users/{id}")).await;
    assert_eq!((s, b["userName"].as_str()), (200, Some("shared-name")));
    // A group on one server cannot list members from another by id either.
    let (s, g) = app.post("other", "/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g", "members": [{"value": id}]})).await;
    assert_eq!(s, 201, "{g}");
    let (_, u) = app.get("full", &format!("/Users/{id}")).await;
    assert!(
        u.get("groups").is_none(),
        "membership on another server leaked: {u}"
    );
}
