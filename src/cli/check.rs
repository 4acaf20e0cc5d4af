//! `cloudreve-dav check`: is this configuration good to serve? Validates
//! it, reaches the upstream (its version), signs in each configured user
//! and counts their WebDAV accounts.

use std::fmt::Write as _;

use anyhow::{Context as _, anyhow, bail};

use crate::cloudreve::Client;
use crate::config::{Config, UserSecret};

/// Runs every check of `cloudreve-dav check` and writes one line per check
/// to the returned report. Fails (after checking all users) when anything
/// is wrong; the error lists what failed.
pub async fn check(config: &Config) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "config: ok ({} user(s), listen {})",
        config.users.len(),
        config.listen
    );
    if let Some(tls) = &config.tls {
        crate::front::load_tls(tls).context("TLS certificate/key")?;
        let _ = writeln!(out, "tls: ok ({})", tls.cert.display());
    }
    if let Some(r) = &config.redis {
        crate::redis_state::RedisState::connect(r.url.expose(), &r.prefix)
            .await
            .context("shared state")?;
        let _ = writeln!(
            out,
            "redis: {} reachable (key prefix {})",
            crate::redis_state::redacted(r.url.expose()),
            r.prefix
        );
    }
    let client = Client::with_options(&config.upstream, crate::gateway::client_options(config))
        .with_context(|| format!("bad upstream URL {}", config.upstream))?;
    let version = client.ping().await.map_err(|e| {
        anyhow!(
            "upstream {} is not reachable as a Cloudreve v4 server: {e}",
            config.upstream
        )
    })?;
    let support = match crate::cloudreve::version::classify(&version) {
        crate::cloudreve::version::Support::Tested => String::new(),
        crate::cloudreve::version::Support::Older => format!(
            " (older than {}, the version this gateway is tested with)",
            crate::cloudreve::version::TESTED
        ),
        crate::cloudreve::version::Support::Unsupported(why) => {
            return Err(anyhow!("upstream {}: {why}", config.upstream));
        }
    };
    let _ = writeln!(
        out,
        "upstream: {} reachable, Cloudreve {version}{support}",
        config.upstream
    );
    let mut failures = Vec::new();
    for user in &config.users {
        let signed_in = match &user.secret {
            UserSecret::Password(p) => client.sign_in(&user.email, p.expose()).await,
            UserSecret::RefreshToken(t) => client.session_from_refresh_token(t.expose()).await,
        };
        let result = match signed_in {
            Ok(session) => session
                .list_dav_accounts()
                .await
                .map_err(|e| format!("signed in, but cannot list WebDAV accounts: {e}")),
            Err(e) => Err(format!("cannot sign in: {e}")),
        };
        match result {
            Ok(accounts) => {
                let ro = accounts.iter().filter(|a| a.flags().readonly).count();
                let _ = writeln!(
                    out,
                    "user {}: signed in, {} WebDAV account(s) ({ro} read-only)",
                    user.email,
                    accounts.len()
                );
            }
            Err(msg) => {
                let _ = writeln!(out, "user {}: FAILED: {msg}", user.email);
                failures.push(format!("{}: {msg}", user.email));
            }
        }
    }
    if failures.is_empty() {
        Ok(out)
    } else {
        print!("{out}");
        bail!("check failed for {}", failures.join("; "))
    }
}
