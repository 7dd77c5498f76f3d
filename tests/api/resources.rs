//! The generic resource engine over HTTP: create, read, replace, patch, delete, list.
use crate::common;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CUSTOM: &str = "urn:scimlab:schemas:extension:full:2.0:User";

fn bjensen() -> Value {
    json!({
        "schemas": [USER, ENT, CUSTOM],
        "userName": "bjensen",
        "externalId": "EXT-1",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "active": true,
        "password": "t1meMa$heen",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@home.example", "type": "home"}],
        ENT: {"employeeNumber": "701984", "department": "Tour Operations"},
        CUSTOM: {"region": "EMEA", "badge": "B-1", "level": 3, "score": 4.5, "hired": "2020-01-02T03:04:05+01:00", "secret": "s", "nick": "Babs", "tags": ["a", "b"]}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn create_returns_201_with_location_meta_and_etag() {
    let app = TestApp::default().await;
    let (s, b, h) = app
        .send(Method::POST, "full", "/Users", Some(bjensen()))
        .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap();
    let loc = format!("{}/Users/{id}", app.base("full"));
    assert_eq!(h["location"], loc.as_str());
    assert_eq!(b["meta"]["location"], loc.as_str());
    assert_eq!(b["meta"]["resourceType"], "User");
    assert_eq!(b["meta"]["version"], "W/\"1\"");
    assert_eq!(h["etag"], "W/\"1\"");
    assert_eq!(b["meta"]["created"], b["meta"]["lastModified"]);
    assert_eq!(h["content-type"], "application/scim+json");
    assert!(
        b.get("password").is_none(),
        "password must never be returned: {b}"
    );
    assert!(
        b[CUSTOM].get("secret").is_none(),
        "writeOnly custom attribute returned: {b}"
    );
    assert!(
        b[CUSTOM].get("nick").is_none(),
        "returned:request attribute returned by default: {b}"
    );
    assert_eq!(
        b[CUSTOM]["hired"], "2020-01-02T02:04:05.000Z",
        "dateTime normalised to UTC"
    );
    assert_eq!(b[ENT]["employeeNumber"], "701984");
    let schemas: Vec<&str> = b["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(schemas, [USER, ENT, CUSTOM]);

    let (s, got, h) = app
        .send(Method::GET, "full", &format!("/Users/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(got, b);
    assert_eq!(h["etag"], "W/\"1\"");

    // Ids are time-ordered UUIDs (RFC 9562 version 7): a later create's id sorts after an
    // earlier one's, so new ids append to the by-id index.
    let uuid = uuid::Uuid::parse_str(id).expect("the id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "{id}");
    let mut next = bjensen();
    next["userName"] = json!("bjensen2");
    next["externalId"] = json!("EXT-2");
    let (s, b2, _) = app.send(Method::POST, "full", "/Users", Some(next)).await;
    assert_eq!(s, 201, "{b2}");
    assert!(b2["id"].as_str().unwrap() > id, "{} after {id}", b2["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn attribute_names_are_case_insensitive_and_stored_canonically() {
    let app = TestApp::default().await;
    let (s, b) = app.post("full", "/Users", json!({
        "SCHEMAS": [USER], "USERNAME": "Case", "Name": {"GIVENNAME": "C"}, "EMAILS": [{"VALUE": "c@x.org", "Type": "work"}]
    })).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["userName"], "Case");
    assert_eq!(b["name"]["givenName"], "C");
    assert_eq!(b["emails"][0]["value"], "c@x.org");
    assert_eq!(app.names("full", "USERNAME Eq \"case\"").await, ["Case"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_documents_get_400_with_the_right_scim_type() {
    let app = TestApp::default().await;
    let cases = [
        (json!({"userName": "x"}), "invalidSyntax"),
        (json!({"schemas": "x", "userName": "x"}), "invalidSyntax"),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "x"}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER, "urn:unknown"], "userName": "x"}),
            "invalidValue",
        ),
        (json!({"schemas": [USER]}), "invalidValue"),
        (json!({"schemas": [USER], "userName": 42}), "invalidValue"),
        (
            json!({"schemas": [USER], "userName": "x", "active": "yes"}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "emails": {"value": "a"}}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "name": "flat"}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "nope": 1}),
            "invalidSyntax",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "name": {"nope": "a"}}),
            "invalidSyntax",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "emails": [{"value": "a", "type": "weird"}]}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER, CUSTOM], "userName": "x", CUSTOM: {"region": "MARS"}}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER, CUSTOM], "userName": "x", CUSTOM: {"level": 1.5}}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER, CUSTOM], "userName": "x", CUSTOM: {"hired": "yesterday"}}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "x509Certificates": [{"value": "not base64!"}]}),
            "invalidValue",
        ),
        (
            json!({"schemas": [USER], "userName": "x", "urn:other:ext": {}}),
            "invalidSyntax",
        ),
        (json!([1, 2]), "invalidSyntax"),
    ];
    for (body, scim_type) in cases {
        let (s, b) = app.post("full", "/Users", body).await;
        assert_error(s, &b, 400, Some(scim_type));
    }
    let (_, list) = app.get("full", "/Users").await;
    assert_eq!(list["totalResults"], 0, "no bad document was stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn lenient_servers_drop_unknown_attributes_and_read_boolean_strings() {
    let app = TestApp::default().await;
    let (s, b) = app
        .post(
            "other",
            "/Users",
            json!({
                "schemas": [USER, "urn:unknown"], "userName": "len", "active": "False", "nope": 1,
                "emails": [{"value": "a@b.c", "type": "weird"}]
            }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["active"], false);
    assert!(b.get("nope").is_none());
    assert_eq!(
        b["emails"][0]["type"], "weird",
        "canonical values are not enforced when lenient"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uniqueness_is_case_insensitive_for_user_name_and_per_server() {
    let app = TestApp::default().await;
    app.user("full", "Alice").await;
    let (s, b) = app
        .post(
            "full",
            "/Users",
            json!({"schemas": [USER], "userName": "ALICE"}),
        )
        .await;
    assert_error(s, &b, 409, Some("uniqueness"));
    assert!(b["detail"].as_str().unwrap().contains("userName"), "{b}");
    app.user("other", "alice").await;
    // Renaming into a taken name is refused as well, and leaves the resource as it was.
    let bob = app.user("full", "bob").await;
    let (s, b) = app
        .patch(
            "full",
            &format!("/Users/{bob}"),
            json!([{"op": "replace", "path": "userName", "value": "alice"}]),
        )
        .await;
    assert_error(s, &b, 409, Some("uniqueness"));
    let (s, b) = app
        .put(
            "full",
            &format!("/Users/{bob}"),
            json!({"schemas": [USER], "userName": "Alice"}),
        )
        .await;
    assert_error(s, &b, 409, Some("uniqueness"));
    let (_, b) = app.get("full", &format!("/Users/{bob}")).await;
    assert_eq!(b["userName"], "bob");
    // A change that keeps the unique values is no conflict.
    let (s, b) = app
        .patch(
            "full",
            &format!("/Users/{bob}"),
            json!([{"op": "replace", "path": "displayName", "value": "Bob"}]),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // Agent names are unique per server, case-insensitively.
    let agent =
        |n: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Agent"], "name": n});
    assert_eq!(app.post("full", "/Agents", agent("Helper")).await.0, 201);
    let (s, b) = app.post("full", "/Agents", agent("helper")).await;
    assert_error(s, &b, 409, Some("uniqueness"));
}

#[tokio::test(flavor = "multi_thread")]
async fn put_replaces_ignores_read_only_and_refuses_immutable_changes() {
    let app = TestApp::default().await;
    let (_, created) = app.post("full", "/Users", bjensen()).await;
    let id = created["id"].as_str().unwrap();
    let mut doc = created.clone();
    doc["displayName"] = json!("Barbara J");
    doc["id"] = json!("forged-id");
    doc["meta"] = json!({"version": "W/\"99\""});
    doc["groups"] = json!([{"value": "g1"}]);
    doc.as_object_mut().unwrap().remove("nickName");
    doc.as_object_mut().unwrap().remove("emails");
    let (s, b) = app.put("full", &format!("/Users/{id}"), doc.clone()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["id"], id);
    assert_eq!(b["displayName"], "Barbara J");
    assert!(
        b.get("emails").is_none(),
        "PUT replaces: omitted attributes are removed"
    );
    assert!(b.get("groups").is_none(), "readOnly groups ignored");
    assert_eq!(b["meta"]["version"], "W/\"2\"");
    assert_eq!(b[CUSTOM]["badge"], "B-1");
    // An immutable value cannot change once set.
    doc[CUSTOM]["badge"] = json!("B-2");
    let (s, b) = app.put("full", &format!("/Users/{id}"), doc.clone()).await;
    assert_error(s, &b, 400, Some("mutability"));
    // PUT with identical content does not change the version.
    doc[CUSTOM]["badge"] = json!("B-1");
    let (_, b) = app.put("full", &format!("/Users/{id}"), doc).await;
    assert_eq!(b["meta"]["version"], "W/\"2\"");
    let (s, b) = app.put("full", "/Users/missing", bjensen()).await;
    assert_error(s, &b, 404, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_add_remove_replace_on_simple_sub_attribute_and_filtered_paths() {
    let app = TestApp::default().await;
    let (_, created) = app.post("full", "/Users", bjensen()).await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let (s, b) = app.patch("full", &path, json!([
        {"op": "replace", "path": "displayName", "value": "B"},
        {"op": "add", "path": "name.middleName", "value": "M"},
        {"op": "remove", "path": "name.familyName"},
        {"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other"}]},
        {"op": "replace", "path": "emails[type eq \"home\"].value", "value": "babs@new.example"},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"},
        {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "boss"}},
        {"op": "add", "path": "urn:scimlab:schemas:extension:full:2.0:User:tags", "value": ["b", "c"]}
    ])).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["displayName"], "B");
    assert_eq!(
        b["name"],
        json!({"givenName": "Barbara", "middleName": "M"})
    );
    let emails: Vec<&str> = b["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["bjensen@example.com", "babs@new.example", "new@example.com"]
    );
    assert_eq!(b[ENT]["department"], "Sales");
    assert_eq!(b[ENT]["manager"]["value"], "boss");
    assert_eq!(
        b[CUSTOM]["tags"],
        json!(["a", "b", "c"]),
        "add merges without duplicates"
    );
    assert_eq!(b["meta"]["version"], "W/\"2\"");

    // Path-less replace with an object value; remove by value filter.
    let (s, b) = app
        .patch(
            "full",
            &path,
            json!([
                {"op": "replace", "value": {"active": false, "nickName": "Babs"}},
                {"op": "remove", "path": "emails[type eq \"other\"]"}
            ]),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["active"], false);
    assert_eq!(b["emails"].as_array().unwrap().len(), 2);

    // A new primary clears the others.
    let (_, b) = app.patch("full", &path, json!([{"op": "add", "path": "emails", "value": [{"value": "p@x.org", "type": "work", "primary": true}]}])).await;
    let primaries: Vec<&str> = b["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["primary"] == true)
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(primaries, ["p@x.org"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_errors_leave_the_resource_untouched() {
    let app = TestApp::default().await;
    let (_, created) = app.post("full", "/Users", bjensen()).await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let cases = [
        (
            json!([{"op": "replace", "path": "displayName", "value": "changed"}, {"op": "remove", "path": "userName"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "displayName", "value": "changed"}, {"op": "replace", "path": "id", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "groups", "value": []}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "urn:scimlab:schemas:extension:full:2.0:User:badge", "value": "B-9"}]),
            "mutability",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "emails[type eq \"pager\"].value", "value": "x"}]),
            "noTarget",
        ),
        (
            json!([{"op": "remove", "path": "emails[type eq \"pager\"]"}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "nope", "value": 1}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq", "value": 1}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "jump", "path": "active", "value": true}]),
            "invalidSyntax",
        ),
        (
            json!([{"op": "add", "path": "displayName"}]),
            "invalidValue",
        ),
        (json!([]), "invalidSyntax"),
    ];
    for (ops, scim_type) in cases {
        let (s, b) = app.patch("full", &path, ops).await;
        assert_error(s, &b, 400, Some(scim_type));
    }
    let (s, b, _) = app
        .send(
            Method::PATCH,
            "full",
            &path,
            Some(json!({"Operations": [{"op": "remove", "path": "title"}]})),
        )
        .await;
    assert_error(s, &b, 400, Some("invalidSyntax"));
    let (_, now) = app.get("full", &path).await;
    assert_eq!(
        now, created,
        "failed PATCHes changed nothing, not even the version"
    );
    // A PATCH that changes nothing keeps the version.
    let (_, b) = app
        .patch(
            "full",
            &path,
            json!([{"op": "replace", "path": "displayName", "value": "Babs Jensen"}]),
        )
        .await;
    assert_eq!(b["meta"]["version"], "W/\"1\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_is_204_then_404() {
    let app = TestApp::default().await;
    let id = app.user("full", "gone").await;
    let (s, body, _) = app
        .send(Method::DELETE, "full", &format!("/Users/{id}"), None)
        .await;
    assert_eq!((s, body), (204, Value::Null));
    let (s, b) = app.get("full", &format!("/Users/{id}")).await;
    assert_error(s, &b, 404, None);
    assert_eq!(app.delete("full", &format!("/Users/{id}")).await, 404);
    // The userName is free again.
    app.user("full", "gone").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_with_start_index_and_count() {
    let app = TestApp::default().await;
    for i in 0..7 {
        app.user("full", &format!("u{i}")).await;
    }
    let (_, b) = app.get("full", "/Users?startIndex=3&count=2").await;
    assert_eq!(
        (
            b["totalResults"].as_u64(),
            b["itemsPerPage"].as_u64(),
            b["startIndex"].as_u64()
        ),
        (Some(7), Some(2), Some(3))
    );
    let names: Vec<&str> = b["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["u2", "u3"]);
    let (_, b) = app.get("full", "/Users?count=0").await;
    assert_eq!(
        (
            b["totalResults"].as_u64(),
            b["Resources"].as_array().map(Vec::len)
        ),
        (Some(7), Some(0))
    );
    let (_, b) = app.get("full", "/Users?startIndex=0&count=100").await;
    assert_eq!(
        (b["startIndex"].as_u64(), b["itemsPerPage"].as_u64()),
        (Some(1), Some(7))
    );
    let (_, b) = app.get("full", "/Users?startIndex=50").await;
    assert_eq!(b["Resources"].as_array().unwrap().len(), 0);
    let (s, b) = app.get("full", "/Users?count=many").await;
    assert_error(s, &b, 400, Some("invalidValue"));
    // Walking pages visits every resource exactly once.
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let (_, b) = app
            .get("full", &format!("/Users?startIndex={start}&count=3"))
            .await;
        let page = b["Resources"].as_array().unwrap();
        if page.is_empty() {
            break;
        }
        seen.extend(
            page.iter()
                .map(|r| r["userName"].as_str().unwrap().to_string()),
        );
        start += 3;
    }
    assert_eq!(seen, (0..7).map(|i| format!("u{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn query_parameter_names_match_in_any_case_and_the_last_value_counts() {
    let app = TestApp::default().await;
    for i in 0..5 {
        app.user("full", &format!("u{i}")).await;
    }
    // RFC 7644 §3.4.2: parameter names are case-insensitive; a repeated one means its last
    // value; `+` is a space (application/x-www-form-urlencoded).
    let (s, b) = app
        .get(
            "full",
            "/Users?STARTINDEX=2&Count=4&count=1&FILTER=userName+sw+%22u%22&SortBy=userName&sortorder=descending",
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            b["totalResults"].as_u64(),
            b["itemsPerPage"].as_u64(),
            b["startIndex"].as_u64(),
            b["Resources"][0]["userName"].as_str()
        ),
        (Some(5), Some(1), Some(2), Some("u3")),
        "{b}"
    );
    let (_, all) = app.get("full", "/Users?count=1").await;
    let (s, b) = app.get("full", "/Users?ATTRIBUTES=userName&count=1").await;
    assert_eq!(s, 200, "{b}");
    let keys = |b: &Value| {
        let mut k: Vec<String> = b["Resources"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert!(keys(&all).len() > keys(&b).len(), "{all} {b}");
    assert!(keys(&b).contains(&"userName".to_string()), "{b}");
    let (s, b) = app.get("full", "/Users?COUNT=x").await;
    assert_error(s, &b, 400, Some("invalidValue"));
    assert!(b["detail"].as_str().unwrap().contains("count"), "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_cover_every_operator_with_typed_and_case_rules() {
    let app = TestApp::default().await;
    let mk = |name: &str, ext: &str, level: i64, active: bool, email: &str, hired: &str| {
        json!({
            "schemas": [USER, CUSTOM], "userName": name, "externalId": ext, "active": active, "title": if level > 1 { Value::from("Boss") } else { Value::Null },
            "emails": [{"value": email, "type": "work"}],
            CUSTOM: {"level": level, "hired": hired, "region": "EMEA"}
        })
    };
    for (n, e, l, a, m, h) in [
        (
            "alice",
            "A-1",
            1,
            true,
            "alice@corp.example",
            "2020-01-01T00:00:00Z",
        ),
        (
            "bob",
            "b-2",
            2,
            false,
            "bob@home.example",
            "2021-06-01T12:00:00+02:00",
        ),
        (
            "Carol",
            "C-3",
            3,
            true,
            "carol@corp.example",
            "2022-01-01T00:00:00Z",
        ),
    ] {
        let (s, b) = app.post("full", "/Users", mk(n, e, l, a, m, h)).await;
        assert_eq!(s, 201, "{b}");
    }
    let cases: &[(&str, &[&str])] = &[
        ("userName eq \"ALICE\"", &["alice"]),
        ("userName ne \"alice\"", &["Carol", "bob"]),
        ("userName co \"AR\"", &["Carol"]),
        ("userName sw \"b\"", &["bob"]),
        ("userName ew \"OL\"", &["Carol"]),
        ("userName gt \"bob\"", &["Carol"]),
        ("userName ge \"bob\"", &["Carol", "bob"]),
        ("userName lt \"bob\"", &["alice"]),
        ("userName le \"bob\"", &["alice", "bob"]),
        ("title pr", &["Carol", "bob"]),
        ("not (title pr)", &["alice"]),
        ("externalId eq \"b-2\"", &["bob"]),
        ("externalId eq \"B-2\"", &[]),
        ("active eq true", &["Carol", "alice"]),
        ("active eq false and userName sw \"b\"", &["bob"]),
        (
            "active eq false or userName eq \"alice\"",
            &["alice", "bob"],
        ),
        ("emails.value co \"corp\"", &["Carol", "alice"]),
        ("emails co \"home\"", &["bob"]),
        (
            "emails[type eq \"work\" and value sw \"carol\"]",
            &["Carol"],
        ),
        (
            "urn:scimlab:schemas:extension:full:2.0:User:level gt 1",
            &["Carol", "bob"],
        ),
        ("level le 2", &["alice", "bob"]),
        (
            "urn:scimlab:schemas:extension:full:2.0:User:hired ge \"2021-06-01T10:00:00Z\"",
            &["Carol", "bob"],
        ),
        ("hired lt \"2021-06-01T10:00:00.001Z\"", &["alice", "bob"]),
        (
            "meta.resourceType eq \"User\" and (userName eq \"bob\" or userName eq \"Carol\")",
            &["Carol", "bob"],
        ),
        (
            "meta.created gt \"2000-01-01T00:00:00Z\"",
            &["Carol", "alice", "bob"],
        ),
        ("id pr and userName eq \"nobody\"", &[]),
    ];
    for (filter, want) in cases {
        assert_eq!(app.names("full", filter).await, want.to_vec(), "{filter}");
    }
    for bad in [
        "userName eq",
        "active gt true",
        "nope eq 1",
        "level eq \"x\"",
        "name eq \"x\"",
        "userName eq 1",
        "x509Certificates.value gt \"a\"",
    ] {
        let (s, b) = app
            .get("full", &format!("/Users?filter={}", urlencode(bad)))
            .await;
        assert_error(s, &b, 400, Some("invalidFilter"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attributes_and_excluded_attributes_follow_returned_rules() {
    let app = TestApp::default().await;
    let (_, created) = app.post("full", "/Users", bjensen()).await;
    let id = created["id"].as_str().unwrap();
    let (_, b) = app
        .get(
            "full",
            &format!("/Users/{id}?attributes=userName,name.givenName"),
        )
        .await;
    let mut keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["id", "name", "schemas", "userName"]);
    assert_eq!(b["name"], json!({"givenName": "Barbara"}));
    let (_, b) = app
        .get(
            "full",
            &format!("/Users/{id}?excludedAttributes=emails,name.familyName,meta"),
        )
        .await;
    assert!(b.get("emails").is_none() && b.get("meta").is_none());
    assert_eq!(b["name"], json!({"givenName": "Barbara"}));
    assert_eq!(b["id"], id);
    let (_, b) = app
        .get(
            "full",
            &format!("/Users/{id}?attributes={CUSTOM}:nick,password,id"),
        )
        .await;
    assert_eq!(
        b[CUSTOM],
        json!({"nick": "Babs"}),
        "returned:request attributes come back when asked for"
    );
    assert!(
        b.get("password").is_none(),
        "password never comes back, even when asked for"
    );
    let (_, b) = app
        .get(
            "full",
            &format!("/Users?filter=userName%20eq%20%22bjensen%22&attributes={ENT}"),
        )
        .await;
    assert_eq!(b["Resources"][0][ENT]["employeeNumber"], "701984");
    assert!(b["Resources"][0].get("userName").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn sort_by_and_sort_order() {
    let app = TestApp::default().await;
    for n in ["b", "C", "a"] {
        app.user("full", n).await;
    }
    let names = |b: &Value| {
        b["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (_, b) = app.get("full", "/Users?sortBy=userName").await;
    assert_eq!(names(&b), ["a", "b", "C"]);
    let (_, b) = app
        .get("full", "/Users?sortBy=userName&sortOrder=descending")
        .await;
    assert_eq!(names(&b), ["C", "b", "a"]);
    let (s, b) = app.get("full", "/Users?sortBy=nope").await;
    assert_error(s, &b, 400, Some("invalidValue"));
}

#[tokio::test(flavor = "multi_thread")]
async fn search_with_post_dot_search() {
    let app = TestApp::default().await;
    app.user("full", "searched").await;
    app.user("full", "other").await;
    let (s, b) = app.post("full", "/Users/.search", json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"sea\"", "attributes": ["userName"], "startIndex": 1, "count": 10
    })).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["totalResults"], 1);
    assert_eq!(b["Resources"][0]["userName"], "searched");
    assert!(b["Resources"][0].get("meta").is_none());
}
#[tokio::test]
async fn filtered_first_pages_are_in_creation_order_with_the_whole_count() {
    let app = TestApp::default().await;
    // Created in an order that differs from userName order (an index walk would reorder).
    for name in ["m-zed", "x-1", "m-amy", "x-2", "m-kim", "m-bob"] {
        app.user("full", name).await;
    }
    let names = |b: &serde_json::Value| -> Vec<String> {
        b["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_string())
            .collect()
    };
    // A page that is not full holds every match: in creation order, counted exactly.
    let (_, b) = app
        .get("full", "/Users?filter=userName%20sw%20%22m-%22")
        .await;
    assert_eq!(b["totalResults"].as_u64(), Some(4));
    assert_eq!(names(&b), ["m-zed", "m-amy", "m-kim", "m-bob"]);
    // A full page counts every match, not only the page.
    let (_, b) = app
        .get("full", "/Users?filter=userName%20sw%20%22m-%22&count=2")
        .await;
    assert_eq!(b["totalResults"].as_u64(), Some(4));
    assert_eq!(names(&b), ["m-zed", "m-amy"]);
    // An indexed equality: one match, or none.
    let (_, b) = app
        .get("full", "/Users?filter=userName%20eq%20%22M-KIM%22")
        .await;
    assert_eq!(
        (b["totalResults"].as_u64(), names(&b)),
        (Some(1), vec!["m-kim".to_string()])
    );
    let (_, b) = app
        .get("full", "/Users?filter=userName%20eq%20%22nobody%22")
        .await;
    assert_eq!(b["totalResults"].as_u64(), Some(0));
}
