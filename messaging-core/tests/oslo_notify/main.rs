//! oslo.messaging's notification tests (`tests/notify/test_notifier.py`,
//! `test_dispatcher.py`, `test_listener.py`, including TestRoutingNotifier and
//! TestDispatcherFilter) against `messaging_core::notify`, end to end on `memory://`
//! where oslo goes through a transport.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use Priority::{Debug, Info, Warn};
use messaging_core::memory::MemoryDriver;
use messaging_core::notify::sink::mask_passwords;
use messaging_core::notify::{
    Metadata, Notification, NotificationEndpoint, NotificationFilter, NotificationListener,
    NotificationResult, Notifier, Priority, RoutingConfig, Sink, TestNotifications,
};
use messaging_core::wire::request::new_id;
use messaging_core::wire::{ContextPacking, NotificationMessage, envelope};
use messaging_core::{
    Config, Context, DriverRegistry, Error, Result, Retry, Serializer, Target, Transport,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

mod configuration;
mod dispatcher;
mod filter;
mod log_notifier;
mod routing;
mod sanitising;
mod sink;
mod transport;

const EVENT: &str = "test.notify";

fn vhost(prefix: &str) -> String {
    format!("{prefix}_{}", new_id())
}

async fn memory_transport_on(vhost: &str, config: &Config) -> Transport {
    DriverRegistry::with_memory()
        .transport(&format!("memory:///{vhost}"), config)
        .await
        .unwrap()
}

async fn memory_transport(config: &Config) -> Transport {
    memory_transport_on(&vhost("notify"), config).await
}

fn is_dashed_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_python_timestamp(s: &str) -> bool {
    regex::Regex::new(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?$")
        .unwrap()
        .is_match(s)
}

/// Calls the notifier method named after the priority (`notifier.<priority>(...)`).
async fn notify_at(
    notifier: &Notifier,
    priority: Priority,
    ctx: &Context,
    event_type: &str,
    payload: Value,
) {
    match priority {
        Priority::Audit => notifier.audit(ctx, event_type, payload).await,
        Priority::Debug => notifier.debug(ctx, event_type, payload).await,
        Priority::Info => notifier.info(ctx, event_type, payload).await,
        Priority::Warn => notifier.warn(ctx, event_type, payload).await,
        Priority::Error => notifier.error(ctx, event_type, payload).await,
        Priority::Critical => notifier.critical(ctx, event_type, payload).await,
        Priority::Sample => notifier.sample(ctx, event_type, payload).await,
    }
}

fn bob() -> Context {
    Context::new().with("user_name", "bob")
}

const CANDIDATE_TOPICS: [&str; 3] = ["notifications", "foo", "bar"];

/// Listens on every candidate topic at `priority`; each arrival is reported with its topic.
async fn listen_on_candidates(
    transport: &Transport,
    priority: Priority,
) -> (
    Vec<NotificationListener>,
    mpsc::UnboundedReceiver<(&'static str, Notification)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut listeners = Vec::new();
    for topic in CANDIDATE_TOPICS {
        let tx = tx.clone();
        let listener = NotificationListener::new(transport, [Target::topic(topic)])
            .on(priority, move |n: Notification| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((topic, n));
                }
            })
            .start()
            .await
            .unwrap();
        listeners.push(listener);
    }
    (listeners, rx)
}

/// Receives exactly `n` items, then checks nothing more arrives for a while.
async fn receive_exactly<T>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    n: usize,
    context: &str,
) -> Vec<T> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(item)) => got.push(item),
            _ => panic!("{context}: only {} of {n} arrived", got.len()),
        }
    }
    if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
        panic!("{context}: more than {n} arrived");
    }
    got
}

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// returns 'handled'
    Handled,
    /// returns None
    NoReturn,
    /// returns 'requeue' on its first call, 'handled' after
    RequeueOnce,
    /// raises on its first call, returns 'handled' after
    FailOnce,
}

type Seen = mpsc::UnboundedSender<(usize, Priority, Notification)>;

fn endpoint(
    index: usize,
    priorities: &[Priority],
    behaviour: Behaviour,
    seen: &Seen,
) -> NotificationEndpoint {
    let mut ep = NotificationEndpoint::new();
    for &priority in priorities {
        let seen = seen.clone();
        let calls = Arc::new(AtomicUsize::new(0));
        ep = ep.on(priority, move |n: Notification| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            let _ = seen.send((index, priority, n));
            async move {
                match behaviour {
                    Behaviour::Handled | Behaviour::NoReturn => Ok(NotificationResult::Handled),
                    Behaviour::RequeueOnce if first => Ok(NotificationResult::Requeue),
                    Behaviour::FailOnce if first => Err("Exception()".to_string()),
                    _ => Ok(NotificationResult::Handled),
                }
            }
        });
    }
    ep
}

fn credential_context() -> Context {
    Context::from_value(json!({
        "user_name": "bob",
        "project_id": "demo",
        "auth_token": "gAAAAAB-secret",
        "auth_token_info": {"token": {"expires_at": "2030-01-01"}},
        "service_token": "svc-secret",
        "service_catalog": [{"type": "compute"}],
        "password": "passw0rd"
    }))
    .unwrap()
}
