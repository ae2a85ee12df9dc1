//! What the ZeroMQ driver's tests share: transports on loopback with each matchmaker.

#![allow(dead_code)]

use messaging_core::testkit::TransportFactory;
use messaging_core::{Config, DriverRegistry, Transport};

/// Options every test transport has: loopback only.
pub const LOOPBACK: &str = "rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1";

/// The Redis the tests use (`REDIS_URL`, default `redis://127.0.0.1:6379`) as a
/// `zmq+redis://` URL prefix.
pub fn redis_url() -> String {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let rest = url.strip_prefix("redis://").unwrap_or(&url);
    format!("zmq+redis://{}", rest.trim_end_matches('/'))
}

/// Fails the test (naming the script that starts it) when Redis does not answer.
pub fn require_redis() {
    let url = redis_url();
    let host = url
        .trim_start_matches("zmq+redis://")
        .rsplit('@')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_string();
    let reachable = std::net::TcpStream::connect_timeout(
        &host.parse().expect("REDIS_URL host:port"),
        std::time::Duration::from_secs(2),
    )
    .is_ok();
    assert!(
        reachable,
        "Redis is not reachable at {host}: start it with scripts/services (or set REDIS_URL)"
    );
}

/// A port nobody listens on now (the OS's pick, released for the caller to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A transport on `url`.
pub async fn transport(url: &str) -> messaging_core::Result<Transport> {
    let mut registry = DriverRegistry::with_memory();
    driver_zmq::register(&mut registry);
    registry.transport(url, &Config::default()).await
}

/// A factory making a new transport on `url` each time.
pub fn factory(url: String) -> TransportFactory {
    TransportFactory::new(move || {
        let url = url.clone();
        async move { transport(&url).await }
    })
}

/// Installs a log subscriber for `RUST_LOG`, once.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
