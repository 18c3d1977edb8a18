//! Admission control: how much work each service may have at once, and how much request data
//! the process may hold in memory.
//!
//! A [`WorkLimit`] is one service's bulkhead: at most `concurrency` units of work run at once
//! and at most `queue` more wait for a turn; anything beyond is refused at once with
//! [`Overloaded`] (the route answers 503 with `Retry-After`), so a flood of one kind of
//! request fills that service's queue and nobody else's. Work holds its place until it
//! finishes — even when the client went away — so a service never runs more than its
//! `concurrency` at once.
//!
//! Blocking work runs either on threads of the limit's own ([`WorkLimit::on_own_threads`],
//! what `imza serve` uses: no service can take the threads another needs, and bulk work such
//! as signature validation can run at a lower CPU priority, taking only the CPU that OCSP, the
//! TSA and the mobile signature service leave) or on Tokio's shared blocking pool
//! ([`WorkLimit::new`], for libraries and tests). Work that runs on the async workers takes a
//! turn with [`WorkLimit::enter`].
//!
//! A [`MemoryBudget`] bounds the request bodies held in memory by all requests together:
//! bodies reserve their bytes as they arrive and a request that would pass the budget is
//! refused (503) instead of waiting.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a refused client is told to wait before trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Default longest wait in a queue: work that would wait longer is refused instead.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);

/// A service is full: its running work and queue are at their limits (or a queued request
/// waited its longest), or the memory budget for request bodies is spent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{service} is busy; try again in {} s", retry_after.as_secs().max(1))]
pub struct Overloaded {
    /// Which limit refused: the service's name, or "request memory".
    pub service: &'static str,
    /// What the client is told in `Retry-After`.
    pub retry_after: Duration,
}

/// Why [`WorkLimit::run_blocking`] gave no result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    /// Not admitted: answer 503 with `Retry-After`.
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    /// The work panicked (a bug); the server carries on.
    #[error("{service}: the work failed unexpectedly")]
    Failed { service: &'static str },
}

/// One service's bound on concurrent work and on waiting work. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct WorkLimit {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: &'static str,
    running: Arc<Semaphore>,
    concurrency: usize,
    /// Admitted work: running plus waiting.
    admitted: AtomicUsize,
    capacity: usize,
    max_wait: Duration,
    refused: AtomicU64,
    threads: Threads,
}

/// A piece of blocking work handed to a limit's own threads.
type Job = Box<dyn FnOnce() + Send>;

/// Where a limit's blocking work runs.
#[derive(Debug)]
enum Threads {
    /// Tokio's blocking pool, shared with whatever else runs there.
    Shared,
    /// Threads of the limit's own, as many as its concurrency, taking jobs in order from one
    /// channel (the queue); they end when the limit is dropped.
    Own(mpsc::Sender<Job>),
}

/// A turn to run: held while the work runs, released when dropped.
#[derive(Debug)]
pub struct WorkPermit {
    _running: OwnedSemaphorePermit,
    _admitted: Admitted,
}

#[derive(Debug)]
struct Admitted(Arc<Inner>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WorkLimit {
    /// `name` runs at most `concurrency` (at least 1) pieces of work at once, with at most
    /// `queue` more waiting, each at most `max_wait` (then refused).
    pub fn new(
        name: &'static str,
        concurrency: usize,
        queue: usize,
        max_wait: Duration,
    ) -> WorkLimit {
        let concurrency = concurrency.max(1);
        WorkLimit {
            inner: Arc::new(Inner {
                name,
                running: Arc::new(Semaphore::new(concurrency)),
                concurrency,
                admitted: AtomicUsize::new(0),
                capacity: concurrency.saturating_add(queue),
                max_wait,
                refused: AtomicU64::new(0),
                threads: Threads::Shared,
            }),
        }
    }

    /// Like [`WorkLimit::new`], but the work runs on `concurrency` threads of the limit's own
    /// (named `thread_name`), at nice value `nice` (0–19: higher yields the CPU to the rest of
    /// the process; Linux keeps the nice value per thread).
    pub fn on_own_threads(
        name: &'static str,
        thread_name: &str,
        concurrency: usize,
        queue: usize,
        max_wait: Duration,
        nice: i32,
    ) -> std::io::Result<WorkLimit> {
        let concurrency = concurrency.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..concurrency {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(thread_name.to_string())
                .spawn(move || {
                    // Lowering one's own priority needs no privilege; failing to is harmless.
                    let _ = rustix::process::setpriority_process(None, nice.clamp(0, 19));
                    loop {
                        let job = match receiver.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            // The limit was dropped.
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(WorkLimit {
            inner: Arc::new(Inner {
                name,
                running: Arc::new(Semaphore::new(concurrency)),
                concurrency,
                admitted: AtomicUsize::new(0),
                capacity: concurrency.saturating_add(queue),
                max_wait,
                refused: AtomicU64::new(0),
                threads: Threads::Own(sender),
            }),
        })
    }

    /// Whether the work runs on Tokio's blocking pool (whoever builds the runtime must give
    /// it room for this limit) rather than on threads of its own.
    pub fn uses_shared_pool(&self) -> bool {
        matches!(self.inner.threads, Threads::Shared)
    }

    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// Most pieces of work running at once.
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// Work running or waiting now.
    pub fn admitted(&self) -> usize {
        self.inner.admitted.load(Ordering::Acquire)
    }

    /// Requests refused since the start.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    fn overloaded(&self) -> Overloaded {
        self.inner.refused.fetch_add(1, Ordering::Relaxed);
        Overloaded {
            service: self.inner.name,
            retry_after: RETRY_AFTER,
        }
    }

    /// Waits for a turn when the queue has room; refuses at once when it has none, or when
    /// the wait passes the longest wait.
    pub async fn enter(&self) -> Result<WorkPermit, Overloaded> {
        let admitted = self.admit()?;
        let acquire = Arc::clone(&self.inner.running).acquire_owned();
        match tokio::time::timeout(self.inner.max_wait, acquire).await {
            Ok(Ok(running)) => Ok(WorkPermit {
                _running: running,
                _admitted: admitted,
            }),
            // The semaphore is never closed; a timeout means the queue moves too slowly.
            _ => Err(self.overloaded()),
        }
    }

    /// Runs blocking `work` (store access, signing, validation) when admitted: on the
    /// blocking pool once a turn is free, or queued straight to the limit's own threads. The
    /// work holds its place in the limit until it ends, also when the caller stops waiting.
    pub async fn run_blocking<T, F>(&self, work: F) -> Result<T, WorkError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let failed = WorkError::Failed {
            service: self.inner.name,
        };
        match &self.inner.threads {
            Threads::Shared => {
                let permit = self.enter().await?;
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    work()
                })
                .await
                .map_err(|_| failed)
            }
            Threads::Own(jobs) => {
                // The channel is the queue: a job goes to the next free thread without a
                // round trip through the async workers.
                let admitted = self.admit()?;
                let queued = std::time::Instant::now();
                let max_wait = self.inner.max_wait;
                let (done, result) = tokio::sync::oneshot::channel();
                let job: Job = Box::new(move || {
                    let outcome = if queued.elapsed() > max_wait {
                        Outcome::WaitedTooLong
                    } else {
                        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
                            Ok(value) => Outcome::Done(value),
                            Err(_) => Outcome::Panicked,
                        }
                    };
                    // The place frees before the caller hears: whoever it tells may use it.
                    drop(admitted);
                    let _ = done.send(outcome);
                });
                jobs.send(job).map_err(|_| failed.clone())?;
                match result.await {
                    Ok(Outcome::Done(value)) => Ok(value),
                    Ok(Outcome::WaitedTooLong) => Err(WorkError::Overloaded(self.overloaded())),
                    Ok(Outcome::Panicked) | Err(_) => Err(failed),
                }
            }
        }
    }

    /// A place among the admitted, or a refusal when running and waiting work fill the limit.
    fn admit(&self) -> Result<Admitted, Overloaded> {
        let inner = &self.inner;
        if inner.admitted.fetch_add(1, Ordering::AcqRel) >= inner.capacity {
            inner.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(self.overloaded());
        }
        Ok(Admitted(Arc::clone(inner)))
    }
}

/// How a job on a limit's own threads ended.
enum Outcome<T> {
    Done(T),
    /// It waited in the queue longer than the longest wait and was not run.
    WaitedTooLong,
    Panicked,
}

/// Bytes of request data all requests together may hold in memory.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_bytes: usize,
}

/// Bytes are reserved in units of this many.
const UNIT: usize = 1024;

/// Memory reserved for one request's data; given back when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    /// A budget of `total_bytes` (rounded up to whole KiB).
    pub fn new(total_bytes: usize) -> MemoryBudget {
        let units = total_bytes.div_ceil(UNIT).min(Semaphore::MAX_PERMITS);
        MemoryBudget {
            permits: Arc::new(Semaphore::new(units)),
            total_bytes,
        }
    }

    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Bytes not reserved now.
    pub fn available_bytes(&self) -> usize {
        self.permits.available_permits().saturating_mul(UNIT)
    }

    /// Adds `bytes` to `reservation`, or refuses at once (never waits) when the budget has
    /// not that much left.
    pub fn grow(&self, reservation: &mut Reservation, bytes: usize) -> Result<(), Overloaded> {
        let units = bytes.div_ceil(UNIT);
        if units == 0 {
            return Ok(());
        }
        let refused = || Overloaded {
            service: "request memory",
            retry_after: RETRY_AFTER,
        };
        let units = u32::try_from(units).map_err(|_| refused())?;
        let more = Arc::clone(&self.permits)
            .try_acquire_many_owned(units)
            .map_err(|_| refused())?;
        match &mut reservation.permit {
            Some(held) => held.merge(more),
            None => reservation.permit = Some(more),
        }
        Ok(())
    }
}

impl Reservation {
    /// Bytes held (whole KiB).
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use tokio::task::JoinHandle;

    use super::*;

    /// Starts work on `limit` that runs until told to end (on the returned sender); returns
    /// once it is running.
    async fn hold(limit: &WorkLimit) -> (JoinHandle<Result<(), WorkError>>, mpsc::Sender<()>) {
        let (release, gate) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let limit = limit.clone();
        let work = tokio::spawn(async move {
            limit
                .run_blocking(move || {
                    let _ = started_tx.send(());
                    gate.recv().unwrap()
                })
                .await
        });
        started.await.unwrap();
        (work, release)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(16)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_full_queue_refuses_at_once_and_frees_up_when_work_ends() {
        runtime().block_on(async {
            let limit = WorkLimit::new("test", 2, 1, DEFAULT_MAX_WAIT);
            let (release, gate) = mpsc::channel::<()>();
            let gate = Arc::new(std::sync::Mutex::new(gate));
            let mut running = Vec::new();
            for _ in 0..2 {
                let limit = limit.clone();
                let gate = Arc::clone(&gate);
                running.push(tokio::spawn(async move {
                    limit
                        .run_blocking(move || gate.lock().unwrap().recv().unwrap())
                        .await
                }));
            }
            while limit.admitted() < 2 {
                tokio::task::yield_now().await;
            }
            // One more may wait…
            let waiting = {
                let limit = limit.clone();
                tokio::spawn(async move { limit.run_blocking(|| 7).await })
            };
            while limit.admitted() < 3 {
                tokio::task::yield_now().await;
            }
            // …the next is refused at once.
            let refused = limit.run_blocking(|| 0).await.unwrap_err();
            assert_eq!(
                refused,
                WorkError::Overloaded(Overloaded {
                    service: "test",
                    retry_after: RETRY_AFTER
                })
            );
            assert_eq!(limit.refused(), 1);
            release.send(()).unwrap();
            release.send(()).unwrap();
            for task in running {
                assert_eq!(task.await.unwrap(), Ok(()));
            }
            assert_eq!(waiting.await.unwrap(), Ok(7));
            assert_eq!(limit.admitted(), 0);
            assert_eq!(limit.run_blocking(|| 1).await, Ok(1));
        });
    }

    #[test]
    fn a_caller_that_stops_waiting_keeps_the_permit_until_the_work_ends() {
        runtime().block_on(async {
            let limit = WorkLimit::new("test", 1, 0, DEFAULT_MAX_WAIT);
            let (call, release) = hold(&limit).await;
            call.abort();
            let _ = call.await;
            // The blocking work still runs: no second piece of work is admitted.
            assert!(limit.run_blocking(|| ()).await.is_err());
            release.send(()).unwrap();
            let mut tries = 0;
            while limit.admitted() > 0 && tries < 1000 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                tries += 1;
            }
            assert_eq!(limit.run_blocking(|| 3).await, Ok(3));
        });
    }

    #[test]
    fn a_wait_longer_than_the_longest_wait_is_refused() {
        runtime().block_on(async {
            let limit = WorkLimit::new("slow", 1, 4, Duration::from_millis(50));
            let (first, release) = hold(&limit).await;
            let err = limit.run_blocking(|| ()).await.unwrap_err();
            assert!(matches!(err, WorkError::Overloaded(_)), "{err:?}");
            release.send(()).unwrap();
            assert_eq!(first.await.unwrap(), Ok(()));
        });
    }

    #[test]
    fn panicking_work_is_an_error_not_a_crash() {
        runtime().block_on(async {
            let limit = WorkLimit::new("test", 1, 0, DEFAULT_MAX_WAIT);
            let err = limit
                .run_blocking(|| -> u8 { panic!("bug") })
                .await
                .unwrap_err();
            assert_eq!(err, WorkError::Failed { service: "test" });
            assert_eq!(limit.run_blocking(|| 5).await, Ok(5));
        });
    }

    #[test]
    fn own_threads_queue_in_order_refuse_beyond_the_queue_and_skip_what_waited_too_long() {
        runtime().block_on(async {
            let limit = WorkLimit::on_own_threads(
                "queued",
                "imza-test-queue",
                1,
                1,
                Duration::from_millis(200),
                0,
            )
            .unwrap();
            let (first, release) = hold(&limit).await;
            let waiting = {
                let limit = limit.clone();
                tokio::spawn(async move { limit.run_blocking(|| 2).await })
            };
            while limit.admitted() < 2 {
                tokio::task::yield_now().await;
            }
            // Running one, one queued: the next is refused at once.
            assert!(matches!(
                limit.run_blocking(|| 3).await,
                Err(WorkError::Overloaded(_))
            ));
            // The queued one waits past the longest wait: refused when its turn comes.
            tokio::time::sleep(Duration::from_millis(300)).await;
            release.send(()).unwrap();
            assert_eq!(first.await.unwrap(), Ok(()));
            assert!(matches!(
                waiting.await.unwrap(),
                Err(WorkError::Overloaded(_))
            ));
            assert_eq!(limit.refused(), 2);
            assert_eq!(limit.run_blocking(|| 4).await, Ok(4));
            assert_eq!(limit.admitted(), 0);
        });
    }

    #[test]
    fn own_threads_run_the_work_at_a_lower_priority_and_survive_a_panic() {
        runtime().block_on(async {
            let limit =
                WorkLimit::on_own_threads("bulk", "imza-test-bulk", 2, 4, DEFAULT_MAX_WAIT, 10)
                    .unwrap();
            assert!(!limit.uses_shared_pool());
            let (name, nice) = limit
                .run_blocking(|| {
                    (
                        std::thread::current().name().map(str::to_string),
                        rustix::process::getpriority_process(None).unwrap(),
                    )
                })
                .await
                .unwrap();
            assert_eq!(name.as_deref(), Some("imza-test-bulk"));
            assert_eq!(nice, 10);
            let err = limit.run_blocking(|| -> u8 { panic!("bug") }).await;
            assert_eq!(err, Err(WorkError::Failed { service: "bulk" }));
            // Both threads still serve.
            let (a, b) = tokio::join!(limit.run_blocking(|| 1), limit.run_blocking(|| 2));
            assert_eq!((a, b), (Ok(1), Ok(2)));
        });
    }

    #[test]
    fn the_memory_budget_refuses_what_it_cannot_hold_and_takes_back_what_is_dropped() {
        let budget = MemoryBudget::new(10 * 1024);
        let mut first = Reservation::default();
        budget.grow(&mut first, 6000).unwrap();
        budget.grow(&mut first, 1).unwrap();
        assert_eq!(first.bytes(), 7 * 1024);
        let mut second = Reservation::default();
        assert!(budget.grow(&mut second, 4 * 1024).is_err());
        budget.grow(&mut second, 3 * 1024).unwrap();
        assert_eq!(budget.available_bytes(), 0);
        drop(first);
        assert_eq!(budget.available_bytes(), 7 * 1024);
        assert!(budget.grow(&mut second, usize::MAX).is_err());
    }
}
