//! The life cycle shared by RPC servers and notification listeners: start, stop (no
//! new messages), wait (in-flight work finishes, the listener is released), restart.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{Semaphore, watch};

use crate::driver::Listener;
use crate::{Error, Result};

enum State {
    Idle,
    /// `start` is setting up the listener; a `stop` meanwhile is remembered.
    Starting {
        stop_requested: bool,
    },
    Running {
        stop: watch::Sender<bool>,
        done: watch::Receiver<bool>,
    },
    Stopping {
        done: watch::Receiver<bool>,
    },
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The state machine of one server or listener. Every transition happens under one
/// lock that is never held across an await, so concurrent or cancelled calls cannot
/// leave it inconsistent.
pub(crate) struct Lifecycle {
    state: Mutex<State>,
}

/// Whether the consume loop behind `done` has finished (a closed channel counts).
fn finished(done: &watch::Receiver<bool>) -> bool {
    *done.borrow() || done.has_changed().is_err()
}

async fn until_finished(mut done: watch::Receiver<bool>) {
    let _ = done.wait_for(|d| *d).await;
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Lifecycle {
            state: Mutex::new(State::Idle),
        }
    }

    /// Claims the right to start: `None` (with a warning) when already started. Waits
    /// first for a stopping loop to drain, so `stop(); start()` restarts. Dropping the
    /// claim without [`StartClaim::run`] (a failed or cancelled start) gives it back.
    pub(crate) async fn begin_start(&self, what: &str) -> Option<StartClaim<'_>> {
        self.claim(what).await.then_some(StartClaim {
            lifecycle: self,
            used: false,
        })
    }

    async fn claim(&self, what: &str) -> bool {
        loop {
            let draining = {
                let mut state = self.lock();
                match &*state {
                    State::Idle => {
                        *state = State::Starting {
                            stop_requested: false,
                        };
                        return true;
                    }
                    State::Running { done, .. } if finished(done) => {
                        *state = State::Starting {
                            stop_requested: false,
                        };
                        return true;
                    }
                    State::Stopping { done } => done.clone(),
                    State::Starting { .. } | State::Running { .. } => {
                        tracing::warn!(what, "already started; start ignored");
                        return false;
                    }
                }
            };
            until_finished(draining).await;
            let mut state = self.lock();
            if matches!(&*state, State::Stopping { done } if finished(done)) {
                *state = State::Idle;
            }
        }
    }

    fn abort_start(&self) {
        let mut state = self.lock();
        if matches!(*state, State::Starting { .. }) {
            *state = State::Idle;
        }
    }

    fn run<T, H, Fut>(
        &self,
        mut listener: Box<dyn Listener<T>>,
        max: usize,
        backlog: Option<metrics::Gauge>,
        handle: H,
    ) where
        T: Send + 'static,
        H: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, mut stopped) = watch::channel(false);
        let (done_tx, done) = watch::channel(false);
        let stop_requested = {
            let mut state = self.lock();
            let requested = matches!(
                *state,
                State::Starting {
                    stop_requested: true
                }
            );
            *state = if requested {
                State::Stopping { done: done.clone() }
            } else {
                State::Running {
                    stop: stop.clone(),
                    done: done.clone(),
                }
            };
            requested
        };
        if stop_requested {
            let _ = stop.send(true);
        }
        let handle = Arc::new(handle);
        tokio::spawn(async move {
            let max = max.max(1);
            let limit = Arc::new(Semaphore::new(max));
            let mut stopping = false;
            // Made once: building it for every message costs more than the message.
            let mut stop_requested =
                std::pin::pin!(async { stopped.wait_for(|s| *s).await.is_ok() });
            loop {
                let message = if stopping {
                    listener.next().await
                } else {
                    tokio::select! {
                        message = listener.next() => message,
                        _ = &mut stop_requested => {
                            stopping = true;
                            listener.stop().await;
                            continue;
                        }
                    }
                };
                let Some(message) = message else {
                    if !stopping {
                        tracing::error!(
                            "the transport's listener ended; no more messages are consumed"
                        );
                    }
                    break;
                };
                // The backlog: what the driver holds, and this message until it has a slot.
                let held = listener.backlog().unwrap_or(0);
                if let Some(gauge) = &backlog {
                    gauge.set((held + 1) as f64);
                }
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                if let Some(gauge) = &backlog {
                    gauge.set(listener.backlog().unwrap_or(0) as f64);
                }
                // Each message in a task of its own, which also starts the handler:
                // that work runs in parallel, not on this loop. The permit, held until
                // it is done (or has panicked), is what draining waits for.
                let handle = handle.clone();
                // Boxed, so the task is small: a task is moved into place when it is
                // spawned, and glibc allocates one of 1 KiB or more slowly.
                let message = Box::new(message);
                let work = async move { handle(*message).await };
                // A combinator, not an async block, which would hold `work` twice.
                tokio::spawn(AssertUnwindSafe(work).catch_unwind().map(move |outcome| {
                    if outcome.is_err() {
                        tracing::error!("a message handler task panicked");
                    }
                    drop(permit);
                }));
            }
            // Every permit back: every message handled.
            let _ = limit
                .acquire_many(u32::try_from(max).unwrap_or(u32::MAX))
                .await;
            listener.cleanup().await;
            drop(stop);
            let _ = done_tx.send(true);
        });
    }

    /// Stops taking new messages (a stop during `start` applies once it finishes).
    pub(crate) fn stop(&self) {
        let mut state = self.lock();
        let next = match &mut *state {
            State::Starting { stop_requested } => {
                *stop_requested = true;
                return;
            }
            State::Running { stop, done } => {
                let _ = stop.send(true);
                State::Stopping { done: done.clone() }
            }
            State::Idle | State::Stopping { .. } => return,
        };
        *state = next;
    }

    /// Waits for a stopped loop to drain, up to `limit` when given. Cancelling it, or
    /// calling it from several tasks, is safe: all return once the drain is over.
    pub(crate) async fn wait(&self, limit: Option<Duration>) -> Result<()> {
        let done = {
            let state = self.lock();
            match &*state {
                State::Stopping { done } => done.clone(),
                State::Running { done, .. } if finished(done) => done.clone(),
                State::Idle => return Ok(()),
                State::Starting { .. } | State::Running { .. } => {
                    tracing::warn!("wait() called before stop(); nothing to wait for");
                    return Ok(());
                }
            }
        };
        let drained = done.clone();
        match limit {
            None => until_finished(drained).await,
            Some(limit) => {
                if tokio::time::timeout(limit, until_finished(drained))
                    .await
                    .is_err()
                {
                    return Err(Error::WaitTimeout(limit));
                }
            }
        }
        let mut state = self.lock();
        let same = match &*state {
            State::Stopping { done: d } | State::Running { done: d, .. } => d.same_channel(&done),
            _ => false,
        };
        if same {
            *state = State::Idle;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The right to start, from [`Lifecycle::begin_start`].
pub(crate) struct StartClaim<'a> {
    lifecycle: &'a Lifecycle,
    used: bool,
}

impl StartClaim<'_> {
    /// Runs the consume loop over `listener`: each message is handled in its own
    /// task, at most `max` at once; `backlog`, if given, follows how many messages wait
    /// to start.
    pub(crate) fn run<T, H, Fut>(
        mut self,
        listener: Box<dyn Listener<T>>,
        max: usize,
        backlog: Option<metrics::Gauge>,
        handle: H,
    ) where
        T: Send + 'static,
        H: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.used = true;
        self.lifecycle.run(listener, max, backlog, handle);
    }
}

impl Drop for StartClaim<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.lifecycle.abort_start();
        }
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        if let State::Running { stop, .. } = &*self.lock() {
            let _ = stop.send(true);
        }
    }
}
