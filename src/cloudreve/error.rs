//! Error type of the Cloudreve client and the mapping of envelope codes.
//!
//! Every JSON answer of Cloudreve carries a `code` (docs/UPSTREAM.md §1.2).
//! Any non-zero code is a failure; [`ErrorCode`] names every code of
//! UPSTREAM §8, and [`ApiError`] carries the decoded details (message,
//! correlation id, lock conflicts of §4.9, the per-URI map of §1.4).

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;

use super::types::LockConflict;
use super::uri::CrUri;

/// Result alias used throughout the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every envelope code of docs/UPSTREAM.md §8, plus a catch-all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 203: partial success; at sign-in it means "2FA required".
    NotFullySuccess,
    /// 401: login required (missing, expired or invalid access token).
    CheckLogin,
    /// 403: action not permitted / not supported.
    NoPermission,
    /// 404: share, DAV account, upload session or version not found.
    NotFound,
    /// 409: object changed concurrently.
    Conflict,
    /// 40001: request parameter error (binding, unknown uri, bad hashid…).
    ParamErr,
    /// 40004: object already exists.
    ObjectExist,
    /// 40005: signed URL expired.
    SignExpired,
    /// 40006: the storage policy does not accept chunk uploads.
    PolicyNotAllowed,
    /// 40007: the user's group lacks the needed permission.
    GroupNotAllowed,
    /// 40011: upload session unknown or expired.
    UploadSessionExpired,
    /// 40012: chunk index out of range.
    InvalidChunkIndex,
    /// 40013: chunk length differs from the expected one.
    InvalidContentLength,
    /// 40016: path (or its parent) does not exist.
    ParentNotExist,
    /// 40017: the user is banned.
    UserBaned,
    /// 40018: the user is not activated.
    UserNotActivated,
    /// 40019: feature not enabled.
    FeatureNotEnabled,
    /// 40020: refresh token invalid, expired or revoked; sign in again.
    CredentialInvalid,
    /// 40022: wrong 2FA code.
    TwoFactorCodeErr,
    /// 40026: captcha required or wrong.
    CaptchaError,
    /// 40044: declared, never raised by the reference server.
    Code40044,
    /// 40049: file too large.
    FileTooLarge,
    /// 40050: declared, never raised by the reference server.
    Code40050,
    /// 40051: quota exceeded.
    InsufficientCapacity,
    /// 40052: illegal object name or extension.
    IllegalObjectName,
    /// 40053: declared, never raised by the reference server.
    Code40053,
    /// 40054: conflicting upload ongoing (declared, never raised).
    ConflictUploadOngoing,
    /// 40069: wrong share password.
    IncorrectPassword,
    /// 40071: signed URL tampered with.
    InvalidSign,
    /// 40073: lock conflict (or "Lock expired" at upload completion).
    LockConflict,
    /// 40074: too many URIs in one batch.
    TooManyUris,
    /// 40075: lock expired (declared, never raised).
    LockExpired,
    /// 40076: `previous` version is stale.
    StaleVersion,
    /// 40077: entity (blob/version) does not exist.
    EntityNotExist,
    /// 40079: walk limit reached.
    FileCountLimitedReached,
    /// 40080: wrong e-mail or password.
    InvalidPassword,
    /// 40081: batch operation partially failed (see `aggregated_error`).
    BatchOperationNotFullyCompleted,
    /// 40082: only the owner may do this.
    OwnerOnly,
    /// 40083: purchase required (Pro).
    PurchaseRequired,
    /// 40088: anonymous access refused (4.12+).
    AnonymousAccessDenied,
    /// 40089: the token's OAuth scopes do not cover the call (4.12+; tokens
    /// from a password sign-in carry no scopes and are never refused so).
    InsufficientScope,
    /// 50001: database error (also a valid JWT for a deleted/banned user).
    DbError,
    /// 50004: storage I/O failed.
    IoFailed,
    /// 50005: server misconfiguration.
    InternalSetting,
    /// -1: untyped internal error.
    NotSet,
    /// Any other non-zero code.
    Unknown(i64),
}

impl ErrorCode {
    /// Maps a raw envelope code to its kind. `0` maps to `Unknown(0)`
    /// because success is never an error.
    pub fn from_i64(code: i64) -> Self {
        use ErrorCode::*;
        match code {
            203 => NotFullySuccess,
            401 => CheckLogin,
            403 => NoPermission,
            404 => NotFound,
            409 => Conflict,
            40001 => ParamErr,
            40004 => ObjectExist,
            40005 => SignExpired,
            40006 => PolicyNotAllowed,
            40007 => GroupNotAllowed,
            40011 => UploadSessionExpired,
            40012 => InvalidChunkIndex,
            40013 => InvalidContentLength,
            40016 => ParentNotExist,
            40017 => UserBaned,
            40018 => UserNotActivated,
            40019 => FeatureNotEnabled,
            40020 => CredentialInvalid,
            40022 => TwoFactorCodeErr,
            40026 => CaptchaError,
            40044 => Code40044,
            40049 => FileTooLarge,
            40050 => Code40050,
            40051 => InsufficientCapacity,
            40052 => IllegalObjectName,
            40053 => Code40053,
            40054 => ConflictUploadOngoing,
            40069 => IncorrectPassword,
            40071 => InvalidSign,
            40073 => LockConflict,
            40074 => TooManyUris,
            40075 => LockExpired,
            40076 => StaleVersion,
            40077 => EntityNotExist,
            40079 => FileCountLimitedReached,
            40080 => InvalidPassword,
            40081 => BatchOperationNotFullyCompleted,
            40082 => OwnerOnly,
            40083 => PurchaseRequired,
            40088 => AnonymousAccessDenied,
            40089 => InsufficientScope,
            50001 => DbError,
            50004 => IoFailed,
            50005 => InternalSetting,
            -1 => NotSet,
            other => Unknown(other),
        }
    }

    /// The raw numeric code.
    pub fn as_i64(self) -> i64 {
        use ErrorCode::*;
        match self {
            NotFullySuccess => 203,
            CheckLogin => 401,
            NoPermission => 403,
            NotFound => 404,
            Conflict => 409,
            ParamErr => 40001,
            ObjectExist => 40004,
            SignExpired => 40005,
            PolicyNotAllowed => 40006,
            GroupNotAllowed => 40007,
            UploadSessionExpired => 40011,
            InvalidChunkIndex => 40012,
            InvalidContentLength => 40013,
            ParentNotExist => 40016,
            UserBaned => 40017,
            UserNotActivated => 40018,
            FeatureNotEnabled => 40019,
            CredentialInvalid => 40020,
            TwoFactorCodeErr => 40022,
            CaptchaError => 40026,
            Code40044 => 40044,
            FileTooLarge => 40049,
            Code40050 => 40050,
            InsufficientCapacity => 40051,
            IllegalObjectName => 40052,
            Code40053 => 40053,
            ConflictUploadOngoing => 40054,
            IncorrectPassword => 40069,
            InvalidSign => 40071,
            LockConflict => 40073,
            TooManyUris => 40074,
            LockExpired => 40075,
            StaleVersion => 40076,
            EntityNotExist => 40077,
            FileCountLimitedReached => 40079,
            InvalidPassword => 40080,
            BatchOperationNotFullyCompleted => 40081,
            OwnerOnly => 40082,
            PurchaseRequired => 40083,
            AnonymousAccessDenied => 40088,
            InsufficientScope => 40089,
            DbError => 50001,
            IoFailed => 50004,
            InternalSetting => 50005,
            NotSet => -1,
            Unknown(c) => c,
        }
    }
}

/// A failure reported by Cloudreve through the JSON envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Raw `code`.
    pub code: i64,
    /// Typed kind of `code`.
    pub kind: ErrorCode,
    /// `msg` (human text, may be empty).
    pub msg: String,
    /// `correlation_id`, absent on binding errors.
    pub correlation_id: Option<String>,
    /// `error` (raw Go error chain; only in non-release servers).
    pub error: Option<String>,
    /// Decoded lock conflicts (code 40073 with `data`, UPSTREAM §4.9).
    pub lock_conflicts: Vec<LockConflict>,
    /// Per-URI failures (code 40081, docs/UPSTREAM.md §1.4).
    pub aggregated: Option<AggregatedErrors>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cloudreve error {} ({:?})", self.code, self.kind)?;
        if !self.msg.is_empty() {
            write!(f, ": {}", self.msg)?;
        }
        if let Some(cid) = &self.correlation_id {
            write!(f, " [correlation_id {cid}]")?;
        }
        Ok(())
    }
}

/// Per-URI errors of a batch call, keyed by the **normalised** URI string
/// (each path segment decoded and re-encoded canonically, see
/// [`CrUri::to_string`]). Keys that do not parse are kept verbatim.
#[derive(Debug, Clone, Default)]
pub struct AggregatedErrors {
    /// Normalised URI → error.
    pub entries: HashMap<String, ApiError>,
}

impl AggregatedErrors {
    /// Normalises a URI string for lookup in [`Self::entries`].
    pub fn normalize(uri: &str) -> String {
        match CrUri::parse(uri) {
            Ok(u) => u.to_string(),
            Err(_) => uri.to_string(),
        }
    }

    /// Looks up the error for a URI given in any valid encoding.
    pub fn get(&self, uri: &str) -> Option<&ApiError> {
        self.entries.get(&Self::normalize(uri))
    }

    /// Looks up the error for a parsed URI.
    pub fn get_uri(&self, uri: &CrUri) -> Option<&ApiError> {
        self.entries.get(&uri.to_string())
    }

    /// Number of failed URIs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no URI failed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The error type of every client call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Cloudreve answered with a non-zero envelope code.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// Password sign-in needs a TOTP code; call `sign_in_2fa` with this id.
    #[error("two-factor authentication required")]
    TwoFactorRequired {
        /// The 2FA session id (valid for 600 s).
        session_id: String,
    },
    /// The refresh token is no longer valid and no password is known: the
    /// session must be signed in again.
    #[error("session expired: sign in again")]
    SignInRequired,
    /// Network / HTTP transport failure.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer could not be decoded.
    #[error("decode error ({context}): {message}")]
    Decode {
        /// What was being decoded.
        context: String,
        /// Decoder message.
        message: String,
    },
    /// An HTTP status the route never uses for success (404 text page,
    /// 5xx, 302, 416…).
    #[error("unexpected HTTP status {status}: {body}")]
    UnexpectedStatus {
        /// HTTP status code.
        status: u16,
        /// Start of the body (text), for diagnostics.
        body: String,
        /// `Location` header, if any (redirects).
        location: Option<String>,
    },
    /// A response body ended before its declared length.
    #[error("short body: expected {expected} bytes, received {received}")]
    ShortBody {
        /// Declared length.
        expected: u64,
        /// Bytes actually received.
        received: u64,
    },
    /// A request body (source) produced a different number of bytes than
    /// announced.
    #[error("source length mismatch: expected {expected} bytes, got {actual}")]
    SourceLength {
        /// Announced length.
        expected: u64,
        /// Bytes produced (at least).
        actual: u64,
    },
    /// A Cloudreve URI could not be parsed or built.
    #[error("invalid cloudreve uri: {0}")]
    InvalidUri(String),
    /// Local I/O error (reading an upload source).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Invalid client configuration or argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// Builds a decode error.
    pub(crate) fn decode(context: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Decode {
            context: context.into(),
            message: message.to_string(),
        }
    }

    /// The envelope error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The typed envelope code, if this is an API error.
    pub fn code(&self) -> Option<ErrorCode> {
        self.api().map(|e| e.kind)
    }

    /// True when the code is `kind`.
    pub fn is(&self, kind: ErrorCode) -> bool {
        self.code() == Some(kind)
    }

    /// Not found: 40016, 404, 40077, or HTTP 404 from the content route.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::ParentNotExist | ErrorCode::NotFound | ErrorCode::EntityNotExist)
        ) || matches!(self, Error::UnexpectedStatus { status: 404, .. })
    }

    /// Name collision (40004).
    pub fn is_conflict_exists(&self) -> bool {
        self.is(ErrorCode::ObjectExist)
    }

    /// Lock conflict (40073).
    pub fn is_locked(&self) -> bool {
        self.is(ErrorCode::LockConflict)
    }

    /// Permission denied (403, 40082, 40007).
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self.code(),
            Some(
                ErrorCode::NoPermission
                    | ErrorCode::OwnerOnly
                    | ErrorCode::GroupNotAllowed
                    | ErrorCode::AnonymousAccessDenied
                    | ErrorCode::InsufficientScope
            )
        )
    }

    /// Stale `previous` version (40076).
    pub fn is_stale_version(&self) -> bool {
        self.is(ErrorCode::StaleVersion)
    }

    /// File too large (40049).
    pub fn is_too_large(&self) -> bool {
        self.is(ErrorCode::FileTooLarge)
    }

    /// Quota exceeded (40051).
    pub fn is_insufficient_capacity(&self) -> bool {
        self.is(ErrorCode::InsufficientCapacity)
    }

    /// The policy refuses chunk uploads (40006): fall back to `put_content`.
    pub fn is_policy_not_allowed(&self) -> bool {
        self.is(ErrorCode::PolicyNotAllowed)
    }

    /// Login required (401) even after a refresh.
    pub fn is_login_required(&self) -> bool {
        self.is(ErrorCode::CheckLogin) || matches!(self, Error::SignInRequired)
    }

    /// Wrong e-mail or password at sign-in (40080).
    pub fn is_invalid_credentials(&self) -> bool {
        self.is(ErrorCode::InvalidPassword)
    }

    /// Captcha required (40026).
    pub fn is_captcha_required(&self) -> bool {
        self.is(ErrorCode::CaptchaError)
    }

    /// Banned (40017) or not activated (40018) user.
    pub fn is_user_disabled(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::UserBaned | ErrorCode::UserNotActivated)
        )
    }

    /// Lock conflicts carried by a 40073 error (empty otherwise).
    pub fn lock_conflicts(&self) -> &[LockConflict] {
        self.api()
            .map(|e| e.lock_conflicts.as_slice())
            .unwrap_or(&[])
    }

    /// Per-URI errors carried by a 40081 error.
    pub fn aggregated(&self) -> Option<&AggregatedErrors> {
        self.api().and_then(|e| e.aggregated.as_ref())
    }

    /// A 40081 aggregate with exactly one entry becomes that entry's error
    /// (for calls about one URI); any other error is returned as it is.
    pub fn into_single_failure(self) -> Error {
        match self {
            Error::Api(a) => match &a.aggregated {
                Some(g) if g.entries.len() == 1 => match g.entries.values().next() {
                    Some(inner) => Error::Api(Box::new(inner.clone())),
                    None => Error::Api(a),
                },
                _ => Error::Api(a),
            },
            other => other,
        }
    }
}

/// Raw envelope as sent by the server (docs/UPSTREAM.md §1.2).
#[derive(Debug, Deserialize)]
pub(crate) struct RawEnvelope {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub aggregated_error: Option<HashMap<String, RawEnvelope>>,
}

impl RawEnvelope {
    /// Converts a non-zero envelope into an [`ApiError`].
    pub(crate) fn into_api_error(self) -> ApiError {
        let kind = ErrorCode::from_i64(self.code);
        let lock_conflicts = if kind == ErrorCode::LockConflict {
            self.data
                .and_then(|d| serde_json::from_value::<Vec<LockConflict>>(d).ok())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let aggregated = self.aggregated_error.map(|m| AggregatedErrors {
            entries: m
                .into_iter()
                .map(|(k, v)| (AggregatedErrors::normalize(&k), v.into_api_error()))
                .collect(),
        });
        ApiError {
            code: self.code,
            kind,
            msg: self.msg.unwrap_or_default(),
            correlation_id: self.correlation_id.filter(|c| !c.is_empty()),
            error: self.error,
            lock_conflicts,
            aggregated,
        }
    }
}

/// Decodes a full envelope body. On code 0 returns `data` (possibly absent);
/// on any other code returns the typed error (and logs it).
pub(crate) fn decode_envelope(body: &[u8], context: &str) -> Result<Option<serde_json::Value>> {
    let env: RawEnvelope =
        serde_json::from_slice(body).map_err(|e| not_an_envelope(body, context, e))?;
    if env.code == 0 {
        return Ok(env.data.filter(|d| !d.is_null()));
    }
    let err = env.into_api_error();
    log_api_error(context, &err);
    Err(Error::Api(Box::new(err)))
}

/// The error for a body that is not a JSON envelope. Cloudreve answers
/// every path outside its API with its web page (HTTP 200), so an HTML body
/// almost always means the upstream URL is not the site root.
pub(crate) fn not_an_envelope(body: &[u8], context: &str, e: serde_json::Error) -> Error {
    let html = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<');
    if html {
        return Error::decode(
            format!("{context}: envelope"),
            "got an HTML page instead of Cloudreve's JSON answer: is the upstream URL the site root (no /api/v4, no sub-path)?",
        );
    }
    Error::decode(format!("{context}: envelope"), e)
}

/// Logs an upstream error with its correlation id.
pub(crate) fn log_api_error(context: &str, err: &ApiError) {
    let cid = err.correlation_id.as_deref().unwrap_or("");
    if err.code < 0 || err.code >= 50000 {
        tracing::warn!(context, code = err.code, msg = %err.msg, correlation_id = cid, "cloudreve upstream error");
    } else {
        tracing::debug!(context, code = err.code, msg = %err.msg, correlation_id = cid, "cloudreve upstream error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(body: &str) -> ApiError {
        match decode_envelope(body.as_bytes(), "test") {
            Err(Error::Api(e)) => *e,
            other => panic!("expected api error, got {other:?}"),
        }
    }

    #[test]
    fn success_without_data() {
        assert!(
            decode_envelope(br#"{"code":0,"msg":""}"#, "t")
                .unwrap()
                .is_none()
        );
        assert!(
            decode_envelope(br#"{"code":0,"data":null,"msg":""}"#, "t")
                .unwrap()
                .is_none()
        );
        let d = decode_envelope(br#"{"code":0,"data":"4.0.0","msg":"","x":1}"#, "t").unwrap();
        assert_eq!(d, Some(serde_json::json!("4.0.0")));
    }

    #[test]
    fn error_with_cid() {
        let e = err_of(r#"{"code":40016,"msg":"Path not exist","correlation_id":"abc-1"}"#);
        assert_eq!(e.kind, ErrorCode::ParentNotExist);
        assert_eq!(e.correlation_id.as_deref(), Some("abc-1"));
        assert_eq!(e.msg, "Path not exist");
        let err = Error::Api(Box::new(e));
        assert!(err.is_not_found());
        assert!(!err.is_conflict_exists());
    }

    #[test]
    fn binding_error_without_cid() {
        let e = err_of(r#"{"code":40001,"msg":"bad"}"#);
        assert_eq!(e.kind, ErrorCode::ParamErr);
        assert!(e.correlation_id.is_none());
    }

    #[test]
    fn negative_code_is_failure() {
        let e = err_of(r#"{"code":-1,"msg":""}"#);
        assert_eq!(e.kind, ErrorCode::NotSet);
        let e = err_of(r#"{"code":-7}"#);
        assert_eq!(e.kind, ErrorCode::Unknown(-7));
    }

    #[test]
    fn lock_conflict_payload() {
        let e = err_of(
            r#"{"code":40073,"msg":"Lock conflict","correlation_id":"c",
            "data":[{"path":"cloudreve://my/dir/a%20b.txt","token":"2f1c","owner":{"application":{"type":"dav","inner_xml":"<D:href>x</D:href>"}},"type":0},
                    {"owner":{"application":{"type":"upload"}},"type":1}]}"#,
        );
        assert_eq!(e.kind, ErrorCode::LockConflict);
        assert_eq!(e.lock_conflicts.len(), 2);
        let c = &e.lock_conflicts[0];
        assert_eq!(c.path.as_deref(), Some("cloudreve://my/dir/a%20b.txt"));
        assert_eq!(c.token.as_deref(), Some("2f1c"));
        assert_eq!(c.owner.application.kind, "dav");
        assert_eq!(
            c.owner.application.inner_xml.as_deref(),
            Some("<D:href>x</D:href>")
        );
        assert_eq!(e.lock_conflicts[1].file_type, 1);
        assert!(e.lock_conflicts[1].token.is_none());
        // "Lock expired" variant without data.
        let e = err_of(r#"{"code":40073,"msg":"Lock expired"}"#);
        assert!(e.lock_conflicts.is_empty());
    }

    #[test]
    fn aggregated_error_normalised() {
        let e = err_of(
            r#"{"code":40081,"msg":"One or more operation failed","correlation_id":"x",
            "aggregated_error":{"cloudreve://my/a%20b/%E9%97%A8+x%2a.txt":{"code":40016,"msg":"Path not exist","correlation_id":"y"},
                                "cloudreve://my/ok":{"code":403,"msg":"no"}}}"#,
        );
        assert_eq!(e.kind, ErrorCode::BatchOperationNotFullyCompleted);
        let agg = e.aggregated.as_ref().unwrap();
        assert_eq!(agg.len(), 2);
        let mine = CrUri::my().join("a b").unwrap().join("门+x*.txt").unwrap();
        let sub = agg.get_uri(&mine).expect("normalised key");
        assert_eq!(sub.kind, ErrorCode::ParentNotExist);
        assert_eq!(sub.correlation_id.as_deref(), Some("y"));
        assert!(agg.get("cloudreve://my/a%20b/%e9%97%a8%2Bx*.txt").is_some());
        assert_eq!(
            agg.get("cloudreve://my/ok").unwrap().kind,
            ErrorCode::NoPermission
        );
    }

    #[test]
    fn garbage_is_decode_error() {
        assert!(matches!(
            decode_envelope(b"404 page not found", "t"),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn code_round_trip() {
        for c in [
            203, 401, 403, 404, 409, 40001, 40004, 40005, 40006, 40007, 40011, 40012, 40013, 40016,
            40017, 40018, 40019, 40020, 40022, 40026, 40044, 40049, 40050, 40051, 40052, 40053,
            40054, 40069, 40071, 40073, 40074, 40075, 40076, 40077, 40079, 40080, 40081, 40082,
            40083, 40088, 40089, 50001, 50004, 50005, -1, 12345,
        ] {
            assert_eq!(ErrorCode::from_i64(c).as_i64(), c);
            if c != 12345 {
                assert!(!matches!(ErrorCode::from_i64(c), ErrorCode::Unknown(_)));
            }
        }
    }
}
