//! The life cycle shared by RPC servers and notification listeners: start, stop (no
//! new messages), wait (in-flight work finishes, the listener is released), restart.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::driver::Listener;
use crate::{Error, Result};

enum State {
    Idle,
    Running {
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    },
    Stopping {
        task: JoinHandle<()>,
    },
}

/// The state machine of one server or listener.
pub(crate) struct Lifecycle {
    state: Mutex<State>,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Lifecycle {
            state: Mutex::new(State::Idle),
        }
    }

    /// Whether `start` may run (logs a warning when it may not).
    pub(crate) fn can_start(&self, what: &str) -> bool {
        let idle = matches!(*self.lock(), State::Idle);
        if !idle {
            tracing::warn!(what, "already started; start ignored");
        }
        idle
    }

    /// Runs the consume loop over `listener`: each message is handled in its own task,
    /// at most `max` at once.
    pub(crate) fn run<T, H, Fut>(&self, mut listener: Box<dyn Listener<T>>, max: usize, handle: H)
    where
        T: Send + 'static,
        H: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let limit = Arc::new(Semaphore::new(max.max(1)));
            let mut in_flight = JoinSet::new();
            let mut stopping = false;
            loop {
                let message = if stopping {
                    listener.next().await
                } else {
                    let stop_requested = async { stopped.wait_for(|s| *s).await.is_ok() };
                    tokio::select! {
                        message = listener.next() => message,
                        _ = stop_requested => {
                            stopping = true;
                            listener.stop().await;
                            continue;
                        }
                    }
                };
                let Some(message) = message else { break };
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let work = handle(message);
                in_flight.spawn(async move {
                    work.await;
                    drop(permit);
                });
                while in_flight.try_join_next().is_some() {}
            }
            while in_flight.join_next().await.is_some() {}
            listener.cleanup().await;
        });
        let mut state = self.lock();
        match *state {
            State::Idle => *state = State::Running { stop, task },
            _ => task.abort(),
        }
    }

    /// Stops taking new messages.
    pub(crate) fn stop(&self) {
        let mut state = self.lock();
        if let State::Running { .. } = &*state
            && let State::Running { stop, task } = std::mem::replace(&mut *state, State::Idle)
        {
            let _ = stop.send(true);
            *state = State::Stopping { task };
        }
    }

    /// Waits for a stopped loop to drain, up to `limit` when given.
    pub(crate) async fn wait(&self, limit: Option<Duration>) -> Result<()> {
        let mut task = match std::mem::replace(&mut *self.lock(), State::Idle) {
            State::Stopping { task } => task,
            State::Idle => return Ok(()),
            running @ State::Running { .. } => {
                tracing::warn!("wait() called before stop(); nothing to wait for");
                *self.lock() = running;
                return Ok(());
            }
        };
        let joined = match limit {
            None => (&mut task).await,
            Some(limit) => match tokio::time::timeout(limit, &mut task).await {
                Ok(joined) => joined,
                Err(_) => {
                    *self.lock() = State::Stopping { task };
                    return Err(Error::WaitTimeout(limit));
                }
            },
        };
        joined.map_err(|e| Error::Transport(format!("consume task failed: {e}")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        if let State::Running { stop, .. } = &*self.lock() {
            let _ = stop.send(true);
        }
    }
}
