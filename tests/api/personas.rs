//! Provider personas: the shipped `aws-iam-identity-center` server reproduces AWS IAM Identity
//! Center's documented SCIM limits, and every refusal names the limit and the persona.

use crate::common::{TestApp, assert_error};
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const AWS: &str = "aws-iam-identity-center";

async fn app() -> TestApp {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/servers.d/aws-iam-identity-center.yaml"
    ))
    .unwrap();
    let def = shipped.replace("dev-token-aws", &format!("tok-{AWS}"));
    TestApp::spawn(&[("aws.yaml", &def)]).await
}

/// A refusal that names the persona.
fn refused(status: u16, body: &Value, want: u16, scim_type: Option<&str>) {
    assert_error(status, body, want, scim_type);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("persona AWS IAM Identity Center"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_endpoints_and_values_are_limited_as_documented() {
    let app = app().await;
    let (s, b) = app
        .get(
            AWS,
            "/Users?filter=userName%20eq%20%22x%22%20and%20active%20eq%20true",
        )
        .await;
    assert_eq!(s, 200, "{b}");
    for filter in [
        "userName co \"x\"",
        "userName eq \"x\" or userName eq \"y\"",
        "emails[type eq \"work\"]",
    ] {
        let (s, b) = app
            .get(
                AWS,
                &format!("/Users?filter={}", crate::common::urlencode(filter)),
            )
            .await;
        refused(s, &b, 400, Some("invalidFilter"));
    }
    let bulk =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []});
    let (s, b) = app.post(AWS, "/Bulk", bulk).await;
    refused(s, &b, 501, None);
    let (s, b) = app
        .post(
            AWS,
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
        )
        .await;
    refused(s, &b, 501, None);
    let (_, spc) = app.get(AWS, "/ServiceProviderConfig").await;
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(spc["filter"]["maxResults"], 50);

    let two = json!({"schemas": [USER], "userName": "ann",
                     "emails": [{"value": "a@example.com"}, {"value": "b@example.com"}]});
    let (s, b) = app.post(AWS, "/Users", two).await;
    refused(s, &b, 400, Some("invalidValue"));
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("emails holds 2 values"),
        "{b}"
    );
    let (s, _) = app
        .post(
            AWS,
            "/Users",
            json!({"schemas": [USER], "userName": "ann", "emails": [{"value": "a@example.com"}]}),
        )
        .await;
    assert_eq!(s, 201);
    for i in 0..60 {
        app.post(
            AWS,
            "/Users",
            json!({"schemas": [USER], "userName": format!("u{i}")}),
        )
        .await;
    }
    let (_, page) = app.get(AWS, "/Users?count=100").await;
    assert_eq!(page["itemsPerPage"], 50, "at most 50 results");
    assert_eq!(page["totalResults"], 61);
}

#[tokio::test(flavor = "multi_thread")]
async fn group_membership_changes_are_capped_and_never_whole_list() {
    let app = app().await;
    let mut ids = Vec::new();
    for i in 0..101 {
        let (_, u) = app
            .post(
                AWS,
                "/Users",
                json!({"schemas": [USER], "userName": format!("m{i}")}),
            )
            .await;
        ids.push(u["id"].as_str().unwrap().to_string());
    }
    let members =
        |n: usize| -> Vec<Value> { ids[..n].iter().map(|id| json!({"value": id})).collect() };
    let (s, b) = app
        .post(
            AWS,
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "big", "members": members(101)}),
        )
        .await;
    refused(s, &b, 400, Some("invalidValue"));
    assert!(b["detail"].as_str().unwrap().contains("at most 100"), "{b}");
    let (s, g) = app
        .post(
            AWS,
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "team", "members": members(2)}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    // GetGroup and ListGroups return no members.
    assert!(g.get("members").is_none(), "{g}");
    let (_, got) = app.get(AWS, &format!("/Groups/{gid}")).await;
    assert!(got.get("members").is_none(), "{got}");
    // ... but the memberships exist: the users' groups show them.
    let (_, u) = app.get(AWS, &format!("/Users/{}", ids[0])).await;
    assert_eq!(u["groups"][0]["value"], json!(gid), "{u}");

    let path = format!("/Groups/{gid}");
    let (s, b) = app
        .patch(
            AWS,
            &path,
            json!([{"op": "add", "path": "members", "value": members(101)}]),
        )
        .await;
    refused(s, &b, 400, Some("invalidValue"));
    let (s, b) = app
        .patch(
            AWS,
            &path,
            json!([{"op": "replace", "path": "members", "value": members(1)}]),
        )
        .await;
    refused(s, &b, 400, Some("invalidValue"));
    let (s, b) = app
        .patch(AWS, &path, json!([{"op": "remove", "path": "members"}]))
        .await;
    refused(s, &b, 400, Some("invalidValue"));
    let (s, b) = app
        .patch(
            AWS,
            &path,
            json!([{"op": "add", "path": "members", "value": members(100)}]),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let remove = format!("members[value eq \"{}\"]", ids[0]);
    let (s, b) = app
        .patch(AWS, &path, json!([{"op": "remove", "path": remove}]))
        .await;
    assert!(s == 200 || s == 204, "{s} {b}");
    let (_, u) = app.get(AWS, &format!("/Users/{}", ids[0])).await;
    assert!(u.get("groups").is_none(), "{u}");
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_takes_single_eq_or_sw_filters() {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/servers.d/snowflake.yaml"
    ))
    .unwrap();
    let app = TestApp::spawn(&[(
        "snowflake.yaml",
        &shipped.replace("dev-token-snowflake", "tok-snowflake"),
    )])
    .await;
    app.post(
        "snowflake",
        "/Users",
        json!({"schemas": [USER], "userName": "ann"}),
    )
    .await;
    for ok in ["userName eq \"ann\"", "userName sw \"a\""] {
        let (s, b) = app
            .get(
                "snowflake",
                &format!("/Users?filter={}", crate::common::urlencode(ok)),
            )
            .await;
        assert_eq!((s, b["totalResults"].clone()), (200, json!(1)), "{ok}: {b}");
    }
    for refused_filter in [
        "userName eq \"ann\" and active eq true",
        "userName co \"n\"",
        "userName pr",
    ] {
        let (s, b) = app
            .get(
                "snowflake",
                &format!("/Users?filter={}", crate::common::urlencode(refused_filter)),
            )
            .await;
        assert_error(s, &b, 400, Some("invalidFilter"));
        assert!(
            b["detail"].as_str().unwrap().contains("persona Snowflake"),
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_allows_a_burst_of_180_writes_then_429_naming_the_persona() {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/servers.d/slack.yaml"))
            .unwrap();
    let app = TestApp::spawn(&[(
        "slack.yaml",
        &shipped.replace("dev-token-slack", "tok-slack"),
    )])
    .await;
    let started = std::time::Instant::now();
    let mut passed = 0;
    let limited = loop {
        let (s, b, h) = app
            .send(reqwest::Method::DELETE, "slack", "/Users/none", None)
            .await;
        if s == 429 {
            break (b, h);
        }
        assert_eq!(s, 404);
        passed += 1;
        assert!(passed < 400, "no 429 after {passed} writes");
    };
    // 180 at once, plus what 600/min refilled meanwhile (10 per second).
    let refilled = (started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    assert!(
        passed >= 180 && passed <= 180 + refilled,
        "{passed} writes passed"
    );
    let (body, headers) = limited;
    assert!(headers.contains_key("retry-after"));
    assert!(
        body["detail"].as_str().unwrap().contains("persona Slack"),
        "{body}"
    );
    // Reads have their own, larger budget.
    assert_eq!(app.get("slack", "/Users").await.0, 200);
}
