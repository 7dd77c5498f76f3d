//! Devices and endpoint applications (RFC 9944) on the shipped `devices` server: the BLE
//! extension with its nested pairing-method extensions, the address and passkey forms, secrets
//! that are never returned, device groups, EndpointApp client tokens, and value patterns on
//! custom attributes.

use crate::common::{TestApp, assert_error, urlencode};
use serde_json::{Value, json};

const EXT: &str = "urn:ietf:params:scim:schemas:extension";
const DEVICE: &str = "urn:ietf:params:scim:schemas:core:2.0:Device";
const APP: &str = "urn:ietf:params:scim:schemas:core:2.0:EndpointApp";

/// The shipped definition, with the test suite's token convention.
async fn app() -> TestApp {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/servers.d/devices.yaml"
    ))
    .unwrap();
    TestApp::spawn(&[(
        "devices.yaml",
        &shipped.replace("dev-token-devices", "tok-devices"),
    )])
    .await
}

fn ext(name: &str) -> String {
    format!("{EXT}:{name}:2.0:Device")
}

/// RFC 9944's third BLE example: two pairing methods, each an object keyed by its URN inside
/// the BLE extension.
fn ble_device(mac: &str, passkey: Value) -> Value {
    json!({
        "schemas": [DEVICE, ext("ble")],
        "displayName": "BLE Heart Monitor",
        "active": true,
        ext("ble"): {
            "versionSupport": ["5.3"],
            "deviceMacAddress": mac,
            "isRandom": true,
            "irk": "10B4F6A2C1D0E9F87A6B5C4D3E2F1A0B",
            "mobility": true,
            "pairingMethods": [ext("pairingPassKey"), ext("pairingOOB")],
            ext("pairingPassKey"): {"key": passkey},
            ext("pairingOOB"): {"key": "TheKeyvalueRetrievedFromOOB", "randomNumber": 238796813516896_u64}
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ble_device_round_trips_with_nested_pairing_extensions() {
    let app = app().await;
    let (s, created) = app
        .post(
            "devices",
            "/Devices",
            ble_device("2C:54:91:88:C9:E2", json!(123456)),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["meta"]["resourceType"], "Device");
    let (s, got) = app.get("devices", &format!("/Devices/{id}")).await;
    assert_eq!(s, 200);
    let ble = &got[ext("ble")];
    assert_eq!(ble[ext("pairingPassKey")]["key"], 123456, "{got}");
    assert_eq!(ble[ext("pairingOOB")]["randomNumber"], 238796813516896_u64);
    assert_eq!(ble["pairingMethods"].as_array().unwrap().len(), 2);
    // The identity resolving key is writeOnly, returned never (RFC 9944 §7.1).
    assert!(ble.get("irk").is_none(), "{got}");
    assert!(!got.to_string().contains("10B4F6A2"), "{got}");

    // MAC addresses compare case-insensitively (caseExact false).
    let filter = urlencode(&format!(
        "{}:deviceMacAddress eq \"2c:54:91:88:c9:e2\"",
        ext("ble")
    ));
    let (s, list) = app
        .get("devices", &format!("/Devices?filter={filter}"))
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["totalResults"], 1, "{list}");

    // PATCH of the whole BLE extension replaces a nested pairing method's key.
    let (s, patched) = app
        .patch(
            "devices",
            &format!("/Devices/{id}"),
            json!([{"op": "replace", "path": ext("ble"),
                    "value": {ext("pairingPassKey"): {"key": 654321}}}]),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched[ext("ble")][ext("pairingPassKey")]["key"], 654321);
    assert_eq!(patched[ext("ble")]["deviceMacAddress"], "2C:54:91:88:C9:E2");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rfc_forms_of_addresses_passkeys_and_pairing_methods_are_enforced() {
    let app = app().await;
    for (body, names) in [
        (
            ble_device("2C:54:91:88:C9", json!(123456)),
            "deviceMacAddress",
        ),
        (
            ble_device("2C:54:91:88:C9:E2", json!(12345)),
            "pairingPassKey",
        ),
        (
            json!({"schemas": [DEVICE, ext("zigbee")], "active": true,
                   ext("zigbee"): {"deviceEui64Address": "50:32:5F:FF:FE:E7:67", "versionSupport": ["3.0"]}}),
            "deviceEui64Address",
        ),
        (
            json!({"schemas": [DEVICE, ext("ble")], "active": true,
                   ext("ble"): {"deviceMacAddress": "2C:54:91:88:C9:E2", "versionSupport": ["5.3"],
                                "pairingMethods": ["urn:example:pairing:qr"]}}),
            "pairingMethods",
        ),
    ] {
        let (s, err) = app.post("devices", "/Devices", body).await;
        assert_error(s, &err, 400, Some("invalidValue"));
        assert!(err["detail"].as_str().unwrap().contains(names), "{err}");
    }
    // active is the one required core attribute.
    let (s, err) = app
        .post(
            "devices",
            "/Devices",
            json!({"schemas": [DEVICE], "displayName": "x"}),
        )
        .await;
    assert_error(s, &err, 400, Some("invalidValue"));
    assert!(err["detail"].as_str().unwrap().contains("active"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrapping_secrets_are_kept_but_never_returned() {
    let app = app().await;
    let (s, created) = app
        .post(
            "devices",
            "/Devices",
            json!({"schemas": [DEVICE, ext("dpp"), ext("fido-device-onboard")], "active": true,
                   ext("dpp"): {"dppVersion": 2, "bootstrapKey": "MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACd2ChjSFwY8SREzrbVgsbNSgzZK7vovgvm3+lT5y6WjU=",
                                "deviceMacAddress": "00:0C:3E:3A:4B:69", "bootstrappingMethod": ["QR"]},
                   ext("fido-device-onboard"): {"fdoVoucher": "-----BEGIN OWNERSHIP VOUCHER-----"}}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    for body in [
        created.clone(),
        app.get("devices", &format!("/Devices/{id}")).await.1,
        app.get("devices", "/Devices?attributes=urn:ietf:params:scim:schemas:extension:dpp:2.0:Device:bootstrapKey")
            .await
            .1,
    ] {
        let text = body.to_string();
        assert!(!text.contains("MDkwEwYH"), "{text}");
        assert!(!text.contains("OWNERSHIP VOUCHER"), "{text}");
    }
    // A PUT that does not repeat the required, writeOnly key keeps the stored one.
    let (s, put) = app
        .put(
            "devices",
            &format!("/Devices/{id}"),
            json!({"schemas": [DEVICE, ext("dpp")], "active": false,
                   ext("dpp"): {"dppVersion": 3}}),
        )
        .await;
    assert_eq!(s, 200, "{put}");
    assert_eq!(put["active"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn device_groups_and_endpoint_applications() {
    let app = app().await;
    let (_, device) = app
        .post(
            "devices",
            "/Devices",
            ble_device("2C:54:91:88:C9:E2", json!(123456)),
        )
        .await;
    let device_id = device["id"].as_str().unwrap();

    // RFC 9944 §4: device groups are SCIM Groups, so a member may be a Device.
    let (s, group) = app
        .post(
            "devices",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ward 3",
                   "members": [{"value": device_id, "type": "Device"}]}),
        )
        .await;
    assert_eq!(s, 201, "{group}");
    assert!(
        group["members"][0]["$ref"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Devices/{device_id}")),
        "{group}"
    );
    let (_, d) = app.get("devices", &format!("/Devices/{device_id}")).await;
    assert_eq!(d["groups"][0]["display"], "Ward 3", "{d}");
    let (_, schema) = app
        .get(
            "devices",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
        )
        .await;
    let members = (schema["attributes"].as_array().unwrap().iter())
        .find(|a| a["name"] == "members")
        .unwrap();
    let type_values = (members["subAttributes"].as_array().unwrap().iter())
        .find(|a| a["name"] == "type")
        .unwrap()["canonicalValues"]
        .clone();
    assert_eq!(
        type_values,
        json!(["User", "Group", "Device", "EndpointApp"]),
        "{members}"
    );

    // An application without a certificate gets a client token (RFC 9944 §6); one with a
    // certificate does not.
    let (s, telemetry) = app
        .post(
            "devices",
            "/EndpointApps",
            json!({"schemas": [APP], "applicationType": "telemetry", "applicationName": "Telemetry 1"}),
        )
        .await;
    assert_eq!(s, 201, "{telemetry}");
    let token = telemetry["clientToken"].as_str().unwrap();
    assert!(token.len() >= 32 && token.len() <= 500, "{token}");
    let (_, control) = app
        .post(
            "devices",
            "/EndpointApps",
            json!({"schemas": [APP], "applicationType": "deviceControl", "applicationName": "Control 1",
                   "certificateInfo": {"rootCA": "d2hhdHNVcA==", "subjectName": "CN=EX1,O=Example,C=US"}}),
        )
        .await;
    assert!(control.get("clientToken").is_none(), "{control}");
    let app_id = telemetry["id"].as_str().unwrap();
    // A client cannot set the token, and the application type is immutable.
    let (s, err) = app
        .patch(
            "devices",
            &format!("/EndpointApps/{app_id}"),
            json!([{"op": "replace", "path": "applicationType", "value": "deviceControl"}]),
        )
        .await;
    assert_error(s, &err, 400, Some("mutability"));
    let (s, err) = app
        .post(
            "devices",
            "/EndpointApps",
            json!({"schemas": [APP], "applicationType": "robot", "applicationName": "x"}),
        )
        .await;
    assert_error(s, &err, 400, Some("invalidValue"));
    // A PUT keeps the issued token.
    let (s, put) = app
        .put(
            "devices",
            &format!("/EndpointApps/{app_id}"),
            json!({"schemas": [APP], "applicationType": "telemetry", "applicationName": "Renamed"}),
        )
        .await;
    assert_eq!(s, 200, "{put}");
    assert_eq!(put["clientToken"].as_str(), Some(token));

    // The device names its applications; the server derives each reference.
    let (s, patched) = app
        .patch(
            "devices",
            &format!("/Devices/{device_id}"),
            json!([{"op": "add", "path": ext("endpointAppsExt"),
                    "value": {"applications": [{"value": app_id}]}}]),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    let applications = &patched[ext("endpointAppsExt")]["applications"];
    assert!(
        applications[0]["$ref"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/EndpointApps/{app_id}")),
        "{applications}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_serves_the_device_schemas() {
    let app = app().await;
    let (s, rt) = app.get("devices", "/ResourceTypes/Device").await;
    assert_eq!(s, 200);
    assert_eq!(rt["endpoint"], "/Devices");
    assert_eq!(rt["schemaExtensions"].as_array().unwrap().len(), 6, "{rt}");
    let (_, ble) = app
        .get("devices", &format!("/Schemas/{}", ext("ble")))
        .await;
    let nested = (ble["attributes"].as_array().unwrap().iter())
        .find(|a| a["name"] == ext("pairingOOB"))
        .unwrap_or_else(|| panic!("{ble}"));
    assert_eq!(nested["type"], "complex");
    assert_eq!(nested["subAttributes"].as_array().unwrap().len(), 3);
    // Patterns are scimlab's check, not an RFC 7643 characteristic: /Schemas does not show them.
    assert!(!ble.to_string().contains("\"pattern\""), "{ble}");
    let (_, app_rt) = app.get("devices", "/ResourceTypes/EndpointApp").await;
    assert_eq!(app_rt["endpoint"], "/EndpointApps");
}

const PATTERNED: &str = r#"
id: pat
tokens: [tok-pat]
validation: { strict: true }
resource_types:
  User:
    attributes:
      badge: { pattern: "^B-[0-9]{4}$" }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_attribute_can_declare_a_pattern() {
    let app = TestApp::spawn(&[("pat.yaml", PATTERNED)]).await;
    let urn = "urn:scimlab:schemas:extension:pat:2.0:User";
    let user = |badge: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", urn],
               "userName": format!("u{badge}"), urn: {"badge": badge}})
    };
    let (s, _) = app.post("pat", "/Users", user("B-0042")).await;
    assert_eq!(s, 201);
    let (s, err) = app.post("pat", "/Users", user("B-42")).await;
    assert_error(s, &err, 400, Some("invalidValue"));
    assert!(
        err["detail"].as_str().unwrap().contains("^B-[0-9]{4}$"),
        "{err}"
    );

    // A pattern that is not a regular expression, or on a boolean, is a definition error.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "id: bad\ntokens: [t]\nresource_types:\n  User:\n    attributes:\n      a: { pattern: \"([\" }\n      b: { type: boolean, pattern: \"x\" }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not a regular expression"), "{text}");
    assert!(
        text.contains("only string, reference and integer"),
        "{text}"
    );
}

/// `scimlab lint` (its built-in RFC catalogue) and the devices server agree on device payloads.
#[tokio::test(flavor = "multi_thread")]
async fn lint_knows_the_device_schemas() {
    let app = app().await;
    let linter = scimlab::lint::Linter::rfc();
    for (body, ok) in [
        (ble_device("2C:54:91:88:C9:E2", json!(123456)), true),
        (ble_device("2C-54-91-88-C9-E2", json!(123456)), false),
        (ble_device("2C:54:91:88:C9:E2", json!(1234567)), false),
        (
            json!({"schemas": [DEVICE, ext("ethernet-mab")], "active": true,
                   ext("ethernet-mab"): {"deviceMacAddress": "00:0C:3E:3A:4B:69"}}),
            true,
        ),
        // An empty extension object carries no values: the same as no extension.
        (
            json!({"schemas": [DEVICE, ext("ethernet-mab")], "active": true, ext("ethernet-mab"): {}}),
            true,
        ),
        (
            json!({"schemas": [DEVICE, ext("ethernet-mab")], "active": true, ext("ethernet-mab"): {"deviceMacAddress": 42}}),
            false,
        ),
    ] {
        let (status, answer) = app.post("devices", "/Devices", body.clone()).await;
        let report = linter.lint("device", &body.to_string());
        assert_eq!(status == 201, ok, "{body}: {answer}");
        assert_eq!(report.errors() == 0, ok, "{body}: {:?}", report.findings);
    }
}
