//! Errors reach the caller with their kind and librdkafka's error underneath, and
//! never with the password: an unreachable broker, a TLS handshake that fails, and a
//! SASL login, through the public API against the test broker (`scripts/services`
//! starts tansu).
//!
//! tansu can require SASL (`--authentication`), but the test broker runs without it:
//! it answers every SASL handshake with UNSUPPORTED_SASL_MECHANISM, which librdkafka
//! reports as an authentication failure. So the SASL test shows a login the broker
//! does not accept, not a wrong password checked by the broker.

mod support;

use std::error::Error as _;

use messaging_core::notify::Priority;
use messaging_core::testkit::errors::assert_secret_hidden;
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
    assert_secret_hidden(&e, PASSWORD);
}

/// A TLS front to the broker that no client trusts: `socat` on a free port with a
/// self-signed certificate made here by `openssl` (both checked by `scripts/services`),
/// forwarding to the broker. Stopped when dropped.
struct UntrustedTlsFront {
    socat: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl UntrustedTlsFront {
    async fn start() -> UntrustedTlsFront {
        let dir = std::env::temp_dir().join(messaging_core::testkit::unique("kafka-tls"));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
            ])
            .current_dir(&dir)
            .output()
            .expect("openssl runs (scripts/services checks it is installed)");
        assert!(
            made.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let socat = std::process::Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert=cert.pem,key=key.pem,verify=0"
            ))
            .arg(format!("TCP:{}", broker()))
            .current_dir(&dir)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("socat runs (scripts/services checks it is installed)");
        // Stopped by its drop, also when it never listens.
        let front = UntrustedTlsFront { socat, port, dir };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return front;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("socat did not listen on 127.0.0.1:{port}");
    }
}

impl Drop for UntrustedTlsFront {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.socat.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// TLS to an endpoint whose certificate no CA vouches for: the handshake fails, and
/// the error says so in its kind, with librdkafka's SSL error as its source.
#[tokio::test]
async fn a_failed_tls_handshake_is_tls() {
    support::require_broker().await;
    let front = UntrustedTlsFront::start().await;
    let e = notify(&format!(
        "kafka://user:{PASSWORD}@127.0.0.1:{}/?security_protocol=SSL",
        front.port
    ))
    .await;
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(!e.is_temporary(), "{e}");
    assert_eq!(source_code(&e), Some(RDKafkaErrorCode::SSL), "{e:?}");
    assert_secret_hidden(&e, PASSWORD);
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
    assert_secret_hidden(&e, PASSWORD);
}
