//! Conformance gaps third-party suites found (RFC 7643/7644): PATCH on a whole extension,
//! the enterprise manager's `$ref`, where missing values sort, and `attributes` that are not
//! attribute paths.

use crate::common::{TestApp, assert_error, urlencode};
use serde_json::json;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[tokio::test(flavor = "multi_thread")]
async fn patch_path_naming_a_whole_extension_changes_its_attributes() {
    let app = TestApp::default().await;
    let boss = app.user("full", "boss").await;
    let id = app.user("full", "worker").await;
    let at = format!("/Users/{id}");
    // add: each attribute of the value is added (RFC 7644 §3.5.2.1).
    let (s, b) = app
        .patch(
            "full",
            &at,
            json!([{"op": "add", "path": ENT, "value": {"department": "R&D", "manager": {"value": boss}}}]),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b[ENT]["department"], "R&D", "{b}");
    assert_eq!(b[ENT]["manager"]["value"], boss.as_str(), "{b}");
    // replace: attributes not in the value are left as they are (§3.5.2.3).
    let (s, b) = app
        .patch(
            "full",
            &at,
            json!([{"op": "replace", "path": ENT, "value": {"department": "Ops"}}]),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b[ENT]["department"], "Ops", "{b}");
    assert_eq!(b[ENT]["manager"]["value"], boss.as_str(), "{b}");
    // A value that is not an object says what it should be.
    let (s, b) = app
        .patch(
            "full",
            &at,
            json!([{"op": "replace", "path": ENT, "value": "Ops"}]),
        )
        .await;
    assert_error(s, &b, 400, Some("invalidValue"));
    // remove: the whole extension goes.
    let (s, b) = app
        .patch("full", &at, json!([{"op": "remove", "path": ENT}]))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.get(ENT).is_none(), "{b}");
    let (_, b) = app.get("full", &at).await;
    assert!(b.get(ENT).is_none(), "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_managers_ref_is_returned() {
    let app = TestApp::default().await;
    let boss = app.user("full", "boss").await;
    let body = json!({
        "schemas": [USER, ENT],
        "userName": "report",
        ENT: {"manager": {"value": boss, "$ref": format!("https://elsewhere/Users/{boss}")}},
    });
    let (s, b) = app.post("full", "/Users", body).await;
    assert_eq!(s, 201, "{b}");
    let href = b[ENT]["manager"]["$ref"].as_str().unwrap_or_default();
    assert!(
        href.ends_with(&format!("/scim-identifier/full/scim/v2/Users/{boss}")),
        "{b}"
    );
    let id = b["id"].as_str().unwrap();
    let (_, b) = app.get("full", &format!("/Users/{id}")).await;
    assert_eq!(b[ENT]["manager"]["$ref"], href, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_sort_values_come_last_ascending_and_first_descending() {
    let app = TestApp::default().await;
    for (name, title) in [("a", Some("Alpha")), ("b", None), ("c", Some("Gamma"))] {
        let mut u = json!({"schemas": [USER], "userName": name});
        if let Some(t) = title {
            u["title"] = json!(t);
        }
        let (s, b) = app.post("full", "/Users", u).await;
        assert_eq!(s, 201, "{b}");
    }
    let order = |b: serde_json::Value| -> Vec<String> {
        (b["Resources"].as_array().unwrap().iter())
            .map(|r| r["userName"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, b) = app.get("full", "/Users?sortBy=title").await;
    assert_eq!(order(b), ["a", "c", "b"]);
    let (_, b) = app
        .get("full", "/Users?sortBy=title&sortOrder=descending")
        .await;
    assert_eq!(order(b), ["b", "c", "a"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn attributes_that_are_not_attribute_paths_are_refused() {
    let app = TestApp::default().await;
    let id = app.user("full", "someone").await;
    let filter = urlencode("emails[type eq \"work\"]");
    for path in [
        format!("/Users?attributes={filter}"),
        format!("/Users/{id}?attributes={filter}"),
        format!("/Users?excludedAttributes={filter}"),
    ] {
        let (s, b) = app.get("full", &path).await;
        assert_error(s, &b, 400, Some("invalidValue"));
        let detail = b["detail"].as_str().unwrap();
        assert!(detail.contains("value filter"), "{path}: {b}");
    }
    // The same in a SearchRequest body.
    let (s, b) = app
        .post(
            "full",
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "attributes": ["emails[type eq \"work\"]"]}),
        )
        .await;
    assert_error(s, &b, 400, Some("invalidValue"));
    // Attribute paths still work.
    let (s, b) = app
        .get(
            "full",
            &format!("/Users/{id}?attributes=emails.value,userName"),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}
