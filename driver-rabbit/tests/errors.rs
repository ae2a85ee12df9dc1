//! Errors reach the caller with their kind and the lapin error underneath, and never
//! with the password: a refused login, an unreachable broker and a failed TLS
//! handshake, through the public API against the test broker (`scripts/services`).

mod support;

use messaging_core::testkit::errors::{assert_secret_hidden, source_of};
use messaging_core::{Config, Context, Error, ErrorKind, Retry, RpcClient, Target};
use serde_json::json;

const PASSWORD: &str = "s3cret-pw";

/// A cast through a transport made from `[DEFAULT] transport_url = url`, that neither
/// retries nor waits long.
async fn cast(url: &str) -> Error {
    support::require_broker().await;
    let config = Config::from_ini_str(&format!("[DEFAULT]\ntransport_url = {url}\n"))
        .expect("configuration");
    let transport = support::registry()
        .rpc_transport(&config)
        .await
        .expect("a transport (it connects when first used)");
    let client = RpcClient::new(&transport, Target::topic("errors_test"))
        .prepare()
        .retry(Retry::Times(0));
    let error = client
        .cast(&Context::new(), "ping", json!({}))
        .await
        .expect_err("the cast fails");
    transport.cleanup().await;
    error
}

#[tokio::test]
async fn a_refused_login_is_refused_credentials() {
    let e = cast(&format!("rabbit://guest:{PASSWORD}@127.0.0.1:5672/")).await;
    assert_eq!(e.kind(), ErrorKind::RefusedCredentials, "{e}");
    assert!(!e.is_temporary(), "{e}");
    assert!(
        e.to_string()
            .contains("refused the login of user \"guest\""),
        "{e}"
    );
    let lapin = source_of::<lapin::Error>(&e);
    assert!(
        matches!(lapin.kind(), lapin::ErrorKind::ProtocolError(p) if p.kind().get_id() == 403),
        "{lapin:?}"
    );
    assert_secret_hidden(&e, PASSWORD);
}

#[tokio::test]
async fn an_unreachable_broker_is_unreachable() {
    let e = cast(&format!("rabbit://guest:{PASSWORD}@127.0.0.1:1/")).await;
    assert!(matches!(e, Error::DeliveryFailure(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.is_temporary(), "{e}");
    let lapin = source_of::<lapin::Error>(&e);
    let lapin::ErrorKind::IOError(io) = lapin.kind() else {
        panic!("an I/O error: {lapin:?}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused, "{io:?}");
    assert_secret_hidden(&e, PASSWORD);
}

#[tokio::test]
async fn tls_against_a_plaintext_port_is_tls() {
    let e = cast(&format!("rabbit://guest:{PASSWORD}@127.0.0.1:5672/?ssl=1")).await;
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(!e.is_temporary(), "{e}");
    let lapin = source_of::<lapin::Error>(&e);
    let lapin::ErrorKind::IOError(io) = lapin.kind() else {
        panic!("an I/O error: {lapin:?}");
    };
    // rustls's error, inside the I/O error lapin reports.
    let rustls = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    assert!(rustls.is_some(), "{io:?}");
    assert_secret_hidden(&e, PASSWORD);
}
