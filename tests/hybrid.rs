//! The facade end to end: transports chosen by an oslo-style configuration file, RPC
//! on one transport and notifications on another (hybrid messaging).

use std::time::Duration;

use messaging::notify::{
    Notification, NotificationListener, NotificationResult, Notifier, Priority,
};
use messaging::{Config, Context, Endpoint, Error, RemoteError, RpcClient, RpcServer, Target};
use serde_json::{Value, json};

fn hybrid_config(tag: &str) -> Config {
    Config::from_ini_str(&format!(
        "[DEFAULT]\ntransport_url = memory:///rpc-{tag}\ncontrol_exchange = nova\n\
         [oslo_messaging_notifications]\ntransport_url = fake:///events-{tag}\ndriver = messagingv2\n"
    ))
    .expect("valid config")
}

#[tokio::test]
async fn rpc_and_notifications_use_the_transports_the_config_names() {
    let cfg = hybrid_config("a");
    let drivers = messaging::registry();
    let rpc = drivers.rpc_transport(&cfg).await.unwrap();
    let events = drivers.notification_transport(&cfg).await.unwrap();
    assert_eq!(rpc.url().to_string(), "memory:///rpc-a");
    assert_eq!(events.url().to_string(), "fake:///events-a");
    assert_eq!(rpc.default_exchange(), "nova");

    let api = Endpoint::new().method("echo", |_c: Context, v: Value| async move {
        Ok::<_, RemoteError>(v)
    });
    let server = RpcServer::new(&rpc, Target::topic("compute").server("h1"))
        .endpoint(api)
        .start()
        .await
        .unwrap();
    let client = RpcClient::new(&rpc, Target::topic("compute")).timeout(Duration::from_secs(5));
    let got: Value = client
        .call(&Context::new(), "echo", json!({"x": 1}))
        .await
        .unwrap();
    assert_eq!(got, json!({"x": 1}));

    // The notification transport is another broker: no RPC server answers there.
    let elsewhere =
        RpcClient::new(&events, Target::topic("compute")).timeout(Duration::from_millis(200));
    let err = elsewhere
        .call::<_, Value>(&Context::new(), "echo", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = NotificationListener::new(&events, [Target::topic("notifications")])
        .on(Priority::Info, move |n: Notification| {
            let tx = tx.clone();
            async move {
                tx.send(n).unwrap();
                NotificationResult::Handled
            }
        })
        .start()
        .await
        .unwrap();
    let notifier = Notifier::from_config(&events, "compute.h1").unwrap();
    notifier
        .info(
            &Context::new().with("user", "u"),
            "compute.instance.create.end",
            json!({"id": 7}),
        )
        .await;
    let n = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.event_type, "compute.instance.create.end");
    assert_eq!(n.publisher_id, "compute.h1");
    assert_eq!(n.payload, json!({"id": 7}));
    assert_eq!(n.context.get("user"), Some(&json!("u")));

    listener.stop().await;
    listener.wait().await.unwrap();
    server.stop().await;
    server.wait().await.unwrap();
}

#[tokio::test]
async fn an_unknown_scheme_lists_the_registered_ones() {
    let cfg = Config::from_ini_str("[DEFAULT]\ntransport_url = amqp1://h\n").unwrap();
    let err = messaging::registry().rpc_transport(&cfg).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"amqp1\"") && text.contains("fake, ") && text.contains("memory"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_urls_and_configs_name_the_bad_part() {
    let err = messaging::registry()
        .transport("memory://u:s3cret@host:99999/", &Config::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("99999") && !text.contains("s3cret"), "{text}");
    // A driver's section is checked by the registry that knows the driver, whichever
    // transport the configuration names.
    let cfg = Config::from_ini_str(
        "[DEFAULT]\ntransport_url = memory://\n\
         [oslo_messaging_rabbit]\nrabbit_qos_prefech_count = 3\n",
    )
    .unwrap();
    let err = messaging::registry().check_config(&cfg).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown option [oslo_messaging_rabbit] rabbit_qos_prefech_count (line 4)"),
        "{err}"
    );
    let err = messaging::registry().rpc_transport(&cfg).await.unwrap_err();
    assert!(
        err.to_string().contains("rabbit_qos_prefech_count"),
        "{err}"
    );
    let err = Config::from_ini_str("[DEFAULT]\nrpc_response_timeout = soon\n").unwrap_err();
    assert!(err.to_string().contains("rpc_response_timeout"), "{err}");
    let err = messaging::registry()
        .transport("memory://somehost", &Config::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("takes no hosts"), "{err}");
}

#[tokio::test]
async fn a_notification_only_mistake_is_refused_at_setup() {
    let rpc = messaging::registry()
        .transport("memory://", &Config::default())
        .await
        .unwrap();
    let err = RpcServer::new(&rpc, Target::topic("t"))
        .build()
        .err()
        .unwrap();
    assert!(matches!(err, Error::InvalidTarget { .. }), "{err:?}");
    let err = NotificationListener::new(&rpc, [Target::topic("t")])
        .build()
        .err()
        .unwrap();
    assert!(err.to_string().contains("no handler"), "{err}");
}

#[tokio::test]
async fn every_registered_drivers_section_is_checked_whatever_the_transport() {
    // RPC over RabbitMQ, a typo in the Kafka section: refused before connecting (no
    // broker listens on port 1), naming section, option and line.
    let cfg = Config::from_ini_str(
        "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:1/\n\
         [oslo_messaging_kafka]\nconsumer_grup = audit\n",
    )
    .unwrap();
    let err = messaging::registry().rpc_transport(&cfg).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration error: unknown option [oslo_messaging_kafka] consumer_grup (line 4)"
    );
    // A bad value and a value outside oslo's choices, in the ZeroMQ section.
    for (text, want) in [
        (
            "[oslo_messaging_zmq]\nrpc_zmq_min_port = many\n",
            "invalid value for [oslo_messaging_zmq] rpc_zmq_min_port (line 2)",
        ),
        (
            "[oslo_messaging_zmq]\nrpc_zmq_matchmaker = etcd\n",
            "invalid value for [oslo_messaging_zmq] rpc_zmq_matchmaker",
        ),
    ] {
        let cfg = Config::from_ini_str(text).unwrap();
        let err = messaging::registry().check_config(&cfg).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
    // A section no registered driver claims is kept as written and not checked.
    let cfg = Config::from_ini_str(
        "[DEFAULT]\ntransport_url = memory://\n[oslo_messaging_amqp]\nanything = goes\n",
    )
    .unwrap();
    let registry = messaging::registry();
    assert_eq!(
        registry.sections(),
        [
            "oslo_messaging_kafka",
            "oslo_messaging_rabbit",
            "oslo_messaging_zaqar",
            "oslo_messaging_zmq"
        ]
    );
    assert!(registry.check_config(&cfg).unwrap().is_empty());
    registry.rpc_transport(&cfg).await.unwrap();
}

#[tokio::test]
async fn metrics_enabled_needs_no_warning_while_removed_options_still_get_one() {
    let cfg = Config::from_ini_str(
        "[DEFAULT]\ntransport_url = memory://\n\
         [oslo_messaging_metrics]\nmetrics_enabled = true\nmetrics_buffer_size = 10\n\
         [oslo_messaging_rabbit]\nrabbit_host = old\n",
    )
    .unwrap();
    let registry = messaging::registry();
    let warnings = registry.check_config(&cfg).unwrap();
    assert_eq!(
        warnings,
        ["ignoring option [oslo_messaging_rabbit] rabbit_host: removed from oslo.messaging"]
    );
    // Creating the transport logs the same warning and goes on; its metrics go to
    // oslo.metrics (no daemon here: they are dropped, and the transport works).
    registry.rpc_transport(&cfg).await.unwrap();
}
