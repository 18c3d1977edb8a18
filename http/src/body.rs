//! Request bodies: a minimum pace for every body the server receives, and reading one into
//! memory within a size limit and the process's [`MemoryBudget`].
//!
//! The pace rule is Apache mod_reqtimeout's: a body may take `body_timeout`, plus one second
//! for every `min_rate` bytes received; a client that sends slower (or declares a length and
//! never sends it) gets its read failed with [`BodyTimedOut`], the route answers 408 and the
//! connection is closed after that answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::HeaderMap;
use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};

use crate::admission::{MemoryBudget, Overloaded, Reservation};
use crate::connection::ConnectionState;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body sent slower than the server's minimum rate.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("the request body arrived slower than the server accepts")]
pub struct BodyTimedOut;

/// The pace a body must keep.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    pub timeout: Duration,
    pub min_bytes_per_second: u64,
}

impl Pace {
    fn deadline(&self, started: Instant, received: u64) -> Instant {
        let earned = Duration::from_secs(received / self.min_bytes_per_second.max(1));
        started + self.timeout + earned
    }
}

/// hyper's request body with the pace rule applied.
pub(crate) struct TimedBody<B> {
    inner: B,
    pace: Pace,
    started: Instant,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
    connection: Arc<ConnectionState>,
    timed_out: bool,
}

impl<B> TimedBody<B> {
    pub(crate) fn new(inner: B, pace: Pace, connection: Arc<ConnectionState>) -> TimedBody<B> {
        TimedBody {
            inner,
            pace,
            started: Instant::now(),
            received: 0,
            timer: None,
            connection,
            timed_out: false,
        }
    }
}

impl<B> http_body::Body for TimedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.timed_out {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.pace.deadline(this.started, this.received);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.timed_out = true;
                        this.connection.body_timed_out();
                        Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a body was not taken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyRefused {
    /// Declared, or found while reading, to be longer than the route accepts (413).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The client sent it slower than the server accepts (408).
    #[error("the request body arrived too slowly")]
    TimedOut,
    /// Holding it would pass the memory budget for request bodies (503, `Retry-After`).
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    /// The connection failed while it was read (400).
    #[error("the request body could not be read")]
    Unreadable,
}

/// A body read into memory, with the budget it holds until dropped.
#[derive(Debug)]
pub struct LimitedBody {
    pub bytes: Bytes,
    reservation: Reservation,
}

impl LimitedBody {
    /// Keeps the reservation for the body's bytes while derived data (a decoded copy) lives:
    /// reserves `extra` more bytes, or refuses when the budget has not that much.
    pub fn reserve_more(&mut self, budget: &MemoryBudget, extra: usize) -> Result<(), Overloaded> {
        budget.grow(&mut self.reservation, extra)
    }

    /// Splits into the bytes and the reservation to hold on to.
    pub fn into_parts(self) -> (Bytes, Reservation) {
        (self.bytes, self.reservation)
    }
}

/// The `Content-Length` a client declared, if it is one number.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Whether the request's `Content-Type` is `media_type` (`type/subtype`, compared without
/// case, parameters ignored, as media types compare: RFC 9110 §8.3.1); `None` when the
/// request has none (or an unreadable one).
pub fn content_type_is(headers: &HeaderMap, media_type: &str) -> Option<bool> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    Some(essence.eq_ignore_ascii_case(media_type))
}

/// How far past its limit a body is still read (and thrown away) before it is refused: a
/// client that is still writing a slightly oversized body then gets its 413 rather than a
/// connection reset under its write (RFC 9112 §9.6, lingering close). Anything larger is
/// refused at once.
pub const LINGER_BYTES: usize = 64 * 1024;

/// Reads a body of at most `limit` bytes. A declared `Content-Length` over the limit is
/// refused before anything is kept; otherwise bytes are reserved in `budget` (when given) as
/// they arrive, and keeping stops at the first byte past the limit, so the rest of a body is
/// never held (up to [`LINGER_BYTES`] more are read and dropped before the refusal). The
/// body's pace was set by the server (see the module documentation).
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    budget: Option<&MemoryBudget>,
) -> Result<LimitedBody, BodyRefused> {
    let mut body = body;
    if let Some(declared) = declared_length(headers).filter(|n| *n > limit as u64) {
        if declared <= (limit + LINGER_BYTES) as u64 {
            drain(&mut body, limit + LINGER_BYTES).await;
        }
        return Err(BodyRefused::TooLarge { limit });
    }
    let mut reservation = Reservation::default();
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| refusal(&e))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if collected.len() + data.len() > limit {
            drain(&mut body, LINGER_BYTES).await;
            return Err(BodyRefused::TooLarge { limit });
        }
        if let Some(budget) = budget {
            budget.grow(&mut reservation, data.len())?;
        }
        collected.extend_from_slice(&data);
    }
    Ok(LimitedBody {
        bytes: collected.freeze(),
        reservation,
    })
}

/// Reads and drops what is left of `body`, up to `most` bytes (within the server's pace
/// rule): a refusal then reaches a client that has finished writing.
async fn drain(body: &mut Body, most: usize) {
    let mut read = 0usize;
    while read <= most {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.into_data().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

/// [`BodyRefused::TimedOut`] when the pace rule failed the read, else unreadable.
fn refusal(error: &axum::Error) -> BodyRefused {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<BodyTimedOut>() {
            return BodyRefused::TimedOut;
        }
        source = e.source();
    }
    BodyRefused::Unreadable
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn headers(length: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(length) = length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from_str(length).unwrap());
        }
        headers
    }

    #[test]
    fn bodies_within_the_limit_are_read_and_longer_ones_refused() {
        runtime().block_on(async {
            let read = read_body(Body::from("hello"), &headers(Some("5")), 5, None)
                .await
                .unwrap();
            assert_eq!(read.bytes, "hello");
            assert_eq!(
                read_body(Body::from("hello!"), &headers(None), 5, None)
                    .await
                    .unwrap_err(),
                BodyRefused::TooLarge { limit: 5 }
            );
            // Refused from the declared length alone.
            assert_eq!(
                read_body(Body::empty(), &headers(Some("6")), 5, None)
                    .await
                    .unwrap_err(),
                BodyRefused::TooLarge { limit: 5 }
            );
        });
    }

    #[test]
    fn bodies_hold_the_memory_budget_until_dropped() {
        runtime().block_on(async {
            let budget = MemoryBudget::new(4096);
            let first = read_body(
                Body::from(vec![1u8; 3000]),
                &headers(None),
                1 << 20,
                Some(&budget),
            )
            .await
            .unwrap();
            assert_eq!(budget.available_bytes(), 1024);
            let refused = read_body(
                Body::from(vec![1u8; 2000]),
                &headers(None),
                1 << 20,
                Some(&budget),
            )
            .await
            .unwrap_err();
            assert!(matches!(refused, BodyRefused::Overloaded(_)), "{refused:?}");
            drop(first);
            assert_eq!(budget.available_bytes(), 4096);
        });
    }

    #[test]
    fn media_types_compare_without_case_or_parameters() {
        let with = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            headers
        };
        let json = "application/json";
        assert_eq!(content_type_is(&with("application/json"), json), Some(true));
        assert_eq!(
            content_type_is(&with("Application/JSON; charset=utf-8"), json),
            Some(true)
        );
        assert_eq!(
            content_type_is(&with("application/jsonx"), json),
            Some(false)
        );
        assert_eq!(content_type_is(&with("text/plain"), json), Some(false));
        assert_eq!(content_type_is(&HeaderMap::new(), json), None);
    }

    #[test]
    fn a_declared_length_must_be_one_number() {
        assert_eq!(declared_length(&headers(Some(" 42 "))), Some(42));
        assert_eq!(declared_length(&headers(Some("4x"))), None);
        let mut two = headers(Some("1"));
        two.append(CONTENT_LENGTH, HeaderValue::from_static("2"));
        assert_eq!(declared_length(&two), None);
    }

    #[test]
    fn the_pace_earns_a_second_per_min_rate_bytes() {
        let pace = Pace {
            timeout: Duration::from_secs(10),
            min_bytes_per_second: 500,
        };
        let start = Instant::now();
        assert_eq!(pace.deadline(start, 0), start + Duration::from_secs(10));
        assert_eq!(pace.deadline(start, 1499), start + Duration::from_secs(12));
    }
}
