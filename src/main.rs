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
    },
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Bench(_)) {
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
        } => runtime().block_on(scimlab::app::serve(scimlab::app::Config {
            listen,
            db,
            servers,
        })),
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
