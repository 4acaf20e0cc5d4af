//! Cloudreve's JSON envelope as the emulator writes it: `{code, msg, data}`
//! over HTTP 200, the API errors and their codes, correlation ids, and the
//! request parsing that fails with a binding error.

use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// An API error rendered as an HTTP 200 envelope.
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    /// Envelope code.
    pub code: i64,
    /// Message.
    pub msg: String,
    /// Optional `data`.
    pub data: Option<Value>,
    /// Optional `aggregated_error`.
    pub agg: Option<Map<String, Value>>,
    /// Whether to add a `correlation_id`.
    pub cid: bool,
}

impl ApiError {
    /// An error with a correlation id.
    pub(super) fn new(code: i64, msg: &str) -> Self {
        Self {
            code,
            msg: msg.to_string(),
            data: None,
            agg: None,
            cid: true,
        }
    }

    /// A binding error: 40001 without a correlation id.
    pub(super) fn binding(msg: &str) -> Self {
        Self {
            cid: false,
            ..Self::new(40001, msg)
        }
    }

    /// Attaches `data`.
    pub(super) fn with_data(mut self, d: Value) -> Self {
        self.data = Some(d);
        self
    }

    /// Renders the envelope.
    pub(super) fn into_resp(self) -> Response {
        let mut v = json!({"code": self.code, "msg": self.msg});
        if let Some(d) = self.data {
            v["data"] = d;
        }
        if let Some(a) = self.agg {
            v["aggregated_error"] = Value::Object(a);
        }
        if self.cid {
            v["correlation_id"] = json!(correlation_id());
        }
        axum::Json(v).into_response()
    }

    /// The per-URI entry in an aggregated error.
    pub(super) fn entry(&self) -> Value {
        json!({"code": self.code, "msg": self.msg,
               "correlation_id": correlation_id()})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_resp()
    }
}

tokio::task_local! {
    /// The correlation id of the request being answered.
    pub(super) static CID: Option<String>;
}

/// The request's correlation id: the client's `X-Cr-Correlation-Id` when it is a valid
/// UUID, else a fresh one.
pub(super) fn correlation_id() -> String {
    CID.try_with(Clone::clone)
        .ok()
        .flatten()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Common errors.
pub(super) mod err {
    use super::ApiError;
    /// 401 login required.
    pub(crate) fn login() -> ApiError {
        ApiError::new(401, "Login required")
    }
    /// 40016 path not exist.
    pub(crate) fn not_exist() -> ApiError {
        ApiError::new(40016, "Path not exist")
    }
    /// 403 not supported.
    pub(crate) fn unsupported() -> ApiError {
        ApiError::new(403, "Not supported action")
    }
    /// 40004 object existed.
    pub(crate) fn existed() -> ApiError {
        ApiError::new(40004, "Object existed")
    }
    /// 40001 unknown uri.
    pub(crate) fn bad_uri() -> ApiError {
        ApiError::new(40001, "unknown uri")
    }
    /// −1 untyped.
    pub(crate) fn untyped() -> ApiError {
        ApiError::new(-1, "")
    }
}

/// Builds a 40081 aggregate from per-URI failures.
pub(super) fn aggregate(fails: Vec<(String, ApiError)>) -> ApiError {
    let msg = if fails.len() == 1 {
        fails[0].1.msg.clone()
    } else {
        "One or more operation failed".to_string()
    };
    let mut m = Map::new();
    for (k, e) in fails {
        m.insert(k, e.entry());
    }
    let mut e = ApiError::new(40081, &msg);
    e.agg = Some(m);
    e
}

/// A raw envelope with an arbitrary code.
pub(super) fn envelope(code: i64, msg: &str, data: Option<Value>) -> Response {
    let mut v = json!({"code": code, "msg": msg});
    if let Some(d) = data {
        v["data"] = d;
    }
    axum::Json(v).into_response()
}

/// Success with data.
pub(super) fn ok(data: Value) -> Response {
    envelope(0, "", Some(data))
}

/// Success without data.
pub(super) fn ok_void() -> Response {
    envelope(0, "", None)
}

/// Parses a JSON body; failure is a binding error.
pub(super) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::binding(&e.to_string()))
}

/// Parses the query string; failure is a binding error.
pub(super) fn parse_query<T: DeserializeOwned>(q: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(q.unwrap_or("")).map_err(|e| ApiError::binding(&e.to_string()))
}
