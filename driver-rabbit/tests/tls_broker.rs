//! TLS against RabbitMQ's own TLS listener: node `omsg1` of the test cluster
//! (`scripts/services cluster`) listens for TLS on port 5691 on every address, with
//! certificates the script made with `openssl` in
//! `/var/tmp/messaging-rabbit-cluster/tls/`: `ca.pem` (the test CA), a server
//! certificate for `localhost` and `127.0.0.1`, `client.pem`/`client.key` (CN
//! `omsg-client`, a user of the cluster, for the EXTERNAL login), and `other-ca.pem`,
//! `other-client.pem`/`.key` (an unrelated CA and a client certificate it signed).
//!
//! Checks a call round trip with the right CA, by password and by client certificate
//! (EXTERNAL, seen on the broker as user `omsg-client`), and that a wrong CA, a host
//! name the certificate does not name and a client certificate of another CA are
//! refused promptly, with errors that say why and never quote the password. A server's
//! first connection is retried without end (as in oslo), so the refusals are checked on
//! a client allowed one retry, which must give up within seconds.
//!
//! Without the cluster these tests fail, naming the command that starts it; with
//! `MESSAGING_SKIP_CLUSTER=1` they are skipped.

mod support;

use std::time::{Duration, Instant};

use messaging_core::{Config, Context, Error, Retry, RpcClient, Target, Transport};
use serde_json::{Value, json};

/// Where `scripts/services cluster` keeps its certificates.
const TLS_DIR: &str = "/var/tmp/messaging-rabbit-cluster/tls";
/// omsg1's TLS listener.
const TLS_PORT: u16 = 5691;
/// A password that must never show in an error.
const PASSWORD: &str = "Tls-Sekrit-8641";
/// Plenty for one refused handshake plus one retry interval (1 s below); far less than
/// the ten-second connect timeout the driver would wait on a silent peer.
const PROMPT: Duration = Duration::from_secs(8);

/// Whether the tests should run: `false` (after saying so) with
/// `MESSAGING_SKIP_CLUSTER=1`; otherwise panics, naming the command that starts the
/// cluster, unless omsg1's TLS listener answers and its certificates are there.
async fn require_cluster() -> bool {
    if std::env::var("MESSAGING_SKIP_CLUSTER").is_ok_and(|v| v == "1") {
        eprintln!("skipped: MESSAGING_SKIP_CLUSTER=1");
        return false;
    }
    let answers = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(("127.0.0.1", TLS_PORT)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(
        answers,
        "the RabbitMQ test cluster's TLS listener does not answer on 127.0.0.1:{TLS_PORT}: \
         start it with `scripts/services cluster` (or set MESSAGING_SKIP_CLUSTER=1 to skip \
         these tests)"
    );
    for file in [
        "ca.pem",
        "client.pem",
        "client.key",
        "other-ca.pem",
        "other-client.pem",
    ] {
        let path = format!("{TLS_DIR}/{file}");
        assert!(
            std::path::Path::new(&path).is_file(),
            "{path} is missing: `scripts/services cluster` makes it"
        );
    }
    true
}

/// `[oslo_messaging_rabbit]` with TLS, `ca` as the CA file, and optionally a client
/// certificate (`<client>.pem`, `<client>.key`) and a login method.
fn config(ca: &str, client: Option<&str>, login_method: Option<&str>) -> Config {
    let mut ini = format!(
        "[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = {TLS_DIR}/{ca}.pem\n\
         rabbit_retry_interval = 1\n"
    );
    if let Some(client) = client {
        ini += &format!(
            "ssl_cert_file = {TLS_DIR}/{client}.pem\nssl_key_file = {TLS_DIR}/{client}.key\n"
        );
    }
    if let Some(method) = login_method {
        ini += &format!("rabbit_login_method = {method}\n");
    }
    Config::from_ini_str(&ini).expect("test configuration")
}

async fn transport(url: &str, config: &Config) -> Transport {
    support::registry()
        .transport(url, config)
        .await
        .expect("rabbit transport (it connects lazily)")
}

/// An echo server and a call to it on `transport`, both over TLS.
async fn round_trip(transport: &Transport) {
    let topic = support::unique("tls-broker");
    let server = support::echo_server(transport, &topic).await;
    let client = RpcClient::new(transport, Target::topic(topic.clone()).server("s1"))
        .timeout(Duration::from_secs(30));
    let echoed: Value = client
        .call(&Context::new(), "echo", json!({"data": "over TLS"}))
        .await
        .expect("a call over TLS");
    assert_eq!(echoed, json!("over TLS"));
    server.stop().await;
    server.wait().await.unwrap();
}

/// A call that cannot connect: allowed one retry, it must fail within [`PROMPT`];
/// returns the error's text, which must not quote the password. `what` names the case
/// in messages (the URL would show the password).
async fn refused_call(what: &str, url: &str, config: &Config) -> String {
    let transport = transport(url, config).await;
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        PROMPT,
        RpcClient::new(&transport, Target::topic(support::unique("tls-refused")))
            .retry(Retry::Times(1))
            .timeout(Duration::from_secs(5))
            .call::<Value, Value>(&Context::new(), "echo", json!({})),
    )
    .await;
    let elapsed = started.elapsed();
    transport.cleanup().await;
    let err = outcome
        .unwrap_or_else(|_| panic!("{what}: still connecting after {PROMPT:?}"))
        .expect_err("the connection must be refused");
    let text = err.to_string();
    eprintln!("{what}: failed after {elapsed:?}: {err:?}");
    assert!(matches!(err, Error::DeliveryFailure(_)), "{what}: {err:?}");
    assert!(text.contains("2 attempt"), "{what}: one retry: {text}");
    assert!(
        !text.contains(PASSWORD),
        "{what}: the password leaks: {text}"
    );
    text
}

/// The connections of this process on omsg1, as `rabbitmqctl list_connections` shows
/// them: user, auth_mechanism, ssl, peer_cert_subject and the connection name the
/// driver gave (`<program>:<pid>:<uuid>`).
async fn our_connections_on_omsg1() -> Vec<Value> {
    let listing = tokio::task::spawn_blocking(|| {
        let host = support::command("hostname", &["-s"], None);
        let node = format!("omsg1@{}", host.trim());
        support::rabbitmqctl(&[
            "-n",
            &node,
            "list_connections",
            "-q",
            "--formatter",
            "json",
            "user",
            "auth_mechanism",
            "ssl",
            "peer_cert_subject",
            "client_properties",
        ])
    })
    .await
    .unwrap();
    let connections: Vec<Value> = serde_json::from_str(&listing)
        .unwrap_or_else(|e| panic!("rabbitmqctl list_connections: {e}: {listing}"));
    let ours = format!(":{}:", std::process::id());
    connections
        .into_iter()
        .filter_map(|mut c| {
            let name = c["client_properties"]
                .as_array()?
                .iter()
                .find(|p| p[0] == "connection_name")?[2]
                .as_str()?
                .to_string();
            if !name.contains(&ours) {
                return None;
            }
            c["name"] = json!(name);
            c.as_object_mut()?.remove("client_properties");
            Some(c)
        })
        .collect()
}

#[tokio::test]
async fn trusted_ca_call_round_trip() {
    if !require_cluster().await {
        return;
    }
    let transport = transport(
        &format!("rabbit://guest:guest@localhost:{TLS_PORT}/"),
        &config("ca", None, None),
    )
    .await;
    round_trip(&transport).await;
    transport.cleanup().await;
}

#[tokio::test]
async fn wrong_ca_is_refused_promptly_naming_the_verification_failure() {
    if !require_cluster().await {
        return;
    }
    let url = format!("rabbit://guest:{PASSWORD}@localhost:{TLS_PORT}/");
    let text = refused_call("wrong CA", &url, &config("other-ca", None, None)).await;
    assert!(
        text.contains("server certificate could not be verified"),
        "{text}"
    );
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("other-ca.pem"), "names the CA file: {text}");
    assert!(text.contains("localhost:5691"), "names the node: {text}");
}

#[tokio::test]
async fn a_host_name_the_certificate_does_not_name_is_refused() {
    if !require_cluster().await {
        return;
    }
    // The listener answers on 127.0.0.2 too, so only the name can be wrong.
    tokio::net::TcpStream::connect(("127.0.0.2", TLS_PORT))
        .await
        .expect("omsg1's TLS listener binds every address");
    let url = format!("rabbit://guest:{PASSWORD}@127.0.0.2:{TLS_PORT}/");
    let text = refused_call("wrong host", &url, &config("ca", None, None)).await;
    assert!(
        text.contains("server certificate could not be verified"),
        "{text}"
    );
    assert!(
        text.contains("certificate not valid for name \"127.0.0.2\""),
        "names the mismatch: {text}"
    );
    assert!(
        text.contains("localhost"),
        "names what the certificate names: {text}"
    );
}

#[tokio::test]
async fn client_certificate_with_external_login() {
    if !require_cluster().await {
        return;
    }
    // EXTERNAL takes the user from the certificate's CN; the URL's password is unused.
    let transport = transport(
        &format!("rabbit://omsg-client@localhost:{TLS_PORT}/"),
        &config("ca", Some("client"), Some("EXTERNAL")),
    )
    .await;
    round_trip(&transport).await;
    // The sending and the reply connections are still open.
    let external: Vec<Value> = our_connections_on_omsg1()
        .await
        .into_iter()
        .filter(|c| c["user"] == "omsg-client")
        .collect();
    transport.cleanup().await;
    assert!(
        !external.is_empty(),
        "no connection of this process as omsg-client on omsg1"
    );
    for c in &external {
        assert_eq!(c["auth_mechanism"], "EXTERNAL", "{c}");
        assert_eq!(c["ssl"], true, "{c}");
        assert_eq!(c["peer_cert_subject"], "CN=omsg-client", "{c}");
    }
}

#[tokio::test]
async fn client_certificate_of_another_ca_is_refused() {
    if !require_cluster().await {
        return;
    }
    let url = format!("rabbit://omsg-client:{PASSWORD}@localhost:{TLS_PORT}/");
    let text = refused_call(
        "wrong client certificate",
        &url,
        &config("ca", Some("other-client"), Some("EXTERNAL")),
    )
    .await;
    assert!(text.contains("other-client.pem"), "names the file: {text}");
    // The broker's alert, or (TLS 1.3: it judges the certificate after our side has
    // finished the handshake) the reset that may overtake it.
    assert!(
        text.contains("the broker refused our client certificate") && text.contains("UnknownCA")
            || text.contains("it may have refused our client certificate"),
        "{text}"
    );
}

#[tokio::test]
async fn a_wrong_password_over_tls_is_refused_without_quoting_it() {
    if !require_cluster().await {
        return;
    }
    let url = format!("rabbit://guest:{PASSWORD}@localhost:{TLS_PORT}/");
    let transport = transport(&url, &config("ca", None, None)).await;
    let outcome = tokio::time::timeout(
        PROMPT,
        RpcClient::new(&transport, Target::topic(support::unique("tls-refused")))
            .retry(Retry::Times(1))
            .cast(&Context::new(), "echo", json!({})),
    )
    .await
    .expect("a refused login is not retried");
    transport.cleanup().await;
    let err = outcome.expect_err("guest's password is guest");
    let text = err.to_string();
    eprintln!("{err:?}");
    assert!(
        text.contains("refused the login of user \"guest\""),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "the password leaks: {text}");
}
