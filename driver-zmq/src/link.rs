//! [`Link`]: one outgoing connection (a DEALER to a node's ROUTER, or to the proxy)
//! with a bounded send queue of its own, so a slow or dead peer holds up only the
//! sends to it. The link reconnects with backoff and drops what it holds once the
//! sender's deadline passed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use zeromq::util::PeerIdentity;
use zeromq::{DealerSocket, Socket, SocketOptions, SocketRecv, SocketSend, ZmqMessage};

use messaging_core::{Error, Result};

/// What a link does with the messages that come back on it (answers, and through the
/// proxy, requests from other nodes).
pub type OnMessage = Arc<dyn Fn(Vec<Bytes>) + Send + Sync>;

/// A message waiting in a link's queue.
struct Outgoing {
    message: ZmqMessage,
    deadline: Instant,
}

/// One outgoing connection.
pub struct Link {
    address: String,
    capacity: usize,
    tx: mpsc::Sender<Outgoing>,
    task: tokio::task::AbortHandle,
    /// Why the last connection attempt failed, while it is not connected.
    down: Arc<std::sync::Mutex<Option<String>>>,
    /// Messages sent and not answered yet (calls, notifications): zeromq queues up
    /// to 100 000 messages per peer by itself, so a peer that stopped reading is
    /// noticed here instead.
    unanswered: Arc<Semaphore>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("address", &self.address)
            .finish()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A peer that takes longer to accept a connection is reported unreachable (and
/// tried again after a backoff).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl Link {
    /// Starts connecting to `address` (`host:port`), as `identity` if given; what
    /// comes back goes to `on_message`. At most `capacity` messages wait.
    pub fn start(
        address: &str,
        identity: Option<Bytes>,
        capacity: usize,
        on_message: OnMessage,
    ) -> Link {
        let (tx, rx) = mpsc::channel(capacity);
        let down: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let task = tokio::spawn(run(
            address.to_string(),
            identity,
            rx,
            on_message,
            down.clone(),
        ));
        Link {
            address: address.to_string(),
            capacity,
            tx,
            task: task.abort_handle(),
            down,
            unanswered: Arc::new(Semaphore::new(capacity)),
        }
    }

    /// Queues `message`, waiting for room until `deadline`. Fails at once while the
    /// peer cannot be reached, so senders can go elsewhere.
    pub async fn send(&self, message: ZmqMessage, deadline: Instant) -> Result<()> {
        if let Some(why) = self.down.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(Error::Transport(format!(
                "ZeroMQ peer {} unreachable: {why}",
                self.address
            )));
        }
        let outgoing = Outgoing { message, deadline };
        // The common case takes no timer.
        let outgoing = match self.tx.try_send(outgoing) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(self.closed()),
            Err(mpsc::error::TrySendError::Full(o)) => o,
        };
        match tokio::time::timeout_at(deadline, self.tx.send(outgoing)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.closed()),
            Err(_) => Err(Error::Timeout(format!(
                "the send queue to {} stayed full ({} messages): the peer is slow or unreachable",
                self.address, self.capacity
            ))),
        }
    }

    /// Room for one more message that expects an answer; hold the permit until the
    /// answer came or the sender gave up. Waits until `deadline`.
    pub async fn reserve(&self, deadline: Instant) -> Result<OwnedSemaphorePermit> {
        let reserving = self.unanswered.clone().acquire_owned();
        match tokio::time::timeout_at(deadline, reserving).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(self.closed()),
            Err(_) => Err(Error::Timeout(format!(
                "{} messages to {} are unanswered: the peer is slow or unreachable",
                self.capacity, self.address
            ))),
        }
    }

    fn closed(&self) -> Error {
        Error::Transport(format!("the connection to {} is closed", self.address))
    }
}

/// Connects, sends, and reconnects until the link is dropped.
async fn run(
    address: String,
    identity: Option<Bytes>,
    mut rx: mpsc::Receiver<Outgoing>,
    on_message: OnMessage,
    down: Arc<std::sync::Mutex<Option<String>>>,
) {
    let set_down = |why: Option<String>| *down.lock().unwrap_or_else(|e| e.into_inner()) = why;
    let endpoint = format!("tcp://{address}");
    let mut held: Option<Outgoing> = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut options = SocketOptions::default();
        options.connect_timeout(CONNECT_TIMEOUT);
        if let Some(id) = &identity {
            match PeerIdentity::try_from(id.clone()) {
                Ok(id) => {
                    options.peer_identity(id);
                }
                Err(e) => {
                    tracing::error!(%address, error = %e, "invalid ZeroMQ identity; link stopped");
                    return;
                }
            }
        }
        let mut dealer = DealerSocket::with_options(options);
        if let Err(e) = dealer.connect(&endpoint).await {
            tracing::warn!(%address, error = %e, retry_in = ?backoff, "cannot connect to ZeroMQ peer");
            set_down(Some(e.to_string()));
            drop_expired(&mut held, &mut rx);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        tracing::debug!(%address, "connected to ZeroMQ peer");
        set_down(None);
        backoff = FIRST_BACKOFF;
        let (mut send, mut recv) = dealer.split();
        let on = on_message.clone();
        let reader = tokio::spawn(async move {
            while let Ok(message) = recv.recv().await {
                on(message.into_vec());
            }
        });
        loop {
            let out = match held.take() {
                Some(out) => out,
                None => match rx.recv().await {
                    Some(out) => out,
                    None => {
                        reader.abort();
                        return;
                    }
                },
            };
            if out.deadline <= Instant::now() {
                continue;
            }
            if let Err(e) = send.send(out.message.clone()).await {
                tracing::warn!(%address, error = %e, "ZeroMQ peer connection lost; reconnecting");
                set_down(Some(e.to_string()));
                held = Some(out);
                break;
            }
        }
        reader.abort();
        tokio::time::sleep(backoff).await;
    }
}

/// While disconnected: lets go of messages whose sender gave up, so a dead peer's
/// queue empties instead of delivering stale requests when it comes back.
fn drop_expired(held: &mut Option<Outgoing>, rx: &mut mpsc::Receiver<Outgoing>) {
    let now = Instant::now();
    if held.as_ref().is_some_and(|o| o.deadline <= now) {
        *held = None;
    }
    if held.is_none() {
        while let Ok(out) = rx.try_recv() {
            if out.deadline > now {
                *held = Some(out);
                break;
            }
        }
    }
}
