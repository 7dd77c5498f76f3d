//! Authentication methods per virtual server (issue: providers): HTTP Basic, a custom header,
//! OAuth 2.0 `client_credentials`, `authorization_code` through the consent page with refresh
//! tokens, expiry, RFC 6750 challenges, and no secret in the request inspector.

use crate::common::{TestApp, assert_error, split};
use reqwest::Method;
use serde_json::{Value, json};

const METHODS: &str = r#"
id: methods
description: every way in
auth:
  basic: [{ username: provisioner, password: "basic-pass-1" }]
  header: [{ name: X-Scim-Key, value: "header-secret-1" }]
  oauth:
    access_token_lifetime: 2
    clients:
      - { client_id: entra, client_secret: "entra-secret-1", grants: [client_credentials] }
      - client_id: okta
        client_secret: "okta-secret-1"
        grants: [authorization_code]
        redirect_uris: ["https://idp.example.test/callback"]
resource_types: { User: {} }
"#;

async fn app() -> TestApp {
    TestApp::spawn(&[("methods.yaml", METHODS)]).await
}

fn users(app: &TestApp) -> String {
    format!("{}/Users", app.base("methods"))
}

fn oauth(app: &TestApp, what: &str) -> String {
    app.url(&format!("/scim-identifier/methods/oauth/{what}"))
}

/// A client that does not follow redirects (to read the authorization endpoint's Location).
fn no_redirects() -> reqwest::Client {
    crate::common::http()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn token(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = app
        .client
        .post(oauth(app, "token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, r.json().await.unwrap(), h)
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_and_header_credentials_admit_and_wrong_ones_are_401() {
    let app = app().await;
    let ok = app
        .client
        .get(users(&app))
        .basic_auth("provisioner", Some("basic-pass-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = app
        .client
        .get(users(&app))
        .header("x-scim-key", "header-secret-1")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    for req in [
        app.client
            .get(users(&app))
            .basic_auth("provisioner", Some("wrong")),
        app.client.get(users(&app)).header("x-scim-key", "wrong"),
        app.client.get(users(&app)),
    ] {
        let (s, b, h) = split(req.send().await.unwrap()).await;
        assert_error(s, &b, 401, None);
        let challenges: Vec<&str> = (h.get_all("www-authenticate").iter())
            .map(|v| v.to_str().unwrap())
            .collect();
        // Both schemes the server accepts are offered; no error code without a bearer token
        // (RFC 6750 §3.1).
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic realm=")),
            "{challenges:?}"
        );
        assert!(
            challenges.contains(&"Bearer realm=\"scimlab\""),
            "{challenges:?}"
        );
    }
    // Discovery says how to authenticate.
    let spc: Value = app
        .client
        .get(format!("{}/ServiceProviderConfig", app.base("methods")))
        .header("x-scim-key", "header-secret-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = (spc["authenticationSchemes"].as_array().unwrap().iter())
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["oauth2", "oauthbearertoken", "httpbasic", "httpheader"]
    );
    // Neither secret is in the request inspector.
    let (_, log) = app
        .admin(Method::GET, "/admin/servers/methods/requests", None)
        .await;
    let text = log.to_string();
    assert!(log["requests"].as_array().unwrap().len() >= 5, "{text}");
    for secret in [
        "basic-pass-1",
        "header-secret-1",
        "cHJvdmlzaW9uZXI6YmFzaWMtcGFzcy0x",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_tokens_work_until_they_expire() {
    let app = app().await;
    let (s, t, h) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "entra"),
            ("client_secret", "entra-secret-1"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 2);
    assert!(
        t.get("refresh_token").is_none(),
        "RFC 6749 §4.4.3: no refresh token"
    );
    assert_eq!(h["cache-control"], "no-store");
    let access = t["access_token"].as_str().unwrap().to_string();
    let r = app
        .client
        .get(users(&app))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // HTTP Basic client authentication works the same (RFC 6749 §2.3.1).
    let r = app
        .client
        .post(oauth(&app, "token"))
        .basic_auth("entra", Some("entra-secret-1"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Wrong secret, unknown grant, a grant the client lacks.
    let (s, e, h) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "entra"),
            ("client_secret", "nope"),
        ],
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));
    assert!(h.contains_key("www-authenticate"));
    let (s, e, _) = token(
        &app,
        &[
            ("grant_type", "password"),
            ("client_id", "entra"),
            ("client_secret", "entra-secret-1"),
        ],
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (s, e, _) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "okta"),
            ("client_secret", "okta-secret-1"),
        ],
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unauthorized_client")));

    // After its lifetime the token is refused with RFC 6750's invalid_token.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = app
        .client
        .get(users(&app))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let (s, b, _) = split(r).await;
    assert_error(s, &b, 401, None);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(b["detail"].as_str().unwrap().contains("expired"), "{b}");
    let r = app
        .client
        .get(users(&app))
        .bearer_auth("made-up")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // Neither the client secret nor the issued token is in the request inspector or its HAR
    // export (the token endpoint is not recorded; Authorization is redacted).
    for path in [
        "/admin/servers/methods/requests",
        "/admin/servers/methods/requests.har",
    ] {
        let (_, log) = app.admin(Method::GET, path, None).await;
        let text = log.to_string();
        assert!(text.contains("/Users"), "{text}");
        assert!(!text.contains(&access), "the access token in {path}");
        assert!(
            !text.contains("entra-secret-1"),
            "the client secret in {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn authorization_code_through_the_consent_page_with_rotating_refresh_tokens() {
    let app = app().await;
    let client = no_redirects();
    let authorize = format!(
        "{}?response_type=code&client_id=okta&redirect_uri={}&state=xyz",
        oauth(&app, "authorize"),
        crate::common::urlencode("https://idp.example.test/callback")
    );
    let page = client.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Allow <code>okta</code> to provision <code>methods</code>"),
        "{html}"
    );
    let consent = html
        .split("name=\"consent\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let answer = client
        .post(oauth(&app, "authorize"))
        .form(&[("consent", consent.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let location = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with("https://idp.example.test/callback?")
    );
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    let code = q["code"].clone();
    // The consent is single-use.
    let again = client
        .post(oauth(&app, "authorize"))
        .form(&[("consent", consent.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);

    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://idp.example.test/callback"),
        ("client_id", "okta"),
        ("client_secret", "okta-secret-1"),
    ];
    let (s, t, _) = token(&app, &exchange).await;
    assert_eq!(s, 200, "{t}");
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let r = app
        .client
        .get(users(&app))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A code works once.
    let (s, e, _) = token(&app, &exchange).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    // Refresh: a new access token and a new refresh token; the old refresh token is spent.
    let refreshing = |r: String| {
        let app = &app;
        async move {
            token(
                app,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", r.as_str()),
                    ("client_id", "okta"),
                    ("client_secret", "okta-secret-1"),
                ],
            )
            .await
        }
    };
    let (s, t2, _) = refreshing(refresh.clone()).await;
    assert_eq!(s, 200, "{t2}");
    assert_ne!(t2["refresh_token"], json!(refresh));
    let r = app
        .client
        .get(users(&app))
        .bearer_auth(t2["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, e, _) = refreshing(refresh).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));

    // Deny, an unregistered redirect URI (never redirected to), a wrong response_type.
    let html = client
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consent = html
        .split("name=\"consent\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let denied = client
        .post(oauth(&app, "authorize"))
        .form(&[("consent", consent.as_str()), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    let location = denied.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("error=access_denied") && location.contains("state=xyz"),
        "{location}"
    );
    let evil = client
        .get(format!(
            "{}?response_type=code&client_id=okta&redirect_uri=https://evil.example/",
            oauth(&app, "authorize")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 400);
    assert!(evil.headers().get("location").is_none());
    let wrong_type = client
        .get(format!(
            "{}?response_type=token&client_id=okta",
            oauth(&app, "authorize")
        ))
        .send()
        .await
        .unwrap();
    assert!(
        wrong_type.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=unsupported_response_type")
    );
}

#[test]
fn definitions_without_a_way_in_or_with_broken_oauth_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "id: bad\nresource_types: { User: {} }\nauth:\n  oauth:\n    clients:\n      - { client_id: a, client_secret: short, grants: [authorization_code] }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("none.yaml"),
        "id: none\nresource_types: { User: {} }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"))
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("at least 8 characters"), "{text}");
    assert!(text.contains("needs redirect_uris"), "{text}");
    assert!(text.contains("a server needs a way in"), "{text}");
}

/// Okta's "HTTP header" option: the whole Authorization value is the secret, whatever scheme
/// it looks like; anything else there is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_whole_authorization_value_can_be_the_secret() {
    let app = TestApp::spawn(&[(
        "hdr.yaml",
        "id: hdr\nresource_types: { User: {} }\nauth:\n  header: [{ name: Authorization, value: \"SSWS 00abcdef\" }]\n",
    )])
    .await;
    let url = format!("{}/Users", app.base("hdr"));
    let ok = app
        .client
        .get(&url)
        .header("authorization", "SSWS 00abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let (s, b, _) = split(
        app.client
            .get(&url)
            .header("authorization", "SSWS wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 401, None);
    // The secret is redacted in the inspector like any Authorization value.
    let (_, log) = app
        .admin(Method::GET, "/admin/servers/hdr/requests", None)
        .await;
    assert!(!log.to_string().contains("00abcdef"), "{log}");
}
