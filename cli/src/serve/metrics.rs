//! Prometheus `GET /metrics`: requests by endpoint (method and route) and status with latency
//! histograms, what the connection server did (open, evicted, timed out …) and how often each
//! service's work limit refused a request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Response;
use axum::middleware::Next;
use imza_http::{ServerStats, WorkLimit};
use imza_validation::FetchCacheStats;

/// Per-endpoint request counts and latency histograms, in Prometheus text format.
#[derive(Default)]
pub struct Metrics {
    /// endpoint → HTTP status → series. Keyed by endpoint first so that recording a request
    /// looks up by `&str` and allocates only the first time an endpoint is seen.
    inner: Mutex<BTreeMap<String, BTreeMap<u16, Series>>>,
}

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Upper bounds (seconds) of the latency histogram.
const BUCKETS: [f64; 8] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];

impl Metrics {
    pub fn observe(&self, endpoint: &str, status: u16, seconds: f64) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(endpoint) {
            map.insert(endpoint.to_string(), BTreeMap::new());
        }
        let Some(by_status) = map.get_mut(endpoint) else {
            return;
        };
        let series = by_status.entry(status).or_default();
        series.count += 1;
        series.sum_seconds += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                series.buckets[i] += 1;
            }
        }
    }

    /// The text exposition of everything: requests, then the connection server's counters
    /// (`server`), then each work limit's refusals.
    pub fn render(
        &self,
        server: Option<&ServerStats>,
        limits: &[WorkLimit],
        fetches: Option<&FetchCacheStats>,
    ) -> String {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = String::new();
        out.push_str("# HELP imza_http_requests_total HTTP requests by endpoint and status.\n");
        out.push_str("# TYPE imza_http_requests_total counter\n");
        for (endpoint, by_status) in &map {
            for (status, s) in by_status {
                out.push_str(&format!(
                    "imza_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {}\n",
                    s.count
                ));
            }
        }
        out.push_str("# HELP imza_http_request_duration_seconds Time to answer, by endpoint.\n");
        out.push_str("# TYPE imza_http_request_duration_seconds histogram\n");
        let mut by_endpoint: BTreeMap<&str, Series> = BTreeMap::new();
        for (endpoint, by_status) in &map {
            let e = by_endpoint.entry(endpoint.as_str()).or_default();
            for s in by_status.values() {
                e.count += s.count;
                e.sum_seconds += s.sum_seconds;
                for i in 0..BUCKETS.len() {
                    e.buckets[i] += s.buckets[i];
                }
            }
        }
        for (endpoint, s) in by_endpoint {
            for (i, bound) in BUCKETS.iter().enumerate() {
                out.push_str(&format!("imza_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {}\n", s.buckets[i]));
            }
            out.push_str(&format!("imza_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {}\n", s.count));
            out.push_str(&format!(
                "imza_http_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {}\n",
                s.sum_seconds
            ));
            out.push_str(&format!(
                "imza_http_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {}\n",
                s.count
            ));
        }
        if let Some(server) = server {
            let counters = server.counters();
            out.push_str("# HELP imza_http_connections_open Connections open now.\n");
            out.push_str("# TYPE imza_http_connections_open gauge\n");
            for (_, value) in counters.iter().filter(|(event, _)| *event == "open") {
                out.push_str(&format!("imza_http_connections_open {value}\n"));
            }
            out.push_str(
                "# HELP imza_http_connection_events_total What the server did with connections.\n",
            );
            out.push_str("# TYPE imza_http_connection_events_total counter\n");
            for (event, value) in counters.iter().filter(|(event, _)| *event != "open") {
                out.push_str(&format!(
                    "imza_http_connection_events_total{{event=\"{event}\"}} {value}\n"
                ));
            }
        }
        out.push_str("# HELP imza_work_refused_total Requests a service refused with 503 because its work queue was full.\n");
        out.push_str("# TYPE imza_work_refused_total counter\n");
        for limit in limits {
            out.push_str(&format!(
                "imza_work_refused_total{{service=\"{}\"}} {}\n",
                limit.name(),
                limit.refused()
            ));
        }
        if let Some(f) = fetches {
            out.push_str("# HELP imza_verify_fetches_total What /verify's revocation fetching did: outbound fetches, cache hits, coalesced waits, refusals by cap.\n");
            out.push_str("# TYPE imza_verify_fetches_total counter\n");
            for (what, value) in [
                ("outbound", f.outbound),
                ("hit", f.hits),
                ("coalesced", f.coalesced),
                ("refused_per_request", f.refused_per_request),
                ("refused_request_time", f.refused_request_time),
                ("refused_concurrent", f.refused_concurrent),
            ] {
                out.push_str(&format!(
                    "imza_verify_fetches_total{{what=\"{what}\"}} {value}\n"
                ));
            }
            out.push_str("# HELP imza_verify_fetch_cache_entries Fetched answers (and remembered failures) kept now.\n");
            out.push_str("# TYPE imza_verify_fetch_cache_entries gauge\n");
            out.push_str(&format!("imza_verify_fetch_cache_entries {}\n", f.entries));
        }
        out
    }
}

/// Middleware recording every request's endpoint (`METHOD /route/{pattern}`, or
/// `unmatched`), status and latency.
pub async fn record(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response<Body> {
    let started = Instant::now();
    let endpoint = match request.extensions().get::<MatchedPath>() {
        Some(path) => format!("{} {}", request.method(), path.as_str()),
        None => "unmatched".to_string(),
    };
    let response = next.run(request).await;
    metrics.observe(
        &endpoint,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
