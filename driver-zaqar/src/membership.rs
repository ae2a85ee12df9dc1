//! Who listens: RPC servers and notification pools say so with a message in a queue of
//! their own ([`Membership`]), which senders read ([`members`]) to post fanout casts to
//! every server, a notification to every pool, and to know whether an `at_least_once`
//! message has anyone to go to.
//!
//! Zaqar has neither exchanges nor bindings, and listing queues (the other way to find
//! servers) reads every queue of the project a page of 20 at a time. A membership is
//! one message, posted when the listener starts, posted anew every third of its TTL
//! (the old one then deleted) and deleted when the listener stops; a listener that
//! dies leaves a message that expires with its TTL.
//!
//! A stopping listener deletes its memberships in the background ([`Departures`]), so
//! that it leaves at once, and its close (and the driver's cleanup) waits for that:
//! once a server's `stop` and `wait` returned, no sender finds it registered.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use messaging_core::{Result, Retry};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::runtime::Handle;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::client::{MAX_PER_REQUEST, ZaqarClient};
use crate::pacing::sleep_unless_stopped;

/// One listener's membership, renewed until [`Membership::end`].
pub struct Membership {
    client: ZaqarClient,
    queue: String,
    current: Arc<Mutex<Option<String>>>,
    stop_renewing: watch::Sender<bool>,
    renewer: Option<JoinHandle<()>>,
}

impl Drop for Membership {
    /// A membership dropped without [`Membership::end`] (a listener that failed to
    /// start or was never cleaned up) stops being renewed and expires with its TTL.
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
    }
}

impl Membership {
    /// Posts `about` to `queue` for `ttl` seconds and keeps it there.
    pub async fn start(client: ZaqarClient, queue: String, about: Value, ttl: u32) -> Result<Self> {
        let body = serde_json::value::to_raw_value(&about)
            .map_err(|e| messaging_core::Error::Serialization(e.to_string()))?;
        let first = post(&client, &queue, &body, ttl).await?;
        let current = Arc::new(Mutex::new(Some(first)));
        let (stop_renewing, stopped) = watch::channel(false);
        let renewer = tokio::spawn(renew(
            client.clone(),
            queue.clone(),
            body,
            ttl,
            current.clone(),
            stopped,
        ));
        Ok(Membership {
            client,
            queue,
            current,
            stop_renewing,
            renewer: Some(renewer),
        })
    }

    /// The registry queue the membership is in.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Stops renewing and deletes the membership.
    pub async fn end(mut self) {
        if let Some(renewer) = self.renewer.take() {
            // Asked to stop, not aborted: a renewal under way finishes and records
            // the message it posted, which is then the one deleted. Aborted after
            // Zaqar stored the new message, it would leave that one registered for
            // a whole TTL.
            let _ = self.stop_renewing.send(true);
            let _ = renewer.await;
        }
        if let Some(id) = self.current.lock().await.take()
            && let Err(e) = self.client.delete(&self.queue, &id, None).await
        {
            tracing::warn!(queue = %self.queue, error = %e, "could not delete a membership; it expires with its TTL");
        }
    }
}

async fn post(client: &ZaqarClient, queue: &str, body: &RawValue, ttl: u32) -> Result<String> {
    let ids = client.post(queue, &[body], ttl, Retry::Times(3)).await?;
    Ok(ids.into_iter().next().unwrap_or_default())
}

/// Posts the membership anew every third of its TTL, then deletes the old message,
/// until `stop` turns true (checked only between renewals).
async fn renew(
    client: ZaqarClient,
    queue: String,
    body: Box<RawValue>,
    ttl: u32,
    current: Arc<Mutex<Option<String>>>,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(u64::from(ttl) / 3);
    loop {
        if sleep_unless_stopped(every, &mut stop).await {
            return;
        }
        match post(&client, &queue, &body, ttl).await {
            Ok(id) => {
                let old = current.lock().await.replace(id);
                if let Some(old) = old
                    && let Err(e) = client.delete(&queue, &old, None).await
                {
                    tracing::debug!(%queue, error = %e, "could not delete an old membership");
                }
            }
            Err(e) => tracing::warn!(%queue, error = %e, "could not renew a membership"),
        }
    }
}

/// The memberships being deleted by stopped listeners, counted, so that a listener's
/// close and the driver's cleanup can wait for their deletion. Clones share the count.
#[derive(Clone)]
pub struct Departures {
    under_way: Arc<watch::Sender<usize>>,
}

impl Default for Departures {
    fn default() -> Self {
        Departures {
            under_way: Arc::new(watch::channel(0).0),
        }
    }
}

impl Departures {
    /// Nothing under way.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends `memberships`, all at once, in a task started now on `runtime`, which is
    /// counted until it is over; its handle resolves then.
    pub fn end(&self, runtime: &Handle, memberships: Vec<Membership>) -> JoinHandle<()> {
        self.under_way.send_modify(|n| *n += 1);
        // Counted down when the task's future is dropped: when it is over, or when the
        // runtime shuts down before it could be.
        let counted = UnderWay(self.under_way.clone());
        runtime.spawn(async move {
            let _counted = counted;
            futures::future::join_all(memberships.into_iter().map(Membership::end)).await;
        })
    }

    /// Waits until no deletion is under way, at most `limit`; whether none is.
    pub async fn settled(&self, limit: Duration) -> bool {
        let mut under_way = self.under_way.subscribe();
        tokio::time::timeout(limit, under_way.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }
}

/// One counted [`Departures::end`] task.
struct UnderWay(Arc<watch::Sender<usize>>);

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// The live memberships in `queue`, each once.
pub async fn members(client: &ZaqarClient, queue: &str) -> Result<Vec<Value>> {
    let mut seen_ids = HashSet::new();
    let mut seen = HashSet::new();
    let mut members = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let (page, next) = client
            .list_page(queue, MAX_PER_REQUEST, marker.as_deref())
            .await?;
        let mut new = false;
        for message in page {
            if !seen_ids.insert(message.id) {
                continue;
            }
            new = true;
            match serde_json::from_str::<Value>(message.body.get()) {
                Ok(value) => {
                    if seen.insert(value.to_string()) {
                        members.push(value);
                    }
                }
                Err(e) => tracing::warn!(%queue, error = %e, "a membership that is not JSON"),
            }
        }
        // Zaqar's Redis store starts a page after the first message again from the
        // first: a page with nothing new is the end.
        match next {
            Some(next) if new => marker = Some(next),
            _ => return Ok(members),
        }
    }
}
