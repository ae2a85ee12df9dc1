//! Errors reach the caller with their kind and librdkafka's error underneath, and
//! never with the password: an unreachable broker, TLS (which this librdkafka does not
//! have), and a SASL login, through the public API against the test broker
//! (`scripts/services` starts tansu).
//!
//! tansu can require SASL (`--authentication`), but the test broker runs without it:
//! it answers every SASL handshake with UNSUPPORTED_SASL_MECHANISM, which librdkafka
//! reports as an authentication failure. So the SASL test shows a login the broker
//! does not accept, not a wrong password checked by the broker.

mod support;

use std::error::Error as _;

use messaging_core::notify::Priority;
use messaging_core::{Config, Context, Error, ErrorKind, Notifier, Retry};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde_json::json;

const PASSWORD: &str = "s3cret-pw";

/// A notification through a transport made from
/// `[oslo_messaging_notifications] transport_url = url`, that does not retry.
async fn notify(url: &str) -> Error {
    support::init_logging();
    let config = Config::from_ini_str(&format!(
        "[oslo_messaging_notifications]\ntransport_url = {url}\n"
    ))
    .expect("configuration");
    let transport = support::registry()
        .notification_transport(&config)
        .await
        .expect("a transport (librdkafka connects in the background)");
    let notifier = Notifier::new(&transport, "errors-test").retry(Retry::Times(0));
    let error = notifier
        .try_notify(&Context::new(), "errors.test", Priority::Info, json!({}))
        .await
        .expect_err("the notification fails");
    transport.cleanup().await;
    error
}

/// The broker's `host:port`, for URLs with credentials and options of the tests.
fn broker() -> String {
    let url = support::broker_url();
    let rest = url.trim_start_matches("kafka://");
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

/// The error and every error in its `source()` chain, displayed and debugged, do not
/// show the password.
fn assert_no_password(error: &Error) {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(PASSWORD), "the password shows in {text}");
        }
        next = e.source();
    }
}

/// The librdkafka error code of the error's source.
fn source_code(error: &Error) -> Option<RDKafkaErrorCode> {
    let kafka = error
        .source()
        .and_then(|s| s.downcast_ref::<KafkaError>())
        .unwrap_or_else(|| panic!("a KafkaError as the source of {error:?}"));
    match kafka {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

#[tokio::test]
async fn an_unreachable_broker_is_unreachable() {
    let e = notify(&format!("kafka://user:{PASSWORD}@127.0.0.1:1/")).await;
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.is_temporary(), "{e}");
    let code = source_code(&e);
    assert!(
        matches!(
            code,
            Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
        ),
        "{code:?}"
    );
    assert_no_password(&e);
}

/// librdkafka is built without OpenSSL here (rdkafka's `ssl` feature is off), so TLS
/// cannot fail at a handshake: a transport asking for it is refused at once, as a
/// configuration error with librdkafka's error as the source.
#[tokio::test]
async fn tls_is_a_configuration_error_without_openssl() {
    support::require_broker().await;
    let config = Config::from_ini_str(&format!(
        "[oslo_messaging_notifications]\ntransport_url = kafka://user:{PASSWORD}@{}/?security_protocol=SSL\n",
        broker()
    ))
    .expect("configuration");
    let e = support::registry()
        .notification_transport(&config)
        .await
        .expect_err("no TLS in this librdkafka");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("OpenSSL not available"), "{e}");
    let kafka = e.source().and_then(|s| s.downcast_ref::<KafkaError>());
    assert!(
        matches!(kafka, Some(KafkaError::ClientConfig(..))),
        "{kafka:?}"
    );
    assert_no_password(&e);
}

#[tokio::test]
async fn a_sasl_login_the_broker_does_not_accept_is_refused_credentials() {
    support::require_broker().await;
    let e = notify(&format!(
        "kafka://user:{PASSWORD}@{}/?security_protocol=SASL_PLAINTEXT&sasl_mechanism=PLAIN",
        broker()
    ))
    .await;
    assert_eq!(e.kind(), ErrorKind::RefusedCredentials, "{e}");
    assert!(!e.is_temporary(), "{e}");
    assert_eq!(
        source_code(&e),
        Some(RDKafkaErrorCode::Authentication),
        "{e}"
    );
    assert_no_password(&e);
}
