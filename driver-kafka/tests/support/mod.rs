//! Shared by the Kafka driver's tests: the in-process mock cluster, the real broker
//! (`KAFKA_URL`, default `kafka://127.0.0.1:9092`, started by `scripts/services`) and
//! transport factories for both.
#![allow(dead_code)] // each test crate uses a different subset

use std::sync::OnceLock;
use std::time::Duration;

use messaging_core::testkit::{TransportFactory, unique};
use messaging_core::{Config, DriverRegistry, Transport};

/// The real broker of the tests unless `KAFKA_URL` says otherwise.
pub const DEFAULT_KAFKA_URL: &str = "kafka://127.0.0.1:9092";

/// The settings every test transport has: a short fetch wait (tansu answers a fetch
/// only when it expires), and reply topics left in place (tansu 0.6 deletes every
/// topic when asked to delete one).
pub const FETCH_WAIT: &str = "fetch_wait_max_ms=10&delete_reply_topics=false";

/// A registry with the Kafka driver.
pub fn registry() -> DriverRegistry {
    let mut registry = DriverRegistry::with_memory();
    driver_kafka::register(&mut registry);
    registry
}

/// The brokers of librdkafka's in-process mock cluster (three brokers), started once
/// per test binary and kept for its life. Made through the C API rather than
/// `rdkafka::mocking::MockCluster` to shorten the mock's group join delay from 3 s
/// (Kafka's `group.initial.rebalance.delay.ms`) to 50 ms: every RPC server joins
/// new groups.
pub fn mock_brokers() -> &'static str {
    static BROKERS: OnceLock<String> = OnceLock::new();
    BROKERS.get_or_init(|| {
        use rdkafka::bindings as rd;
        use rdkafka::client::{Client, DefaultClientContext};
        use rdkafka::types::RDKafkaType;
        let config = rdkafka::ClientConfig::new();
        let client = Client::new(
            &config,
            config.create_native_config().expect("native config"),
            RDKafkaType::RD_KAFKA_PRODUCER,
            DefaultClientContext,
        )
        .expect("client owning the mock cluster");
        // SAFETY: the client outlives the cluster (both are leaked below), and the
        // bootstrap string is copied before anything else touches the cluster.
        let brokers = unsafe {
            let cluster = rd::rd_kafka_mock_cluster_new(client.native_ptr(), 3);
            assert!(!cluster.is_null(), "librdkafka mock cluster");
            rd::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 50);
            std::ffi::CStr::from_ptr(rd::rd_kafka_mock_cluster_bootstraps(cluster))
                .to_string_lossy()
                .into_owned()
        };
        std::mem::forget(client);
        brokers
    })
}

/// The real broker's URL: `KAFKA_URL`, else [`DEFAULT_KAFKA_URL`].
pub fn broker_url() -> String {
    std::env::var("KAFKA_URL").unwrap_or_else(|_| DEFAULT_KAFKA_URL.to_string())
}

/// Fails the test, naming the script that starts it, when no broker answers at
/// [`broker_url`].
pub async fn require_broker() {
    let url: messaging_core::TransportUrl = broker_url().parse().expect("KAFKA_URL parses");
    let host = &url.hosts[0];
    let address = format!(
        "{}:{}",
        host.hostname.as_deref().unwrap_or("127.0.0.1"),
        host.port.unwrap_or(9092)
    );
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&address),
    )
    .await;
    if !matches!(connected, Ok(Ok(_))) {
        panic!(
            "no Kafka broker answers at {address}: run scripts/services (it installs and \
             starts tansu), or set KAFKA_URL"
        );
    }
}

/// `base` (a `kafka://hosts` URL without path or query) with the test settings and
/// `extra` query parameters.
pub fn url_with(base: &str, extra: &str) -> String {
    let (base, query) = base
        .split_once("/?")
        .unwrap_or((base.trim_end_matches('/'), ""));
    let mut url = format!("{base}/?{FETCH_WAIT}");
    for part in [query, extra] {
        if !part.is_empty() {
            url.push('&');
            url.push_str(part);
        }
    }
    url
}

/// Transports on `base`; every transport of one factory shares a consumer group of
/// its own, so listeners of one scenario share notifications as listeners without a
/// pool do, while scenarios running at once do not rebalance each other.
pub fn factory(base: impl Fn() -> String + Send + Sync + 'static, check: bool) -> TransportFactory {
    init_logging();
    let group = unique("group");
    TransportFactory::new(move || {
        let url = url_with(&base(), &format!("consumer_group={group}"));
        async move {
            if check {
                require_broker().await;
            }
            registry().transport(&url, &Config::default()).await
        }
    })
}

/// A transport on the real broker with `extra` query parameters.
pub async fn broker_transport(extra: &str) -> Transport {
    require_broker().await;
    registry()
        .transport(&url_with(&broker_url(), extra), &Config::default())
        .await
        .expect("transport")
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `driver_kafka=debug`).
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
