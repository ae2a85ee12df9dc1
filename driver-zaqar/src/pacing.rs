//! How often a queue is polled. Zaqar has no long polling: a consumer asks again and
//! again. [`Pacer`] waits `poll_interval` after a poll that found messages and after
//! the first empty one, doubles the wait up to `idle_poll_interval` while the queue
//! stays empty, and backs off exponentially after failures.
//!
//! Zaqar hands messages to whoever asks first. A consumer that asked again at once
//! after taking messages would take a whole burst while the others wait out their
//! interval; waiting `poll_interval` lets the consumers of a queue take turns. So does
//! the size of what a consumer asks for: [`FIRST_SIZE`] messages after an empty poll,
//! twice as many after each poll that got all it asked for, up to the limit (20 a
//! poll, so up to 2,000 a second at 10 ms, beyond what one Zaqar server serves). A
//! burst already waiting is then taken 4, 8, 16, … at a time, and the other
//! consumers' polls fall between.
//!
//! Turns are likely, not promised: of claims that arrive together Zaqar serves one
//! first, in an order of its own, and the first takes all that waits up to its size,
//! so the few messages of a short burst can all go to one consumer while the others
//! ask too. Consumers share a stream, not necessarily every burst.

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

/// What a poll asks for after an empty one.
pub const FIRST_SIZE: usize = 4;

/// The waits and the poll sizes of one poller.
pub struct Pacer {
    pacing: Pacing,
    empty_wait: Option<Duration>,
    failures: Option<ExponentialBackoff>,
    window: usize,
}

impl Pacer {
    /// A pacer that has seen nothing yet.
    pub fn new(pacing: Pacing) -> Self {
        Pacer {
            pacing,
            empty_wait: None,
            failures: None,
            window: FIRST_SIZE,
        }
    }

    /// How many messages the next poll asks for, at most `most`.
    pub fn size(&self, most: usize) -> usize {
        self.window.clamp(1, most.max(1))
    }

    /// After a poll that asked for `asked` messages and took `taken`: how long to wait
    /// before the next.
    pub fn after_success(&mut self, taken: usize, asked: usize) -> Duration {
        self.failures = None;
        if taken == 0 {
            self.window = FIRST_SIZE;
        } else if taken >= asked {
            self.window = (self.window * 2).min(crate::client::MAX_PER_REQUEST);
        }
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
            .map(|&n| pacer.after_success(n, 20))
            .collect();
        assert_eq!(
            waits,
            [ms(20), ms(40), ms(80), ms(100), ms(100), ms(20), ms(20)]
        );
        // Sizes: 4 after an empty poll, doubling while polls get all they ask for.
        let mut sizes = Vec::new();
        for taken_all in [true, false, true, true, true] {
            let asked = pacer.size(20);
            sizes.push(asked);
            pacer.after_success(if taken_all { asked } else { asked - 1 }, asked);
        }
        assert_eq!(sizes, [4, 8, 8, 16, 20]);
        pacer.after_success(0, 20);
        assert_eq!(pacer.size(20), 4);
        assert_eq!(pacer.size(2), 2);
        assert_eq!(pacer.size(0), 1);
        let first = pacer.after_failure();
        assert!(first >= ms(100) && first <= ms(200), "{first:?}");
    }
}
