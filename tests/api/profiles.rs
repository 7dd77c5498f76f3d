//! Profiles: each rule kind allowed and refused over HTTP, catalogues, data filters in list,
//! filter and reads, combination rules and located conflicts, `/Schemas`, hot reload.

use crate::common;

use common::{TestApp, assert_error, eventually};
use serde_json::{Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A profile exercising every rule kind.
const RULES: &str = r#"
id: rules
resource_type: User
attributes:
  userName: {}
  name.givenName: { required: true }
  name.familyName: {}
  displayName: {}
  title: { canonical_values: [Engineer, Manager] }
  nickName: { returned: request }
  active: {}
  userType: {}
  emails: {}
  entitlements: {}
  roles: {}
  urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber: { mutability: writeOnce }
  urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter: { mutability: immutable }
  urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department: { mutability: readOnly }
data_filter: userType ne "Robot"
catalogue:
  License:
    required: true
    multi_valued: false
    items:
      - { id: lic-a, display_name: License A }
      - { id: lic-b, display_name: License B }
  Role:
    items:
      - { id: role-x, display_name: Role X }
"#;

const SERVER: &str = r#"
id: shaped
tokens: [tok-shaped]
profiles: [rules]
resource_types:
  User:
    attributes:
      badge: { type: string }
  Group: {}
"#;

async fn app() -> TestApp {
    TestApp::spawn_with_profiles(&[("shaped.yaml", SERVER)], &[("rules.yaml", RULES)]).await
}

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "userName": name,
        "name": {"givenName": "Ada", "familyName": "L"},
        "title": "Engineer",
        "entitlements": [{"value": "lic-a", "type": "License"}],
        ENT: {"employeeNumber": "E1", "costCenter": "CC-1"}
    })
}

/// One PATCH operation on an enterprise-extension attribute (`Null`: no value).
async fn patch_enterprise(
    app: &TestApp,
    path: &str,
    op: &str,
    attr: &str,
    value: Value,
) -> (u16, Value) {
    let mut operation = json!({"op": op, "path": format!("{ENT}:{attr}")});
    if !value.is_null() {
        operation["value"] = value;
    }
    app.patch("shaped", path, json!([operation])).await
}

fn detail(b: &Value) -> String {
    b["detail"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn required_canonical_returned_and_hidden_attributes() {
    let app = app().await;
    assert_eq!(app.post("shaped", "/Users", user("ok")).await.0, 201);
    // required sub-attribute (and so its parent)
    let mut u = user("noname");
    u["name"] = json!({"familyName": "L"});
    let (s, b) = app.post("shaped", "/Users", u).await;
    assert_error(s, &b, 400, Some("invalidValue"));
    assert!(detail(&b).contains("givenName"), "{b}");
    u = user("nameless");
    u.as_object_mut().unwrap().remove("name");
    let (s, b) = app.post("shaped", "/Users", u).await;
    assert_error(s, &b, 400, Some("invalidValue"));
    // canonical values, with the allowed values and the profile in the detail
    u = user("badtitle");
    u["title"] = json!("Wizard");
    let (s, b) = app.post("shaped", "/Users", u).await;
    assert_error(s, &b, 400, Some("invalidValue"));
    assert!(
        detail(&b).contains("Engineer") && detail(&b).contains("profile rules"),
        "{b}"
    );
    // returned: request
    u = user("nick");
    u["nickName"] = json!("n");
    let (_, created) = app.post("shaped", "/Users", u).await;
    assert!(created.get("nickName").is_none(), "{created}");
    let id = created["id"].as_str().unwrap();
    let (_, b) = app
        .get("shaped", &format!("/Users/{id}?attributes=nickName"))
        .await;
    assert_eq!(b["nickName"], "n");
    // An attribute the profile does not list is not served: refused on a strict server.
    u = user("hidden");
    u["profileUrl"] = json!("https://x");
    let (s, b) = app.post("shaped", "/Users", u).await;
    assert_error(s, &b, 400, Some("invalidSyntax"));
    // The server file's own attributes stay served.
    u = user("badge");
    u["urn:scimlab:schemas:extension:shaped:2.0:User"] = json!({"badge": "B-7"});
    assert_eq!(app.post("shaped", "/Users", u).await.0, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_show_the_effective_definitions() {
    let app = app().await;
    let (s, core) = app
        .get(
            "shaped",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        )
        .await;
    assert_eq!(s, 200);
    let attrs = core["attributes"].as_array().unwrap();
    let attr = |n: &str| attrs.iter().find(|a| a["name"] == n).cloned();
    assert!(
        attr("profileUrl").is_none(),
        "hidden attributes are not shown"
    );
    assert_eq!(
        attr("title").unwrap()["canonicalValues"],
        json!(["Engineer", "Manager"])
    );
    assert_eq!(attr("nickName").unwrap()["returned"], "request");
    let name = attr("name").unwrap();
    assert_eq!(name["required"], true);
    let subs: Vec<&str> = name["subAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["familyName", "givenName"]);
    let (_, ext) = app.get("shaped", &format!("/Schemas/{ENT}")).await;
    let ext_attrs = ext["attributes"].as_array().unwrap();
    let e = |n: &str| ext_attrs.iter().find(|a| a["name"] == n).unwrap();
    assert_eq!(e("employeeNumber")["mutability"], "immutable");
    assert!(
        e("employeeNumber")["description"]
            .as_str()
            .unwrap()
            .contains("writeOnce")
    );
    assert_eq!(e("department")["mutability"], "readOnly");
    assert!(ext_attrs.iter().all(|a| a["name"] != "division"));
    // The catalogue's categories are Okta entitlement resource types.
    let (_, rts) = app.get("shaped", "/ResourceTypes/License").await;
    assert_eq!(rts["schema"], "urn:okta:scim:schemas:core:1.0:Entitlement");
}

#[tokio::test(flavor = "multi_thread")]
async fn write_once_immutable_and_read_only_each_way() {
    let app = app().await;
    // writeOnce: set at creation, never changed; may be set later while empty, once.
    let (_, b) = app.post("shaped", "/Users", user("w1")).await;
    let path = format!("/Users/{}", b["id"].as_str().unwrap());
    let (s, b) = patch_enterprise(&app, &path, "replace", "employeeNumber", json!("E2")).await;
    assert_error(s, &b, 400, Some("mutability"));
    assert!(
        detail(&b).contains("writeOnce") && detail(&b).contains("profile rules"),
        "{b}"
    );
    let (s, b) = patch_enterprise(&app, &path, "remove", "employeeNumber", Value::Null).await;
    assert_error(s, &b, 400, Some("mutability"));
    // Same value again is fine.
    let (s, _) = patch_enterprise(&app, &path, "replace", "employeeNumber", json!("E1")).await;
    assert_eq!(s, 200);
    let mut u = user("w2");
    u[ENT] = json!({"costCenter": "CC-1"});
    let (_, b) = app.post("shaped", "/Users", u).await;
    let path2 = format!("/Users/{}", b["id"].as_str().unwrap());
    let set = |v: &str| json!([{"op": "add", "path": format!("{ENT}:employeeNumber"), "value": v}]);
    assert_eq!(
        app.patch("shaped", &path2, set("E9")).await.0,
        200,
        "empty: settable once"
    );
    let (s, b) = app.patch("shaped", &path2, set("E10")).await;
    assert_error(s, &b, 400, Some("mutability"));

    // immutable: only at creation.
    let mut u = user("i1");
    u[ENT] = json!({"employeeNumber": "E3"});
    let (_, b) = app.post("shaped", "/Users", u).await;
    let path3 = format!("/Users/{}", b["id"].as_str().unwrap());
    let (s, b) = patch_enterprise(&app, &path3, "add", "costCenter", json!("CC-2")).await;
    assert_error(s, &b, 400, Some("mutability"));
    assert!(
        detail(&b).contains("only be set when the resource is created"),
        "{b}"
    );
    let (s, b) = patch_enterprise(&app, &path, "replace", "costCenter", json!("CC-2")).await;
    assert_error(s, &b, 400, Some("mutability"));

    // readOnly (profile): refused at creation, on change and on removal; unchanged is fine.
    let mut u = user("r1");
    u[ENT]["department"] = json!("Sales");
    let (s, b) = app.post("shaped", "/Users", u).await;
    assert_error(s, &b, 400, Some("mutability"));
    assert!(
        detail(&b).contains("readOnly") && detail(&b).contains("profile rules"),
        "{b}"
    );
    let (s, b) = patch_enterprise(&app, &path, "add", "department", json!("Sales")).await;
    assert_error(s, &b, 400, Some("mutability"));
    // A PUT of what GET returned succeeds (nothing readOnly changed).
    let (_, current) = app.get("shaped", &path).await;
    let (s, b) = app.put("shaped", &path, current).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn catalogue_categories_follow_oktas_rules() {
    let app = app().await;
    let (s, b) = app.get("shaped", "/Licenses").await;
    assert_eq!(s, 200);
    assert_eq!(b["totalResults"], 2);
    assert_eq!(b["Resources"][0]["type"], "License");
    let (_, r) = app.get("shaped", "/Roles/role-x").await;
    assert_eq!(r["displayName"], "Role X");
    // Required category: at least one.
    let mut u = user("c1");
    u.as_object_mut().unwrap().remove("entitlements");
    let (s, b) = app.post("shaped", "/Users", u).await;
    assert_error(s, &b, 400, Some("invalidValue"));
    assert!(
        detail(&b).contains("License") && detail(&b).contains("lic-a"),
        "{b}"
    );
    // Single-valued: at most one.
    u = user("c2");
    u["entitlements"] =
        json!([{"value": "lic-a", "type": "License"}, {"value": "lic-b", "type": "License"}]);
    let (s, b) = app.post("shaped", "/Users", u).await;
    assert_error(s, &b, 400, Some("invalidValue"));
    assert!(detail(&b).contains("at most one"), "{b}");
    // Unknown item: references are checked.
    u = user("c3");
    u["entitlements"] = json!([{"value": "lic-zzz", "type": "License"}]);
    let (s, _) = app.post("shaped", "/Users", u).await;
    assert_eq!(s, 400);
    // Without `type` the category is found from the item.
    u = user("c4");
    u["entitlements"] = json!([{"value": "lic-b"}]);
    u["roles"] = json!([{"value": "role-x"}]);
    let (s, b) = app.post("shaped", "/Users", u).await;
    assert_eq!(s, 201, "{b}");
    // Removing the last license later is refused too.
    let path = format!("/Users/{}", b["id"].as_str().unwrap());
    let (s, _) = app
        .patch(
            "shaped",
            &path,
            json!([{"op": "remove", "path": "entitlements"}]),
        )
        .await;
    assert_eq!(s, 400);
}

/// A create the view refuses is refused after its row is written, so inside a Bulk (whose
/// operations share transactions) it must undo only its own work: the creates around it stay.
#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_create_outside_the_view_fails_alone() {
    let app = app().await;
    let op = |name: &str, kind: &str| {
        let mut u = user(name);
        u["userType"] = json!(kind);
        json!({"method": "POST", "path": "/Users", "bulkId": name, "data": u})
    };
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [op("before", "Employee"), op("robot", "Robot"), op("after", "Employee")]
    });
    let (s, b) = app.post("shaped", "/Bulk", body).await;
    assert_eq!(s, 200, "{b}");
    let status: Vec<&str> = (b["Operations"].as_array().unwrap().iter())
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["201", "400", "201"], "{b}");
    let mut names = app.names("shaped", "userName pr").await;
    names.sort();
    assert_eq!(names, ["after", "before"]);
    let (_, counts) = app.get("shaped", "/Users?count=0").await;
    assert_eq!(counts["totalResults"], 2, "{counts}");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_filter_hides_resources_from_lists_filters_and_reads() {
    // The view hides robots.
    let app = app().await;
    let mut human = user("human");
    human["userType"] = json!("Employee");
    let (s, created) = app.post("shaped", "/Users", human).await;
    assert_eq!(s, 201);
    let human_id = created["id"].as_str().unwrap().to_string();
    // A resource outside the view cannot be created...
    let mut robot = user("robot");
    robot["userType"] = json!("Robot");
    let (s, b) = app.post("shaped", "/Users", robot).await;
    assert_error(s, &b, 400, Some("invalidValue"));
    assert!(detail(&b).contains("view"), "{b}");
    // ...so put one there below the API, as another application would have.
    let id = "hidden-robot";
    let model = app.state.as_ref().unwrap().model.load_full();
    let shaped = model.server("shaped").unwrap();
    app.store()
        .write(|tx| {
            scimlab::store::Conn::insert(
                tx,
                shaped,
                &scimlab::store::Row {
                    id: id.into(),
                    resource_type: "User".into(),
                    version: 1,
                    created: "2025-01-01T00:00:00.000Z".into(),
                    last_modified: "2025-01-01T00:00:00.000Z".into(),
                    doc: json!({"userName": "robot", "userType": "Robot"}).to_string(),
                },
            )
        })
        .unwrap();
    let (_, list) = app.get("shaped", "/Users").await;
    assert_eq!(list["totalResults"], 1, "{list}");
    assert_eq!(
        app.names("shaped", "userName sw \"r\"").await,
        Vec::<String>::new()
    );
    assert_eq!(app.names("shaped", "userName pr").await, ["human"]);
    let (s, _) = app.get("shaped", &format!("/Users/{id}")).await;
    assert_eq!(s, 404);
    let (s, _) = app
        .put("shaped", &format!("/Users/{id}"), user("robot"))
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .patch(
            "shaped",
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "displayName", "value": "x"}]),
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(app.delete("shaped", &format!("/Users/{id}")).await, 404);
    let (s, b) = app
        .send(
            reqwest::Method::POST,
            "shaped",
            "/.search",
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName pr"})),
        )
        .await
        .into_tuple();
    assert_eq!(s, 200);
    let users: Vec<&Value> = b["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["meta"]["resourceType"] == "User")
        .collect();
    assert_eq!(users.len(), 1, "{b}");
    // Moving a visible user out of the view is refused.
    let (s, _) = app
        .patch(
            "shaped",
            &format!("/Users/{human_id}"),
            json!([{"op": "replace", "path": "userType", "value": "Robot"}]),
        )
        .await;
    assert_eq!(s, 400);
}

trait IntoTuple {
    fn into_tuple(self) -> (u16, Value);
}
impl IntoTuple for (u16, Value, reqwest::header::HeaderMap) {
    fn into_tuple(self) -> (u16, Value) {
        (self.0, self.1)
    }
}

const SECOND: &str = r#"
id: second
attributes:
  title: { canonical_values: [Manager, Director], returned: always }
  urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber: { mutability: immutable }
  phoneNumbers: {}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn combined_profiles_union_views_and_take_the_strictest_rule() {
    let server = SERVER.replace("profiles: [rules]", "profiles: [rules, second]");
    let app = TestApp::spawn_with_profiles(
        &[("shaped.yaml", &server)],
        &[("rules.yaml", RULES), ("second.yaml", SECOND)],
    )
    .await;
    let (_, core) = app
        .get(
            "shaped",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        )
        .await;
    let attrs = core["attributes"].as_array().unwrap();
    let title = attrs.iter().find(|a| a["name"] == "title").unwrap();
    assert_eq!(title["canonicalValues"], json!(["Manager"]), "intersection");
    assert_eq!(title["returned"], "always", "most visible");
    assert!(attrs.iter().any(|a| a["name"] == "phoneNumbers"), "union");
    // writeOnce + immutable = immutable: no late setting.
    let mut u = user("late");
    u["title"] = json!("Manager");
    u[ENT] = json!({"costCenter": "CC-1"});
    let (s, b) = app.post("shaped", "/Users", u).await;
    assert_eq!(s, 201, "{b}");
    let path = format!("/Users/{}", b["id"].as_str().unwrap());
    let (s, b) = patch_enterprise(&app, &path, "add", "employeeNumber", json!("E5")).await;
    assert_error(s, &b, 400, Some("mutability"));
    assert!(detail(&b).contains("rules, second"), "{b}");
}

#[test]
fn conflicts_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let servers = dir.path().join("servers.d");
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&servers).unwrap();
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        servers.join("s.yaml"),
        "id: s\ntokens: [t]\nprofiles: [a, b, nope]\nresource_types:\n  User: {}\n",
    )
    .unwrap();
    std::fs::write(
        profiles.join("a.yaml"),
        "id: a\nattributes:\n  title: { required: true, canonical_values: [X] }\n",
    )
    .unwrap();
    std::fs::write(
        profiles.join("b.yaml"),
        "id: b\nattributes:\n  userName: {}\n  title: { mutability: readOnly, canonical_values: [Y] }\n  notAnAttribute: {}\ndata_filter: title eq\n",
    )
    .unwrap();
    let errors = scimlab::model::Sources::new(&servers, &profiles)
        .compile()
        .unwrap_err();
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let text = all.join("\n");
    let b = profiles.join("b.yaml").display().to_string();
    assert!(
        text.contains(&format!("{b}:4:3: title is required and readOnly")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{b}:4:3: title: canonical_values share no value")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{b}:5:3: notAnAttribute is not an attribute")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{b}:6:1: data_filter is not a SCIM filter")),
        "{text}"
    );
    assert!(text.contains("unknown profile \"nope\""), "{text}");
}

async fn serves_profile_url(app: &TestApp) -> bool {
    let (_, b) = app
        .get(
            "shaped",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        )
        .await;
    b["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "profileUrl")
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_changes_hot_reload_and_broken_profiles_keep_the_last_good_model() {
    let app = app().await;
    assert!(!serves_profile_url(&app).await);
    app.write_profile(
        "rules.yaml",
        &RULES.replace("  active: {}\n", "  active: {}\n  profileUrl: {}\n"),
    );
    eventually("the profile change to be served", || {
        serves_profile_url(&app)
    })
    .await;
    app.write_profile("rules.yaml", "id: rules\nattributes: [oops\n");
    eventually("the broken profile to be reported", || async {
        let h = app.health().await;
        h["last_reload"]["ok"] == false && h.to_string().contains("rules.yaml")
    })
    .await;
    assert!(
        serves_profile_url(&app).await,
        "the last good model keeps serving"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn catalogue_changes_in_a_profile_reach_the_served_items() {
    let app = app().await;
    let changed = RULES
        .replace("License A", "License A (renamed)")
        .replace(
            "      - { id: lic-b, display_name: License B }",
            "      - { id: lic-b, display_name: License B }\n      - { id: lic-c, display_name: License C }",
        );
    app.write_profile("rules.yaml", &changed);
    eventually("the catalogue change to be served", || async {
        let (_, a) = app.get("shaped", "/Licenses/lic-a").await;
        let (s, _) = app.get("shaped", "/Licenses/lic-c").await;
        a["displayName"] == "License A (renamed)" && s == 200
    })
    .await;
    let (_, a) = app.get("shaped", "/Licenses/lic-a").await;
    assert_eq!(a["meta"]["version"], "W/\"2\"", "an update, not a new item");
}
