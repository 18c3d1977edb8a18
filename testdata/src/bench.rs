//! Timing for the benchmarks (std::time only): run a closure for a span after a warm-up, and
//! read this thread's CPU time where Linux tells it, for per-core figures that other
//! processes on a shared machine do not lower.

use std::time::{Duration, Instant};

/// What [`measure`] saw.
pub struct Measured {
    /// Calls made while measuring (the warm-up not counted).
    pub calls: u64,
    /// Wall-clock time they took.
    pub wall: Duration,
    /// This thread's CPU time they took, where Linux tells it.
    pub cpu: Option<Duration>,
}

impl Measured {
    /// Calls per second of wall-clock time.
    pub fn per_second(&self) -> f64 {
        self.calls as f64 / self.wall.as_secs_f64()
    }

    /// Calls per second of this thread's CPU time: the per-core figure.
    pub fn per_cpu_second(&self) -> Option<f64> {
        self.cpu
            .filter(|cpu| !cpu.is_zero())
            .map(|cpu| self.calls as f64 / cpu.as_secs_f64())
    }
}

/// Calls `f` `warm_up` times, then in rounds of 100 until `span` of wall-clock time passed.
pub fn measure(span: Duration, warm_up: u32, mut f: impl FnMut()) -> Measured {
    for _ in 0..warm_up {
        f();
    }
    let cpu_start = thread_cpu_time();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < span {
        for _ in 0..100 {
            f();
        }
        calls += 100;
    }
    let wall = start.elapsed();
    let cpu = match (cpu_start, thread_cpu_time()) {
        (Some(a), Some(b)) if b > a => Some(b - a),
        _ => None,
    };
    Measured { calls, wall, cpu }
}

/// The CPU time this thread has run, from Linux's /proc/thread-self/schedstat (its first
/// field, in nanoseconds); `None` elsewhere.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}
