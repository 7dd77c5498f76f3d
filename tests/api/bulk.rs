//! Bulk (RFC 7644 §3.7) and root-level search (§3.4.3).
use crate::common;
use common::*;
use serde_json::{Value, json};

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn bulk(ops: Value) -> Value {
    json!({"schemas": [BULK], "Operations": ops})
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_ids_resolve_in_any_order_and_each_operation_reports_its_status() {
    let app = TestApp::default().await;
    let existing = app.user("full", "existing").await;
    let (s, b) = app.post("full", "/Bulk", bulk(json!([
        // The group refers to a user created later in the same request.
        {"method": "POST", "path": "/Groups", "bulkId": "ytrewq", "data": {"schemas": [GROUP], "displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:qwerty"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"schemas": [USER], "userName": "Alice"}},
        {"method": "PATCH", "path": format!("/Users/{existing}"), "version": "W/\"1\"", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": "E"}]}},
        {"method": "PUT", "path": format!("/Users/{existing}"), "version": "W/\"1\"", "data": {"schemas": [USER], "userName": "existing"}},
        {"method": "DELETE", "path": "/Users/missing"},
        {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"schemas": [USER], "userName": "alice"}}
    ]))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    let ops = b["Operations"].as_array().unwrap();
    let status: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["201", "201", "200", "412", "404", "409"], "{b}");
    assert_eq!(ops[0]["bulkId"], "ytrewq");
    assert!(
        ops[1]["location"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/Users/", app.base("full")))
    );
    assert_eq!(ops[2]["version"], "W/\"2\"");
    assert_eq!(ops[5]["response"]["scimType"], "uniqueness");
    let alice = ops[1]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let (_, g) = app
        .get(
            "full",
            &format!(
                "/Groups/{}",
                ops[0]["location"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
            ),
        )
        .await;
    assert_eq!(g["members"][0]["value"], alice);
    let (_, u) = app.get("full", &format!("/Users/{alice}")).await;
    assert_eq!(u["groups"][0]["display"], "Tour Guides");
}

#[tokio::test(flavor = "multi_thread")]
async fn unresolvable_and_circular_references_and_fail_on_errors() {
    let app = TestApp::default().await;
    let g = |id: &str, r: &str| json!({"method": "POST", "path": "/Groups", "bulkId": id, "data": {"schemas": [GROUP], "displayName": id, "members": [{"value": format!("bulkId:{r}")}]}});
    let (_, b) = app
        .post(
            "full",
            "/Bulk",
            bulk(json!([g("a", "b"), g("b", "a"), g("c", "nowhere")])),
        )
        .await;
    let status: Vec<&str> = b["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["409", "409", "409"], "{b}");
    let (_, list) = app.get("full", "/Groups").await;
    assert_eq!(list["totalResults"], 0);

    let bad =
        json!({"method": "POST", "path": "/Users", "bulkId": "x", "data": {"schemas": [USER]}});
    let good = |n: &str| json!({"method": "POST", "path": "/Users", "bulkId": n, "data": {"schemas": [USER], "userName": n}});
    let mut req = bulk(json!([bad, good("after")]));
    req["failOnErrors"] = json!(1);
    let (_, b) = app.post("full", "/Bulk", req).await;
    assert_eq!(
        b["Operations"].as_array().unwrap().len(),
        1,
        "processing stops at the first error: {b}"
    );
    assert_eq!(app.names("full", "userName eq \"after\"").await.len(), 0);
}

/// A long Bulk, whose operations share transactions without savepoints of their own where
/// they refuse before writing: operations refused in the middle leave their neighbours
/// written and nothing of their own, references resolve, and failOnErrors stops the rest.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_bulk_keeps_order_references_and_failures() {
    let app = TestApp::default().await;
    let user = |n: &str| json!({"method": "POST", "path": "/Users", "bulkId": n, "data": {"schemas": [USER], "userName": n}});
    let mut ops: Vec<Value> = (0..60).map(|i| user(&format!("u{i}"))).collect();
    // Refused before anything is written: an invalid body and a taken userName.
    ops[10] = json!({"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"schemas": [USER], "userName": 7}});
    ops[20] = json!({"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"schemas": [USER], "userName": "U5"}});
    // A group naming a user created further on, and a PATCH of one created before it.
    ops[30] = json!({"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": [GROUP], "displayName": "g", "members": [{"value": "bulkId:u50"}]}});
    ops[40] = json!({"method": "PATCH", "path": "/Users/bulkId:u3", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": "Three"}]}});
    let (s, b) = app
        .post("full", "/Bulk", bulk(Value::Array(ops.clone())))
        .await;
    assert_eq!(s, 200, "{b}");
    let results = b["Operations"].as_array().unwrap();
    assert_eq!(results.len(), 60, "{b}");
    for (i, r) in results.iter().enumerate() {
        let want = match i {
            10 => "400",
            20 => "409",
            40 => "200",
            _ => "201",
        };
        assert_eq!(r["status"], want, "operation {i}: {r}");
    }
    assert_eq!(results[30]["bulkId"], "g");
    let (_, users) = app.get("full", "/Users?count=0").await;
    assert_eq!(
        users["totalResults"], 56,
        "60 operations: 2 refused, a group, a PATCH"
    );
    assert_eq!(app.names("full", "displayName eq \"Three\"").await, ["u3"]);
    let gid = results[30]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let (_, group) = app.get("full", &format!("/Groups/{gid}")).await;
    let u50 = results[50]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(group["members"][0]["value"], u50, "{group}");

    // failOnErrors stops the operations after the first error; those before it stay.
    let mut again: Vec<Value> = (0..60).map(|i| user(&format!("v{i}"))).collect();
    again[5] =
        json!({"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"schemas": [USER]}});
    let mut req = bulk(Value::Array(again));
    req["failOnErrors"] = json!(1);
    let (s, b) = app.post("full", "/Bulk", req).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["Operations"].as_array().unwrap().len(), 6, "{b}");
    let (_, users) = app.get("full", "/Users?count=0").await;
    assert_eq!(
        users["totalResults"], 61,
        "the five creates before the error stay"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_limits_and_malformed_requests() {
    let small = "id: small\ntokens: [tok-small]\nresource_types: { User: {} }\nlimits: { bulk_max_operations: 2, bulk_max_payload_bytes: 400 }\n";
    let app = TestApp::spawn(&[("small.yaml", small)]).await;
    let op = |n: usize| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{n}"), "data": {"schemas": [USER], "userName": format!("u{n}")}});
    let (s, b) = app
        .post("small", "/Bulk", bulk(json!([op(1), op(2), op(3)])))
        .await;
    assert_error(s, &b, 413, None);
    let big = json!({"method": "POST", "path": "/Users", "bulkId": "big", "data": {"schemas": [USER], "userName": "x".repeat(500)}});
    let (s, b) = app.post("small", "/Bulk", bulk(json!([big]))).await;
    assert_error(s, &b, 413, None);
    let (_, spc) = app.get("small", "/ServiceProviderConfig").await;
    assert_eq!(
        (
            spc["bulk"]["maxOperations"].as_u64(),
            spc["bulk"]["maxPayloadSize"].as_u64()
        ),
        (Some(2), Some(400))
    );
    for body in [
        json!({"Operations": []}),
        bulk(
            json!([{"method": "POST", "path": "/Users", "data": {"schemas": [USER], "userName": "nobulkid"}}]),
        ),
        bulk(json!([{"method": "GET", "path": "/Users"}])),
        bulk(json!([op(1), {"method": "POST", "path": "/Users", "bulkId": "b1", "data": {}}])),
    ] {
        let (s, b) = app.post("small", "/Bulk", body).await;
        assert_error(s, &b, 400, Some("invalidSyntax"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn root_search_spans_resource_types_and_pages_across_them() {
    let app = TestApp::default().await;
    for i in 0..3 {
        app.post(
            "full",
            "/Users",
            json!({"schemas": [USER], "userName": format!("s{i}"), "externalId": "shared"}),
        )
        .await;
    }
    for i in 0..2 {
        app.post(
            "full",
            "/Groups",
            json!({"schemas": [GROUP], "displayName": format!("g{i}"), "externalId": "shared"}),
        )
        .await;
    }
    let search = |start: i64, count: i64| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "externalId eq \"shared\"", "startIndex": start, "count": count});
    let (s, b) = app.post("full", "/.search", search(1, 10)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["totalResults"], 5);
    // Resource types in order (Agent, Entitlement, Group, Role, User): groups at 1-2, users at 3-5.
    let names = |b: &Value| -> Vec<String> {
        b["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["userName"]
                    .as_str()
                    .or(r["displayName"].as_str())
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let (_, b) = app.post("full", "/.search", search(2, 2)).await;
    assert_eq!(names(&b), ["g1", "s0"], "{b}");
    let (_, b) = app.post("full", "/.search", search(4, 10)).await;
    assert_eq!(names(&b), ["s1", "s2"], "{b}");
    assert_eq!(
        (b["startIndex"].as_u64(), b["itemsPerPage"].as_u64()),
        (Some(4), Some(2))
    );
    // An attribute only Users have: other types contribute nothing.
    let (_, b) = app
        .post("full", "/.search", json!({"filter": "userName sw \"s\""}))
        .await;
    assert_eq!(b["totalResults"], 3, "{b}");
    let (s, b) = app
        .post("full", "/.search", json!({"filter": "nothing eq 1"}))
        .await;
    assert_error(s, &b, 400, Some("invalidFilter"));
}
