//! Content types, ETags, body limits, and SCIM errors for malformed requests.
use crate::common;
use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn accepts_scim_json_and_json_and_refuses_other_content_types() {
    let app = TestApp::default().await;
    let body =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ct1"})
            .to_string();
    let send = |ct: &'static str, body: String| {
        app.req(Method::POST, "full", "/Users")
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(
        send("application/scim+json; charset=utf-8", body.clone())
            .await
            .unwrap()
            .status(),
        201
    );
    let body2 = body.replace("ct1", "ct2");
    assert_eq!(send("application/json", body2).await.unwrap().status(), 201);
    let (s, b, _) = split(
        send("text/plain", body.replace("ct1", "ct3"))
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 415, Some("invalidSyntax"));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_are_400_invalid_syntax() {
    let app = TestApp::default().await;
    let id = app.user("full", "x").await;
    for (m, path) in [
        (Method::POST, "/Users".to_string()),
        (Method::PUT, format!("/Users/{id}")),
        (Method::PATCH, format!("/Users/{id}")),
    ] {
        for body in ["{not json", "", "   ", "[1,"] {
            let r = app
                .req(m.clone(), "full", &path)
                .header("content-type", "application/scim+json")
                .body(body)
                .send()
                .await
                .unwrap();
            let (s, b, _) = split(r).await;
            assert_error(s, &b, 400, Some("invalidSyntax"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn etags_if_match_and_if_none_match() {
    let app = TestApp::default().await;
    let id = app.user("full", "etag").await;
    let path = format!("/Users/{id}");
    let r = app
        .req(Method::GET, "full", &path)
        .header("if-none-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], "W/\"1\"");
    let r = app
        .req(Method::GET, "full", &path)
        .header("if-none-match", "W/\"7\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": "v2"}]}).to_string();
    let send = |m: Method, if_match: &'static str, body: Option<String>| {
        let mut r = app.req(m, "full", &path).header("if-match", if_match);
        if let Some(b) = body {
            r = r.header("content-type", "application/scim+json").body(b);
        }
        r.send()
    };
    let (s, b, _) = split(
        send(Method::PATCH, "W/\"9\"", Some(patch.clone()))
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 412, None);
    let (s, b, h) = split(
        send(Method::PATCH, "W/\"1\"", Some(patch.clone()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["etag"], "W/\"2\"");
    let put =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "etag"})
            .to_string();
    let (s, b, _) = split(
        send(Method::PUT, "W/\"1\"", Some(put.clone()))
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 412, None);
    assert_eq!(
        send(Method::PUT, "*", Some(put)).await.unwrap().status(),
        200
    );
    let (s, b, _) = split(send(Method::DELETE, "W/\"2\"", None).await.unwrap()).await;
    assert_error(s, &b, 412, None);
    assert_eq!(
        send(Method::DELETE, "\"3\"", None).await.unwrap().status(),
        204,
        "weak comparison"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_413_and_wrong_methods_405() {
    let small = "id: small\ntokens: [tok-small]\nresource_types: { User: {} }\nlimits: { max_payload_bytes: 200 }\n";
    let app = TestApp::spawn(&[("small.yaml", small)]).await;
    let big = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x".repeat(500)});
    let (s, b) = app.post("small", "/Users", big).await;
    assert_error(s, &b, 413, None);
    // A 405 says what the target allows (RFC 9110 §15.5.6).
    for (method, path, allow) in [
        (Method::PUT, "/Users", "GET, HEAD, POST"),
        (Method::POST, "/Users/abc", "GET, HEAD, PUT, PATCH, DELETE"),
        (Method::GET, "/Users/.search", "POST"),
        (Method::DELETE, "/ServiceProviderConfig", "GET, HEAD"),
        (Method::GET, "/Bulk", "POST"),
    ] {
        let (s, b, h) = app.send(method, "small", path, Some(json!({}))).await;
        assert_error(s, &b, 405, None);
        assert_eq!(h["allow"], allow, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_answer_every_path_with_a_scim_answer() {
    let app = TestApp::default().await;
    // The base URL, with or without its slash, points at the discovery endpoints.
    for path in ["", "/"] {
        let (s, b, _) = app.send(Method::GET, "full", path, None).await;
        assert_error(s, &b, 404, None);
        assert!(
            b["detail"]
                .as_str()
                .unwrap()
                .contains("ServiceProviderConfig"),
            "{b}"
        );
    }
    // Endpoints match case-insensitively; discovery documents by exact name.
    let (s, b, _) = app.send(Method::GET, "full", "/users?count=1", None).await;
    assert_eq!(s, 200, "{b}");
    // An unknown endpoint is a 404 naming the ones there are, whatever the method.
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let (s, b, _) = app.send(method, "full", "/Widgets/1", None).await;
        assert_error(s, &b, 404, None);
        assert!(b["detail"].as_str().unwrap().contains("/Users"), "{b}");
    }
    // Below a resource there is nothing, and a trailing slash names no resource: a 404 of
    // this server that says which path it did not find.
    for path in [
        "/Users/abc/extra",
        "/Users/abc/extra/more",
        "/Users/",
        "/Users/abc/",
        "/Schemas/",
        "/ResourceTypes/User/",
        "/SecurityEvents/jwks/x",
    ] {
        let (s, b, _) = app.send(Method::GET, "full", path, None).await;
        assert_error(s, &b, 404, None);
        let detail = b["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("no such path {path} ")),
            "{path}: {b}"
        );
    }
    // An unknown server is a 404 naming the loaded ones.
    let r = app
        .client
        .get(app.url("/scim-identifier/nope/scim/v2/Users"))
        .send()
        .await
        .unwrap();
    let (s, b, _) = common::split(r).await;
    assert_error(s, &b, 404, None);
    assert!(b["detail"].as_str().unwrap().contains("full"), "{b}");
    // Without a token every route of a known server is a 401, before routing.
    for path in [
        "/Users",
        "/Nothing/here",
        "/Schemas",
        "/Users/",
        "/Users/a/b/c",
    ] {
        let r = app
            .client
            .get(app.url(&format!("/scim-identifier/full/scim/v2{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_byte_text_where_a_urn_may_start_is_a_400_not_a_panic() {
    let app = TestApp::default().await;
    let id = app.user("full", "utf8").await;
    let (s, b) = app
        .patch(
            "full",
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "urné:x", "value": 1}]),
        )
        .await;
    assert_error(s, &b, 400, Some("invalidPath"));
    let (s, b) = app.post("full", "/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u2", "urné": 1})).await;
    assert_error(s, &b, 400, Some("invalidSyntax"));
    // Not attribute paths (ATTRNAME is ASCII, RFC 7644 §3.10): refused, not dropped.
    let (s, b) = app
        .get(
            "full",
            &format!("/Users/{id}?attributes={}", urlencode("urñ:x,ü")),
        )
        .await;
    assert_error(s, &b, 400, Some("invalidValue"));
    let (s, b) = app
        .get("full", &format!("/Users?filter={}", urlencode("urné eq 1")))
        .await;
    assert_error(s, &b, 400, Some("invalidFilter"));
}
