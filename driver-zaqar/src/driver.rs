//! [`ZaqarDriver`]: RPC and notifications over Zaqar queues (see the crate docs for
//! the design and [`naming`](crate::naming) for the queues).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use messaging_core::driver::deadline_after;
use messaging_core::driver::{
    Capabilities, ChannelListener, Disposition, Driver, IncomingNotification, IncomingRequest,
    MessageSource, NotificationFormat, NotificationListener, PublishReply, ReplyInbox,
    RequestIntake, RequestListener, Retry, SendOptions, Settle,
};
use messaging_core::wire::{ContextPacking, NotificationMessage, Priority, Reply, Request};
use messaging_core::{Detail, Error, ErrorKind, Result, Target};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::{ClientSettings, MAX_PER_REQUEST, QueuedMessage, ZaqarClient};
use crate::keystone::Keystone;
use crate::membership::{Departures, Membership, members};
use crate::naming::{self, RpcQueues};
use crate::options::{Auth, ZaqarOptions};
use crate::pacing::{Pacer, Pacing, sleep_unless_stopped};
use crate::telemetry::Publish;

/// The Zaqar driver. Made by [`ZaqarFactory`](crate::ZaqarFactory) for `zaqar://` and
/// `zaqar+https://` URLs, or directly from resolved options.
pub struct ZaqarDriver {
    shared: Arc<Shared>,
    replies: tokio::sync::OnceCell<Replies>,
    pools: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

/// What the driver's tasks share.
struct Shared {
    client: ZaqarClient,
    options: ZaqarOptions,
    pacing: Pacing,
    /// The memberships of stopped listeners being deleted.
    departures: Departures,
}

impl Shared {
    /// How long a listener's close and the driver's cleanup wait for memberships to be
    /// deleted: one request's time. A Zaqar that refuses connections or fails fast has
    /// had every attempt by then; one that does not answer is not waited for longer.
    fn departure_limit(&self) -> Duration {
        ZaqarOptions::seconds(self.options.zaqar.request_timeout)
    }
}

/// The transport's reply queue and the task taking replies from it.
struct Replies {
    inbox: ReplyInbox,
    wake: Arc<tokio::sync::Notify>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ZaqarDriver {
    /// A driver with `options`; nothing is sent until it is used.
    pub fn new(options: ZaqarOptions) -> Result<Self> {
        let z = &options.zaqar;
        let keystone = match &options.auth {
            Auth::None => None,
            Auth::Token(token) => Some(Arc::new(Keystone::fixed(
                token.clone(),
                options.project.clone().unwrap_or_default(),
            ))),
            Auth::Password(auth) => Some(Arc::new(Keystone::password(auth.clone()))),
        };
        let ca_pem = if z.ssl_ca_file.is_empty() {
            None
        } else {
            Some(std::fs::read(&z.ssl_ca_file).map_err(|e| {
                messaging_core::config::error(format!(
                    "[oslo_messaging_zaqar] ssl_ca_file {}: {e}",
                    z.ssl_ca_file
                ))
            })?)
        };
        let retry = (
            ZaqarOptions::seconds(z.retry_interval),
            ZaqarOptions::seconds(z.retry_interval_max),
        );
        let client = ZaqarClient::new(ClientSettings {
            endpoint: options.endpoint.clone(),
            project: options.project.clone(),
            client_id: uuid::Uuid::new_v4(),
            keystone,
            ca_pem,
            insecure: z.insecure,
            request_timeout: ZaqarOptions::seconds(z.request_timeout),
            backoff: retry,
        })?;
        let pacing = Pacing {
            busy: ZaqarOptions::seconds(z.poll_interval),
            idle: ZaqarOptions::seconds(z.idle_poll_interval),
            retry,
        };
        Ok(ZaqarDriver {
            shared: Arc::new(Shared {
                client,
                options,
                pacing,
                departures: Departures::new(),
            }),
            replies: tokio::sync::OnceCell::new(),
            pools: Mutex::new(HashMap::new()),
        })
    }

    /// The HTTP client the driver uses.
    pub fn client(&self) -> &ZaqarClient {
        &self.shared.client
    }

    /// The reply queue, made and polled from the first call on.
    async fn replies(&self) -> &Replies {
        self.replies
            .get_or_init(|| async {
                let inbox = ReplyInbox::new(naming::reply_queue());
                let wake = Arc::new(tokio::sync::Notify::new());
                let (stop, stopped) = watch::channel(false);
                let task = tokio::spawn(take_replies(
                    self.shared.clone(),
                    inbox.clone(),
                    wake.clone(),
                    stopped,
                ));
                Replies {
                    inbox,
                    wake,
                    stop,
                    task: Mutex::new(Some(task)),
                }
            })
            .await
    }

    fn exchange<'a>(&'a self, target: &'a Target) -> &'a str {
        target
            .exchange
            .as_deref()
            .unwrap_or(&self.shared.options.control_exchange)
    }

    /// The pool queues to copy a notification for `topic` to, read at most every
    /// `pool_refresh_interval`.
    async fn pool_queues(&self, topic: &str) -> Result<Vec<String>> {
        let refresh = ZaqarOptions::seconds(self.shared.options.zaqar.pool_refresh_interval);
        if let Some((at, queues)) = self.pools.lock().unwrap().get(topic)
            && at.elapsed() < refresh
        {
            return Ok(queues.clone());
        }
        let registry = naming::pool_registry(topic);
        let queues: Vec<String> = members(&self.shared.client, &registry)
            .await?
            .iter()
            .filter_map(|m| m["pool"].as_str())
            .map(|pool| naming::notification_queue(topic, Some(pool)))
            .collect();
        self.pools
            .lock()
            .unwrap()
            .insert(topic.to_string(), (Instant::now(), queues.clone()));
        Ok(queues)
    }

    /// The servers of `queues` that are listening, by name, with their fanout queues.
    async fn servers(&self, queues: &RpcQueues) -> Result<Vec<(String, String)>> {
        Ok(members(&self.shared.client, &queues.registry)
            .await?
            .iter()
            .filter_map(|m| {
                Some((
                    m["server"].as_str()?.to_string(),
                    m["queue"].as_str()?.to_string(),
                ))
            })
            .collect())
    }
}

impl ZaqarDriver {
    /// Posts a request where its target says (every registered server for a fanout),
    /// refusing an `at_least_once` one no registered server would take; with
    /// `call_deadline`, as a call, and waits for its reply until then.
    async fn deliver(
        &self,
        target: &Target,
        mut request: Request,
        options: &SendOptions,
        call_deadline: Option<tokio::time::Instant>,
    ) -> Result<Value> {
        let topic = target.required_topic()?;
        let exchange = self.exchange(target).to_string();
        let server = target.server.as_deref().filter(|s| !s.is_empty());
        let queues = RpcQueues::new(&exchange, topic, server);
        let client = &self.shared.client;
        let ttl = self.shared.options.zaqar.message_ttl;
        let undeliverable = || Error::Undeliverable {
            exchange: exchange.clone(),
            routing_key: match server {
                Some(server) => format!("{topic}.{server}"),
                None => topic.to_string(),
            },
        };
        if target.fanout {
            let servers = self.servers(&queues).await?;
            if servers.is_empty() && options.at_least_once {
                return Err(undeliverable());
            }
            let body = raw(request.encode(ContextPacking::Flattened)?)?;
            for (_, queue) in &servers {
                client
                    .publish(Publish::Rpc, queue, &[&body], ttl, options.retry)
                    .await?;
            }
            return Ok(Value::Null);
        }
        if options.at_least_once {
            let servers = self.servers(&queues).await?;
            if !servers
                .iter()
                .any(|(name, _)| server.is_none_or(|wanted| wanted == name))
            {
                return Err(undeliverable());
            }
        }
        let queue = queues.server.as_ref().unwrap_or(&queues.shared);
        let (Some(deadline), Some(timeout)) = (call_deadline, options.timeout) else {
            let body = raw(request.encode(ContextPacking::Flattened)?)?;
            client
                .publish(Publish::Rpc, queue, &[&body], ttl, options.retry)
                .await?;
            return Ok(Value::Null);
        };
        let replies = self.replies().await;
        let pending = replies
            .inbox
            .start_call(&mut request, options.call_monitor_timeout);
        replies.wake.notify_one();
        let body = raw(request.encode(ContextPacking::Flattened)?)?;
        client
            .publish(Publish::Rpc, queue, &[&body], ttl, options.retry)
            .await?;
        pending
            .wait_until(deadline, timeout, options.call_monitor_timeout, topic)
            .await
    }
}

fn raw(bytes: Vec<u8>) -> Result<Box<RawValue>> {
    let text = String::from_utf8(bytes).map_err(|e| Error::Serialization(e.to_string()))?;
    RawValue::from_string(text).map_err(|e| Error::Serialization(e.to_string()))
}

#[async_trait]
impl Driver for ZaqarDriver {
    fn name(&self) -> &str {
        "zaqar"
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::ALL;
        // Notification queues are named by topic and priority only, as on RabbitMQ.
        caps.isolated_exchanges = false;
        caps
    }

    async fn send(
        &self,
        target: &Target,
        request: Request,
        options: &SendOptions,
    ) -> Result<Value> {
        let Some(timeout) = options.timeout else {
            return self.deliver(target, request, options, None).await;
        };
        // The call's timeout bounds all of it: the registry read, the post, the reply.
        let deadline = deadline_after(timeout);
        let topic = target.required_topic()?.to_string();
        let timed_out = |what: String| {
            Error::Timeout(Detail::new(
                ErrorKind::Timeout,
                format!("no reply on topic {topic} within {timeout:?}: {what}"),
            ))
        };
        let sent = tokio::time::timeout_at(
            deadline,
            self.deliver(target, request, options, Some(deadline)),
        )
        .await;
        match sent {
            Err(_) => Err(timed_out(
                "the request could not be posted in that time".into(),
            )),
            Ok(Err(e)) if tokio::time::Instant::now() >= deadline => {
                Err(Error::Timeout(Detail::wrapping(
                    format!("no reply on topic {topic} within {timeout:?}: {e}"),
                    e,
                )))
            }
            Ok(result) => result,
        }
    }

    async fn send_notification(
        &self,
        target: &Target,
        message: NotificationMessage,
        format: NotificationFormat,
        retry: Retry,
    ) -> Result<()> {
        let topic = target.required_topic()?;
        let body =
            raw(message.encode(ContextPacking::Flattened, format == NotificationFormat::V2)?)?;
        let ttl = self.shared.options.zaqar.message_ttl;
        let client = &self.shared.client;
        client
            .publish(
                Publish::Notification,
                &naming::notification_queue(topic, None),
                &[&body],
                ttl,
                retry,
            )
            .await?;
        for pool in self.pool_queues(topic).await? {
            client
                .publish(Publish::Notification, &pool, &[&body], ttl, retry)
                .await?;
        }
        Ok(())
    }

    async fn listen(&self, target: &Target) -> Result<Box<RequestListener>> {
        let topic = target.required_topic()?;
        let server = target
            .server
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid_target("a server needs a server name", target))?;
        let queues = RpcQueues::new(self.exchange(target), topic, Some(server));
        let own = queues.server.clone().unwrap_or_default();
        let shared = &self.shared;
        // Registered before anything is taken: a failed registration loses nothing.
        let membership = Membership::start(
            shared.client.clone(),
            queues.registry.clone(),
            json!({"server": server, "queue": own}),
            shared.options.zaqar.registration_ttl,
        )
        .await?;
        let (tx, rx) = mpsc::channel(shared.options.zaqar.claim_limit);
        let (stop, stopped) = watch::channel(false);
        let intake = Arc::new(Mutex::new(RequestIntake::new(Arc::new(ReplyPublisher(
            shared.clone(),
        )))));
        let mut tasks = Vec::new();
        for queue in [queues.shared.clone(), own.clone()] {
            tasks.push(tokio::spawn(take_requests(
                shared.clone(),
                queue,
                intake.clone(),
                tx.clone(),
                stopped.clone(),
            )));
        }
        Ok(Box::new(ChannelListener::bounded(
            rx,
            Pollers {
                shared: shared.clone(),
                stop,
                tasks,
                memberships: vec![membership],
                leaving: None,
            },
        )))
    }

    async fn listen_for_notifications(
        &self,
        targets_and_priorities: &[(Target, Priority)],
        pool: Option<&str>,
    ) -> Result<Box<NotificationListener>> {
        let shared = &self.shared;
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let room = Arc::new(Semaphore::new(shared.options.zaqar.prefetch_count));
        let mut tasks = Vec::new();
        let mut memberships = Vec::new();
        let mut queues = Vec::new();
        for (target, priority) in targets_and_priorities {
            let topic = format!("{}.{}", target.required_topic()?, priority.as_str());
            if let Some(pool) = pool {
                // Registered before anything is claimed; a failure ends those made.
                let started = Membership::start(
                    shared.client.clone(),
                    naming::pool_registry(&topic),
                    json!({"pool": pool}),
                    shared.options.zaqar.registration_ttl,
                )
                .await;
                match started {
                    Ok(membership) => memberships.push(membership),
                    Err(e) => {
                        for membership in memberships {
                            membership.end().await;
                        }
                        return Err(e);
                    }
                }
            }
            queues.push(naming::notification_queue(&topic, pool));
        }
        for queue in queues {
            tasks.push(tokio::spawn(take_notifications(
                shared.clone(),
                queue,
                room.clone(),
                tx.clone(),
                stopped.clone(),
            )));
        }
        Ok(Box::new(ChannelListener::new(
            rx,
            Pollers {
                shared: shared.clone(),
                stop,
                tasks,
                memberships,
                leaving: None,
            },
        )))
    }

    async fn cleanup(&self) {
        // Listeners stopped without waiting may still be deleting their memberships:
        // a transport cleaned up leaves nothing registered.
        let limit = self.shared.departure_limit();
        if !self.shared.departures.settled(limit).await {
            tracing::warn!(
                ?limit,
                "Zaqar did not confirm that stopped listeners' memberships are deleted; \
                 until they are, or expire with registration_ttl, senders count them"
            );
        }
        if let Some(replies) = self.replies.get() {
            let _ = replies.stop.send(true);
            let task = replies.task.lock().unwrap().take();
            if let Some(task) = task {
                let _ = task.await;
            }
            if let Err(e) = self
                .shared
                .client
                .delete_queue(&replies.inbox.name, Retry::Times(1))
                .await
            {
                tracing::debug!(error = %e, "could not delete the reply queue");
            }
        }
    }
}

/// Posts replies to the callers' reply queues.
struct ReplyPublisher(Arc<Shared>);

#[async_trait]
impl PublishReply for ReplyPublisher {
    type Address = String;

    async fn publish_reply(&self, to: &String, reply: &Reply) -> Result<()> {
        let body = raw(reply.encode()?)?;
        self.0
            .client
            .publish(
                Publish::Reply,
                to,
                &[&body],
                self.0.options.zaqar.reply_ttl,
                Retry::Times(3),
            )
            .await
            .map(drop)
    }
}

/// A listener's pollers and memberships.
struct Pollers {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The memberships until `stop` hands them to `leaving`.
    memberships: Vec<Membership>,
    /// Their deletion, started by `stop` and awaited by `close`, with the registries
    /// they are in (for the log).
    leaving: Option<(JoinHandle<()>, Vec<String>)>,
}

#[async_trait]
impl MessageSource for Pollers {
    fn stop(&mut self) {
        let _ = self.stop.send(true);
        // Deregistered at once, not after the drain: a stopping server takes no fanout
        // or at_least_once message more while it drains, and a stopping pool no more
        // copies. Without a runtime here, `close` starts it.
        if !self.memberships.is_empty()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let memberships = std::mem::take(&mut self.memberships);
            let registries = memberships.iter().map(|m| m.queue().to_string()).collect();
            let task = self.shared.departures.end(&runtime, memberships);
            self.leaving = Some((task, registries));
        }
    }

    async fn close(&mut self) {
        self.stop();
        // A closed listener is no longer registered: a sender that reads the registry
        // once the server's wait() returned must not count it.
        if let Some((task, registries)) = self.leaving.take() {
            let limit = self.shared.departure_limit();
            if tokio::time::timeout(limit, task).await.is_err() {
                tracing::warn!(
                    ?registries,
                    ?limit,
                    "Zaqar did not confirm that this listener's memberships are deleted; \
                     until they are, or expire with registration_ttl, senders count it"
                );
            }
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

/// Takes the replies of the transport's calls while calls wait.
async fn take_replies(
    shared: Arc<Shared>,
    inbox: ReplyInbox,
    wake: Arc<tokio::sync::Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pacer = Pacer::new(shared.pacing);
    loop {
        if *stop.borrow() {
            return;
        }
        if inbox.waiters.is_empty() {
            tokio::select! {
                _ = wake.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
                // A call registered before this task looked: look again now and then.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let wait = match shared.client.pop(&inbox.name, MAX_PER_REQUEST).await {
            Ok(messages) => {
                for message in &messages {
                    inbox.waiters.deliver_body(message.body.get().as_bytes());
                }
                // Replies are awaited: poll at the busy pace, never slower.
                pacer
                    .after_success(messages.len(), MAX_PER_REQUEST)
                    .min(shared.pacing.busy)
            }
            Err(e) => {
                tracing::warn!(queue = %inbox.name, error = %e, "could not take replies");
                pacer.after_failure()
            }
        };
        if sleep_unless_stopped(wait, &mut stop).await {
            return;
        }
    }
}

/// Takes requests from one of a server's queues (taking deletes them: at most once),
/// no more than the server's channel has room for, so that a busy server leaves the
/// topic's requests to the others.
async fn take_requests(
    shared: Arc<Shared>,
    queue: String,
    intake: Arc<Mutex<RequestIntake<ReplyPublisher>>>,
    tx: mpsc::Sender<IncomingRequest>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pacer = Pacer::new(shared.pacing);
    let limit = shared.options.zaqar.claim_limit;
    loop {
        if *stop.borrow() {
            return;
        }
        let first = tokio::select! {
            permit = tx.reserve() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let mut permits = vec![first];
        let wanted = pacer.size(limit);
        while permits.len() < wanted {
            match tx.try_reserve() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        let asked = permits.len();
        let wait = match shared.client.pop(&queue, asked).await {
            Ok(messages) => {
                let taken = messages.len();
                for message in messages {
                    let request = match Request::decode(message.body.get().as_bytes()) {
                        Ok(request) => request,
                        Err(e) => {
                            tracing::error!(%queue, id = %message.id, error = %e, "malformed request deleted");
                            continue;
                        }
                    };
                    let admitted = intake.lock().unwrap().admit(request);
                    if let (Some(incoming), Some(permit)) = (admitted, permits.pop()) {
                        permit.send(incoming);
                    }
                }
                pacer.after_success(taken, asked)
            }
            Err(e) => {
                tracing::warn!(%queue, error = %e, "could not take requests");
                pacer.after_failure()
            }
        };
        drop(permits);
        if sleep_unless_stopped(wait, &mut stop).await {
            return;
        }
    }
}

/// Claims notifications from one queue, no more than the listener has room for.
async fn take_notifications(
    shared: Arc<Shared>,
    queue: String,
    room: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<IncomingNotification>,
    mut stop: watch::Receiver<bool>,
) {
    let z = &shared.options.zaqar;
    let mut pacer = Pacer::new(shared.pacing);
    loop {
        if *stop.borrow() {
            return;
        }
        // Room for one at least, then for as many more as are free.
        let first = tokio::select! {
            permit = room.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let mut permits = vec![first];
        let wanted = pacer.size(z.claim_limit);
        while permits.len() < wanted {
            match room.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        let asked = permits.len();
        let wait = match shared
            .client
            .claim(&queue, asked, z.claim_ttl, z.claim_grace)
            .await
        {
            Ok(None) => pacer.after_success(0, asked),
            Ok(Some(claim)) => {
                let taken = claim.messages.len();
                for message in claim.messages {
                    let Some(permit) = permits.pop() else { break };
                    let notification = match NotificationMessage::decode(
                        message.body.get().as_bytes(),
                    ) {
                        Ok(notification) => notification,
                        Err(e) => {
                            tracing::error!(%queue, id = %message.id, error = %e, "malformed notification deleted");
                            if let Err(e) = shared
                                .client
                                .delete(&queue, &message.id, Some(&claim.id))
                                .await
                            {
                                tracing::warn!(%queue, error = %e, "could not delete a malformed notification");
                            }
                            continue;
                        }
                    };
                    let settle = Box::new(ClaimedNotification {
                        shared: shared.clone(),
                        queue: queue.clone(),
                        claim: claim.id.clone(),
                        message: Some(message),
                        _room: permit,
                    });
                    if tx
                        .send(IncomingNotification {
                            message: notification,
                            settle,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                pacer.after_success(taken, asked)
            }
            Err(e) => {
                tracing::warn!(%queue, error = %e, "could not claim notifications");
                pacer.after_failure()
            }
        };
        drop(permits);
        if sleep_unless_stopped(wait, &mut stop).await {
            return;
        }
    }
}

/// One claimed notification: deleted when acknowledged, posted again and deleted when
/// requeued (a claim holds other messages too, so it is not released), requeued the
/// same way when dropped unsettled.
struct ClaimedNotification {
    shared: Arc<Shared>,
    queue: String,
    claim: String,
    message: Option<QueuedMessage>,
    _room: OwnedSemaphorePermit,
}

impl ClaimedNotification {
    async fn requeue(
        shared: &Shared,
        queue: &str,
        claim: &str,
        message: &QueuedMessage,
    ) -> Result<()> {
        let ttl = shared.options.zaqar.message_ttl;
        shared
            .client
            .post(queue, &[&message.body], ttl, Retry::Times(3))
            .await?;
        shared.client.delete(queue, &message.id, Some(claim)).await
    }
}

#[async_trait]
impl Settle for ClaimedNotification {
    async fn settle(mut self: Box<Self>, disposition: Disposition) -> Result<()> {
        let Some(message) = self.message.take() else {
            return Ok(());
        };
        match disposition {
            Disposition::Ack => {
                self.shared
                    .client
                    .delete(&self.queue, &message.id, Some(&self.claim))
                    .await
            }
            Disposition::Requeue => {
                Self::requeue(&self.shared, &self.queue, &self.claim, &message).await
            }
        }
    }
}

impl Drop for ClaimedNotification {
    fn drop(&mut self) {
        let Some(message) = self.message.take() else {
            return;
        };
        let (shared, queue, claim) = (self.shared.clone(), self.queue.clone(), self.claim.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = Self::requeue(&shared, &queue, &claim, &message).await {
                    tracing::warn!(%queue, error = %e, "could not requeue an unsettled notification; it returns when its claim expires");
                }
            });
        }
    }
}
