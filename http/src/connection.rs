//! What each open connection is doing, kept where the timeouts and the eviction under pressure
//! can read it without stopping the connection.
//!
//! A connection is in one of three phases, stored with the time it began in one atomic word:
//! - **idle**: accepted, or its last response sent, and no byte of the next request yet
//!   (closed after the idle timeout; the oldest idle ones are closed first when the server is
//!   at its connection cap);
//! - **head**: some bytes of a request head arrived, not all (closed after the header-read
//!   timeout; evictable like an idle one: it holds no work);
//! - **busy**: a request is being handled or its answer sent (never evicted; closed only when
//!   the client stops reading the answer for the send timeout; its body's pace is checked by
//!   [`crate::body`]'s timed body).
//!
//! [`TrackedIo`] moves idle → head on the first byte read; the server's service wrapper moves
//! to busy when hyper hands it a parsed request, and [`RequestGuard`] back to idle when the
//! answer's body is done (or dropped).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::server::ServerStats;

const PHASE_SHIFT: u32 = 62;
const TIME_MASK: u64 = (1 << PHASE_SHIFT) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle = 0,
    Head = 1,
    Busy = 2,
}

impl Phase {
    fn from_bits(bits: u64) -> Phase {
        match bits >> PHASE_SHIFT {
            0 => Phase::Idle,
            1 => Phase::Head,
            _ => Phase::Busy,
        }
    }
}

/// Why the server closed a connection, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    Idle,
    HeaderTimeout,
    SendTimeout,
    Evicted,
}

/// One connection's shared state.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    /// Phase in the top two bits, nanoseconds since the tracker's epoch in the rest.
    phase: AtomicU64,
    in_flight: AtomicU32,
    /// Nanoseconds since the epoch (+1, so that 0 means "not blocked") when a write first
    /// found the socket's send buffer full and no write has progressed since.
    write_blocked_since: AtomicU64,
    /// Set when the request's body timed out: the answer carries `Connection: close`.
    close_after_response: AtomicBool,
    /// Set once the server decided to close it (so it is chosen once).
    closing: AtomicBool,
    close: Notify,
    epoch: Instant,
    stats: Arc<ServerStats>,
}

impl ConnectionState {
    fn new(epoch: Instant, stats: Arc<ServerStats>) -> ConnectionState {
        ConnectionState {
            phase: AtomicU64::new(pack(Phase::Idle, nanos_since(epoch))),
            in_flight: AtomicU32::new(0),
            write_blocked_since: AtomicU64::new(0),
            close_after_response: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            epoch,
            stats,
        }
    }

    fn now(&self) -> u64 {
        nanos_since(self.epoch)
    }

    /// The phase and how long it has lasted at `now` (nanoseconds since the epoch).
    pub(crate) fn phase(&self, now: u64) -> (Phase, Duration) {
        let bits = self.phase.load(Ordering::Acquire);
        (
            Phase::from_bits(bits),
            Duration::from_nanos(now.saturating_sub(bits & TIME_MASK)),
        )
    }

    /// Bytes arrived: an idle connection starts a request head.
    fn on_read(&self) {
        let bits = self.phase.load(Ordering::Acquire);
        if Phase::from_bits(bits) == Phase::Idle {
            // Losing the race means the phase moved on by itself: nothing to do.
            let _ = self.phase.compare_exchange(
                bits,
                pack(Phase::Head, self.now()),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    fn on_write_blocked(&self) {
        if self.write_blocked_since.load(Ordering::Relaxed) == 0 {
            self.write_blocked_since
                .store(self.now() + 1, Ordering::Relaxed);
        }
    }

    fn on_write_progress(&self) {
        if self.write_blocked_since.load(Ordering::Relaxed) != 0 {
            self.write_blocked_since.store(0, Ordering::Relaxed);
        }
    }

    /// How long writes have been blocked at `now`, if they are.
    fn write_blocked_for(&self, now: u64) -> Option<Duration> {
        match self.write_blocked_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_nanos(now.saturating_sub(since - 1))),
        }
    }

    /// hyper handed over a parsed request.
    pub(crate) fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.phase
            .store(pack(Phase::Busy, self.now()), Ordering::Release);
        RequestGuard(Arc::clone(self))
    }

    fn end_request(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.phase
                .store(pack(Phase::Idle, self.now()), Ordering::Release);
        }
    }

    /// The current request's body broke the pace rule: its answer is the last on this
    /// connection.
    pub(crate) fn body_timed_out(&self) {
        self.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
        self.close_after_response.store(true, Ordering::Release);
    }

    pub(crate) fn closes_after_response(&self) -> bool {
        self.close_after_response.load(Ordering::Acquire)
    }

    /// Asks the connection's task to close it; false when that was asked already.
    fn request_close(&self) -> bool {
        if self.closing.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.close.notify_one();
        true
    }

    /// Resolves when the server decided to close this connection.
    pub(crate) async fn closed(&self) {
        self.close.notified().await
    }
}

fn nanos_since(epoch: Instant) -> u64 {
    (epoch.elapsed().as_nanos() as u64) & TIME_MASK
}

fn pack(phase: Phase, nanos: u64) -> u64 {
    ((phase as u64) << PHASE_SHIFT) | (nanos & TIME_MASK)
}

/// Marks the end of a request when dropped: the response body has been sent, or the
/// exchange was abandoned.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<ConnectionState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// The timeouts the tracker enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadlines {
    pub idle: Duration,
    pub header: Duration,
    pub send: Duration,
}

/// Every open connection, for the timeouts, the cap and the counters.
#[derive(Debug)]
pub(crate) struct Tracker {
    connections: Mutex<HashMap<u64, Arc<ConnectionState>>>,
    /// Connections told to close whose task has not ended yet: their descriptors are still
    /// open.
    closing: AtomicUsize,
    next_id: AtomicU64,
    epoch: Instant,
    stats: Arc<ServerStats>,
}

/// A connection's place in the tracker; removes it when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    id: u64,
    tracker: Arc<Tracker>,
    pub(crate) state: Arc<ConnectionState>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.tracker.lock().remove(&self.id);
        self.tracker.stats.open.fetch_sub(1, Ordering::Relaxed);
        if self.state.closing.load(Ordering::Acquire) {
            self.tracker.closing.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Tracker {
    pub(crate) fn new(stats: Arc<ServerStats>) -> Tracker {
        Tracker {
            connections: Mutex::new(HashMap::new()),
            closing: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
            stats,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnectionState>>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn open(&self) -> usize {
        self.lock().len()
    }

    /// Connections told to close that are still open.
    pub(crate) fn closing(&self) -> usize {
        self.closing.load(Ordering::Acquire)
    }

    pub(crate) fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState::new(self.epoch, Arc::clone(&self.stats)));
        self.lock().insert(id, Arc::clone(&state));
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        Registration {
            id,
            tracker: Arc::clone(self),
            state,
        }
    }

    fn close(&self, state: &ConnectionState, reason: CloseReason) {
        if state.request_close() {
            self.closing.fetch_add(1, Ordering::AcqRel);
            let counter = match reason {
                CloseReason::Idle => &self.stats.idle_closed,
                CloseReason::HeaderTimeout => &self.stats.header_timeouts,
                CloseReason::SendTimeout => &self.stats.send_timeouts,
                CloseReason::Evicted => &self.stats.evicted,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Closes the connection that has been idle (or reading a head) the longest; false when
    /// every connection is busy.
    pub(crate) fn evict_oldest_idle(&self) -> bool {
        let now = nanos_since(self.epoch);
        let oldest = {
            let connections = self.lock();
            connections
                .values()
                .filter(|c| !c.closing.load(Ordering::Acquire))
                .filter_map(|c| match c.phase(now) {
                    (Phase::Idle | Phase::Head, age) => Some((age, Arc::clone(c))),
                    (Phase::Busy, _) => None,
                })
                .max_by_key(|(age, _)| *age)
        };
        match oldest {
            Some((_, state)) => {
                self.close(&state, CloseReason::Evicted);
                true
            }
            None => false,
        }
    }

    /// Closes every connection past one of its deadlines.
    pub(crate) fn enforce(&self, deadlines: &Deadlines) {
        let now = nanos_since(self.epoch);
        let snapshot: Vec<Arc<ConnectionState>> = self.lock().values().cloned().collect();
        for state in snapshot {
            if state.closing.load(Ordering::Acquire) {
                continue;
            }
            let reason = match state.phase(now) {
                (Phase::Idle, age) if age > deadlines.idle => Some(CloseReason::Idle),
                (Phase::Head, age) if age > deadlines.header => Some(CloseReason::HeaderTimeout),
                (Phase::Busy, _)
                    if state
                        .write_blocked_for(now)
                        .is_some_and(|blocked| blocked > deadlines.send) =>
                {
                    Some(CloseReason::SendTimeout)
                }
                _ => None,
            };
            if let Some(reason) = reason {
                self.close(&state, reason);
            }
        }
    }
}

/// A TCP stream that reports reads and blocked writes to its connection's state.
pub(crate) struct TrackedIo {
    stream: TcpStream,
    state: Arc<ConnectionState>,
}

impl TrackedIo {
    pub(crate) fn new(stream: TcpStream, state: Arc<ConnectionState>) -> TrackedIo {
        TrackedIo { stream, state }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        result
    }
}

impl TrackedIo {
    fn note_write<T>(&self, result: &Poll<io::Result<T>>) {
        match result {
            Poll::Pending => self.state.on_write_blocked(),
            Poll::Ready(_) => self.state.on_write_progress(),
        }
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note_write(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        self.note_write(&result);
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> Arc<Tracker> {
        Arc::new(Tracker::new(Arc::new(ServerStats::default())))
    }

    #[test]
    fn phases_move_with_reads_requests_and_answers() {
        let tracker = tracker();
        let registration = tracker.register();
        let state = &registration.state;
        let now = || nanos_since(tracker.epoch);
        assert_eq!(state.phase(now()).0, Phase::Idle);
        state.on_read();
        assert_eq!(state.phase(now()).0, Phase::Head);
        let guard = state.begin_request();
        assert_eq!(state.phase(now()).0, Phase::Busy);
        // Body bytes read while busy do not make it a head.
        state.on_read();
        assert_eq!(state.phase(now()).0, Phase::Busy);
        drop(guard);
        assert_eq!(state.phase(now()).0, Phase::Idle);
        assert_eq!(tracker.open(), 1);
        drop(registration);
        assert_eq!(tracker.open(), 0);
    }

    #[test]
    fn the_oldest_idle_connection_is_evicted_and_busy_ones_never() {
        let tracker = tracker();
        let old = tracker.register();
        std::thread::sleep(Duration::from_millis(5));
        let newer = tracker.register();
        let busy = tracker.register();
        let _request = busy.state.begin_request();
        assert!(tracker.evict_oldest_idle());
        assert!(old.state.closing.load(Ordering::Acquire));
        assert!(!newer.state.closing.load(Ordering::Acquire));
        assert!(tracker.evict_oldest_idle());
        assert!(newer.state.closing.load(Ordering::Acquire));
        assert!(!tracker.evict_oldest_idle(), "only a busy one is left");
        assert!(!busy.state.closing.load(Ordering::Acquire));
        assert_eq!(tracker.stats.evicted.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn deadlines_close_idle_slow_heads_and_stuck_writers_only() {
        let tracker = tracker();
        let idle = tracker.register();
        let head = tracker.register();
        head.state.on_read();
        let busy = tracker.register();
        let _request = busy.state.begin_request();
        let stuck = tracker.register();
        let _stuck_request = stuck.state.begin_request();
        stuck.state.on_write_blocked();
        std::thread::sleep(Duration::from_millis(20));
        let long = Duration::from_secs(60);
        let short = Duration::from_millis(10);
        tracker.enforce(&Deadlines {
            idle: long,
            header: long,
            send: long,
        });
        for c in [&idle, &head, &busy, &stuck] {
            assert!(!c.state.closing.load(Ordering::Acquire));
        }
        tracker.enforce(&Deadlines {
            idle: short,
            header: long,
            send: long,
        });
        assert!(idle.state.closing.load(Ordering::Acquire));
        assert!(!head.state.closing.load(Ordering::Acquire));
        tracker.enforce(&Deadlines {
            idle: short,
            header: short,
            send: short,
        });
        assert!(head.state.closing.load(Ordering::Acquire));
        assert!(stuck.state.closing.load(Ordering::Acquire));
        assert!(!busy.state.closing.load(Ordering::Acquire));
        let stats = &tracker.stats;
        assert_eq!(stats.idle_closed.load(Ordering::Relaxed), 1);
        assert_eq!(stats.header_timeouts.load(Ordering::Relaxed), 1);
        assert_eq!(stats.send_timeouts.load(Ordering::Relaxed), 1);
    }
}
