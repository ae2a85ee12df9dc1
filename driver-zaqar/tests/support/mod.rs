//! Shared by the Zaqar driver's tests: the real server (`ZAQAR_URL`, default
//! `zaqar://127.0.0.1:8888`, started by `scripts/services zaqar`) and transports on it,
//! each factory in a project of its own so that tests running at once never meet.
#![allow(dead_code)] // each test crate uses a different subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use driver_zaqar::client::{ClientSettings, ZaqarClient};
use messaging_core::notify::{Notification, NotificationEndpoint, NotificationListener};
use messaging_core::testkit::{TransportFactory, unique};
use messaging_core::{
    Config, Context, DriverRegistry, Endpoint, Priority, RemoteError, Target, Transport,
};
use serde_json::Value;

/// The real server of the tests unless `ZAQAR_URL` says otherwise.
pub const DEFAULT_ZAQAR_URL: &str = "zaqar://127.0.0.1:8888";

/// The server's URL (`ZAQAR_URL`, else [`DEFAULT_ZAQAR_URL`]), without path or query.
pub fn server_url() -> String {
    std::env::var("ZAQAR_URL")
        .unwrap_or_else(|_| DEFAULT_ZAQAR_URL.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// `http://host:port` of [`server_url`].
pub fn endpoint() -> String {
    server_url().replacen("zaqar://", "http://", 1)
}

/// A registry with the Zaqar driver.
pub fn registry() -> DriverRegistry {
    let mut registry = DriverRegistry::with_memory();
    driver_zaqar::register(&mut registry);
    registry
}

/// Fails the test, naming the script that starts it, when Zaqar does not answer.
pub async fn require_server() {
    let url = format!("{}/v2/ping", endpoint());
    let answered = reqwest_ping(&url).await;
    if !answered {
        panic!(
            "no Zaqar server answers GET {url}: run scripts/services zaqar (it installs and \
             starts zaqar-server on Redis), or set ZAQAR_URL"
        );
    }
}

async fn reqwest_ping(url: &str) -> bool {
    let Ok(addr) = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .parse::<std::net::SocketAddr>()
    else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// The URL of a transport in `project` with `extra` query parameters.
pub fn url_in(project: &str, extra: &str) -> String {
    let mut url = format!("{}/{project}", server_url());
    if !extra.is_empty() {
        url.push('?');
        url.push_str(extra);
    }
    url
}

/// What the test transports poll at: every 20 ms at most, so that the listeners (and
/// servers) of one queue all wake within the short bursts the sharing scenarios send.
/// Zaqar hands messages to whoever asks first; the defaults poll idle queues less.
pub const TEST_PACING: &str = "poll_interval=0.01&idle_poll_interval=0.02";

/// Transports in a project of their own.
pub fn factory() -> TransportFactory {
    init_logging();
    let project = unique("conformance");
    TransportFactory::new(move || {
        let url = url_in(&project, TEST_PACING);
        async move {
            require_server().await;
            registry().transport(&url, &Config::default()).await
        }
    })
}

/// A transport in `project` with `extra` query parameters.
pub async fn transport(project: &str, extra: &str) -> Transport {
    require_server().await;
    registry()
        .transport(&url_in(project, extra), &Config::default())
        .await
        .expect("transport")
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `driver_zaqar=debug`).
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A Zaqar client of its own at `endpoint`, in `project`, without Keystone.
pub fn client(endpoint: &str, project: &str) -> ZaqarClient {
    ZaqarClient::new(ClientSettings {
        endpoint: endpoint.to_string(),
        project: Some(project.to_string()),
        client_id: uuid::Uuid::new_v4(),
        keystone: None,
        ca_pem: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
        backoff: (Duration::from_millis(50), Duration::from_millis(500)),
    })
    .unwrap()
}

/// The info notifications a listener got: event type and payload.
pub type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A listener of `topic`'s info notifications, recording them.
pub async fn listen(transport: &Transport, topic: &str) -> (NotificationListener, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let endpoint = NotificationEndpoint::new().on(Priority::Info, move |n: Notification| {
        let s = s.clone();
        async move { s.lock().unwrap().push((n.event_type, n.payload)) }
    });
    let listener = NotificationListener::new(transport, [Target::topic(topic)])
        .endpoint(endpoint)
        .start()
        .await
        .unwrap();
    (listener, seen)
}

/// What `seen` holds once it holds `n` (or after 10 s).
pub async fn wait_for(seen: &Seen, n: usize) -> Vec<(String, Value)> {
    for _ in 0..1000 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen.lock().unwrap().clone()
}

/// An endpoint with `add(a, b)`.
pub fn adder() -> Endpoint {
    Endpoint::new().method(
        "add",
        |_ctx: Context, args: serde_json::Map<String, Value>| async move {
            Ok::<_, RemoteError>(args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0))
        },
    )
}
