//! Connecting: failing over to a live node, a broker that cannot be reached, and
//! passwords kept out of errors, logs and `Debug`.

use super::*;

/// A multi-host URL whose first node is down: the driver moves on to the next.
#[tokio::test]
async fn fails_over_to_a_live_node() {
    logs();
    support::require_broker().await;
    let url = "rabbit://guest:guest@127.0.0.1:1,guest:guest@127.0.0.1:5672/";
    let config = messaging_core::Config::from_ini_str(
        "[oslo_messaging_rabbit]\nkombu_failover_strategy = round-robin\n",
    )
    .unwrap();
    let transport = support::registry().transport(url, &config).await.unwrap();
    let topic = support::unique("failover");
    let server = support::echo_server(&transport, &topic).await;
    let client = RpcClient::new(&transport, Target::topic(topic.clone()));
    assert_eq!(echo(&client, json!(7)).await.unwrap(), json!(7));
    finish(server, transport).await;
}

/// A call to a broker that cannot be reached, with the default unlimited `retry`,
/// ends when its timeout does, saying so, instead of connecting forever.
#[tokio::test]
async fn a_call_to_an_unreachable_broker_ends_at_its_timeout() {
    // Nothing listens on port 1 of the loopback: every connection attempt is refused.
    let transport = support::registry()
        .transport(
            "rabbit://guest:guest@127.0.0.1:1/",
            &messaging_core::Config::from_ini_str(
                "[oslo_messaging_rabbit]\nrabbit_retry_interval = 1\nrabbit_interval_max = 1\n",
            )
            .unwrap(),
        )
        .await
        .expect("the transport connects lazily");
    let client =
        RpcClient::new(&transport, Target::topic("nowhere")).timeout(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let outcome = echo(&client, json!("lost")).await;
    let took = started.elapsed();
    assert!(
        matches!(&outcome, Err(Error::Timeout(m)) if m.contains("127.0.0.1:1")),
        "{outcome:?}"
    );
    // The bound is the call's timeout; connection attempts in flight end within a second.
    assert!(took < Duration::from_secs(6), "the call took {took:?}");
    transport.cleanup().await;
}

/// Wrong credentials, an unreachable node: the errors, the logs and `Debug` name the
/// nodes but never the password.
#[tokio::test]
async fn passwords_stay_out_of_errors_logs_and_debug() {
    logs();
    support::require_broker().await;
    let secret = "Zq9-not-the-password-XYZ";
    let config = messaging_core::Config::from_ini_str(
        "[oslo_messaging_rabbit]\nrabbit_retry_interval = 1\nrabbit_login_method = PLAIN\n",
    )
    .unwrap();
    for url in [
        format!("rabbit://guest:{secret}@127.0.0.1:5672/"),
        format!("rabbit://guest:{secret}@127.0.0.1:1/"),
    ] {
        let transport = support::registry().transport(&url, &config).await.unwrap();
        let debug = format!("{transport:?} {:?}", transport.driver().name());
        assert!(!debug.contains(secret), "{debug}");
        let client = RpcClient::new(&transport, Target::topic("nobody"))
            .retry(Retry::Times(1))
            .timeout(Duration::from_secs(2));
        let err = client
            .cast(&Context::new(), "echo", json!({}))
            .await
            .unwrap_err();
        if url.contains(":5672/") {
            // Refused credentials fail at once, naming the user and the node.
            assert!(matches!(err, Error::Transport(_)), "{err:?}");
            assert!(
                err.to_string()
                    .contains("refused the login of user \"guest\""),
                "{err}"
            );
        } else {
            assert!(matches!(err, Error::DeliveryFailure(_)), "{err:?}");
        }
        let text = format!("{err} {err:?}");
        assert!(!text.contains(secret), "{text}");
        assert!(
            text.contains("127.0.0.1:"),
            "the error names the node: {text}"
        );
        transport.cleanup().await;
    }
    let logged = log_text();
    assert!(logged.contains("cannot connect to RabbitMQ"), "{logged}");
    assert!(!logged.contains(secret), "a log line shows the password");
}
