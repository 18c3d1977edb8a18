//! imza's HTTP serving plumbing, the one home for what every service needs so that no route,
//! however loaded, can take the others down:
//!
//! - [`server`]: the accept loop and connections — a cap on open connections below the
//!   process's file limit (the oldest idle ones closed first under pressure), header-read,
//!   idle keep-alive, minimum-rate body and send timeouts, graceful shutdown — serving an
//!   [`axum::Router`] over HTTP/1.1 with hyper 1;
//! - [`admission`]: each service's bounded amount of concurrent work and bounded queue
//!   ([`WorkLimit`]), answered with 503 and `Retry-After` when full instead of waiting, and a
//!   process-wide budget for request bodies held in memory ([`MemoryBudget`]);
//! - [`body`]: reading a request body within a size limit, the memory budget and the
//!   minimum rate;
//! - [`answer`]: the plain-text error answers and the `Retry-After` header;
//! - [`client`]: the one HTTP client of imza's libraries and CLI ([`HttpClient`]: a timeout
//!   and a size limit on every answer, no redirects), and the bound on what imza reads from
//!   the OCSP responders and TSAs it asks.
//!
//! Why not Rocket's server: Rocket 0.5 binds its own listener (not replaceable) and turns
//! hyper's header-read timeout off, so idle, slow and never-finishing connections could be
//! held for ever (see ARCHITECTURE.md, "HTTP").

pub mod admission;
pub mod answer;
pub mod body;
pub mod client;
mod connection;
pub mod rate;
pub mod server;
pub mod tls;

pub use admission::{MemoryBudget, Overloaded, WorkLimit};
pub use body::{content_type_is, declared_length, read_body, BodyRefused, LimitedBody};
pub use client::{HttpClient, HttpError, HttpMethod};
pub use server::{ConnectionLimits, Server, ServerStats, Shutdown};
pub use tls::{ClientCertificate, TlsConfig};
