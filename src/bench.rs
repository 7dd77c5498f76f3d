//! `scimlab bench`: throughput and latency of the real server, measured in-process against a
//! bare axum handler that returns a body of the same size, so each workload is reported as a
//! ratio that holds on a noisy shared machine.
//!
//! The load driver is hyper's HTTP/1.1 client, one keep-alive connection per driver task with one
//! request in flight (`harness::client`), identical for every workload. It shares the cores:
//! with kernel TCP it is about 45% of the bare handler's CPU and 20% of a GET's.

use crate::harness::client::Conn;
use crate::http::AppState;
use crate::model::{Model, Sources};
use crate::store::Store;
use anyhow::{Context, bail};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Users created (and then queried).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Seconds per read/patch workload.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Keep the benchmark database at this path (default: a temporary file), or run on
    /// PostgreSQL: `postgres://user@host[:port]` (a fresh database is made there per run).
    #[arg(long)]
    pub db: Option<String>,
    /// After the workloads, grow the user count to this many and read again (GET by id and
    /// `userName eq`), reporting the rates against the first ones (0: skip).
    #[arg(long, default_value_t = 0)]
    pub grow_to: usize,
    /// Also run `scimlab serve` as a process of its own, load it with the same users, reads and
    /// PATCHes, and report its CPU per request and peak RSS alone (the in-process figures
    /// include the load driver).
    #[arg(long, alias = "server-alone")]
    pub server_rss: bool,
    /// Run only the workloads whose names contain one of these words (e.g. `GET`, `PATCH`,
    /// `Bulk`), for profiling one at a time; the creates always run (they load the users).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Run everything this many times, each time on a fresh server and database, and end with
    /// each figure's median and range over the runs: on a shared machine one run's rates move
    /// by a third, so compare medians (ratios to the bare handler are taken within each run).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
}

impl Options {
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|w| name.contains(w.as_str()))
    }
}

const DEFINITION: &str = "id: bench\ntokens: [bench-token]\nresource_types:\n  User:\n    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]\n  Group: {}\nlimits: { max_payload_bytes: 16777216 }\n";

type Request = hyper::Request<http_body_util::Full<axum::body::Bytes>>;

fn request(method: &str, path: &str, body: &str) -> Request {
    crate::harness::client::request(method, path, "bench-token", body)
}

/// Results of one workload.
struct Stats {
    name: &'static str,
    requests: usize,
    non_2xx: usize,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    /// CPU time of the whole process (server, load driver, background threads) while the
    /// workload ran: unlike the rate, barely moved by other work on a shared machine.
    cpu: Duration,
}

impl Stats {
    /// A workload left out by `--only`.
    fn skipped(name: &'static str) -> Stats {
        Stats {
            name,
            requests: 0,
            non_2xx: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            cpu: Duration::ZERO,
        }
    }
    /// Slices of one workload as one.
    fn merged(name: &'static str, slices: Vec<Stats>) -> Stats {
        let mut all = Stats::skipped(name);
        for s in slices {
            all.requests += s.requests;
            all.non_2xx += s.non_2xx;
            all.elapsed += s.elapsed;
            all.cpu += s.cpu;
            all.latencies_us.extend(s.latencies_us);
        }
        all.latencies_us.sort_unstable();
        all
    }
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    /// Process CPU per request, in microseconds.
    fn cpu_per_request_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Round `round` of a Williams design for `n` (even) treatments: 0, 1, n-1, 2, n-2, …, each
/// shifted by `round`. Over `n` rounds every treatment takes every position once and follows
/// every other treatment once.
fn balanced_order(n: usize, round: usize) -> Vec<usize> {
    (0..n)
        .map(|k| {
            let base = if k % 2 == 1 {
                k.div_ceil(2)
            } else {
                (n - k / 2) % n
            };
            (base + round) % n
        })
        .collect()
}

/// One of the workloads [`Rig::interleaved`] compares: `model`, when set, is served while it runs.
struct Contender {
    name: &'static str,
    addr: SocketAddr,
    make: MakeRequest,
    model: Option<Arc<Model>>,
}

impl Contender {
    /// A workload on the server as defined (no other model swapped in for it).
    fn new(name: &'static str, addr: SocketAddr, make: MakeRequest) -> Contender {
        Contender {
            name,
            addr,
            make,
            model: None,
        }
    }
}

type MakeRequest = Arc<dyn Fn(usize) -> Request + Send + Sync>;

/// The yardstick's workload, and the reads that are compared with it again at a larger store.
const BARE: &str = "bare axum handler";
const GET_BY_ID: &str = "GET /Users/{id}";
const BY_USER_NAME: &str = "GET /Users?filter=userName eq";
const CREATE: &str = "create (POST /Users)";
const PAGE: &str = "GET /Users page of 100";
const PATCH: &str = "PATCH /Users/{id}";

/// A request to the bare handler (see [`start_bare`]).
fn bare_request() -> MakeRequest {
    Arc::new(|_| request("GET", "/bare", ""))
}

/// Drives `connections` connections until `limit` requests were sent or `duration` passed.
async fn load(
    name: &'static str,
    addr: SocketAddr,
    connections: usize,
    limit: Option<usize>,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<Stats> {
    let counter = Arc::new(AtomicUsize::new(0));
    let (started, cpu_before) = (Instant::now(), cpu_time(None));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (counter, make) = (counter.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut lat = Vec::new();
            let mut bad = 0usize;
            loop {
                let seq = counter.fetch_add(1, Ordering::Relaxed);
                if limit.is_some_and(|l| seq >= l)
                    || (limit.is_none() && started.elapsed() >= duration)
                {
                    break;
                }
                let req = make(seq);
                let t = Instant::now();
                let (status, _) = conn.send(req).await?;
                lat.push(t.elapsed().as_micros() as u32);
                if !(200..300).contains(&status) {
                    bad += 1;
                }
            }
            anyhow::Ok((lat, bad))
        }));
    }
    let mut latencies_us = Vec::new();
    let mut non_2xx = 0;
    for t in tasks {
        let (lat, bad) = t.await??;
        latencies_us.extend(lat);
        non_2xx += bad;
    }
    let (elapsed, cpu) = (started.elapsed(), cpu_time(None).saturating_sub(cpu_before));
    latencies_us.sort_unstable();
    Ok(Stats {
        name,
        requests: latencies_us.len(),
        non_2xx,
        elapsed,
        latencies_us,
        cpu,
    })
}

/// User and system CPU time so far, all threads, of this process or of process `pid`
/// (`/proc/…/stat`, in the kernel's fixed 100 Hz user ticks); zero where there is no procfs.
fn cpu_time(pid: Option<u32>) -> Duration {
    let path = pid.map_or_else(|| "/proc/self/stat".into(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = (rest.split_whitespace())
        .skip(11) // state … cmajflt; then utime, stime (fields 14 and 15)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Starts the process's peak RSS over from its RSS now (Linux: `clear_refs` 5), so that a
/// run's peak is its own, not an earlier run's.
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        println!("(peak RSS not reset: {e}; the figures below include earlier runs)");
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status_mb(&status, "VmHWM:")
}

/// A `/proc/<pid>/status` memory line (kB) in MB; 0 when absent.
fn status_mb(status: &str, field: &str) -> f64 {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A deterministic spread of request numbers over the users, so runs are comparable.
fn mix(n: usize) -> usize {
    crate::vocab::rng::Rng::new(n as u64).next_u64() as usize
}

const USERS: &str = "/scim-identifier/bench/scim/v2/Users";

/// The same server with SCIM events (notice payloads, HS256): the cost of events on writes.
const EVENTS_DEFINITION: &str = "id: bench-ev\ntokens: [bench-ev-token]\nresource_types:\n  User:\n    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]\nevents:\n  signing: { alg: HS256, secret: bench-secret-bench-secret-bench-secret }\n";

/// A bench user `i` (20 departments).
fn user(i: usize) -> String {
    format!(
        r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"user{i}@example.com","externalId":"ext-{i}","name":{{"givenName":"Given{i}","familyName":"Family{i}"}},"displayName":"User {i}","active":true,"emails":[{{"value":"user{i}@example.com","type":"work","primary":true}}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{{"employeeNumber":"{i}","department":"Dept {}"}}}}"#,
        i % 20
    )
}

/// The server under test and how each workload drives it.
struct Rig {
    _stop: tokio::sync::oneshot::Sender<()>,
    state: AppState,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    opts: Options,
    /// Keeps the temporary definitions and database for the run.
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start(opts: &Options) -> anyhow::Result<Rig> {
        let dir = tempfile::tempdir()?;
        let servers = dir.path().join("servers.d");
        std::fs::create_dir(&servers)?;
        std::fs::write(servers.join("bench.yaml"), DEFINITION)?;
        std::fs::write(servers.join("bench-events.yaml"), EVENTS_DEFINITION)?;
        let model = crate::app::compile(&Sources::new(&servers, dir.path().join("profiles")))?;
        let db = match opts.db.as_deref().map(crate::store::Location::parse) {
            None => crate::store::Location::Sqlite(dir.path().join("bench.db")),
            Some(crate::store::Location::Postgres(base)) => {
                crate::store::Location::Postgres(crate::store::pg::fresh_database(&base, "bench")?)
            }
            Some(file) => file,
        };
        println!("database: {db}");
        let state = AppState::new(Arc::new(Store::connect(&db)?), model)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // Stops when the rig is dropped (the sender with it): a later run (`--repeat`) does
        // not share the process with this one's server.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::app::serve_with(
            listener,
            state.clone(),
            crate::http::listen::ConnLimits::default().fitted_to_descriptors(),
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Rig {
            _stop: stop,
            state,
            addr,
            connections: opts.connections,
            duration: Duration::from_secs_f64(opts.seconds),
            opts: opts.clone(),
            _dir: dir,
        })
    }

    /// A timed workload on every connection.
    async fn timed(&self, name: &'static str, make: MakeRequest) -> anyhow::Result<Stats> {
        if !self.opts.wants(name) {
            return Ok(Stats::skipped(name));
        }
        load(name, self.addr, self.connections, None, self.duration, make).await
    }

    /// Workloads whose rates are compared, run in turn for a slice of the duration each, in
    /// as many rounds as there are workloads: every one sees the same machine (a shared
    /// machine's load drifts within seconds, and a workload run later would find warmer
    /// caches). The rounds' orders form a balanced Latin square, so each workload runs once in
    /// each position and after each other one once: no order effect favours one of them.
    async fn interleaved(&self, contenders: Vec<Contender>) -> anyhow::Result<Vec<Stats>> {
        let n = contenders.len();
        let slice = self.duration / n.max(1) as u32;
        let mut slices: Vec<Vec<Stats>> = contenders.iter().map(|_| Vec::new()).collect();
        for round in 0..n {
            for i in balanced_order(n, round) {
                let c = &contenders[i];
                // The bare handler always runs: it is what the others are compared with.
                if c.addr == self.addr && !self.opts.wants(c.name) {
                    continue;
                }
                let before = c.model.clone().map(|m| self.state.model.replace(m));
                let run = load(
                    c.name,
                    c.addr,
                    self.connections,
                    None,
                    slice,
                    c.make.clone(),
                )
                .await;
                if let Some(m) = before {
                    self.state.model.replace(m);
                }
                slices[i].push(run?);
            }
        }
        Ok((contenders.iter().zip(slices))
            .map(|(c, s)| Stats::merged(c.name, s))
            .collect())
    }

    /// A timed workload on one connection (p50 is one request's latency, not queueing).
    async fn one_conn(&self, name: &'static str, make: MakeRequest) -> anyhow::Result<Stats> {
        if !self.opts.wants(name) {
            return Ok(Stats::skipped(name));
        }
        load(name, self.addr, 1, None, self.duration, make).await
    }
}

/// Every user id in creation order (a page at a time), up to `users`.
async fn user_ids(conn: &mut Conn, users: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(users);
    while ids.len() < users {
        let path = format!(
            "{USERS}?attributes=id&startIndex={}&count=1000",
            ids.len() + 1
        );
        let (_, body) = conn.send(request("GET", &path, "")).await?;
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        let before = ids.len();
        ids.extend(
            (page["Resources"].as_array().into_iter().flatten())
                .filter_map(|r| r["id"].as_str().map(str::to_string)),
        );
        if ids.len() == before {
            break;
        }
    }
    Ok(ids)
}

/// Reads by id, users spread over all of `ids`.
fn by_id_requests(ids: &Arc<Vec<String>>) -> MakeRequest {
    let (ids, n) = (ids.clone(), ids.len().max(1));
    Arc::new(move |s| request("GET", &format!("{USERS}/{}", ids[mix(s) % n]), ""))
}

/// `userName eq` of the users numbered 0 to `n - 1`.
fn by_user_name_requests(n: usize) -> MakeRequest {
    let n = n.max(1);
    Arc::new(move |s| {
        let filter = format!("userName eq \"user{}@example.com\"", mix(s) % n);
        let filter = crate::http::urlencode(&filter);
        request("GET", &format!("{USERS}?filter={filter}"), "")
    })
}

/// Pages of 100 at a random `startIndex` among `n` users.
fn page_requests(n: usize) -> MakeRequest {
    Arc::new(move |s| {
        let start = 1 + mix(s) % n.saturating_sub(100).max(1);
        request("GET", &format!("{USERS}?startIndex={start}&count=100"), "")
    })
}

/// One attribute replaced per request, users spread over all of `ids`.
fn patch_requests(ids: &Arc<Vec<String>>) -> MakeRequest {
    let (ids, n) = (ids.clone(), ids.len().max(1));
    Arc::new(move |s| {
        let body = format!(
            r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"replace","path":"displayName","value":"Patched {s}"}}]}}"#
        );
        request("PATCH", &format!("{USERS}/{}", ids[mix(s) % n]), &body)
    })
}

/// The yardstick: a bare axum handler returning a body of `size` bytes.
async fn start_bare(size: usize) -> anyhow::Result<SocketAddr> {
    let body = Arc::new(vec![b' '; size]);
    let bare = axum::Router::new().route(
        "/bare",
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/scim+json")],
                    body.to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, bare).await });
    Ok(addr)
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let repeat = opts.repeat.max(1);
    let mut runs = Vec::with_capacity(repeat);
    for i in 0..repeat {
        if repeat > 1 {
            println!("\n=== run {} of {repeat}", i + 1);
        }
        runs.push(run_once(&opts).await?);
    }
    if repeat > 1 {
        print!("\n{}", over_runs(&runs));
    }
    Ok(())
}

/// One run of every workload; its figures, for a summary over runs.
async fn run_once(opts: &Options) -> anyhow::Result<Vec<Figures>> {
    reset_peak_rss();
    let rig = Rig::start(opts).await?;
    println!(
        "scimlab bench: {} users, {} connections, {}s per workload",
        opts.users, opts.connections, opts.seconds
    );
    let creates = load(
        CREATE,
        rig.addr,
        rig.connections,
        Some(opts.users),
        rig.duration,
        Arc::new(move |i| request("POST", USERS, &user(i))),
    )
    .await?;
    // The same creates on a server that records a SCIM event for each.
    const EVENTS: &str = "create, events on";
    let creates_with_events = if !opts.wants(EVENTS) {
        Stats::skipped(EVENTS)
    } else {
        load(
            EVENTS,
            rig.addr,
            rig.connections,
            Some(opts.users),
            rig.duration,
            Arc::new(move |i| {
                let path = "/scim-identifier/bench-ev/scim/v2/Users";
                crate::harness::client::request("POST", path, "bench-ev-token", &user(i))
            }),
        )
        .await?
    };
    let mut conn = Conn::open(rig.addr).await?;
    let ids = Arc::new(user_ids(&mut conn, opts.users).await?);
    let first = ids.first().context("no user was created")?;
    let (_, sample) = conn
        .send(request("GET", &format!("{USERS}/{first}"), ""))
        .await?;
    let bare_addr = start_bare(sample.len()).await?;
    let mut results = read_workloads(&rig, &ids, bare_addr).await?;
    results.push(patch_workload(&rig, &ids).await?);
    let core_rss = peak_rss_mb();
    results.push(group_workload(&rig, &ids).await?);
    results.push(bulk_workload(&rig).await?);
    let grown = if opts.grow_to > ids.len() {
        Some(grow(&rig, opts.users, opts.grow_to, bare_addr).await?)
    } else {
        None
    };
    let creates = [creates, creates_with_events];
    report(&creates, &results, sample.len(), ids.len(), core_rss);
    let mut figures = Figures::of(creates.iter().chain(&results), results[0].rate());
    if let Some(grown) = grown {
        print_grown(&grown, &results, ids.len(), opts.grow_to);
        figures.extend(Figures::of_grown(&grown, opts.grow_to));
    }
    if opts.server_rss {
        figures.extend(server_alone(opts).await?);
    }
    Ok(figures)
}

/// One workload's figures in one run.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    name: String,
    rate: f64,
    /// Rate as a share of the bare handler's in the same run (in-process workloads).
    share: Option<f64>,
    p50_ms: Option<f64>,
    cpu_us: f64,
    /// The server's peak RSS so far (alone).
    peak_rss_mb: Option<f64>,
}

impl Figures {
    /// The in-process workloads that ran, each against the bare handler's rate `bare`.
    fn of<'a>(stats: impl Iterator<Item = &'a Stats>, bare: f64) -> Vec<Figures> {
        stats
            .filter(|s| !s.elapsed.is_zero())
            .map(|s| Figures {
                name: s.name.to_string(),
                rate: s.rate(),
                share: Some(100.0 * s.rate() / bare),
                p50_ms: Some(s.percentile(0.5)),
                cpu_us: s.cpu_per_request_us(),
                peak_rss_mb: None,
            })
            .collect()
    }

    /// The reads at the larger user count, each against the bare handler run beside them.
    fn of_grown(grown: &[Stats], users: usize) -> Vec<Figures> {
        let Some(bare) = grown.iter().find(|g| g.name == BARE && g.requests > 0) else {
            return Vec::new();
        };
        let reads = grown.iter().filter(|g| g.name != BARE);
        let mut figures = Figures::of(reads, bare.rate());
        for f in &mut figures {
            f.name = format!("at {users} users: {}", f.name);
        }
        figures
    }
}

/// Median, least and greatest of some figures (none when there are none).
fn spread(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    values.sort_by(f64::total_cmp);
    let (first, last) = (*values.first()?, *values.last()?);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some((median, first, last))
}

/// Each workload's figures over the runs: median (least–greatest).
fn over_runs(runs: &[Vec<Figures>]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "over {} runs, median (least–greatest) of each figure; \"at N users\": the reads after growing, against the bare handler beside them; \"alone\": `scimlab serve` as a process of its own",
        runs.len()
    );
    let _ = writeln!(
        out,
        "{:<38} {:>22} {:>20} {:>22} {:>24} {:>20}",
        "workload", "req/s", "vs bare", "p50 ms", "CPU µs", "peak RSS MB"
    );
    let mut names: Vec<&str> = Vec::new();
    for f in runs.iter().flatten() {
        if !names.contains(&f.name.as_str()) {
            names.push(&f.name);
        }
    }
    for name in names {
        let of = |get: &dyn Fn(&Figures) -> Option<f64>| {
            let values = (runs.iter().flatten())
                .filter(|f| f.name == name)
                .filter_map(get)
                .collect();
            spread(values)
        };
        let show = |v: Option<(f64, f64, f64)>, digits: usize, unit: &str| match v {
            Some((m, lo, hi)) => format!("{m:.digits$}{unit} ({lo:.digits$}–{hi:.digits$})"),
            None => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<38} {:>22} {:>20} {:>22} {:>24} {:>20}",
            name,
            show(of(&|f| Some(f.rate)), 0, ""),
            show(of(&|f| f.share), 1, "%"),
            show(of(&|f| f.p50_ms), 2, ""),
            show(of(&|f| Some(f.cpu_us)), 1, ""),
            show(of(&|f| f.peak_rss_mb), 1, "")
        );
    }
    out
}

/// The reads at the larger user count against the same reads at the first one. The bare
/// handler ran beside both (interleaved), so the second figure, each read's share of bare now
/// against its share then, leaves out how the shared machine's speed moved in between (the
/// plain ratio of rates moved from 72% to 90% between two runs of one build).
fn print_grown(grown: &[Stats], first: &[Stats], users: usize, grown_to: usize) {
    let share = |stats: &[Stats], name: &str| {
        let rate = |n: &str| {
            (stats.iter())
                .find(|r| r.name == n && r.requests > 0)
                .map(Stats::rate)
        };
        Some((rate(name)?, rate(name)? / rate(BARE)?))
    };
    println!("\nat {grown_to} users (beside the bare handler again):");
    for g in grown
        .iter()
        .filter(|g| g.name != BARE && !g.elapsed.is_zero())
    {
        let (Some((now, now_share)), Some((then, then_share))) =
            (share(grown, g.name), share(first, g.name))
        else {
            continue;
        };
        println!(
            "{:<32} {:>10.0} {:>6.1}% of the {users}-user rate, {:>6.1}% of its share of bare then ({:.1}% of bare now)",
            g.name,
            now,
            100.0 * now / then,
            100.0 * now_share / then_share,
            100.0 * now_share,
        );
    }
}

/// Creates users up to `total`, then reruns the GET by id and `userName eq` workloads over all,
/// interleaved with the bare handler at `bare` as in the first rounds.
async fn grow(
    rig: &Rig,
    first: usize,
    total: usize,
    bare: SocketAddr,
) -> anyhow::Result<Vec<Stats>> {
    // A connection of its own: one idle through the workloads is closed by the server.
    let conn = &mut Conn::open(rig.addr).await?;
    let have = user_ids(conn, total).await?.len();
    let target = total.saturating_sub(have);
    let created = load(
        "growing",
        rig.addr,
        rig.connections,
        Some(target),
        Duration::from_secs(3600),
        Arc::new(move |i| request("POST", USERS, &user(10_000_000 + i))),
    )
    .await?;
    if created.non_2xx > 0 {
        bail!("{} creates failed while growing", created.non_2xx);
    }
    // Again a fresh connection: the first one idled through the creates.
    let ids = Arc::new(user_ids(&mut Conn::open(rig.addr).await?, total).await?);
    let by_id = by_id_requests(&ids);
    let by_name: MakeRequest = Arc::new(move |s| {
        // The first users are numbered from 0, those created while growing from 10,000,000.
        let k = mix(s) % (first + target).max(1);
        let name = if k < first { k } else { 10_000_000 + k - first };
        let filter = crate::http::urlencode(&format!("userName eq \"user{name}@example.com\""));
        request("GET", &format!("{USERS}?filter={filter}"), "")
    });
    rig.interleaved(vec![
        Contender::new(BARE, bare, bare_request()),
        Contender::new(GET_BY_ID, rig.addr, by_id),
        Contender::new(BY_USER_NAME, rig.addr, by_name),
    ])
    .await
}

/// `scimlab serve` in a process of its own with the bench definition: users created, then
/// reads by `userName` and by id, pages of 100 and PATCHes, `seconds` each. Reports the
/// server's CPU per request in each (the load driver's left out: it runs in this process)
/// and its peak RSS after each, read from /proc.
async fn server_alone(opts: &Options) -> anyhow::Result<Vec<Figures>> {
    let dir = tempfile::tempdir()?;
    let servers = dir.path().join("servers.d");
    std::fs::create_dir(&servers)?;
    std::fs::write(servers.join("bench.yaml"), DEFINITION)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--servers")
        .arg(&servers)
        .arg("--profiles")
        .arg(dir.path().join("profiles"))
        .arg("--db")
        .arg(dir.path().join("rss.db"))
        .arg("--no-watch")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting scimlab serve")?;
    let pid = child.id().context("the server exited at once")?;
    let started = Instant::now();
    while Conn::open(addr).await.is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("scimlab serve did not listen on {addr} within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let duration = Duration::from_secs_f64(opts.seconds);
    let users = opts.users.max(opts.grow_to);
    let status = || std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    // Runs one workload; takes the server's CPU time over it and its peak RSS so far.
    let measured = |name: &'static str, limit: Option<usize>, make: MakeRequest| async move {
        let before = cpu_time(Some(pid));
        let mut stats = load(name, addr, opts.connections, limit, duration, make).await?;
        stats.cpu = cpu_time(Some(pid)).saturating_sub(before);
        if stats.non_2xx > 0 {
            bail!(
                "{} of {} requests of {name} failed",
                stats.non_2xx,
                stats.requests
            );
        }
        anyhow::Ok((stats, status_mb(&status(), "VmHWM:")))
    };
    let mut runs = vec![
        measured(
            CREATE,
            Some(users),
            Arc::new(|i| request("POST", USERS, &user(i))),
        )
        .await?,
    ];
    runs.push(measured(BY_USER_NAME, None, by_user_name_requests(users)).await?);
    // Listed after the reads by userName, whose peak RSS is then comparable with runs from
    // before the other workloads came in (they followed the creates directly).
    let ids = Arc::new(user_ids(&mut Conn::open(addr).await?, users).await?);
    runs.push(measured(GET_BY_ID, None, by_id_requests(&ids)).await?);
    runs.push(measured(PAGE, None, page_requests(ids.len())).await?);
    runs.push(measured(PATCH, None, patch_requests(&ids)).await?);
    let now = status();
    child.kill().await.ok();
    println!(
        "\nscimlab serve alone (pid {pid}), {users} users, the workloads in this order. CPU µs: the server process's CPU per request (the load driver runs in this one); peak RSS: its peak so far"
    );
    println!(
        "{:<32} {:>9} {:>9} {:>13}",
        "workload", "req/s", "CPU µs", "peak RSS MB"
    );
    for (r, peak) in &runs {
        println!(
            "{:<32} {:>9.0} {:>9.1} {:>13.1}",
            r.name,
            r.rate(),
            r.cpu_per_request_us(),
            peak
        );
    }
    let field = |name: &str| status_mb(&now, name);
    println!(
        "RSS at the end {:.1} MB: anonymous {:.1} MB, mapped files (binary, libraries, WAL index) {:.1} MB",
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:")
    );
    let figures = (runs.iter()).map(|(r, peak)| Figures {
        name: format!("alone: {}", r.name),
        rate: r.rate(),
        share: None,
        p50_ms: Some(r.percentile(0.5)),
        cpu_us: r.cpu_per_request_us(),
        peak_rss_mb: Some(*peak),
    });
    Ok(figures.collect())
}

/// The bare handler first (what the others are compared with), then reads by id (with and
/// without the request recorder), by userName, pages and a scan.
async fn read_workloads(
    rig: &Rig,
    ids: &Arc<Vec<String>>,
    bare: SocketAddr,
) -> anyhow::Result<Vec<Stats>> {
    let n = ids.len().max(1);
    let get_by_id = by_id_requests(ids);
    // The same reads with the request recorder off: the inspector's cost.
    let quiet = format!("{DEFINITION}inspector: {{ enabled: false }}\n");
    let quiet_file = crate::definition::load_str(std::path::Path::new("bench.yaml"), &quiet)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let quiet_model =
        Arc::new(crate::model::compile(&[quiet_file], &[]).map_err(|p| anyhow::anyhow!("{p:?}"))?);
    let by_user_name = by_user_name_requests(n);
    let mut out = rig
        .interleaved(vec![
            Contender::new(BARE, bare, bare_request()),
            Contender::new(GET_BY_ID, rig.addr, get_by_id.clone()),
            Contender {
                model: Some(quiet_model),
                ..Contender::new("GET /Users/{id}, recorder off", rig.addr, get_by_id)
            },
            Contender::new(BY_USER_NAME, rig.addr, by_user_name.clone()),
        ])
        .await?;
    out.push(
        rig.one_conn("GET userName eq (1 conn)", by_user_name)
            .await?,
    );
    out.push(rig.timed(PAGE, page_requests(n)).await?);
    let scan: MakeRequest = Arc::new(move |s| {
        let filter = format!(
            "emails[type eq \"work\" and value co \"user{}@\"]",
            mix(s) % n
        );
        let filter = crate::http::urlencode(&filter);
        request("GET", &format!("{USERS}?count=10&filter={filter}"), "")
    });
    out.push(
        rig.one_conn("GET emails[...value co] (1 conn)", scan)
            .await?,
    );
    Ok(out)
}

/// One attribute replaced per request, users spread over all.
async fn patch_workload(rig: &Rig, ids: &Arc<Vec<String>>) -> anyhow::Result<Stats> {
    rig.timed(PATCH, patch_requests(ids)).await
}

/// A group holding every user; one member added or removed per request (one connection, so
/// adds and removes alternate in order).
async fn group_workload(rig: &Rig, ids: &[String]) -> anyhow::Result<Stats> {
    const NAME: &str = "PATCH group member add/remove";
    if !rig.opts.wants(NAME) {
        return Ok(Stats::skipped(NAME));
    }
    // A connection of its own: one idle through the read workloads is closed by the
    // server's keep-alive timeout.
    let mut conn = Conn::open(rig.addr).await?;
    let members: Vec<serde_json::Value> = ids
        .iter()
        .map(|i| serde_json::json!({"value": i}))
        .collect();
    let group = serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "everyone", "members": members});
    let (status, body) = conn
        .send(request(
            "POST",
            "/scim-identifier/bench/scim/v2/Groups",
            &group.to_string(),
        ))
        .await?;
    if status != 201 {
        bail!(
            "creating the large group: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let gid = serde_json::from_slice::<serde_json::Value>(&body)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    rig.one_conn(NAME, Arc::new(move |s| {
        let op = if s % 2 == 0 {
            format!(r#"{{"op":"add","path":"members","value":[{{"value":"extra-{}"}}]}}"#, s / 2)
        } else {
            format!(r#"{{"op":"remove","path":"members[value eq \"extra-{}\"]"}}"#, s / 2)
        };
        let body = format!(r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{op}]}}"#);
        request("PATCH", &format!("/scim-identifier/bench/scim/v2/Groups/{gid}?excludedAttributes=members"), &body)
    }))
    .await
}

/// Five Bulk requests of 1,000 creates each, one at a time.
async fn bulk_workload(rig: &Rig) -> anyhow::Result<Stats> {
    const NAME: &str = "Bulk of 1,000 creates";
    if !rig.opts.wants(NAME) {
        return Ok(Stats::skipped(NAME));
    }
    let bulk_body = |round: usize| {
        let ops: Vec<String> = (0..1000)
            .map(|k| {
                format!(
                    r#"{{"method":"POST","path":"/Users","bulkId":"b{k}","data":{}}}"#,
                    user(1_000_000 * (round + 1) + k)
                )
            })
            .collect();
        format!(
            r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{}]}}"#,
            ops.join(",")
        )
    };
    let bulks: Arc<Vec<String>> = Arc::new((0..5).map(bulk_body).collect());
    load(
        NAME,
        rig.addr,
        1,
        Some(5),
        rig.duration,
        Arc::new(move |s| request("POST", "/scim-identifier/bench/scim/v2/Bulk", &bulks[s])),
    )
    .await
}

/// The table: each workload's rate as a share of the bare handler's (the first result).
fn report(creates: &[Stats], results: &[Stats], body_size: usize, users: usize, core_rss: f64) {
    let (bare_rate, bare_cpu) = (results[0].rate(), results[0].cpu_per_request_us());
    println!(
        "\n{:<32} {:>10} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9}",
        "workload", "req/s", "p50 ms", "p99 ms", "non-2xx", "vs bare", "CPU µs", "CPU bare"
    );
    for s in creates.iter().chain(results.iter()) {
        if s.elapsed.is_zero() {
            continue;
        }
        println!(
            "{:<32} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>8.1}% {:>9.1} {:>8.1}%",
            s.name,
            s.rate(),
            s.percentile(0.5),
            s.percentile(0.99),
            s.non_2xx,
            100.0 * s.rate() / bare_rate,
            s.cpu_per_request_us(),
            100.0 * bare_cpu / s.cpu_per_request_us()
        );
    }
    println!("(the group has {users} members; its PATCH workload runs on one connection)");
    println!(
        "(CPU µs: the process's CPU time per request, server, load driver and background threads \
         together; CPU bare: the bare handler's CPU per request as a share of it, which other \
         work on a shared machine moves far less than the rates)"
    );
    println!(
        "\npeak RSS {core_rss:.1} MB after the user workloads (server and load driver in one process)"
    );
    println!(
        "response body size {body_size} bytes; users stored {users}; peak RSS {:.1} MB at the end (after the 1 MB group request)",
        peak_rss_mb()
    );
}

/// Options of `scimlab bench-reload`.
#[derive(Debug, Clone, Args)]
pub struct ReloadOptions {
    /// Numbers of servers in the definitions directory to measure at.
    #[arg(long, value_delimiter = ',', default_value = "1,50,200")]
    pub servers: Vec<usize>,
    /// Edits per size.
    #[arg(long, default_value_t = 50)]
    pub edits: usize,
}

fn reload_definition(i: usize, attr: &str) -> String {
    format!(
        "id: s{i}\ntokens: [token-{i}]\nresource_types:\n  User:\n    extensions: [urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]\n    attributes:\n      {attr}: {{ type: string }}\n  Group: {{}}\n  Entitlement: {{}}\n"
    )
}

/// Writes per size in `bench-reload`.
const WRITES: usize = 200;

/// Median milliseconds of a create and of a PATCH of `userName` on server `s0`, one request
/// at a time.
async fn writes_one_at_a_time(conn: &mut Conn) -> anyhow::Result<(f64, f64)> {
    let (users, token) = ("/scim-identifier/s0/scim/v2/Users", "token-0");
    let median = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    // One request, timed in milliseconds; an unexpected status ends the bench.
    async fn timed(
        conn: &mut Conn,
        (method, path, token, body): (&str, &str, &str, &str),
        expect: u16,
        times: &mut Vec<f64>,
    ) -> anyhow::Result<axum::body::Bytes> {
        let req = crate::harness::client::request(method, path, token, body);
        let started = Instant::now();
        let (status, body) = conn.send(req).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if status != expect {
            bail!(
                "{method} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body)
    }
    let (mut creates, mut patches, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..WRITES {
        let body = timed(conn, ("POST", users, token, &user(i)), 201, &mut creates).await?;
        let doc: serde_json::Value = serde_json::from_slice(&body)?;
        let id = doc["id"].as_str().context("a created user has no id")?;
        ids.push(id.to_string());
    }
    for (i, id) in ids.iter().enumerate() {
        let body = format!(
            r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"replace","path":"userName","value":"renamed{i}@example.com"}}]}}"#
        );
        let path = format!("{users}/{id}");
        timed(conn, ("PATCH", &path, token, &body), 200, &mut patches).await?;
    }
    Ok((median(creates), median(patches)))
}

/// Time from a definition file's write to the change being served, with the watcher on.
pub async fn run_reload(opts: ReloadOptions) -> anyhow::Result<()> {
    println!(
        "scimlab bench-reload: {} edits per size; time from rename() of the file to the change being served;\n\
         then {WRITES} creates and {WRITES} PATCHes on one server, one at a time (each write opens every index of the\n\
         table, whichever server it is for: they must not slow down as servers are added)\n",
        opts.edits
    );
    println!(
        "{:>8} {:>10} {:>10} {:>10} {:>15} {:>14}",
        "servers", "p50 ms", "p99 ms", "max ms", "create p50 ms", "PATCH p50 ms"
    );
    for &n in &opts.servers {
        let dir = tempfile::tempdir()?;
        let servers = dir.path().join("servers.d");
        std::fs::create_dir(&servers)?;
        for i in 0..n {
            std::fs::write(
                servers.join(format!("s{i}.yaml")),
                reload_definition(i, "attr0"),
            )?;
        }
        let sources = Sources::new(&servers, dir.path().join("profiles"));
        let model = crate::app::compile(&sources)?;
        let store = Arc::new(Store::open(&dir.path().join("reload.db"))?);
        let state = AppState::new(store, model)?;
        crate::reload::initial_status(&state.reloader(), &sources);
        let _watcher = crate::reload::watch(state.reloader(), sources)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(crate::app::serve_with(
            listener,
            state,
            crate::http::listen::ConnLimits::default().fitted_to_descriptors(),
            std::future::pending(),
        ));
        let mut conn = Conn::open(addr).await?;
        let mut times = Vec::new();
        for e in 1..=opts.edits {
            let i = mix(e) % n;
            let attr = format!("attr{e}");
            let tmp = dir.path().join("edit.tmp");
            std::fs::write(&tmp, reload_definition(i, &attr))?;
            let started = Instant::now();
            std::fs::rename(&tmp, servers.join(format!("s{i}.yaml")))?;
            let path = format!(
                "/scim-identifier/s{i}/scim/v2/Schemas/urn:scimlab:schemas:extension:s{i}:2.0:User"
            );
            loop {
                let req = crate::harness::client::request("GET", &path, &format!("token-{i}"), "");
                let (status, body) = conn.send(req).await?;
                if crate::harness::client::contains(&body, attr.as_bytes()) {
                    break;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    bail!(
                        "edit {e} of s{i} not served after 10 s (last answer {status}: {})",
                        String::from_utf8_lossy(&body)
                    );
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let (create, patch) = writes_one_at_a_time(&mut conn).await?;
        times.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "{n:>8} {:>10.1} {:>10.1} {:>10.1} {create:>15.3} {patch:>14.3}",
            pct(0.5),
            pct(0.99),
            times[times.len() - 1]
        );
    }
    println!(
        "\n(debounce window {} ms included)",
        crate::reload::DEBOUNCE.as_millis()
    );
    Ok(())
}

/// Options of `scimlab bench-seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedOptions {
    /// Users to seed per run.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Groups to seed per run.
    #[arg(long, default_value_t = 50)]
    pub groups: usize,
    /// Profiles the seeded server applies (their catalogue is assigned).
    #[arg(long, value_delimiter = ',', default_value = "it,security")]
    pub profile: Vec<String>,
    /// Directory of profile packs.
    #[arg(long, default_value = "profiles", env = "SCIMLAB_PROFILES")]
    pub profiles: std::path::PathBuf,
    /// Runs (each on a fresh database); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// Seeds a fresh server `runs` times and reports the time of each run and the median.
pub fn run_seed(opts: SeedOptions) -> anyhow::Result<()> {
    let mut times = Vec::new();
    for run in 0..opts.runs.max(1) {
        let dir = tempfile::tempdir()?;
        let servers = dir.path().join("servers.d");
        std::fs::create_dir(&servers)?;
        std::fs::write(
            servers.join("seeded.yaml"),
            format!(
                "id: seeded\ntokens: [t]\nprofiles: [{}]\nresource_types:\n  User: {{}}\n  Group: {{}}\n",
                opts.profile.join(", ")
            ),
        )?;
        let model = crate::app::compile(&Sources::new(&servers, &opts.profiles))?;
        let server = model
            .server("seeded")
            .context("the bench server did not compile")?;
        let store = Store::open(&dir.path().join("seed.db"))?;
        store.apply_indexes(server, None)?;
        let started = Instant::now();
        let report = crate::data::Workspace::seed_store(
            &store,
            server,
            &crate::seed::Request {
                users: opts.users,
                groups: opts.groups,
                seed: 42,
            },
        )?;
        let elapsed = started.elapsed();
        println!(
            "run {}: {report} in {:.2} s ({:.0} users/s)",
            run + 1,
            elapsed.as_secs_f64(),
            opts.users as f64 / elapsed.as_secs_f64()
        );
        times.push(elapsed.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "seed {} users + {} groups: median {:.2} s over {} run(s) (target: 10,000 users in under 1 s)",
        opts.users,
        opts.groups,
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{BARE, Figures, Stats, balanced_order, over_runs, spread};
    use std::collections::HashSet;

    /// The reads after growing, each as a share of the bare handler run beside them; the
    /// bare handler itself is no row of its own.
    #[test]
    fn grown_reads_are_shares_of_the_bare_handler_beside_them() {
        let ran = |name: &'static str, requests: usize| Stats {
            requests,
            elapsed: std::time::Duration::from_secs(1),
            latencies_us: vec![500; 3],
            ..Stats::skipped(name)
        };
        let grown = [ran("GET /Users/{id}", 400), ran(BARE, 1000)];
        let figures = Figures::of_grown(&grown, 100_000);
        assert_eq!(figures.len(), 1, "{figures:?}");
        assert_eq!(figures[0].name, "at 100000 users: GET /Users/{id}");
        assert_eq!(figures[0].share, Some(40.0));
        assert_eq!(figures[0].rate, 400.0);
    }

    #[test]
    fn spread_is_the_median_and_range() {
        assert_eq!(spread(vec![]), None);
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 10.0]), Some((3.0, 1.0, 10.0)));
    }

    /// A workload's row over runs gives each figure's median and range, a figure a workload
    /// lacks as `-`, and a workload missing from a run is summed up over the runs it is in.
    #[test]
    fn figures_over_runs_are_medians_with_ranges() {
        let f = |name: &str, rate: f64, share: Option<f64>, rss: Option<f64>| Figures {
            name: name.into(),
            rate,
            share,
            p50_ms: Some(rate / 1000.0),
            cpu_us: 100.0 + rate / 100.0,
            peak_rss_mb: rss,
        };
        let runs = vec![
            vec![
                f("GET", 9000.0, Some(40.0), None),
                f("alone: GET", 5000.0, None, Some(30.0)),
            ],
            vec![f("GET", 11000.0, Some(50.0), None)],
            vec![
                f("GET", 10000.0, Some(45.0), None),
                f("alone: GET", 7000.0, None, Some(34.0)),
            ],
        ];
        let out = over_runs(&runs);
        let row = |name: &str| {
            (out.lines())
                .find(|l| l.split("  ").next() == Some(name))
                .unwrap_or_else(|| panic!("no row {name} in\n{out}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(out.starts_with("over 3 runs"), "{out}");
        assert_eq!(
            row("GET"),
            "GET 10000 (9000–11000) 45.0% (40.0–50.0) 10.00 (9.00–11.00) 200.0 (190.0–210.0) -"
        );
        assert_eq!(
            row("alone: GET"),
            "alone: GET 6000 (5000–7000) - 6.00 (5.00–7.00) 160.0 (150.0–170.0) 32.0 (30.0–34.0)"
        );
    }

    /// Every workload once per round and once per position, and each one right after each
    /// other one exactly once: the rates compared carry no order effect.
    #[test]
    fn interleaved_rounds_are_a_balanced_latin_square() {
        for n in [2, 4, 6] {
            let rounds: Vec<Vec<usize>> = (0..n).map(|r| balanced_order(n, r)).collect();
            for r in &rounds {
                assert_eq!(r.iter().collect::<HashSet<_>>().len(), n, "{rounds:?}");
            }
            for pos in 0..n {
                let at: HashSet<_> = rounds.iter().map(|r| r[pos]).collect();
                assert_eq!(at.len(), n, "position {pos} in {rounds:?}");
            }
            let pairs: HashSet<(usize, usize)> = (rounds.iter())
                .flat_map(|r| r.windows(2).map(|w| (w[0], w[1])))
                .collect();
            assert_eq!(pairs.len(), n * (n - 1), "{rounds:?}");
        }
    }
}
