//! How often a queue is polled. Zaqar has no long polling: a consumer asks again and
//! again. [`Pacer`] waits `poll_interval` after a poll that found messages and after
//! the first empty one, doubles the wait up to `idle_poll_interval` while the queue
//! stays empty, and backs off exponentially after failures.
//!
//! Zaqar hands messages to whoever asks first. A consumer that asked again at once
//! after taking messages would take a whole burst while the others wait out their
//! interval; waiting `poll_interval` (up to 20 messages a poll, so up to 2,000 a
//! second at 10 ms, beyond what one Zaqar server serves) lets the consumers of a
//! queue take turns.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::sync::watch;

/// The intervals of one poller.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// The wait after the first empty poll.
    pub busy: Duration,
    /// The longest wait between polls of an empty queue.
    pub idle: Duration,
    /// The first and longest wait after a failed poll.
    pub retry: (Duration, Duration),
}

/// The waits of one poller.
pub struct Pacer {
    pacing: Pacing,
    empty_wait: Option<Duration>,
    failures: Option<ExponentialBackoff>,
}

impl Pacer {
    /// A pacer that has seen nothing yet.
    pub fn new(pacing: Pacing) -> Self {
        Pacer {
            pacing,
            empty_wait: None,
            failures: None,
        }
    }

    /// After a poll that took `taken` messages: how long to wait before the next.
    pub fn after_success(&mut self, taken: usize) -> Duration {
        self.failures = None;
        if taken > 0 {
            self.empty_wait = None;
            return self.pacing.busy;
        }
        let wait = match self.empty_wait {
            None => self.pacing.busy,
            Some(last) => (last * 2).min(self.pacing.idle),
        };
        self.empty_wait = Some(wait);
        wait
    }

    /// After a failed poll: how long to wait before the next.
    pub fn after_failure(&mut self) -> Duration {
        let (first, longest) = self.pacing.retry;
        self.failures
            .get_or_insert_with(|| {
                ExponentialBuilder::default()
                    .with_min_delay(first)
                    .with_max_delay(longest)
                    .with_jitter()
                    .without_max_times()
                    .build()
            })
            .next()
            .unwrap_or(longest)
    }
}

/// Sleeps `wait`, or less if `stop` turns true; returns whether it did.
pub async fn sleep_unless_stopped(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    if wait.is_zero() {
        return false;
    }
    let stopped = tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|stopped| *stopped) => true,
    };
    stopped || *stop.borrow()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_while_empty_and_resets_on_messages() {
        let ms = Duration::from_millis;
        let mut pacer = Pacer::new(Pacing {
            busy: ms(20),
            idle: ms(100),
            retry: (ms(100), ms(1000)),
        });
        let waits: Vec<_> = [0, 0, 0, 0, 0, 3, 0]
            .iter()
            .map(|&n| pacer.after_success(n))
            .collect();
        assert_eq!(
            waits,
            [ms(20), ms(40), ms(80), ms(100), ms(100), ms(20), ms(20)]
        );
        let first = pacer.after_failure();
        assert!(first >= ms(100) && first <= ms(200), "{first:?}");
    }
}
