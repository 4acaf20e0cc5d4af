//! Process-wide metrics, exposed in the Prometheus text format on the admin
//! address (see [`crate::admin`]).
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client:
//! typed label sets, no global recorder to install, and an encoder for the
//! text exposition format. The metrics are process-global because the
//! Cloudreve client records its upstream calls without a handle being
//! threaded through every session.

use std::sync::OnceLock;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    endpoint: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<MethodLabels, Histogram>,
    upstream_calls: Family<UpstreamLabels, Counter>,
    upstream_errors: Family<UpstreamLabels, Counter>,
    bytes_in: Counter,
    bytes_out: Counter,
    auth_failures: Family<ReasonLabels, Counter>,
    active_locks: Gauge<i64, AtomicI64>,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("cloudreve_dav");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<MethodLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let upstream_calls = Family::<UpstreamLabels, Counter>::default();
        let upstream_errors = Family::<UpstreamLabels, Counter>::default();
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        let active_locks = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "requests",
            "WebDAV requests answered, by method and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to response head, by method",
            duration.clone(),
        );
        registry.register(
            "upstream_calls",
            "Cloudreve API calls, by endpoint and HTTP status (`error` = no answer)",
            upstream_calls.clone(),
        );
        registry.register(
            "upstream_errors",
            "Cloudreve API answers with a non-zero envelope code, by operation and code",
            upstream_errors.clone(),
        );
        registry.register(
            "request_body_bytes",
            "WebDAV request body bytes received",
            bytes_in.clone(),
        );
        registry.register(
            "response_body_bytes",
            "WebDAV response body bytes sent",
            bytes_out.clone(),
        );
        registry.register(
            "auth_failures",
            "WebDAV requests refused with 401, by reason (missing, malformed, invalid)",
            auth_failures.clone(),
        );
        registry.register(
            "active_locks",
            "Live WebDAV locks held by the gateway",
            active_locks.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            upstream_calls,
            upstream_errors,
            bytes_in,
            bytes_out,
            auth_failures,
            active_locks,
        }
    }

    /// Records one answered request.
    pub fn request(&self, method: &http::Method, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method: method.clone(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&MethodLabels { method })
            .observe(seconds);
    }

    /// Records one Cloudreve API call by its path (IDs folded) and status.
    pub fn upstream_call(&self, path: &str, status: Option<u16>) {
        let code = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        self.upstream_calls
            .get_or_create(&UpstreamLabels {
                endpoint: endpoint_label(path),
                code,
            })
            .inc();
    }

    /// Records a non-zero envelope code for an operation.
    pub fn upstream_error(&self, operation: &str, code: i64) {
        self.upstream_errors
            .get_or_create(&UpstreamLabels {
                endpoint: operation.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// Adds request body bytes.
    pub fn bytes_in(&self, n: usize) {
        self.bytes_in.inc_by(n as u64);
    }

    /// Adds response body bytes.
    pub fn bytes_out(&self, n: usize) {
        self.bytes_out.inc_by(n as u64);
    }

    /// Records a 401 answer.
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Sets the number of live locks (read at scrape time).
    pub fn set_active_locks(&self, n: usize) {
        self.active_locks.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The metrics in the text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// WebDAV and HTTP methods are kept; anything else is `other` (bounded
/// label values).
fn method_label(m: &http::Method) -> String {
    const KNOWN: &[&str] = &[
        "OPTIONS",
        "GET",
        "HEAD",
        "PUT",
        "POST",
        "DELETE",
        "PROPFIND",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
        "PATCH",
    ];
    if KNOWN.contains(&m.as_str()) {
        m.as_str().to_string()
    } else {
        "other".to_string()
    }
}

/// An API path with its variable segments folded, e.g.
/// `/devices/dav/{id}`, `/file/upload/{session}/{index}`.
pub fn endpoint_label(path: &str) -> String {
    const VARIABLE: &[(&str, &[&str])] = &[
        ("/devices/dav/", &["{id}"]),
        ("/site/config/", &["{section}"]),
        ("/file/upload/", &["{session}", "{index}"]),
    ];
    let path = path.split('?').next().unwrap_or_default();
    for (prefix, names) in VARIABLE {
        if let Some(rest) = path.strip_prefix(prefix) {
            let n = rest.split('/').filter(|s| !s.is_empty()).count();
            if n == 0 {
                break;
            }
            let mut out = prefix.trim_end_matches('/').to_string();
            for i in 0..n {
                out.push('/');
                out.push_str(names.get(i).copied().unwrap_or("{x}"));
            }
            return out;
        }
    }
    path.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_fold_ids() {
        assert_eq!(endpoint_label("/devices/dav/aB3"), "/devices/dav/{id}");
        assert_eq!(endpoint_label("/devices/dav"), "/devices/dav");
        assert_eq!(
            endpoint_label("/file/upload/s-1/3"),
            "/file/upload/{session}/{index}"
        );
        assert_eq!(endpoint_label("/file/upload"), "/file/upload");
        assert_eq!(endpoint_label("/site/ping"), "/site/ping");
    }

    #[test]
    fn encodes_counters_and_histograms() {
        let m = Metrics::new();
        m.request(&http::Method::GET, 200, 0.003);
        m.request(&http::Method::from_bytes(b"BREW").unwrap(), 405, 0.001);
        m.upstream_call("/devices/dav/x", Some(200));
        m.bytes_out(10);
        m.set_active_locks(2);
        let text = m.encode();
        assert!(text.contains("cloudreve_dav_requests_total{method=\"GET\",status=\"200\"} 1"));
        assert!(text.contains("cloudreve_dav_requests_total{method=\"other\",status=\"405\"} 1"));
        assert!(text.contains(
            "cloudreve_dav_upstream_calls_total{endpoint=\"/devices/dav/{id}\",code=\"200\"} 1"
        ));
        assert!(text.contains("cloudreve_dav_response_body_bytes_total 10"));
        assert!(text.contains("cloudreve_dav_active_locks 2"));
        assert!(text.contains("cloudreve_dav_request_duration_seconds_count{method=\"GET\"} 1"));
    }
}
