//! The `scimlab` command line: parses arguments, starts logging, calls the library.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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

#[derive(Subcommand)]
enum Command {
    /// Serve every virtual server defined in the servers directory.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "SCIMLAB_LISTEN")]
        listen: SocketAddr,
        /// SQLite database file (created if missing).
        #[arg(long, default_value = "scimlab.db", env = "SCIMLAB_DB")]
        db: PathBuf,
        /// Directory of server definitions (*.yaml).
        #[arg(long, default_value = "servers.d", env = "SCIMLAB_SERVERS")]
        servers: PathBuf,
        /// Do not watch the servers directory (SIGHUP still reloads).
        #[arg(long)]
        no_watch: bool,
    },
    /// Write a commented starter definition for a new server.
    New {
        /// The new server's id.
        id: String,
        /// Resource types to serve.
        #[arg(long, value_delimiter = ',', default_value = "User,Group")]
        resource_types: Vec<String>,
        /// Directory to write `<id>.yaml` into.
        #[arg(long, default_value = "servers.d")]
        dir: PathBuf,
    },
    /// Say what changes between two definition directories (servers, types, attributes).
    Diff { old: PathBuf, new: PathBuf },
    /// Check server definitions; prints every problem as file:line:column and exits 1 if any.
    Validate {
        /// Directory of server definitions.
        #[arg(default_value = "servers.d")]
        dir: PathBuf,
    },
    /// Print the JSON Schema of the server definition format.
    Schema,
    /// Measure throughput and latency against an in-process server (see README).
    Bench(scimlab::bench::Options),
    /// Measure hot-reload latency (file write to change served) at several directory sizes.
    BenchReload(scimlab::bench::ReloadOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Bench(_) | Command::BenchReload(_)) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve {
            listen,
            db,
            servers,
            no_watch,
        } => runtime().block_on(scimlab::app::serve(scimlab::app::Config {
            listen,
            db,
            servers,
            watch: !no_watch,
        })),
        Command::New {
            id,
            resource_types,
            dir,
        } => new_definition(&id, &resource_types, &dir),
        Command::Diff { old, new } => {
            match (scimlab::app::compile(&old), scimlab::app::compile(&new)) {
                (Ok(a), Ok(b)) => {
                    let changes = scimlab::reload::diff(&a, &b);
                    if changes.is_empty() {
                        println!("no change");
                    }
                    for c in changes {
                        println!("{c}");
                    }
                    Ok(())
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        Command::Validate { dir } => match scimlab::model::compile_dir(&dir) {
            Ok(model) => {
                println!(
                    "{}: {} server(s) OK: {}",
                    dir.display(),
                    model.servers.len(),
                    model.servers.keys().cloned().collect::<Vec<_>>().join(", ")
                );
                Ok(())
            }
            Err(problems) => {
                for p in &problems {
                    println!("{p}");
                }
                eprintln!("{} problem(s)", problems.len());
                return ExitCode::from(1);
            }
        },
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&scimlab::definition::json_schema())
                    .unwrap_or_default()
            );
            Ok(())
        }
        Command::Bench(opts) => runtime().block_on(scimlab::bench::run(opts)),
        Command::BenchReload(opts) => runtime().block_on(scimlab::bench::run_reload(opts)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn new_definition(
    id: &str,
    resource_types: &[String],
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let path = dir.join(format!("{id}.yaml"));
    if path.exists() {
        anyhow::bail!("{} already exists", path.display());
    }
    let text = scimlab::app::starter_definition(id, resource_types);
    // Refuse to write a starter that would not load.
    let file = scimlab::definition::load_str(&path, &text).map_err(|d| anyhow::anyhow!("{d}"))?;
    if let Err(problems) = scimlab::model::compile(&[file]) {
        let lines: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        anyhow::bail!("cannot create {id}: {}", lines.join("; "));
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, text)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    // Blocking threads run searches and writes; writes are serialised on one connection, so more
    // threads than this only add memory (stacks, allocator arenas), not throughput.
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
