//! Time without a clock: [`Instant`] is a monotonic point in time the caller passes in.
//!
//! The core never reads a clock. Drivers pass `now` to
//! [`Connection::handle_timeout`](crate::Connection::handle_timeout) and turn
//! [`Connection::poll_timeout`](crate::Connection::poll_timeout) back into a sleep. Without
//! `std`, build instants from any monotonic tick counter with [`Instant::from_nanos`].

use core::ops::{Add, Sub};
use core::time::Duration;

/// A monotonic instant, in nanoseconds since an arbitrary origin chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The origin. A deadline at or before it is always due: the connection returns it from
    /// `poll_timeout` when it needs the current time as soon as possible.
    pub const ZERO: Self = Self { nanos: 0 };

    /// An instant `nanos` nanoseconds after the origin.
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Self {
        Self { nanos }
    }

    /// An instant `millis` milliseconds after the origin.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self { nanos: millis.saturating_mul(1_000_000) }
    }

    /// Nanoseconds since the origin.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// `self + duration`, saturating at the far future.
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let add = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Self { nanos: self.nanos.saturating_add(add) }
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, rhs: Duration) -> Self {
        self.saturating_add(rhs)
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(feature = "std")]
mod std_conversions {
    use super::Instant;
    use std::sync::OnceLock;

    /// The process-wide origin for conversions from `std::time::Instant`. It is fixed at the
    /// first conversion, one second back so instants taken just before still map above zero.
    fn origin() -> std::time::Instant {
        static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
        *ORIGIN.get_or_init(|| {
            let now = std::time::Instant::now();
            now.checked_sub(std::time::Duration::from_secs(1)).unwrap_or(now)
        })
    }

    impl Instant {
        /// The current time from `std::time::Instant` (for drivers; the core never calls it).
        #[must_use]
        pub fn now() -> Self {
            std::time::Instant::now().into()
        }

        /// Converts back to a `std::time::Instant` (to sleep until a deadline).
        ///
        /// ```
        /// let now = std::time::Instant::now();
        /// let ours = wscore::Instant::from(now);
        /// assert!(ours.to_std().duration_since(now).as_micros() < 1);
        /// ```
        #[must_use]
        pub fn to_std(self) -> std::time::Instant {
            origin() + std::time::Duration::from_nanos(self.as_nanos())
        }
    }

    impl From<std::time::Instant> for Instant {
        fn from(instant: std::time::Instant) -> Self {
            let since = instant.saturating_duration_since(origin());
            Self::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(5), Instant::from_millis(10));
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(Instant::from_nanos(u64::MAX) + Duration::from_secs(1), Instant::from_nanos(u64::MAX));
    }
}
