//! `cloudreve-dav`: the command-line entry point.
//!
//! Subcommands:
//! - `serve`: run the gateway in front of a Cloudreve v4 server;
//! - `demo`: run the gateway in front of the embedded emulator;
//! - `emulator`: run the Cloudreve v4 emulator stand-alone;
//! - `bench`: measure the gateway against the direct upstream (and peers).
//! - `locks list|unlock`: the gateway's WebDAV locks and Cloudreve's own.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A WebDAV gateway in front of a Cloudreve v4 server.
#[derive(Parser, Debug)]
#[command(name = "cloudreve-dav", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve WebDAV in front of a Cloudreve v4 server.
    ///
    /// Settings come from a TOML file (`--config`), `CLOUDREVE_DAV_*`
    /// environment variables and flags, in increasing precedence. Secrets
    /// are read from files or the environment, never from flags.
    Serve(Box<cloudreve_dav::config::ServeArgs>),
    /// Run the gateway in front of the embedded Cloudreve emulator, with a
    /// seeded user and two WebDAV accounts (read-write and read-only).
    ///
    /// Prints one JSON line with the URL and credentials on stdout when
    /// ready and mount instructions on stderr.
    Demo(DemoArgs),
    /// Run the built-in Cloudreve v4 emulator (for tests and demos).
    ///
    /// Prints one JSON line `{"upstream_url": "..."}` on stdout when ready,
    /// then serves until SIGINT or SIGTERM.
    Emulator(EmulatorArgs),
    /// Benchmark the gateway against the same work done directly on the
    /// upstream API (emulator and gateway on loopback), and optionally
    /// against rclone and Apache mod_dav on local disk.
    ///
    /// Prints a table on stdout; `--json`/`--svg` write the results.
    Bench(cloudreve_dav::bench::BenchArgs),
    /// List or remove WebDAV locks: the gateway's own (from its state
    /// directory; change them while the gateway is stopped) and Cloudreve's
    /// (force unlock with the token shown in a 423 answer). Settings flags
    /// go before the action: `locks --config FILE list`.
    Locks(Box<LocksArgs>),
}

/// Arguments of `cloudreve-dav locks`.
#[derive(clap::Args, Debug)]
struct LocksArgs {
    #[command(subcommand)]
    action: LocksAction,
    /// The gateway's settings (state directory, upstream, users).
    #[command(flatten)]
    serve: cloudreve_dav::config::ServeArgs,
}

#[derive(Subcommand, Debug)]
enum LocksAction {
    /// Print the gateway's live locks, one per line.
    List,
    /// Remove the gateway lock with TOKEN, or force-unlock the Cloudreve
    /// lock with TOKEN (`opaquelocktoken:<uuid>` or a bare UUID).
    Unlock {
        /// The lock token.
        token: String,
        /// The Cloudreve user owning the locked file (default: the first configured).
        #[arg(long)]
        user: Option<String>,
    },
}

/// Arguments of `cloudreve-dav demo`.
#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Address the gateway listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Keep the demo's files, password and accounts in this directory
    /// across runs (default: a temporary directory removed at exit).
    #[arg(long)]
    data: Option<PathBuf>,
}

/// Arguments of `cloudreve-dav emulator`.
#[derive(clap::Args, Debug)]
struct EmulatorArgs {
    /// Address to listen on (use port 0 for a free port).
    #[arg(long, default_value = "127.0.0.1:5212")]
    listen: SocketAddr,
    /// Directory holding the emulator's files and state; created if missing.
    #[arg(long)]
    data: PathBuf,
    /// A user to create, as EMAIL:PASSWORD (repeatable). Users get the
    /// WebDAV group permission.
    #[arg(long = "user", value_name = "EMAIL:PASSWORD")]
    users: Vec<String>,
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`), as human
/// text or as one JSON object per line.
fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = cloudreve_dav::config::load(&args)?;
            init_logging(config.log_format == cloudreve_dav::config::LogFormat::Json);
            cloudreve_dav::gateway::run(config).await
        }
        Command::Demo(args) => {
            init_logging(false);
            cloudreve_dav::demo::run(cloudreve_dav::demo::DemoOptions {
                listen: args.listen,
                data: args.data,
            })
            .await
        }
        Command::Bench(args) => {
            init_logging(false);
            cloudreve_dav::bench::run(args).await
        }
        Command::Locks(args) => {
            let config = cloudreve_dav::config::load(&args.serve)?;
            init_logging(config.log_format == cloudreve_dav::config::LogFormat::Json);
            match args.action {
                LocksAction::List => {
                    for l in cloudreve_dav::lockcli::list(&config)? {
                        println!("{l}");
                    }
                }
                LocksAction::Unlock { token, user } => {
                    let done =
                        cloudreve_dav::lockcli::unlock(&config, &token, user.as_deref()).await?;
                    println!("{done}");
                }
            }
            Ok(())
        }
        Command::Emulator(args) => {
            init_logging(false);
            let mut users = Vec::new();
            for spec in &args.users {
                let (email, password) = spec.split_once(':').ok_or_else(|| {
                    anyhow::anyhow!("--user expects EMAIL:PASSWORD, got {spec:?}")
                })?;
                users.push((email.to_string(), password.to_string()));
            }
            cloudreve_dav::emulator::run_cli(args.listen, args.data, users).await
        }
    }
}
