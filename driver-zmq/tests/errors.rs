//! Errors of the Redis matchmaker reach the caller with their kind and the Redis
//! client's error underneath, and never with the password: a refused login and an
//! unreachable Redis, through the public API against the test Redis
//! (`scripts/services`). The matchmaker's Redis client is built without TLS support
//! (no `tls-rustls` feature), so there is no TLS failure to show.

mod support;

use std::time::Duration;

use messaging_core::testkit::errors::{assert_secret_hidden, source_of};
use messaging_core::{Config, Context, Error, ErrorKind, Retry, RpcClient, Target};
use serde_json::json;

const PASSWORD: &str = "s3cret-pw";

/// A cast through a transport made from `[DEFAULT] transport_url = url`, that neither
/// retries nor waits long.
async fn cast(url: &str) -> Error {
    support::require_redis();
    let config = Config::from_ini_str(&format!("[DEFAULT]\ntransport_url = {url}\n"))
        .expect("configuration");
    let mut registry = messaging_core::DriverRegistry::with_memory();
    driver_zmq::register(&mut registry);
    let transport = match registry.rpc_transport(&config).await {
        Ok(transport) => transport,
        // The driver may ask the matchmaker when it starts.
        Err(e) => return e,
    };
    let client = RpcClient::new(&transport, Target::topic("errors_test"))
        .prepare()
        .retry(Retry::Times(0))
        .timeout(Duration::from_secs(5));
    let error = client
        .call::<_, serde_json::Value>(&Context::new(), "ping", json!({}))
        .await
        .expect_err("the call fails");
    transport.cleanup().await;
    error
}

fn url(port: u16) -> String {
    format!(
        "zmq+redis://:{PASSWORD}@127.0.0.1:{port}/?{}",
        support::LOOPBACK
    )
}

#[tokio::test]
async fn a_refused_login_is_refused_credentials() {
    // The test Redis has no password: AUTH with one fails.
    let e = cast(&url(6379)).await;
    assert_eq!(e.kind(), ErrorKind::RefusedCredentials, "{e}");
    assert!(!e.is_temporary(), "{e}");
    let redis = source_of::<redis::RedisError>(&e);
    assert_eq!(
        redis.kind(),
        redis::ErrorKind::AuthenticationFailed,
        "{redis:?}"
    );
    assert_secret_hidden(&e, PASSWORD);
}

#[tokio::test]
async fn an_unreachable_redis_is_unreachable() {
    let e = cast(&url(1)).await;
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.is_temporary(), "{e}");
    let redis = source_of::<redis::RedisError>(&e);
    assert!(redis.is_connection_refusal(), "{redis:?}");
    assert_secret_hidden(&e, PASSWORD);
}
