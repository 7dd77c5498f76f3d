//! SCIM events (RFC 9967): every change raises a Security Event Token (RFC 8417) that a
//! receiver polls (RFC 8936): claims and signatures, activation events, acknowledgements,
//! errors, `maxEvents`, long polling, and no event for a change that did not happen.

use crate::common::{TestApp, assert_error};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use reqwest::Method;
use serde_json::{Value, json};

const SECRET: &str = "0123456789abcdef0123456789abcdef-events";
const SIGNED: &str = "id: ev\ntokens: [tok-ev]\nresource_types: { User: {}, Group: {} }\nevents:\n  signing: { alg: HS256, secret: 0123456789abcdef0123456789abcdef-events }\n  issuer: https://scimlab.test/ev\n  audience: [https://receiver.test]\n";
const FULL: &str =
    "id: evfull\ntokens: [tok-evfull]\nresource_types: { User: {} }\nevents: { payload: full }\n";
const QUIET: &str = "id: quiet\ntokens: [tok-quiet]\nresource_types: { User: {} }\n";

const PROV: &str = "urn:ietf:params:scim:event:prov";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

async fn app() -> TestApp {
    TestApp::spawn(&[
        ("ev.yaml", SIGNED),
        ("evfull.yaml", FULL),
        ("quiet.yaml", QUIET),
    ])
    .await
}

/// A poll that returns at once.
async fn poll(app: &TestApp, server: &str, body: Value) -> Value {
    let mut body = body;
    body["returnImmediately"] = json!(true);
    let (s, b, h) = app
        .send(Method::POST, server, "/SecurityEvents", Some(body))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["content-type"], "application/json");
    b
}

/// The claims of a signed SET, verified.
fn verified(set: &str) -> Value {
    let header = decode_header(set).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&["https://receiver.test"]);
    v.set_issuer(&["https://scimlab.test/ev"]);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    decode::<Value>(set, &DecodingKey::from_secret(SECRET.as_bytes()), &v)
        .unwrap()
        .claims
}

/// The only pending SET's claims (acknowledged).
async fn next_event(app: &TestApp) -> Value {
    let b = poll(app, "ev", json!({})).await;
    let sets = b["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1, "{b}");
    let (jti, set) = sets.iter().next().unwrap();
    let claims = verified(set.as_str().unwrap());
    assert_eq!(claims["jti"], jti.as_str());
    poll(app, "ev", json!({"ack": [jti], "maxEvents": 0})).await;
    claims
}

fn event_names(claims: &Value) -> Vec<String> {
    let mut v: Vec<String> = claims["events"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_raises_a_signed_set_with_the_rfc_9967_claims() {
    let app = app().await;
    let (s, u) = app
        .post(
            "ev",
            "/Users",
            json!({"schemas": [USER], "userName": "ann", "externalId": "e-ann", "active": true}),
        )
        .await;
    assert_eq!(s, 201);
    let id = u["id"].as_str().unwrap().to_string();
    let c = next_event(&app).await;
    assert_eq!(
        c["sub_id"],
        json!({"format": "scim", "uri": format!("/Users/{id}"), "externalId": "e-ann"})
    );
    assert_eq!(event_names(&c), [format!("{PROV}:create:notice")]);
    assert_eq!(
        c["events"][format!("{PROV}:create:notice")]["attributes"],
        json!(["active", "externalId", "id", "userName"])
    );
    assert!(c.get("exp").is_none() && c.get("sub").is_none(), "{c}");
    assert!(c["iat"].is_u64() && c["txn"].is_string(), "{c}");
    // PATCH active → false: a patch notice naming `active`, and a deactivation.
    let (s, _) = app
        .patch(
            "ev",
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(s, 200);
    let c = next_event(&app).await;
    assert_eq!(
        event_names(&c),
        [format!("{PROV}:deactivate"), format!("{PROV}:patch:notice")]
    );
    assert_eq!(
        c["events"][format!("{PROV}:patch:notice")]["attributes"],
        json!(["active"])
    );
    // PUT with active → true: a put notice and an activation.
    let (s, b) = app
        .put(
            "ev",
            &format!("/Users/{id}"),
            json!({"schemas": [USER], "userName": "ann", "active": true, "title": "Eng"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let c = next_event(&app).await;
    assert_eq!(
        event_names(&c),
        [format!("{PROV}:activate"), format!("{PROV}:put:notice")]
    );
    // A PATCH that changes nothing, and a refused create, raise nothing.
    app.patch(
        "ev",
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "title", "value": "Eng"}]),
    )
    .await;
    let (s, _) = app
        .post(
            "ev",
            "/Users",
            json!({"schemas": [USER], "userName": "ANN"}),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(poll(&app, "ev", json!({})).await["sets"], json!({}));
    // Group membership changes are patch events naming `members`.
    let (_, g) = app
        .post(
            "ev",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g"}),
        )
        .await;
    next_event(&app).await;
    let gid = g["id"].as_str().unwrap();
    app.patch(
        "ev",
        &format!("/Groups/{gid}"),
        json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
    )
    .await;
    let c = next_event(&app).await;
    assert_eq!(
        c["events"][format!("{PROV}:patch:notice")]["attributes"],
        json!(["members"])
    );
    // DELETE.
    assert_eq!(app.delete("ev", &format!("/Users/{id}")).await, 204);
    let c = next_event(&app).await;
    assert_eq!(event_names(&c), [format!("{PROV}:delete")]);
    // Discovery says what is emitted.
    let (_, spc) = app.get("ev", "/ServiceProviderConfig").await;
    assert_eq!(spc["securityEvents"]["asyncRequest"], "request");
    assert!(
        spc["securityEvents"]["eventUris"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("{PROV}:create:notice")))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn polls_acknowledge_report_errors_page_and_wait() {
    let app = app().await;
    for n in ["a", "b", "c"] {
        app.user("ev", n).await;
    }
    // maxEvents pages; unacknowledged SETs come again.
    let b = poll(&app, "ev", json!({"maxEvents": 2})).await;
    assert_eq!(b["sets"].as_object().unwrap().len(), 2);
    assert_eq!(b["moreAvailable"], true);
    let again = poll(&app, "ev", json!({"maxEvents": 2})).await;
    assert_eq!(
        again["sets"], b["sets"],
        "unacknowledged SETs are delivered again"
    );
    let jtis: Vec<String> = b["sets"].as_object().unwrap().keys().cloned().collect();
    // One acknowledged, one refused by the receiver (setErrs): neither comes back.
    let b = poll(
        &app,
        "ev",
        json!({"ack": [jtis[0]], "setErrs": {jtis[1].clone(): {"err": "jwtAud", "description": "wrong audience"}}}),
    )
    .await;
    assert_eq!(b["sets"].as_object().unwrap().len(), 1);
    assert_eq!(b["moreAvailable"], false);
    let last: Vec<String> = b["sets"].as_object().unwrap().keys().cloned().collect();
    poll(&app, "ev", json!({"ack": last, "maxEvents": 0})).await;
    // The admin API shows each SET's fate.
    let (s, log) = app
        .admin(Method::GET, "/admin/servers/ev/events", None)
        .await;
    assert_eq!(s, 200, "{log}");
    let states: Vec<&str> = (log["events"].as_array().unwrap().iter())
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "acknowledged").count(),
        2,
        "{log}"
    );
    assert!(log.to_string().contains("wrong audience"), "{log}");
    // Long polling: a poll waits for the next change.
    let started = std::time::Instant::now();
    let waiting = {
        let (base, client) = (app.base("ev"), app.client.clone());
        tokio::spawn(async move {
            let r = client
                .post(format!("{base}/SecurityEvents"))
                .bearer_auth("tok-ev")
                .header("content-type", "application/json")
                .body(json!({"maxEvents": 5}).to_string())
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    app.user("ev", "late").await;
    let b = waiting.await.unwrap();
    assert_eq!(b["sets"].as_object().unwrap().len(), 1, "{b}");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(400),
        "returned before the change"
    );
    assert!(
        waited < std::time::Duration::from_secs(9),
        "waited for the whole poll: {waited:?}"
    );
    // The web UI's server page lists the events and their fate.
    let html = app
        .client
        .get(app.url("/ui/servers/ev"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Events (RFC 9967)"), "{html}");
    assert!(
        html.contains("prov:create:notice") && html.contains("acknowledged"),
        "{html}"
    );
    assert!(html.contains("failed: jwtAud: wrong audience"), "{html}");
    // Malformed polls say what is wrong.
    let (s, b, _) = app
        .send(
            Method::POST,
            "ev",
            "/SecurityEvents",
            Some(json!({"ack": "x"})),
        )
        .await;
    assert_error(s, &b, 400, Some("invalidValue"));
}

#[tokio::test(flavor = "multi_thread")]
async fn full_events_carry_the_resource_and_servers_without_events_have_none() {
    let app = app().await;
    app.user("evfull", "fay").await;
    let b = poll(&app, "evfull", json!({})).await;
    let set = b["sets"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    // Unsecured SET (RFC 8417 allows it): header, claims, empty signature.
    let parts: Vec<&str> = set.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2], "");
    use base64::Engine as _;
    let dec = |p: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(dec(parts[0]), json!({"alg": "none", "typ": "secevent+jwt"}));
    let claims = dec(parts[1]);
    let data = &claims["events"][format!("{PROV}:create:full")]["data"];
    assert_eq!(data["userName"], "fay", "{claims}");
    assert!(data["meta"]["location"].is_string(), "{claims}");
    // No events: no poll endpoint, nothing in discovery, nothing recorded.
    app.user("quiet", "q").await;
    let (s, b, _) = app
        .send(
            Method::POST,
            "quiet",
            "/SecurityEvents",
            Some(json!({"returnImmediately": true})),
        )
        .await;
    assert_error(s, &b, 404, None);
    let (_, spc) = app.get("quiet", "/ServiceProviderConfig").await;
    assert!(spc.get("securityEvents").is_none());
}

/// A receiver (RFC 8935) that verifies each pushed SET and remembers its jti; `refuse`
/// answers 400 as a receiver that rejects SETs.
async fn receiver(
    listener: tokio::net::TcpListener,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use axum::http::{HeaderMap, StatusCode};
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    let app = axum::Router::new()
        .route(
            "/events",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    assert_eq!(headers["content-type"], "application/secevent+jwt");
                    assert_eq!(headers["authorization"], "Bearer receiver-token");
                    let claims = verified(&body);
                    seen.lock()
                        .unwrap()
                        .push(claims["jti"].as_str().unwrap().to_string());
                    StatusCode::ACCEPTED
                }
            }),
        )
        .route(
            "/refuse",
            axum::routing::post(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"err": "invalid_issuer", "description": "not ours"})),
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_hangs_slows_no_request_and_gets_every_event_once_back() {
    // The receiver's address answers nothing at first: connections are accepted and held.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hole.local_addr().unwrap();
    let holding = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = hole.accept().await {
            held.push(c);
        }
    });
    let def = format!(
        "{SIGNED}  receivers:\n    - {{ url: 'http://{addr}/events', token: receiver-token }}\n    - {{ url: 'http://{addr}/refuse' }}\n  retry: {{ initial_ms: 100, max_ms: 500, max_attempts: 1000 }}\n"
    );
    let app = TestApp::spawn(&[("ev.yaml", &def)]).await;
    // 1,000 writes while the receiver hangs: none fails, none waits for it.
    let mut writers = Vec::new();
    for w in 0..8 {
        let (base, client) = (app.base("ev"), app.client.clone());
        writers.push(tokio::spawn(async move {
            let mut slowest = std::time::Duration::ZERO;
            for i in 0..125 {
                let started = std::time::Instant::now();
                let r = client
                    .post(format!("{base}/Users"))
                    .bearer_auth("tok-ev")
                    .header("content-type", "application/scim+json")
                    .body(json!({"schemas": [USER], "userName": format!("w{w}-{i}")}).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                slowest = slowest.max(started.elapsed());
            }
            slowest
        }));
    }
    for w in writers {
        let slowest = w.await.unwrap();
        // A push that hangs for its 10 s timeout would show here.
        assert!(
            slowest < std::time::Duration::from_secs(5),
            "a write waited {slowest:?}"
        );
    }
    // The receiver comes back on its address.
    holding.abort();
    let _ = holding.await;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    };
    let got = receiver(listener).await;
    let mut log = Value::Null;
    for _ in 0..600 {
        let (_, l) = app
            .admin(Method::GET, "/admin/servers/ev/events", None)
            .await;
        log = l;
        let pushes: Vec<&Value> = (log["events"].as_array().unwrap().iter())
            .flat_map(|e| e["deliveries"].as_array().unwrap())
            .collect();
        let settled = pushes.iter().filter(|p| p["state"] != "pending").count();
        if pushes.len() == 2000 && settled == 2000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let events = log["events"].as_array().unwrap();
    assert_eq!(events.len(), 1000);
    let mut delivered = got.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1000, "every event delivered, once");
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), 1000, "no event delivered twice");
    for e in events {
        let d = e["deliveries"].as_array().unwrap();
        let good = d
            .iter()
            .find(|p| p["receiver"].as_str().unwrap().ends_with("/events"))
            .unwrap();
        assert_eq!(good["state"], "delivered", "{e}");
        // The refusing receiver's 400 is final (RFC 8935 §2.4): one attempt after it is back.
        let refusing = d
            .iter()
            .find(|p| p["receiver"].as_str().unwrap().ends_with("/refuse"))
            .unwrap();
        assert_eq!(refusing["state"], "failed", "{e}");
        assert!(
            refusing["error"]
                .as_str()
                .unwrap()
                .contains("invalid_issuer"),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rs256_sets_verify_with_the_published_jwk() {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/fixtures/set-signing-key.pem"
    );
    let def = format!(
        "id: rs\ntokens: [tok-rs]\nresource_types: {{ User: {{}} }}\nevents:\n  signing: {{ alg: RS256, key_file: '{key}' }}\n  audience: [https://receiver.test]\n"
    );
    let app = TestApp::spawn(&[("rs.yaml", &def), ("quiet.yaml", QUIET)]).await;
    app.user("rs", "rita").await;
    let (s, jwks, h) = app
        .send(Method::GET, "rs", "/SecurityEvents/jwks", None)
        .await;
    assert_eq!(s, 200, "{jwks}");
    assert_eq!(h["content-type"], "application/jwk-set+json");
    let jwk = &jwks["keys"][0];
    assert!(
        jwk.get("d").is_none(),
        "only the public key is published: {jwk}"
    );
    let b = poll(&app, "rs", json!({})).await;
    let set = b["sets"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    let header = decode_header(set).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    let public =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["https://receiver.test"]);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    let claims = decode::<Value>(set, &public, &v).unwrap().claims;
    assert!(
        claims["events"][format!("{PROV}:create:notice")].is_object(),
        "{claims}"
    );
    // A server that does not sign with RS256 has no key to publish.
    let (s, b, _) = app
        .send(Method::GET, "quiet", "/SecurityEvents/jwks", None)
        .await;
    assert_error(s, &b, 404, None);
    // RS256 without a key, or with a file that is not one, is a located definition error.
    for signing in [
        "{ alg: RS256 }",
        "{ alg: RS256, key_file: /nonexistent.pem }",
    ] {
        let text = format!(
            "id: bad\ntokens: [t]\nresource_types: {{ User: {{}} }}\nevents:\n  signing: {signing}\n"
        );
        let file = scimlab::definition::load_str(std::path::Path::new("bad.yaml"), &text).unwrap();
        let problems = scimlab::model::compile(&[file], &[]).unwrap_err();
        assert!(problems.iter().any(|p| p.line == 5), "{problems:?}");
    }
}

/// The request inspector names the events each request raised, and its request page shows
/// what became of them (polled, acknowledged) beside the request.
#[tokio::test(flavor = "multi_thread")]
async fn the_inspector_shows_the_events_a_request_raised() {
    let app = app().await;
    let (s, u) = app
        .post(
            "ev",
            "/Users",
            json!({"schemas": [USER], "userName": "inspected", "active": true}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let id = u["id"].as_str().unwrap().to_string();
    let created = next_event(&app).await;
    // The PATCH's SET stays pending.
    let (s, _) = app
        .patch(
            "ev",
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(s, 200);
    let mut entries = Vec::new();
    for _ in 0..250 {
        let (_, b) = app
            .admin(Method::GET, "/admin/servers/ev/requests", None)
            .await;
        entries = b["requests"].as_array().cloned().unwrap_or_default();
        if entries.iter().filter(|e| e["events"].is_array()).count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let post = (entries.iter())
        .find(|e| e["method"] == "POST" && e["path"] == "/Users")
        .unwrap();
    assert_eq!(post["events"], json!([created["jti"]]), "{post}");
    let patch = entries.iter().find(|e| e["method"] == "PATCH").unwrap();
    assert_eq!(patch["events"].as_array().unwrap().len(), 1);
    // GETs raise nothing and say nothing about events.
    let (s, _) = app.get("ev", &format!("/Users/{id}")).await;
    assert_eq!(s, 200);

    let page = |seq: i64| {
        let url = app.url(&format!("/ui/servers/ev/requests/{seq}"));
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let html = page(post["seq"].as_i64().unwrap()).await;
    assert!(html.contains("Events raised"), "{html}");
    assert!(html.contains("prov:create:notice"), "{html}");
    assert!(html.contains("acknowledged"), "{html}");
    let html = page(patch["seq"].as_i64().unwrap()).await;
    assert!(html.contains("prov:deactivate"), "{html}");
    assert!(html.contains("pending"), "{html}");
    // The HAR export names them too.
    let (_, har) = app
        .admin(Method::GET, "/admin/servers/ev/requests.har", None)
        .await;
    assert!(
        har.to_string().contains(&format!(
            "events (jti): {}",
            created["jti"].as_str().unwrap()
        )),
        "{har}"
    );
}
