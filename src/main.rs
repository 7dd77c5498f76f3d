//! The `scimlab` command line: parses arguments, starts logging, calls the library.

use clap::{Args, Parser, Subcommand};
use scimlab::model::Sources;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mimalloc: the server allocates many short-lived JSON values per request; glibc's malloc
/// spent ~15% of a GET's CPU (profile in the performance notes), mimalloc about a third of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc 3; the sys
/// crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Returns freed pages to the OS at once instead of after 10 ms: under load the delayed
/// pages pile up (measured at 30,000 users: peak RSS 74 MB with the default, 61 MB with 0,
/// at the same request rate). `MIMALLOC_PURGE_DELAY` in the environment (which mimalloc reads
/// itself) overrides it, to measure other delays (1 and 5 ms made no difference to creates or
/// PATCH beyond the noise).
fn return_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets a process-wide option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// No transparent huge pages for this process. mimalloc asks for them on its arena
/// (`madvise(MADV_HUGEPAGE)`, before `main` runs), and each one touched is 2 MB resident
/// however little of it is used: `scimlab serve` idled at 12 MB of anonymous memory with
/// them and 5 MB without; at 100,000 users its peak RSS was 55 MB with them and 38 MB
/// without. The flag covers memory mapped before it was set. `MIMALLOC_ALLOW_THP` in the
/// environment (which mimalloc reads itself) leaves the choice to mimalloc.
fn small_pages_only() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and touches no memory of ours; a
    // kernel without it answers EINVAL, which leaves things as they were.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[derive(Parser)]
#[command(
    name = "scimlab",
    version,
    about = "Many virtual SCIM 2.0 servers on one port, defined in YAML"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where definitions live.
#[derive(Args, Clone)]
struct Dirs {
    /// Directory of server definitions (*.yaml).
    #[arg(
        long,
        alias = "dir",
        default_value = "servers.d",
        env = "SCIMLAB_SERVERS"
    )]
    servers: PathBuf,
    /// Directory of profile packs (*.yaml) the definitions may apply.
    #[arg(long, default_value = "profiles", env = "SCIMLAB_PROFILES")]
    profiles: PathBuf,
}

impl Dirs {
    fn sources(&self) -> Sources {
        Sources::new(&self.servers, &self.profiles)
    }
}

/// Definitions plus the database they describe.
#[derive(Args, Clone)]
struct Data {
    #[command(flatten)]
    dirs: Dirs,
    /// SQLite database file, or a PostgreSQL URL (`postgres://user@host/db`) that several
    /// replicas share.
    #[arg(long, default_value = "scimlab.db", env = "SCIMLAB_DB", value_parser = location)]
    db: scimlab::store::Location,
}

fn location(s: &str) -> Result<scimlab::store::Location, String> {
    Ok(scimlab::store::Location::parse(s))
}

/// Connection limits of `serve` (see the README's Limits table).
#[derive(Args, Clone)]
struct ConnArgs {
    /// Most open client connections (capped below the descriptor limit).
    #[arg(long, default_value_t = 4096, env = "SCIMLAB_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Seconds a connection may take to send a request's headers, counted from when it
    /// starts waiting for one (also the keep-alive idle timeout).
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a request body may take to arrive in full.
    #[arg(long, default_value_t = 30)]
    body_timeout: u64,
}

impl ConnArgs {
    fn limits(&self) -> scimlab::http::listen::ConnLimits {
        scimlab::http::listen::ConnLimits {
            max_connections: self.max_connections.max(1),
            header_timeout: std::time::Duration::from_secs(self.header_timeout.max(1)),
            body_timeout: std::time::Duration::from_secs(self.body_timeout.max(1)),
            ..Default::default()
        }
        .fitted_to_descriptors()
    }
}

/// HTTPS for `scimlab serve`.
#[derive(Args)]
struct TlsArgs {
    /// `self-signed`: generate a certificate for localhost at start-up, print its SHA-256
    /// fingerprint and write its PEM beside the database (`<db>.tls-cert.pem`) for clients to
    /// trust.
    #[arg(long, value_name = "self-signed", conflicts_with_all = ["tls_cert", "tls_key"])]
    tls: Option<TlsMode>,
    /// PEM certificate chain (leaf first) to serve HTTPS with; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TlsMode {
    #[value(name = "self-signed")]
    SelfSigned,
}

impl TlsArgs {
    /// The TLS configuration asked for, if any; a self-signed certificate is announced and
    /// its PEM written beside `db`.
    fn config(&self, db: &Path) -> anyhow::Result<Option<std::sync::Arc<rustls::ServerConfig>>> {
        use anyhow::Context as _;
        use scimlab::http::tls;
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            return Ok(Some(tls::from_files(cert, key)?));
        }
        let Some(TlsMode::SelfSigned) = self.tls else {
            return Ok(None);
        };
        let (config, pem, fingerprint) = tls::self_signed()?;
        let mut path = db.as_os_str().to_owned();
        path.push(".tls-cert.pem");
        let path = PathBuf::from(path);
        std::fs::write(&path, pem)
            .with_context(|| format!("writing the certificate to {}", path.display()))?;
        eprintln!(
            "TLS: self-signed certificate for localhost, 127.0.0.1 and ::1\n  SHA-256 fingerprint {fingerprint}\n  PEM (trust it in your client): {}",
            path.display()
        );
        Ok(Some(config))
    }
}

/// `scimlab lint` arguments.
#[derive(Args)]
struct LintArgs {
    /// JSON files to check.
    #[arg(required_unless_present = "stdin")]
    files: Vec<PathBuf>,
    /// Read one message from standard input.
    #[arg(long, conflicts_with = "files")]
    stdin: bool,
    /// Check against this scimlab definition (its profiles applied) instead of the RFC
    /// catalogue.
    #[arg(long)]
    definition: Option<PathBuf>,
    /// Profile packs the definition applies.
    #[arg(long, default_value = "profiles", env = "SCIMLAB_PROFILES")]
    profiles: PathBuf,
    /// The resource type of every message (default: detected from "schemas").
    #[arg(long = "type")]
    resource_type: Option<String>,
    /// Every message is a PatchOp.
    #[arg(long)]
    patch: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// `scimlab probe` arguments.
#[derive(Args)]
struct ProbeArgs {
    /// The SCIM base URL, e.g. https://app.example.com/scim/v2
    #[arg(required_unless_present = "report_schema")]
    base_url: Option<String>,
    /// The probe creates, changes and deletes resources on the target: say that is fine.
    #[arg(long)]
    i_accept_side_effects: bool,
    /// Bearer token.
    #[arg(long, env = "SCIMLAB_PROBE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A header sent with every request, NAME:VALUE (Okta's "HTTP header" authentication).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// HTTP Basic user name (with --password).
    #[arg(long, requires = "password")]
    username: Option<String>,
    #[arg(long, env = "SCIMLAB_PROBE_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 15)]
    timeout: u64,
    /// Proxy URL for every request.
    #[arg(long)]
    proxy: Option<String>,
    /// PEM file of CA certificates to trust besides the system's.
    #[arg(long)]
    ca_bundle: Option<PathBuf>,
    /// Accept any TLS certificate (self-signed test servers only).
    #[arg(long)]
    insecure: bool,
    /// Downgrade the widespread deviations of the compat list to warnings.
    #[arg(long)]
    compat: bool,
    /// After the RFC checks, replay the requests these identity providers send.
    #[arg(long = "as", value_enum, value_delimiter = ',')]
    idps: Vec<scimlab::probe::Idp>,
    /// A scimlab definition the server must advertise and enforce.
    #[arg(long)]
    contract: Option<PathBuf>,
    /// Profile packs the contract applies.
    #[arg(long, default_value = "profiles", env = "SCIMLAB_PROFILES")]
    profiles: PathBuf,
    /// Print the JSON report instead of the readable one.
    #[arg(long)]
    json: bool,
    /// Write a JUnit XML report to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Keep what the run created.
    #[arg(long)]
    skip_cleanup: bool,
    /// Most resources the run may create.
    #[arg(long, default_value_t = 200)]
    max_resources: usize,
    /// Print the JSON Schema of the --json report and exit.
    #[arg(long)]
    report_schema: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every virtual server defined in the servers directory.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "SCIMLAB_LISTEN")]
        listen: SocketAddr,
        #[command(flatten)]
        data: Data,
        /// Do not watch the servers and profiles directories (SIGHUP still reloads).
        #[arg(long)]
        no_watch: bool,
        /// Bearer token of the admin API (`/admin`); generated and logged when not given.
        #[arg(long, env = "SCIMLAB_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Let non-loopback clients use `/admin` and `/ui` (they answer loopback only by default;
        /// the UI then asks for the admin token).
        #[arg(long)]
        admin_remote: bool,
        /// A host name (or host:port) the UI answers to besides loopback names, e.g. the name
        /// remote users reach this server by. Repeatable.
        #[arg(long = "public-host", value_name = "HOST")]
        public_hosts: Vec<String>,
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Write a commented starter definition for a new server.
    New {
        /// The new server's id.
        id: String,
        /// Resource types to serve.
        #[arg(long, value_delimiter = ',', default_value = "User,Group")]
        resource_types: Vec<String>,
        /// Profiles (from the profiles directory) the server applies.
        #[arg(long, value_delimiter = ',')]
        profile: Vec<String>,
        #[command(flatten)]
        dirs: Dirs,
    },
    /// Say what changes between two definition directories (servers, types, attributes).
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// Profile packs both directories apply.
        #[arg(long, default_value = "profiles", env = "SCIMLAB_PROFILES")]
        profiles: PathBuf,
    },
    /// Check server definitions and profiles; prints every problem as file:line:column and
    /// exits 1 if any.
    Validate {
        /// Directory of server definitions.
        #[arg(default_value = "servers.d")]
        dir: PathBuf,
        /// Directory of profile packs.
        #[arg(long, default_value = "profiles", env = "SCIMLAB_PROFILES")]
        profiles: PathBuf,
    },
    /// Print the JSON Schema of the server definition format (`--profile`: of profile packs).
    Schema {
        #[arg(long)]
        profile: bool,
    },
    /// List every server: definition status and resource counts.
    Servers {
        #[command(flatten)]
        data: Data,
    },
    /// Delete every resource of a server (its definition stays).
    Reset {
        server: String,
        #[command(flatten)]
        data: Data,
    },
    /// Print all resources and memberships of a server as JSON, in a stable order.
    Export {
        server: String,
        #[command(flatten)]
        data: Data,
    },
    /// Load an export into a server (which must be empty unless --replace).
    Import {
        server: String,
        file: PathBuf,
        /// Delete the server's resources first.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        data: Data,
    },
    /// Add deterministic, realistic seed data to a server.
    Seed {
        server: String,
        #[arg(long, default_value_t = 100)]
        users: usize,
        #[arg(long, default_value_t = 10)]
        groups: usize,
        /// Random seed: the same seed on the same data gives the same result.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        data: Data,
    },
    /// Check SCIM messages (resources, PatchOp, BulkRequest, SearchRequest) with the server's
    /// own validators: every finding as file:line:column. Exits 1 on any error.
    Lint(LintArgs),
    /// Probe a live SCIM server for conformance (RFC 7643/7644, IdP flows, a contract). It
    /// creates, changes and deletes resources (prefixed scimlab-probe-<run>-), so it needs
    /// --i-accept-side-effects. Exits 0 only if no check failed.
    Probe(ProbeArgs),
    /// Replay a HAR (from the request inspector) against a server, comparing statuses; exits 1
    /// if any differs.
    Replay {
        /// The HAR file.
        file: PathBuf,
        /// Base URL of the target server, e.g. http://127.0.0.1:8080/scim-identifier/demo/scim/v2
        #[arg(long)]
        to: String,
        /// Bearer token of the target server (recorded tokens are redacted).
        #[arg(long, env = "SCIMLAB_REPLAY_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Copy a SQLite database into an empty PostgreSQL one (moving to replicas).
    Migrate {
        /// The SQLite database file.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database (`postgres://user@host/db`); it must hold no resources.
        #[arg(long)]
        to: String,
    },
    /// Measure throughput and latency against an in-process server (see README).
    Bench(scimlab::bench::Options),
    /// Measure hot-reload latency (file write to change served) at several directory sizes.
    BenchReload(scimlab::bench::ReloadOptions),
    /// Measure seeding speed (users with groups, entitlements and roles).
    BenchSeed(scimlab::bench::SeedOptions),
}

fn main() -> ExitCode {
    return_freed_memory_at_once();
    small_pages_only();
    let cli = Cli::parse();
    // Flushes the log lines still queued when main returns.
    let _logs = init_logging(&cli.command);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Half a second of request lines at 30,000 requests/s. The queue's slots are allocated and
/// written at start: tracing-appender's default of 128,000 lines kept 4 MB resident.
const LOG_LINES_BUFFERED: usize = 16_384;

/// Logs go to stderr, coloured only on a terminal (a log file gets no escape codes); the
/// benchmarks log warnings only, so their tables stay readable.
///
/// A thread of their own writes them: a request logged on an async worker never waits for
/// stderr (a pipe whose reader is slow or gone would stall every request on that worker), and
/// lines are written in batches rather than one write per request (buffered, and flushed each
/// time the queue runs dry, so a line is never held back). Should a reader fall
/// `LOG_LINES_BUFFERED` lines behind, lines are dropped rather than requests held up.
fn init_logging(command: &Command) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let bench = matches!(
        command,
        Command::Bench(_) | Command::BenchReload(_) | Command::BenchSeed(_)
    );
    let default_level = if bench { "warn" } else { "info" };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_LINES_BUFFERED)
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    tracing_subscriber::registry()
        .with(log_filter(&directives, default_level))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    guard
}

/// The filter `RUST_LOG` asks for (`default_level` when it is unset or invalid). Levels by
/// target (`info`, `scimlab=debug,hyper=warn`) are a static filter; `EnvFilter`, which also
/// filters by span and field (`[scim{server=hr}]=debug`), is used only when they are asked
/// for: it takes a shared lock each time any span is entered or left, several times in every
/// request (each request runs in a span that names its server).
fn log_filter(
    directives: &str,
    default_level: &str,
) -> Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync> {
    use tracing_subscriber::filter::{EnvFilter, Targets};
    let directives = directives.trim();
    let by_target = match directives {
        "" => default_level.parse::<Targets>().ok(),
        d if d.contains(['[', '{']) => None,
        d => d.parse::<Targets>().ok(),
    };
    match by_target {
        Some(targets) => Box::new(targets),
        None => Box::new(
            EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new(default_level)),
        ),
    }
}

/// Runs one command; `Err` is a failure to run it (exit 2), a finding is an exit code.
fn run(command: Command) -> anyhow::Result<ExitCode> {
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    match command {
        Command::Serve {
            listen,
            data,
            no_watch,
            admin_token,
            admin_remote,
            public_hosts,
            conn,
            tls,
        } => {
            let mut limits = conn.limits();
            limits.tls = tls.config(&data.db.sidecar_base())?;
            done(
                runtime().block_on(scimlab::app::serve(scimlab::app::Config {
                    listen,
                    db: data.db,
                    sources: data.dirs.sources(),
                    watch: !no_watch,
                    admin_token,
                    admin_remote,
                    public_hosts,
                    conn: limits,
                })),
            )
        }
        Command::New {
            id,
            resource_types,
            profile,
            dirs,
        } => done(new_definition(&id, &resource_types, &profile, &dirs)),
        Command::Diff { old, new, profiles } => done(diff(&old, &new, &profiles)),
        Command::Validate { dir, profiles } => Ok(validate(&dir, &profiles)),
        Command::Schema { profile } => {
            let schema = if profile {
                scimlab::definition::profile_json_schema()
            } else {
                scimlab::definition::json_schema()
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Servers { data } => done(workspace(&data, |w| {
            print!("{}", w.servers_table()?);
            Ok(())
        })),
        Command::Reset { server, data } => done(workspace(&data, |w| {
            let n = w.reset(&server)?;
            println!("{server}: deleted {n} resource(s)");
            Ok(())
        })),
        Command::Export { server, data } => done(workspace(&data, |w| {
            println!("{}", w.export(&server)?);
            Ok(())
        })),
        Command::Import {
            server,
            file,
            replace,
            data,
        } => done(workspace(&data, |w| {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let n = w.import(&server, &text, replace)?;
            println!("{server}: imported {n} resource(s)");
            Ok(())
        })),
        Command::Seed {
            server,
            users,
            groups,
            seed,
            data,
        } => done(workspace(&data, |w| {
            let request = scimlab::seed::Request {
                users,
                groups,
                seed,
            };
            println!("{server}: {}", w.seed(&server, &request)?);
            Ok(())
        })),
        Command::Lint(args) => lint(args),
        Command::Probe(args) => probe(args),
        Command::Replay { file, to, token } => replay(&file, &to, &token),
        Command::Migrate { from, to } => done(migrate(&from, &to)),
        Command::Bench(opts) => done(runtime().block_on(scimlab::bench::run(opts))),
        Command::BenchReload(opts) => done(runtime().block_on(scimlab::bench::run_reload(opts))),
        Command::BenchSeed(opts) => done(scimlab::bench::run_seed(opts)),
    }
}

/// Runs `f` on the workspace (definitions and database) that `data` names.
fn workspace(
    data: &Data,
    f: impl FnOnce(&scimlab::data::Workspace) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    f(&scimlab::data::Workspace::open(
        &data.dirs.sources(),
        &data.db,
    )?)
}

/// `scimlab migrate`: every table of a SQLite database into PostgreSQL.
fn migrate(from: &Path, to: &str) -> anyhow::Result<()> {
    if !matches!(
        scimlab::store::Location::parse(to),
        scimlab::store::Location::Postgres(_)
    ) {
        anyhow::bail!("--to must be a postgres:// URL");
    }
    let copied = scimlab::store::pg::import::sqlite_to_postgres(from, to)
        .map_err(|e| anyhow::anyhow!("migrating {}: {e}", from.display()))?;
    for (table, n) in copied {
        println!("{table}: {n}");
    }
    println!(
        "copied {} into {}; per-server indexes are built when a replica first serves it",
        from.display(),
        scimlab::store::Location::parse(to)
    );
    Ok(())
}

/// `scimlab diff`: what changes between two definition directories.
fn diff(old: &Path, new: &Path, profiles: &Path) -> anyhow::Result<()> {
    let compile = |d: &Path| scimlab::app::compile(&Sources::new(d, profiles));
    let changes = scimlab::reload::diff(&compile(old)?, &compile(new)?);
    if changes.is_empty() {
        println!("no change");
    }
    for c in changes {
        println!("{c}");
    }
    Ok(())
}

/// `scimlab validate`: every problem as file:line:column; exit 1 if any.
fn validate(dir: &Path, profiles: &Path) -> ExitCode {
    match Sources::new(dir, profiles).compile() {
        Ok(model) => {
            println!(
                "{}: {} server(s) OK: {}",
                dir.display(),
                model.servers.len(),
                model.servers.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            eprintln!("{} problem(s)", problems.len());
            ExitCode::from(1)
        }
    }
}

/// `scimlab replay`: a HAR against a server; exit 1 if any status differs.
fn replay(file: &Path, to: &str, token: &str) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)?;
    let har: serde_json::Value = serde_json::from_str(&text)?;
    let steps = runtime().block_on(scimlab::harness::replay::replay(&har, to, token))?;
    let mut differ = 0;
    for s in &steps {
        let mark = if s.recorded == s.replayed {
            "  "
        } else {
            "≠ "
        };
        differ += usize::from(s.recorded != s.replayed);
        println!(
            "{mark}{} {}  recorded {} → replayed {}",
            s.method, s.path, s.recorded, s.replayed
        );
    }
    println!(
        "{} request(s) replayed, {differ} with another status",
        steps.len()
    );
    Ok(if differ == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn new_definition(
    id: &str,
    resource_types: &[String],
    profiles: &[String],
    dirs: &Dirs,
) -> anyhow::Result<()> {
    let path = dirs.servers.join(format!("{id}.yaml"));
    if path.exists() {
        anyhow::bail!("{} already exists", path.display());
    }
    let text = scimlab::app::starter_definition(id, resource_types, profiles);
    // Refuse to write a starter that would not load.
    let file = scimlab::definition::load_str(&path, &text).map_err(|d| anyhow::anyhow!("{d}"))?;
    let (packs, _) = scimlab::definition::load_profiles(&dirs.profiles);
    if let Err(problems) = scimlab::model::compile(&[file], &packs) {
        let lines: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        anyhow::bail!("cannot create {id}: {}", lines.join("; "));
    }
    std::fs::create_dir_all(&dirs.servers)?;
    std::fs::write(&path, text)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    // Blocking threads run searches and writes: searches share three readers and writes one
    // connection, so more threads only add memory (each keeps an allocator heap). Measured
    // with `scimlab bench`: 16 threads gave the same rates as 8 and 5-7 MB more peak RSS at
    // 100,000 users.
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `scimlab probe`: exit 0 if nothing failed, 1 if a check failed, 2 if it could not run.
fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    if args.report_schema {
        println!(
            "{}",
            serde_json::to_string_pretty(&scimlab::probe::Report::json_schema())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let base = args.base_url.unwrap_or_default();
    if !args.i_accept_side_effects {
        eprintln!(
            "scimlab probe creates, changes and deletes resources on {base} (each named scimlab-probe-<run>-…, deleted at the end). Run it against a test tenant, and add --i-accept-side-effects to go ahead."
        );
        return Ok(ExitCode::from(2));
    }
    let mut opts = scimlab::probe::Options::new(&base);
    opts.auth.bearer = args.token;
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--header {h:?}: write NAME:VALUE"))?;
        opts.auth
            .headers
            .push((name.trim().to_string(), value.trim().to_string()));
    }
    if let (Some(u), Some(p)) = (args.username, args.password) {
        opts.auth.basic = Some((u, p));
    }
    opts.transport.timeout = std::time::Duration::from_secs(args.timeout.max(1));
    opts.transport.proxy = args.proxy;
    opts.transport.ca_bundle = args.ca_bundle;
    opts.transport.insecure = args.insecure;
    opts.compat = args.compat;
    opts.idps = args.idps;
    opts.skip_cleanup = args.skip_cleanup;
    opts.max_resources = args.max_resources;
    if let Some(path) = &args.contract {
        opts.contract = Some(scimlab::probe::load_contract(path, &args.profiles)?);
    }
    let out = scimlab::probe::Output {
        json: args.json,
        junit: args.junit,
    };
    match runtime().block_on(scimlab::probe::command(&opts, &out)) {
        Ok(true) => Ok(ExitCode::SUCCESS),
        Ok(false) => Ok(ExitCode::from(1)),
        Err(e) => {
            eprintln!("scimlab probe: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// `scimlab lint`: exit 0 without errors, 1 with errors, 2 if it could not run.
fn lint(args: LintArgs) -> anyhow::Result<ExitCode> {
    let linter = match &args.definition {
        Some(path) => {
            scimlab::lint::Linter::with(scimlab::probe::load_contract(path, &args.profiles)?)
        }
        None => scimlab::lint::Linter::rfc(),
    }
    .resource_type(args.resource_type)
    .patch(args.patch);
    let mut reports = Vec::new();
    if args.stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        reports.push(linter.lint("<stdin>", &text));
    }
    for f in &args.files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?;
        reports.push(linter.lint(&f.display().to_string(), &text));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", scimlab::lint::text(&reports));
    }
    let errors: usize = reports.iter().map(|r| r.errors()).sum();
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt;

    /// What `f` sees as enabled with `RUST_LOG=directives` (default level info).
    fn under(directives: &str, f: impl Fn() -> bool) -> bool {
        let subscriber = tracing_subscriber::registry().with(log_filter(directives, "info"));
        tracing::subscriber::with_default(subscriber, f)
    }

    /// Levels by target go through the static filter, span directives through `EnvFilter`:
    /// both must enable what `RUST_LOG` says, and an invalid value falls back to the default.
    #[test]
    fn rust_log_enables_what_it_names() {
        let debug = || tracing::enabled!(target: "scimlab::engine", Level::DEBUG);
        let info = || tracing::enabled!(target: "scimlab::engine", Level::INFO);
        let hyper_info = || tracing::enabled!(target: "hyper::proto", Level::INFO);
        let debug_in_scim = || {
            let span = tracing::info_span!(target: "scimlab::http", "scim", server = "hr");
            let _entered = span.enter();
            tracing::enabled!(target: "scimlab::engine", Level::DEBUG)
        };
        // Unset, blank or invalid: the default level.
        for unset in ["", "  ", "scimlab=loud"] {
            assert!(under(unset, info) && !under(unset, debug), "{unset:?}");
        }
        assert!(!under("warn", info));
        assert!(under("scimlab=debug,hyper=warn", debug));
        assert!(!under("scimlab=debug,hyper=warn", hyper_info));
        assert!(under("info,scimlab::engine=debug", debug));
        assert!(!under("off", info));
        // By span: debug inside a request's span only.
        assert!(under("info,[scim]=debug", debug_in_scim));
        assert!(!under("info,[scim]=debug", debug));
        assert!(under("info,[scim{server=hr}]=debug", debug_in_scim));
        assert!(!under("info,[scim{server=it}]=debug", debug_in_scim));
    }
}
