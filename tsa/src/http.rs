//! The TSA over HTTP (RFC 3161 §3.4): `POST /tsa` with a DER `TimeStampReq` of type
//! `application/timestamp-query`, answered with a DER `TimeStampResp` of type
//! `application/timestamp-reply`. Mounted into `imza serve` through [`routes`].
//!
//! Every request the route accepts gets HTTP 200 and a `TimeStampResp`, granted or a
//! rejection with its failInfo: RFC 3161 reports refusals inside the protocol, and a client
//! reads the reason there. HTTP errors are kept for what never reaches the TSA: a body of
//! the wrong type (415), too large to be a request (413), too slow (408), or a TSA whose work
//! queue is full (503 with `Retry-After`).

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use axum::routing::post;
use axum::Router;
use imza_core::clock::Clock;
use imza_http::admission::DEFAULT_MAX_WAIT;
use imza_http::answer::{closing, overloaded, plain, refused_body};
use imza_http::{content_type_is, read_body, WorkLimit};

use crate::authority::refuse;
use crate::{SystemFault, TimeStampAuthority, TsaAnswer, TsaError, MAX_REQUEST_BYTES};

/// RFC 3161 §3.4: the media types of a request and of a response.
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";

/// What the HTTP route serves: the current authority and where "now" comes from.
///
/// The authority sits behind an `RwLock<Arc<_>>` so that [`TsaService::replace`] can put in
/// one with a new certificate (rotation) while requests are in flight: each request takes a
/// clone of the `Arc` and finishes with the authority it started with. The lock is held only
/// for that clone, never while signing. With no authority (none created yet, or its
/// certificate revoked: [`TsaService::withdraw`]) every request is refused with
/// `systemFailure` until [`TsaService::replace`] puts one in.
pub struct TsaService {
    authority: RwLock<Option<Arc<TimeStampAuthority>>>,
    clock: Arc<dyn Clock>,
}

impl TsaService {
    pub fn new(authority: TimeStampAuthority, clock: Arc<dyn Clock>) -> TsaService {
        TsaService {
            authority: RwLock::new(Some(Arc::new(authority))),
            clock,
        }
    }

    /// A service that refuses every request until [`TsaService::replace`] gives it an
    /// authority.
    pub fn unavailable(clock: Arc<dyn Clock>) -> TsaService {
        TsaService {
            authority: RwLock::new(None),
            clock,
        }
    }

    /// Serves `authority` from now on; returns the one it replaces. Requests already being
    /// answered finish with the old one.
    pub fn replace(&self, authority: TimeStampAuthority) -> Option<Arc<TimeStampAuthority>> {
        let mut current = self.authority.write().unwrap_or_else(|e| e.into_inner());
        current.replace(Arc::new(authority))
    }

    /// Stops stamping (the certificate was revoked, say); returns the authority withdrawn.
    pub fn withdraw(&self) -> Option<Arc<TimeStampAuthority>> {
        let mut current = self.authority.write().unwrap_or_else(|e| e.into_inner());
        current.take()
    }

    /// The authority serving now, if any.
    pub fn authority(&self) -> Option<Arc<TimeStampAuthority>> {
        self.authority
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Answers one DER request at the service clock's "now".
    ///
    /// Signing runs on the calling thread, an async worker when called from the route: a
    /// software P-256 signature takes tens of microseconds, less than handing the work to the
    /// blocking pool and back costs, and within what a worker may spend between awaits.
    pub fn respond(&self, request_der: &[u8]) -> TsaAnswer {
        match self.authority() {
            Some(authority) => authority.respond(request_der, self.clock.now()),
            None => refuse(TsaError::SystemFailure(SystemFault::NoUsableUnit)),
        }
    }
}

/// The TSA's default work limit: as many signatures at once as there are cores (signing runs
/// on the async workers), a queue for a burst of a thousand clients.
pub fn default_work_limit() -> WorkLimit {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    WorkLimit::new("TSA", cores, 1024, DEFAULT_MAX_WAIT)
}

/// `POST /tsa` answered by `service`, with at most `limit`'s work at once (more waits in its
/// queue; beyond that, 503 with `Retry-After`).
pub fn routes(service: Arc<TsaService>, limit: WorkLimit) -> Router {
    Router::new()
        .route("/tsa", post(tsa_post))
        .with_state(TsaRoute { service, limit })
}

#[derive(Clone)]
struct TsaRoute {
    service: Arc<TsaService>,
    limit: WorkLimit,
}

/// `POST /tsa`: one RFC 3161 request, one response. Bodies are never logged.
///
/// Signing runs on the async worker that received the request, within the TSA's work limit:
/// a software P-256 signature takes tens of microseconds, less than handing the work to the
/// blocking pool and back costs; the limit keeps a flood of requests to the TSA from holding
/// more than its share of workers.
async fn tsa_post(State(route): State<TsaRoute>, headers: HeaderMap, body: Body) -> Response<Body> {
    if content_type_is(&headers, TIMESTAMP_QUERY) != Some(true) {
        return closing(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send a DER TimeStampReq as Content-Type: {TIMESTAMP_QUERY} (RFC 3161 §3.4)"),
        ));
    }
    let body = match read_body(body, &headers, MAX_REQUEST_BYTES, None).await {
        Ok(body) => body,
        Err(refused) => {
            return refused_body(
                refused,
                &format!("a time-stamp request is at most {MAX_REQUEST_BYTES} bytes"),
            )
        }
    };
    let _turn = match route.limit.enter().await {
        Ok(turn) => turn,
        Err(full) => return overloaded(&full),
    };
    let der = route.service.respond(&body.bytes).der;
    let mut response = Response::new(Body::from(der));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(TIMESTAMP_REPLY));
    // A token answers one request (its nonce, its time): never a cached copy.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
