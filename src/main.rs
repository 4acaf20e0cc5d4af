//! `cloudreve-dav`: the command-line entry point.
//!
//! Subcommands:
//! - `serve`: run the gateway in front of a Cloudreve v4 server;
//! - `demo`: run the gateway in front of the embedded emulator;
//! - `emulator`: run the Cloudreve v4 emulator stand-alone;
//! - `bench`: measure the gateway against the direct upstream (and peers).
//! - `locks list|unlock`: the gateway's WebDAV locks and Cloudreve's own.
//! - `check`: validate a configuration against its upstream and users.
//! - `accounts list|create|update|delete`: a Cloudreve user's WebDAV accounts.

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
    /// go before or after the action.
    Locks(Box<LocksArgs>),
    /// Check a configuration: validate it, reach the upstream (print its
    /// version from `/site/ping`), sign in each configured user and count
    /// their WebDAV accounts. Exits non-zero with a message on any failure.
    Check(Box<cloudreve_dav::config::ServeArgs>),
    /// List, create, update or delete a Cloudreve user's WebDAV accounts
    /// (the accounts whose passwords WebDAV clients use with this gateway).
    /// The sign-in password comes from the environment variable
    /// `CLOUDREVE_PASSWORD`.
    Accounts(AccountsArgs),
}

/// Arguments of `cloudreve-dav accounts` (each flag goes before or after
/// the action).
#[derive(clap::Args, Debug)]
struct AccountsArgs {
    /// Base URL of the Cloudreve server (required).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "CLOUDREVE_DAV_UPSTREAM"
    )]
    upstream: Option<String>,
    /// The Cloudreve user's e-mail, the sign-in name (required).
    #[arg(long, global = true, value_name = "EMAIL")]
    email: Option<String>,
    /// Print JSON instead of a table (one array for `list`, one object otherwise).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: AccountsAction,
}

#[derive(Subcommand, Debug)]
enum AccountsAction {
    /// Print every WebDAV account of the user (with its password).
    List,
    /// Create a WebDAV account and print it (with its generated password).
    Create {
        /// The account's name.
        #[arg(long)]
        name: String,
        /// Root folder: a path in the user's space (`/Documents`) or a
        /// `cloudreve://` URI.
        #[arg(long, default_value = "/")]
        root: String,
        /// Read-only account.
        #[arg(long)]
        readonly: bool,
        /// Proxy downloads through Cloudreve.
        #[arg(long)]
        proxy: bool,
        /// Refuse uploads of system files (dot files).
        #[arg(long)]
        disable_sys_files: bool,
    },
    /// Change a WebDAV account; options not given keep their value.
    Update {
        /// The account's id (see `list`).
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New root folder (path or `cloudreve://` URI).
        #[arg(long)]
        root: Option<String>,
        /// Read-only (`true`/`false`).
        #[arg(long, value_name = "BOOL")]
        readonly: Option<bool>,
        /// Proxy downloads (`true`/`false`).
        #[arg(long, value_name = "BOOL")]
        proxy: Option<bool>,
        /// Refuse system files (`true`/`false`).
        #[arg(long, value_name = "BOOL")]
        disable_sys_files: Option<bool>,
    },
    /// Delete a WebDAV account.
    Delete {
        /// The account's id (see `list`).
        id: String,
    },
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
    /// Address of the admin endpoints `/healthz`, `/readyz`, `/metrics`
    /// (port 0 = a free port; the JSON line's `admin_url` tells it).
    #[arg(long, default_value = "127.0.0.1:0")]
    admin_listen: SocketAddr,
    /// Log format: `human` or `json`.
    #[arg(long, default_value = "human")]
    log_format: cloudreve_dav::config::LogFormat,
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
            init_logging(args.log_format == cloudreve_dav::config::LogFormat::Json);
            cloudreve_dav::cli::demo::run(cloudreve_dav::cli::demo::DemoOptions {
                listen: args.listen,
                data: args.data,
                admin_listen: args.admin_listen,
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
                    for l in cloudreve_dav::cli::locks::list(&config).await? {
                        println!("{l}");
                    }
                }
                LocksAction::Unlock { token, user } => {
                    let done =
                        cloudreve_dav::cli::locks::unlock(&config, &token, user.as_deref()).await?;
                    println!("{done}");
                }
            }
            Ok(())
        }
        Command::Check(args) => {
            let config = cloudreve_dav::config::load(&args)?;
            init_logging(config.log_format == cloudreve_dav::config::LogFormat::Json);
            print!("{}", cloudreve_dav::cli::check::check(&config).await?);
            Ok(())
        }
        Command::Accounts(args) => {
            init_logging(false);
            accounts(args).await
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

async fn accounts(args: AccountsArgs) -> anyhow::Result<()> {
    use cloudreve_dav::cli::accounts;
    let missing =
        |flag: &str| anyhow::anyhow!("accounts: {flag} is required (before or after the action)");
    let upstream = args.upstream.ok_or_else(|| missing("--upstream URL"))?;
    let email = args.email.ok_or_else(|| missing("--email EMAIL"))?;
    let session = accounts::sign_in(&upstream, &email).await?;
    let one = match args.action {
        AccountsAction::List => {
            let all = accounts::list(&session).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", accounts::table(&all));
            }
            return Ok(());
        }
        AccountsAction::Create {
            name,
            root,
            readonly,
            proxy,
            disable_sys_files,
        } => {
            let options = cloudreve_dav::cloudreve::DavAccountOptions {
                readonly,
                proxy,
                disable_sys_files,
            };
            accounts::create(&session, &name, &accounts::parse_root(&root)?, options).await?
        }
        AccountsAction::Update {
            id,
            name,
            root,
            readonly,
            proxy,
            disable_sys_files,
        } => {
            let changes = accounts::AccountChanges {
                name,
                root: root.as_deref().map(accounts::parse_root).transpose()?,
                readonly,
                proxy,
                disable_sys_files,
            };
            accounts::update(&session, &id, changes).await?
        }
        AccountsAction::Delete { id } => {
            accounts::delete(&session, &id).await?;
            if args.json {
                println!("{}", serde_json::json!({ "deleted": id }));
            } else {
                println!("deleted WebDAV account {id}");
            }
            return Ok(());
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&one)?);
    } else {
        print!("{}", accounts::table(std::slice::from_ref(&one)));
    }
    Ok(())
}
