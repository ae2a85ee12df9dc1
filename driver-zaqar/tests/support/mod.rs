//! Shared by the Zaqar driver's tests: the real server (`ZAQAR_URL`, default
//! `zaqar://127.0.0.1:8888`, started by `scripts/services zaqar`) and transports on it,
//! each factory in a project of its own so that tests running at once never meet.
#![allow(dead_code)] // each test crate uses a different subset

use std::time::Duration;

use messaging_core::testkit::{TransportFactory, unique};
use messaging_core::{Config, DriverRegistry, Transport};

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
