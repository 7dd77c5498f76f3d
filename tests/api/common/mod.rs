//! Test harness: starts the real server on 127.0.0.1:0 with temporary definitions and a
//! temporary database, and talks HTTP to it.
#![allow(dead_code)]

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: Client,
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub state: Option<scimlab::http::AppState>,
    _watcher: Option<notify::RecommendedWatcher>,
}

/// How to start a test server, where the defaults do not fit.
#[derive(Default)]
pub struct Options {
    pub limits: Option<scimlab::http::listen::ConnLimits>,
    pub admin: Option<scimlab::http::AdminAccess>,
    /// The database (default: a fresh one, see `test_db`); a second replica passes the
    /// first one's.
    pub db: Option<scimlab::store::Location>,
}

/// A definition with User (+enterprise, custom attributes), Group, Entitlement, Role.
pub const FULL: &str = r#"
id: full
tokens: [tok-full]
resource_types:
  User:
    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]
    attributes:
      region: { type: string, canonical_values: [AMER, EMEA] }
      badge: { type: string, mutability: immutable }
      level: { type: integer }
      score: { type: decimal }
      hired: { type: dateTime }
      secret: { type: string, mutability: writeOnly, returned: never }
      nick: { type: string, returned: request }
      tags: { type: string, multi_valued: true }
  Group: {}
  Entitlement: {}
  Role: {}
  Agent: {}
validation:
  strict: true
"#;

/// A second server, to check isolation.
pub const OTHER: &str = r#"
id: other
tokens: [tok-other]
resource_types:
  User: {}
  Group: {}
compat: entra
validation:
  strict: false
"#;

/// The database a test server runs on: a SQLite file in `dir`, or — when `SCIMLAB_TEST_DB`
/// names a PostgreSQL server (`postgres://user@host:port`, as `.ci/run` sets it) — a fresh
/// database there. The whole suite runs on either backend.
pub fn test_db(dir: &std::path::Path) -> scimlab::store::Location {
    match std::env::var("SCIMLAB_TEST_DB") {
        Ok(base) if !base.is_empty() => scimlab::store::Location::Postgres(
            scimlab::store::pg::fresh_database(&base, "test").unwrap(),
        ),
        _ => scimlab::store::Location::Sqlite(dir.join("test.db")),
    }
}

/// Whether the suite runs on PostgreSQL (tests of SQLite's own files skip there).
pub fn on_postgres() -> bool {
    std::env::var("SCIMLAB_TEST_DB").is_ok_and(|v| !v.is_empty())
}

impl TestApp {
    /// Starts a server over the given (file name, YAML) definitions.
    pub async fn spawn(defs: &[(&str, &str)]) -> TestApp {
        Self::start(defs, &[], false).await
    }

    /// Like `spawn`, with the definitions directory watched for changes.
    pub async fn spawn_watched(defs: &[(&str, &str)]) -> TestApp {
        Self::start(defs, &[], true).await
    }

    /// Definitions plus profile packs (`profiles/`), watched.
    pub async fn spawn_with_profiles(defs: &[(&str, &str)], profiles: &[(&str, &str)]) -> TestApp {
        Self::start(defs, profiles, true).await
    }

    pub fn profiles_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("profiles")
    }

    /// Writes a profile pack the way editors do (temporary file, then rename).
    pub fn write_profile(&self, name: &str, yaml: &str) {
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, self.profiles_dir().join(name)).unwrap();
    }

    /// The admin token of the running server.
    pub fn admin_token(&self) -> String {
        self.state.as_ref().unwrap().harness.admin.token.clone()
    }

    /// A request to the admin API with the admin token.
    pub async fn admin(&self, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut r = self
            .client
            .request(method, self.url(path))
            .bearer_auth(self.admin_token());
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let (s, v, _) = split(r.send().await.unwrap()).await;
        (s, v)
    }

    /// Opens a UI page as a browser would: returns its session cookie (`name=value`) and the
    /// CSRF token its forms carry.
    pub async fn ui_session(&self, path: &str) -> (String, String) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let html = r.text().await.unwrap();
        let at = html
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        let csrf = html[at..].split('"').next().unwrap().to_string();
        (cookie, csrf)
    }

    /// Where this server's data lives (a second replica opens the same).
    pub fn store_location(&self) -> scimlab::store::Location {
        self.state.as_ref().unwrap().store.location().clone()
    }

    /// The running server's store (for checks that look below HTTP).
    pub fn store(&self) -> &scimlab::store::Store {
        &self.state.as_ref().unwrap().store
    }

    pub fn servers_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("servers.d")
    }

    /// Writes a definition file the way editors do: to a temporary name, then renamed over.
    pub fn write_def(&self, name: &str, yaml: &str) {
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, self.servers_dir().join(name)).unwrap();
    }

    /// GET /healthz.
    pub async fn health(&self) -> Value {
        split(self.client.get(self.url("/healthz")).send().await.unwrap())
            .await
            .1
    }

    async fn start(defs: &[(&str, &str)], profiles: &[(&str, &str)], watch: bool) -> TestApp {
        Self::start_with(defs, profiles, watch, Options::default()).await
    }

    /// Starts a server with non-default connection limits or admin access.
    pub async fn spawn_with(defs: &[(&str, &str)], options: Options) -> TestApp {
        Self::start_with(defs, &[], false, options).await
    }

    async fn start_with(
        defs: &[(&str, &str)],
        profiles: &[(&str, &str)],
        watch: bool,
        options: Options,
    ) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let servers = dir.path().join("servers.d");
        std::fs::create_dir(&servers).unwrap();
        for (name, yaml) in defs {
            std::fs::write(servers.join(name), yaml).unwrap();
        }
        let packs = dir.path().join("profiles");
        std::fs::create_dir(&packs).unwrap();
        for (name, yaml) in profiles {
            std::fs::write(packs.join(name), yaml).unwrap();
        }
        let sources = scimlab::model::Sources::new(&servers, &packs);
        let model = sources.compile().unwrap_or_else(|p| panic!("{p:?}"));
        let db = options.db.unwrap_or_else(|| test_db(dir.path()));
        let store = Arc::new(scimlab::store::Store::connect(&db).unwrap());
        let mut state = scimlab::http::AppState::new(store, model).unwrap();
        if let Some(admin) = options.admin {
            state = state.with_admin(admin);
        }
        scimlab::reload::initial_status(&state.reloader(), &sources);
        let watcher = watch.then(|| scimlab::reload::watch(state.reloader(), sources).unwrap());
        let kept = state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let limits = options.limits.unwrap_or_default();
        tokio::spawn(scimlab::app::serve_with(listener, state, limits, async {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            client: http().build().unwrap(),
            dir,
            shutdown: Some(tx),
            state: Some(kept),
            _watcher: watcher,
        }
    }

    /// The shipped `servers.d/` and `profiles/`, as `scimlab serve` runs them.
    pub async fn shipped() -> TestApp {
        let read = |dir: &str| -> Vec<(String, String)> {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            scimlab::definition::yaml_files(&dir)
                .into_iter()
                .map(|p| {
                    (
                        p.file_name().unwrap().to_string_lossy().to_string(),
                        std::fs::read_to_string(&p).unwrap(),
                    )
                })
                .collect()
        };
        let (defs, packs) = (read("servers.d"), read("profiles"));
        fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
            v.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect()
        }
        Self::start(&refs(&defs), &refs(&packs), false).await
    }

    pub async fn default() -> TestApp {
        TestApp::spawn(&[("full.yaml", FULL), ("other.yaml", OTHER)]).await
    }

    pub fn base(&self, server: &str) -> String {
        format!("http://{}/scim-identifier/{server}/scim/v2", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request to `server` with its token (`tok-{server}`).
    pub fn req(&self, method: Method, server: &str, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base(server)))
            .bearer_auth(format!("tok-{server}"))
    }

    pub async fn send(
        &self,
        method: Method,
        server: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut r = self.req(method, server, path);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        split(r.send().await.unwrap()).await
    }

    pub async fn get(&self, server: &str, path: &str) -> (u16, Value) {
        let (s, b, _) = self.send(Method::GET, server, path, None).await;
        (s, b)
    }
    pub async fn post(&self, server: &str, path: &str, body: Value) -> (u16, Value) {
        let (s, b, _) = self.send(Method::POST, server, path, Some(body)).await;
        (s, b)
    }
    pub async fn put(&self, server: &str, path: &str, body: Value) -> (u16, Value) {
        let (s, b, _) = self.send(Method::PUT, server, path, Some(body)).await;
        (s, b)
    }
    pub async fn patch(&self, server: &str, path: &str, ops: Value) -> (u16, Value) {
        let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let (s, b, _) = self.send(Method::PATCH, server, path, Some(body)).await;
        (s, b)
    }
    pub async fn delete(&self, server: &str, path: &str) -> u16 {
        self.send(Method::DELETE, server, path, None).await.0
    }

    /// Creates a user and returns its id.
    pub async fn user(&self, server: &str, user_name: &str) -> String {
        let (s, b) = self
            .post(
                server,
                "/Users",
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name
                }),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    /// userNames returned by a filter on /Users.
    pub async fn names(&self, server: &str, filter: &str) -> Vec<String> {
        let (s, b) = self
            .get(
                server,
                &format!("/Users?filter={}&count=1000", urlencode(filter)),
            )
            .await;
        assert_eq!(s, 200, "{filter}: {b}");
        let mut v: Vec<String> = b["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An HTTP client builder for tests. reqwest runs on rustls with the ring provider (as the
/// probe does), which must be installed once per process before a client is built.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Waits (up to five seconds, polling every 20 ms) until `check` holds; panics naming `what`
/// otherwise. For what happens in the background: reloads, the recorder, a started process.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..250 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Whether `url` answers (any status) within 60 s: a process the test started is up. Not
/// [`eventually`]'s 5 s: a debug build preparing the shipped servers on a loaded 2-core CI host
/// can take longer than that, and a server that answers ends the wait at once. False at once
/// if `process` (the one that should answer) exits first; callers stop it, then assert.
pub async fn answers_soon(url: &str, process: Option<&mut std::process::Child>) -> bool {
    answers_within(url, std::time::Duration::from_secs(60), process).await
}

/// [`answers_soon`] with a deadline of the caller's.
pub async fn answers_within(
    url: &str,
    within: std::time::Duration,
    process: Option<&mut std::process::Child>,
) -> bool {
    let client = http().build().unwrap();
    ready_within(within, process, async || {
        client.get(url).send().await.is_ok()
    })
    .await
}

/// Polls `ready` every 20 ms until it holds (true), `within` has passed or `process` (the one
/// that should make it hold) has exited (false).
pub async fn ready_within(
    within: std::time::Duration,
    mut process: Option<&mut std::process::Child>,
    mut ready: impl AsyncFnMut() -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if ready().await {
            return true;
        }
        if let Some(Ok(Some(_exited))) = process.as_mut().map(|p| p.try_wait()) {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// `scimlab serve` listening on 127.0.0.1:`port`, with database `db` and the definitions in
/// `servers`; callers add their flags and where its output goes. Its stdout is not the test
/// runner's: a server that a failed test leaves running would otherwise hold the runner's
/// output open, and CI (which pipes `cargo test` into `tee`) would wait for it.
pub fn serve_command(
    port: u16,
    db: impl AsRef<std::ffi::OsStr>,
    servers: impl AsRef<std::ffi::OsStr>,
) -> std::process::Command {
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_scimlab"));
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--db")
        .arg(db)
        .arg("--servers")
        .arg(servers)
        .stdout(std::process::Stdio::null());
    serve
}

/// A temporary directory holding `servers.d/full.yaml` (and, once a server runs there, its
/// database).
pub fn full_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("servers.d")).unwrap();
    std::fs::write(dir.path().join("servers.d/full.yaml"), FULL).unwrap();
    dir
}

/// A port nothing listens on right now (for processes the tests start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn split(resp: Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body, headers)
}

pub fn urlencode(s: &str) -> String {
    scimlab::http::urlencode(s)
}

/// Asserts a SCIM error body with the given status and scimType.
pub fn assert_error(status: u16, body: &Value, want_status: u16, scim_type: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{body}"
    );
    assert_eq!(body["status"], want_status.to_string(), "{body}");
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}
