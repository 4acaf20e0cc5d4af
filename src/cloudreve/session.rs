//! Token lifecycle (docs/UPSTREAM.md §2).
//!
//! A [`Session`] holds one user's token pair behind a `tokio::sync::Mutex`.
//! Refreshes happen while the mutex is held, so concurrent requests share a
//! single refresh; a generation counter lets requests that saw a 401 with
//! an already-replaced token skip refreshing again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use reqwest::Method;
use serde::Serialize;

use super::core::{Client, ReqBody, from_data};
use super::error::{Error, ErrorCode, Result, log_api_error};
use super::types::{Capacity, LoginResponse, Token, User};

/// Authenticated handle for one Cloudreve user. Cheap to clone; clones share
/// the token state.
#[derive(Clone, Debug)]
pub struct Session {
    inner: Arc<SessionInner>,
}

#[derive(Debug)]
struct SessionInner {
    client: Client,
    credentials: Option<Credentials>,
    state: tokio::sync::Mutex<TokenState>,
    user: std::sync::Mutex<Option<User>>,
    refreshes: AtomicU64,
}

#[derive(Clone)]
struct Credentials {
    email: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct TokenState {
    token: Token,
    generation: u64,
    signed_out: bool,
}

#[derive(Serialize)]
struct LoginRequest<'a> {
    email: &'a str,
    password: &'a str,
}

#[derive(Serialize)]
struct TwoFaRequest<'a> {
    otp: &'a str,
    session_id: &'a str,
}

#[derive(Serialize)]
struct RefreshRequest<'a> {
    refresh_token: &'a str,
}

/// Outcome of a password sign-in at the wire level.
enum LoginOutcome {
    Done(Box<LoginResponse>),
    TwoFactor(String),
}

impl Client {
    async fn password_login(&self, email: &str, password: &str) -> Result<LoginOutcome> {
        let body = ReqBody::json(&LoginRequest { email, password })?;
        let resp = self
            .send(Method::POST, "/session/token", &[], body, None)
            .await?;
        let env = Client::read_raw_envelope(resp, "sign_in").await?;
        match env.code {
            0 => Ok(LoginOutcome::Done(Box::new(from_data(
                env.data, "sign_in",
            )?))),
            203 => match env.data {
                Some(serde_json::Value::String(s)) if !s.is_empty() => {
                    Ok(LoginOutcome::TwoFactor(s))
                }
                _ => Err(Error::decode(
                    "sign_in",
                    "code 203 without a 2FA session id",
                )),
            },
            _ => {
                let e = env.into_api_error();
                log_api_error("sign_in", &e);
                Err(Error::Api(Box::new(e)))
            }
        }
    }

    async fn refresh_tokens(&self, refresh_token: &str) -> Result<Token> {
        self.call_anon(
            Method::POST,
            "/session/token/refresh",
            &[],
            ReqBody::json(&RefreshRequest { refresh_token })?,
            "refresh",
        )
        .await
    }

    /// Password sign-in (`POST /session/token`). The password is kept so
    /// that the session can sign in again when its refresh token dies.
    ///
    /// Errors: [`Error::TwoFactorRequired`] (code 203, continue with
    /// [`Client::sign_in_2fa`]), 40026 captcha, 40080 wrong credentials,
    /// 40017 banned, 40018 inactive.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Session> {
        match self.password_login(email, password).await? {
            LoginOutcome::Done(r) => Ok(Session::new(
                self.clone(),
                r.token,
                Some(r.user),
                Some(Credentials {
                    email: email.to_string(),
                    password: password.to_string(),
                }),
            )),
            LoginOutcome::TwoFactor(session_id) => Err(Error::TwoFactorRequired { session_id }),
        }
    }

    /// Completes a 2FA sign-in (`POST /session/token/2fa`). The resulting
    /// session cannot re-sign-in by itself (it has no OTP source).
    pub async fn sign_in_2fa(&self, otp: &str, session_id: &str) -> Result<Session> {
        let r: LoginResponse = self
            .call_anon(
                Method::POST,
                "/session/token/2fa",
                &[],
                ReqBody::json(&TwoFaRequest { otp, session_id })?,
                "sign_in_2fa",
            )
            .await?;
        Ok(Session::new(self.clone(), r.token, Some(r.user), None))
    }

    /// Builds a session from a refresh token (performs one refresh).
    pub async fn session_from_refresh_token(&self, refresh_token: &str) -> Result<Session> {
        let token = self.refresh_tokens(refresh_token).await.map_err(|e| {
            if e.is(ErrorCode::CredentialInvalid) {
                Error::SignInRequired
            } else {
                e
            }
        })?;
        Ok(Session::new(self.clone(), token, None, None))
    }

    /// Builds a session from a known token pair (no request is made).
    pub fn session_from_token(&self, token: Token) -> Session {
        Session::new(self.clone(), token, None, None)
    }
}

impl Session {
    fn new(client: Client, token: Token, user: Option<User>, creds: Option<Credentials>) -> Self {
        Session {
            inner: Arc::new(SessionInner {
                client,
                credentials: creds,
                state: tokio::sync::Mutex::new(TokenState {
                    token,
                    generation: 0,
                    signed_out: false,
                }),
                user: std::sync::Mutex::new(user),
                refreshes: AtomicU64::new(0),
            }),
        }
    }

    /// The underlying unauthenticated client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The user returned at sign-in or by the last [`Session::user_me`].
    pub fn user(&self) -> Option<User> {
        self.inner.user.lock().ok().and_then(|u| u.clone())
    }

    /// A snapshot of the current token pair (e.g. to persist it).
    pub async fn token(&self) -> Token {
        self.inner.state.lock().await.token.clone()
    }

    /// How many refreshes (or re-sign-ins) this session has performed.
    pub fn refresh_count(&self) -> u64 {
        self.inner.refreshes.load(Ordering::Relaxed)
    }

    /// Refreshes the token pair now.
    pub async fn refresh(&self) -> Result<()> {
        let mut st = self.inner.state.lock().await;
        if st.signed_out {
            return Err(Error::SignInRequired);
        }
        self.do_refresh(&mut st).await
    }

    /// Signs out (`DELETE /session/token`): revokes the refresh family.
    /// Later calls on this session fail with [`Error::SignInRequired`].
    pub async fn sign_out(&self) -> Result<()> {
        let mut st = self.inner.state.lock().await;
        if st.signed_out {
            return Ok(());
        }
        let body = ReqBody::json(&RefreshRequest {
            refresh_token: &st.token.refresh_token,
        })?;
        let _: Option<serde_json::Value> = self
            .client()
            .call_anon(Method::DELETE, "/session/token", &[], body, "sign_out")
            .await?;
        st.signed_out = true;
        st.generation += 1;
        Ok(())
    }

    /// Refresh (or re-sign-in) with the state mutex held.
    async fn do_refresh(&self, st: &mut TokenState) -> Result<()> {
        self.inner.refreshes.fetch_add(1, Ordering::Relaxed);
        let result = self.client().refresh_tokens(&st.token.refresh_token).await;
        let token = match result {
            Ok(t) => t,
            Err(e) if e.is(ErrorCode::CredentialInvalid) => {
                let Some(c) = &self.inner.credentials else {
                    // Permanent: later calls fail fast instead of each
                    // retrying the dead refresh token.
                    st.signed_out = true;
                    return Err(Error::SignInRequired);
                };
                tracing::info!(email = %c.email, "cloudreve refresh token rejected; signing in again");
                match self.client().password_login(&c.email, &c.password).await? {
                    LoginOutcome::Done(r) => {
                        if let Ok(mut u) = self.inner.user.lock() {
                            *u = Some(r.user);
                        }
                        r.token
                    }
                    LoginOutcome::TwoFactor(session_id) => {
                        return Err(Error::TwoFactorRequired { session_id });
                    }
                }
            }
            Err(e) => return Err(e),
        };
        st.token = token;
        st.generation += 1;
        Ok(())
    }

    /// The access token to use now, refreshing proactively when it expires
    /// within the configured margin. Returns the token and its generation.
    pub(crate) async fn access_token(&self) -> Result<(String, u64)> {
        let mut st = self.inner.state.lock().await;
        if st.signed_out {
            return Err(Error::SignInRequired);
        }
        let margin = chrono::Duration::from_std(self.client().options().refresh_margin)
            .unwrap_or(chrono::Duration::zero());
        let now = Utc::now();
        if st.token.access_expires.with_timezone(&Utc) - margin <= now
            && let Err(e) = self.do_refresh(&mut st).await
        {
            // Keep using a still-valid token if the refresh failed for a
            // transient reason.
            let still_valid = st.token.access_expires.with_timezone(&Utc) > now;
            if still_valid && !matches!(e, Error::SignInRequired | Error::Api(_)) {
                tracing::warn!(error = %e, "proactive token refresh failed; using current token");
            } else {
                return Err(e);
            }
        }
        Ok((st.token.access_token.clone(), st.generation))
    }

    /// Called after a 401 seen with the token of `generation`: refreshes
    /// unless another request already did.
    pub(crate) async fn refresh_after_401(&self, generation: u64) -> Result<()> {
        let mut st = self.inner.state.lock().await;
        if st.signed_out {
            return Err(Error::SignInRequired);
        }
        if st.generation != generation {
            return Ok(());
        }
        self.do_refresh(&mut st).await
    }

    /// `GET /user/me`.
    pub async fn user_me(&self) -> Result<User> {
        let u: User = self
            .call(Method::GET, "/user/me", &[], ReqBody::Empty, "user_me")
            .await?;
        if let Ok(mut g) = self.inner.user.lock() {
            *g = Some(u.clone());
        }
        Ok(u)
    }

    /// `GET /user/capacity`.
    pub async fn capacity(&self) -> Result<Capacity> {
        self.call(
            Method::GET,
            "/user/capacity",
            &[],
            ReqBody::Empty,
            "capacity",
        )
        .await
    }
}
