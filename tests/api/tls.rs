//! HTTPS: `scimlab serve --tls self-signed` (a certificate for localhost, its fingerprint
//! printed, its PEM beside the database) and `--tls-cert/--tls-key`, with clients that verify
//! the certificate; the URLs the server writes say `https`.

use crate::common;
use serde_json::Value;

const SERVER: &str = "id: secure\ntokens: [tok-secure]\nresource_types: { User: {} }\n";

/// Starts the real binary with `tls_args`; returns it, its port and the temporary directory.
fn start(tls_args: &[String]) -> (std::process::Child, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let servers = dir.path().join("servers.d");
    std::fs::create_dir(&servers).unwrap();
    std::fs::write(servers.join("secure.yaml"), SERVER).unwrap();
    let port = common::free_port();
    let child = common::serve_command(port, dir.path().join("db.sqlite"), &servers)
        .arg("--profiles")
        .arg(dir.path().join("profiles"))
        .arg("--no-watch")
        .args(tls_args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (child, port, dir)
}

/// A client that trusts only `pem`.
fn trusting(pem: &[u8]) -> reqwest::Client {
    common::http()
        .tls_certs_only([reqwest::Certificate::from_pem(pem).unwrap()])
        .build()
        .unwrap()
}

/// How long a started server may take to answer: a debug build making its certificate on a
/// loaded 2-core CI host can take several seconds.
const START: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until `ready` holds, for up to [`START`] and no longer than `child` runs; if it never
/// does, stops `child` and panics with `what`.
async fn wait_for(child: &mut std::process::Child, what: &str, ready: impl AsyncFnMut() -> bool) {
    if !common::ready_within(START, Some(&mut *child), ready).await {
        stop_and_fail(child, what);
    }
}

/// Stops `child` and panics with `what` and what the server wrote to its stderr.
fn stop_and_fail(child: &mut std::process::Child, what: &str) -> ! {
    let exited = child.try_wait().ok().flatten();
    let _ = child.kill();
    let _ = child.wait();
    // What the server said, to tell a slow start from a stuck one.
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
    }
    match exited {
        Some(status) => panic!("{what}: the server exited ({status}); its stderr:\n{said}"),
        None => panic!("{what} within {START:?}; the server's stderr:\n{said}"),
    }
}

/// Waits until the server answers over TLS with `client`; the user list then.
async fn users(client: &reqwest::Client, port: u16, child: &mut std::process::Child) -> Value {
    let url = format!("https://localhost:{port}/scim-identifier/secure/scim/v2/Users");
    let mut answer = None;
    let mut last_error = String::new();
    let waited = common::ready_within(START, Some(&mut *child), async || {
        // Bounded, so that one connection left hanging does not use up the wait.
        let sent = (client.get(&url).bearer_auth("tok-secure"))
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) => answer = Some(r),
            Err(e) => last_error = format!("{e:?}"),
        }
        answer.is_some()
    })
    .await;
    if !waited {
        stop_and_fail(
            child,
            &format!("no TLS answer on port {port} (last error: {last_error})"),
        );
    }
    let r = answer.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_certificate_is_generated_announced_and_verifiable() {
    let (mut child, port, dir) = start(&["--tls".into(), "self-signed".into()]);
    let pem_path = dir.path().join("db.sqlite.tls-cert.pem");
    // Read once it is whole: a certificate that parses.
    let whole =
        || std::fs::read(&pem_path).is_ok_and(|p| reqwest::Certificate::from_pem(&p).is_ok());
    wait_for(&mut child, "no certificate written", async || whole()).await;
    let pem = std::fs::read(&pem_path).unwrap();
    let client = trusting(&pem);
    let list = users(&client, port, &mut child).await;
    assert_eq!(list["totalResults"], 0);
    // A created resource's location is an https URL.
    let r = client
        .post(format!(
            "https://localhost:{port}/scim-identifier/secure/scim/v2/Users"
        ))
        .bearer_auth("tok-secure")
        .header("content-type", "application/scim+json")
        .body(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"tls"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://localhost:")
    );
    // A client that does not trust the certificate is refused, as is plain HTTP.
    let untrusting = common::http().tls_certs_only([]).build().unwrap();
    let url = format!("https://localhost:{port}/healthz");
    assert!(untrusting.get(&url).send().await.is_err());
    let plain = common::http().build().unwrap();
    assert!(
        plain
            .get(format!("http://localhost:{port}/healthz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok()
            != Some(200)
    );
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The fingerprint printed is the certificate's.
    use rustls::pki_types::pem::PemObject as _;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    let want = scimlab::http::tls::fingerprint(&der);
    assert!(
        stderr.contains(&format!("SHA-256 fingerprint {want}")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_and_key_from_files_are_served() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let args = [
        "--tls-cert".to_string(),
        cert.display().to_string(),
        "--tls-key".to_string(),
        key.display().to_string(),
    ];
    let (mut child, port, _dir) = start(&args);
    let client = trusting(generated.cert.pem().as_bytes());
    assert_eq!(users(&client, port, &mut child).await["totalResults"], 0);
    let _ = child.kill();
    let _ = child.wait();
    // A key that is not a key is a clear start-up error.
    std::fs::write(&key, "not a key").unwrap();
    let (child, _, _dir) = start(&args);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds no PEM private key"), "{stderr}");
}
