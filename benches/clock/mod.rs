//! The benchmarks' clock: the benchmark thread's CPU time by default, so time a shared machine
//! spends running other processes while a benchmark is preempted is not counted (the codecs do
//! no I/O and never sleep: their CPU time is their cost). `WSCORE_BENCH_CLOCK=wall` measures
//! wall-clock time instead, as criterion does by default; so do platforms without a per-thread
//! CPU clock.

use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use std::time::{Duration, Instant};

/// A criterion measurement reporting nanoseconds of thread CPU time or of wall-clock time.
pub(crate) struct BenchClock {
    cpu: bool,
    epoch: Instant,
    /// Lends its duration formatter: the values are nanoseconds either way.
    wall: WallTime,
}

impl BenchClock {
    /// Thread CPU time unless `WSCORE_BENCH_CLOCK=wall` (or the platform has none).
    pub(crate) fn from_env() -> Self {
        let wall_asked = std::env::var("WSCORE_BENCH_CLOCK").is_ok_and(|v| v.eq_ignore_ascii_case("wall"));
        Self { cpu: cfg!(unix) && !wall_asked, epoch: Instant::now(), wall: WallTime }
    }

    pub(crate) fn now_ns(&self) -> u64 {
        if self.cpu { thread_cpu_ns() } else { self.epoch.elapsed().as_nanos() as u64 }
    }
}

#[cfg(unix)]
fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable `timespec` for the duration of the call, and
    // CLOCK_THREAD_CPUTIME_ID is a clock every supported unix provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[cfg(not(unix))]
fn thread_cpu_ns() -> u64 {
    unreachable!("the CPU clock is only chosen on unix")
}

impl Measurement for BenchClock {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        self.now_ns()
    }

    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(self.now_ns().saturating_sub(start))
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

/// The configuration every benchmark binary starts from: this clock, and short runs (the full
/// matrix is long). Command-line options (`--warm-up-time`, `--measurement-time`,
/// `--sample-size`, `--quick`) override these.
pub(crate) fn criterion() -> Criterion<BenchClock> {
    Criterion::default()
        .with_measurement(BenchClock::from_env())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}
