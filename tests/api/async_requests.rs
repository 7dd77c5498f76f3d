//! Asynchronous SCIM requests (RFC 9967 §2.5.1): `Prefer: respond-async` → 202 with
//! `Set-Txn`, `Preference-Applied` and a `Location` to fetch the completion from; the
//! completion as a `misc:asyncresp` SET in that transaction (success, failure, every Bulk
//! operation as `txn:index`); `wait` answering synchronously; servers that do not offer it.

use crate::common::{TestApp, assert_error, eventually};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

const ASYNC: &str =
    "id: as\ntokens: [tok-as]\nresource_types: { User: {}, Group: {} }\nevents: {}\n";
const SYNC_ONLY: &str =
    "id: so\ntokens: [tok-so]\nresource_types: { User: {} }\nevents: { async_requests: none }\n";
const NO_EVENTS: &str = "id: ne\ntokens: [tok-ne]\nresource_types: { User: {} }\n";

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ASYNC_RESP: &str = "urn:ietf:params:scim:event:misc:asyncresp";

async fn app() -> TestApp {
    TestApp::spawn(&[
        ("as.yaml", ASYNC),
        ("so.yaml", SYNC_ONLY),
        ("ne.yaml", NO_EVENTS),
    ])
    .await
}

/// Sends `body` with `Prefer: {prefer}`; returns status, headers and body text.
async fn send(
    app: &TestApp,
    server: &str,
    method: Method,
    path: &str,
    prefer: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = app.req(method, server, path).header("prefer", prefer);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let (s, h) = (resp.status().as_u16(), resp.headers().clone());
    (s, h, resp.text().await.unwrap())
}

/// The claims of an unsecured SET.
fn claims(set: &str) -> Value {
    let payload = set.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The completion SETs' claims fetched from the 202's `Location`, once there are `n`.
async fn completions(app: &TestApp, location: &str, n: usize) -> Vec<Value> {
    for _ in 0..250 {
        let resp = (app.client.get(location))
            .bearer_auth("tok-as")
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            let body: Value = resp.json().await.unwrap();
            let mut sets: Vec<Value> = (body["sets"].as_object().unwrap().values())
                .map(|s| claims(s.as_str().unwrap()))
                .collect();
            if sets.len() == n {
                sets.sort_by_key(|c| c["txn"].as_str().unwrap().to_string());
                return sets;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no {n} completion events at {location}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_sent_with_respond_async_is_accepted_and_its_completion_is_an_event() {
    let app = app().await;
    let (s, h, body) = send(
        &app,
        "as",
        Method::POST,
        "/Users",
        "respond-async",
        Some(json!({"schemas": [USER], "userName": "async-ann"})),
    )
    .await;
    assert_eq!(s, 202, "{body}");
    assert!(
        body.is_empty(),
        "an asynchronous answer has no body: {body}"
    );
    assert_eq!(h["preference-applied"], "respond-async");
    let txn = h["set-txn"].to_str().unwrap().to_string();
    let location = h["location"].to_str().unwrap().to_string();
    assert!(
        location.ends_with(&format!("/SecurityEvents/{txn}")),
        "{location}"
    );

    let done = completions(&app, &location, 1).await;
    let c = &done[0];
    assert_eq!(c["txn"], txn.as_str());
    let op = &c["events"][ASYNC_RESP];
    assert_eq!(op["method"], "POST");
    assert_eq!(op["status"], "201");
    assert_eq!(op["version"], "W/\"1\"");
    let uri = c["sub_id"]["uri"].as_str().unwrap();
    assert!(uri.starts_with("/Users/"), "{c}");
    // The user exists, and the create's own provisioning event is there too.
    let (s, u) = app.get("as", uri).await;
    assert_eq!(s, 200);
    assert_eq!(u["userName"], "async-ann");
    let (_, polled, _) = app
        .send(
            Method::POST,
            "as",
            "/SecurityEvents",
            Some(json!({"returnImmediately": true})),
        )
        .await;
    let kinds: Vec<String> = (polled["sets"].as_object().unwrap().values())
        .flat_map(|s| {
            claims(s.as_str().unwrap())["events"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(kinds.contains(&ASYNC_RESP.to_string()), "{kinds:?}");
    assert!(
        kinds.contains(&"urn:ietf:params:scim:event:prov:create:notice".to_string()),
        "{kinds:?}"
    );

    // PUT, PATCH and DELETE too; a failure is a completion with the error response.
    let id = uri.rsplit('/').next().unwrap();
    for (method, body, status) in [
        (
            Method::PATCH,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "displayName", "value": "Ann"}]}),
            "200",
        ),
        (
            Method::PUT,
            json!({"schemas": [USER], "userName": 42}),
            "400",
        ),
    ] {
        let (s, h, _b) = send(
            &app,
            "as",
            method.clone(),
            &format!("/Users/{id}"),
            "respond-async",
            Some(body),
        )
        .await;
        assert_eq!(s, 202, "{method}: {_b}");
        let done = completions(&app, h["location"].to_str().unwrap(), 1).await;
        let op = &done[0]["events"][ASYNC_RESP];
        assert_eq!(op["method"], method.as_str());
        assert_eq!(op["status"], status, "{op}");
        if status == "400" {
            assert_eq!(op["response"]["scimType"], "invalidValue", "{op}");
            assert_eq!(op["response"]["status"], "400");
            assert_eq!(done[0]["sub_id"]["uri"], format!("/Users/{id}"));
        }
    }
    let (s, h, _) = send(
        &app,
        "as",
        Method::DELETE,
        &format!("/Users/{id}"),
        "respond-async",
        None,
    )
    .await;
    assert_eq!(s, 202);
    let done = completions(&app, h["location"].to_str().unwrap(), 1).await;
    assert_eq!(done[0]["events"][ASYNC_RESP]["status"], "204");
    eventually("the user is gone", || async {
        app.get("as", &format!("/Users/{id}")).await.0 == 404
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_asynchronous_bulk_request_completes_each_operation_in_its_own_txn() {
    let app = app().await;
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [USER], "userName": "bulk-a"}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"schemas": [USER], "userName": "bulk-b"}},
            {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"schemas": [USER]}}
        ]
    });
    let (s, h, _) = send(
        &app,
        "as",
        Method::POST,
        "/Bulk",
        "respond-async",
        Some(bulk),
    )
    .await;
    assert_eq!(s, 202);
    let txn = h["set-txn"].to_str().unwrap().to_string();
    let done = completions(&app, h["location"].to_str().unwrap(), 3).await;
    for (i, c) in done.iter().enumerate() {
        // RFC 9967 §2.5.1.2: the txn with the operation's zero-based index.
        assert_eq!(c["txn"], format!("{txn}:{i}"));
    }
    assert_eq!(done[0]["events"][ASYNC_RESP]["bulkId"], "a");
    assert_eq!(done[1]["events"][ASYNC_RESP]["status"], "201");
    assert_eq!(done[2]["events"][ASYNC_RESP]["status"], "400");
    assert_eq!(done[2]["sub_id"]["uri"], "/Bulk");
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_answers_synchronously_and_servers_without_it_ignore_the_preference() {
    let app = app().await;
    // A create that finishes within the wait is answered as usual, and raises no
    // completion event (there is no Set-Txn to complete).
    let (s, h, body) = send(
        &app,
        "as",
        Method::POST,
        "/Users",
        "respond-async, wait=10",
        Some(json!({"schemas": [USER], "userName": "quick"})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert!(h.get("set-txn").is_none());
    let (_, polled, _) = app
        .send(
            Method::POST,
            "as",
            "/SecurityEvents",
            Some(json!({"returnImmediately": true})),
        )
        .await;
    assert!(!polled.to_string().contains("asyncresp"), "{}", polled);

    // Discovery says who offers it.
    let (_, spc) = app.get("as", "/ServiceProviderConfig").await;
    assert_eq!(spc["securityEvents"]["asyncRequest"], "request");
    assert!(
        spc["securityEvents"]["eventUris"]
            .as_array()
            .unwrap()
            .contains(&json!(ASYNC_RESP))
    );
    let (_, spc) = app.get("so", "/ServiceProviderConfig").await;
    assert_eq!(spc["securityEvents"]["asyncRequest"], "none");
    for server in ["so", "ne"] {
        let (s, h, _) = send(
            &app,
            server,
            Method::POST,
            "/Users",
            "respond-async",
            Some(json!({"schemas": [USER], "userName": "sync"})),
        )
        .await;
        assert_eq!(s, 201, "{server}");
        assert!(h.get("preference-applied").is_none());
    }
    // A transaction nobody was given has no completion; the endpoint needs the token.
    let (s, b) = app.get("as", "/SecurityEvents/0123456789abcdef").await;
    assert_error(s, &b, 404, None);
    let anonymous = app
        .client
        .get(format!(
            "{}/SecurityEvents/0123456789abcdef",
            app.base("as")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
