//! Login rate limiting: after N failures for one key (a source address, or a username from one
//! address) within a window, further attempts for that key are refused until the oldest
//! failure leaves the window. A username alone is never locked: its failures from anywhere
//! only slow its logins down ([`slowdown`]), so five requests cannot lock `admin` out.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked before expired entries are swept, bounding memory under a spray of usernames.
const SWEEP_THRESHOLD: usize = 10_000;

/// Failure counts per key.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1) as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when any of `keys` is locked out.
    pub fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(times) = failures.get_mut(key) {
                prune(times, now, self.window);
                if times.len() >= self.max_failures
                    && let Some(oldest) = times.front()
                {
                    wait = wait.max(self.window.saturating_sub(now - *oldest));
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Counts a failed attempt against every key.
    pub fn record_failure(&self, keys: &[String]) {
        let now = Instant::now();
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() > SWEEP_THRESHOLD {
            failures.retain(|_, times| {
                prune(times, now, self.window);
                !times.is_empty()
            });
        }
        for key in keys {
            let times = failures.entry(key.clone()).or_default();
            prune(times, now, self.window);
            times.push_back(now);
            while times.len() > self.max_failures {
                times.pop_front();
            }
        }
    }

    /// Failures of `key` within the window.
    pub fn count(&self, key: &str) -> usize {
        let now = Instant::now();
        let Ok(mut failures) = self.failures.lock() else {
            return 0;
        };
        failures.get_mut(key).map_or(0, |times| {
            prune(times, now, self.window);
            times.len()
        })
    }

    /// Forgets the failures of `key` (after a successful login).
    pub fn reset(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}

/// Longest pause a login for a much-attacked user waits.
pub const MAX_SLOWDOWN: Duration = Duration::from_secs(8);

/// How long a login for a user with `failures` recent failures (from any address) waits
/// before its password is checked: nothing up to `free` failures, then 250 ms doubling per
/// failure up to [`MAX_SLOWDOWN`]. It slows guessing down without ever locking the real user
/// out (the lockout is per address and per user and address).
pub fn slowdown(failures: usize, free: usize) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let doublings = (failures - free).min(10) as u32;
    (Duration::from_millis(250) * 2u32.pow(doublings)).min(MAX_SLOWDOWN)
}

/// `wait` rounded up to whole seconds (at least 1), for `Retry-After`: a client that waits that
/// long is let in.
pub fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times.front().is_some_and(|t| now - *t >= window) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_after_the_window() {
        let limiter = LoginLimiter::new(3, Duration::from_millis(200));
        let keys = vec!["user:ana".to_owned()];
        for _ in 0..3 {
            assert!(limiter.check(&keys).is_ok());
            limiter.record_failure(&keys);
        }
        let wait = limiter.check(&keys).unwrap_err();
        assert!(wait <= Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(220));
        assert!(limiter.check(&keys).is_ok());
    }

    #[test]
    fn one_locked_key_locks_the_attempt() {
        let limiter = LoginLimiter::new(1, Duration::from_secs(60));
        limiter.record_failure(&["addr:10.0.0.1".to_owned()]);
        let attempt = ["user:bob".to_owned(), "addr:10.0.0.1".to_owned()];
        assert!(limiter.check(&attempt).is_err());
        assert!(limiter.check(&["user:bob".to_owned()]).is_ok());
    }

    #[test]
    fn the_slowdown_grows_with_failures_and_is_capped() {
        assert_eq!(slowdown(0, 5), Duration::ZERO);
        assert_eq!(slowdown(4, 5), Duration::ZERO);
        assert_eq!(slowdown(5, 5), Duration::from_millis(250));
        assert_eq!(slowdown(6, 5), Duration::from_millis(500));
        assert_eq!(slowdown(9, 5), Duration::from_secs(4));
        assert_eq!(slowdown(50, 5), MAX_SLOWDOWN);
    }

    #[test]
    fn counts_failures_beyond_the_lockout_bound_when_allowed() {
        let limiter = LoginLimiter::new(100, Duration::from_secs(60));
        for _ in 0..7 {
            limiter.record_failure(&["user:ana".to_owned()]);
        }
        assert_eq!(limiter.count("user:ana"), 7);
        limiter.reset("user:ana");
        assert_eq!(limiter.count("user:ana"), 0);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
        assert_eq!(whole_seconds(Duration::from_millis(10)), 1);
    }

    #[test]
    fn reset_clears_a_key() {
        let limiter = LoginLimiter::new(1, Duration::from_secs(60));
        let keys = vec!["user:ana".to_owned()];
        limiter.record_failure(&keys);
        limiter.reset("user:ana");
        assert!(limiter.check(&keys).is_ok());
    }
}
