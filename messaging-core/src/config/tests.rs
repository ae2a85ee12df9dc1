use super::*;

/// A realistic excerpt of a nova.conf (multi-host RabbitMQ, notifications on two
/// topics, the service's own sections and `[DEFAULT]` options).
const NOVA_CONF: &str = "\
[DEFAULT]
debug = True
my_ip = 10.0.0.11
state_path = /var/lib/nova
instances_path = $state_path/instances
transport_url = rabbit://openstack:RABBIT_PASS@controller1:5672,openstack:RABBIT_PASS@controller2:5672,openstack:RABBIT_PASS@controller3:5672/
control_exchange = nova
rpc_response_timeout = 180
executor_thread_pool_size = 32
use_neutron = true

[api]
auth_strategy = keystone

[database]
# A service option, not ours: ignored.
connection = mysql+pymysql://nova:NOVA_DBPASS@controller/nova

[oslo_messaging_notifications]
driver = messagingv2
driver = log
topics = notifications,searchlight

[oslo_messaging_rabbit]
rabbit_ha_queues = False
amqp_durable_queues = yes
rabbit_quorum_queue = On
rabbit_transient_quorum_queue = 1
heartbeat_timeout_threshold = 30
rabbit_qos_prefetch_count: 64
kombu_reconnect_delay = 0.5
rabbit_retry_backoff = 0
kombu_failover_strategy = shuffle

[keystone_authtoken]
password = KEYSTONE_PASS
";

/// The TOML form of [`NOVA_CONF`].
const NOVA_TOML: &str = r#"
[DEFAULT]
debug = true
transport_url = "rabbit://openstack:RABBIT_PASS@controller1:5672,openstack:RABBIT_PASS@controller2:5672,openstack:RABBIT_PASS@controller3:5672/"
control_exchange = "nova"
rpc_response_timeout = 180
executor_thread_pool_size = 32

[database]
connection = "mysql+pymysql://nova:NOVA_DBPASS@controller/nova"

[oslo_messaging_notifications]
driver = ["messagingv2", "log"]
topics = ["notifications", "searchlight"]

[oslo_messaging_rabbit]
rabbit_ha_queues = false
amqp_durable_queues = true
rabbit_quorum_queue = true
rabbit_transient_quorum_queue = true
heartbeat_timeout_threshold = 30
rabbit_qos_prefetch_count = 64
kombu_reconnect_delay = 0.5
rabbit_retry_backoff = 0
kombu_failover_strategy = "shuffle"
"#;

const NOVA_URL: &str = "rabbit://openstack:RABBIT_PASS@controller1:5672,openstack:RABBIT_PASS@controller2:5672,openstack:RABBIT_PASS@controller3:5672/";

fn ini(text: &str) -> Config {
    Config::from_ini_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn ini_err(text: &str) -> String {
    match Config::from_ini_str(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(Error::Config(message)) => message.to_string(),
        Err(other) => panic!("expected a config error, got {other}"),
    }
}

fn toml_err(text: &str) -> String {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(Error::Config(message)) => message.to_string(),
        Err(other) => panic!("expected a config error, got {other}"),
    }
}

#[test]
fn defaults_are_oslos() {
    let c = Config::default();
    let d = &c.default;
    assert_eq!(d.transport_url, "rabbit://");
    assert_eq!(d.control_exchange, "openstack");
    assert_eq!(d.rpc_response_timeout, 60);
    assert_eq!(d.executor_thread_pool_size, 64);
    assert!(!d.rpc_ping_enabled);

    let n = &c.notifications;
    assert!(n.driver.is_empty());
    assert_eq!(n.transport_url, None);
    assert_eq!(n.topics, ["notifications"]);
    assert_eq!(n.retry, -1);
    assert_eq!(n.routing_config, "");

    let r = &c.rabbit;
    assert_eq!(
        (r.rpc_conn_pool_size, r.conn_pool_min_size, r.conn_pool_ttl),
        (30, 2, 1200)
    );
    assert!(!r.ssl);
    assert_eq!(
        (
            &*r.ssl_version,
            &*r.ssl_key_file,
            &*r.ssl_cert_file,
            &*r.ssl_ca_file
        ),
        ("", "", "", "")
    );
    assert!(r.ssl_enforce_hostname_verification);
    assert!(!r.ssl_enforce_fips_mode);
    assert_eq!(r.kombu_reconnect_delay, 1.0);
    assert_eq!(r.kombu_reconnect_splay, 0.0);
    assert_eq!(r.kombu_compression, None);
    assert_eq!(r.kombu_missing_consumer_retry_timeout, 60);
    assert_eq!(r.kombu_failover_strategy, "round-robin");
    assert_eq!(r.rabbit_login_method, "AMQPLAIN");
    assert_eq!(
        (
            r.rabbit_retry_interval,
            r.rabbit_retry_backoff,
            r.rabbit_interval_max
        ),
        (1, 2, 30)
    );
    assert!(!r.rabbit_ha_queues && !r.rabbit_quorum_queue && !r.rabbit_transient_quorum_queue);
    assert_eq!(
        (
            r.rabbit_quorum_delivery_limit,
            r.rabbit_quorum_max_memory_length,
            r.rabbit_quorum_max_memory_bytes
        ),
        (0, 0, 0)
    );
    assert_eq!(r.rabbit_transient_queues_ttl, 1800);
    assert_eq!(r.rabbit_qos_prefetch_count, 0);
    assert_eq!((r.heartbeat_timeout_threshold, r.heartbeat_rate), (60, 3));
    assert!(r.direct_mandatory_flag);
    assert!(!r.enable_cancel_on_failover && !r.use_queue_manager && !r.rabbit_stream_fanout);
    assert_eq!(r.hostname, local_hostname());
    assert!(!r.hostname.is_empty());
    assert_eq!(r.processname, process_name());
    assert!(!r.amqp_durable_queues && !r.amqp_auto_delete);

    let k = &c.kafka;
    assert_eq!(k.kafka_max_fetch_bytes, 1_048_576);
    assert_eq!(k.kafka_consumer_timeout, 1.0);
    assert_eq!(k.consumer_group, "oslo_messaging_consumer");
    assert_eq!(k.producer_batch_timeout, 0.0);
    assert_eq!(k.producer_batch_size, 16384);
    assert_eq!(k.compression_codec, "none");
    assert!(!k.enable_auto_commit);
    assert_eq!(k.max_poll_records, 500);
    assert_eq!(k.security_protocol, "PLAINTEXT");
    assert_eq!(k.sasl_mechanism, "PLAIN");
    assert_eq!(
        (
            &*k.ssl_cafile,
            &*k.ssl_client_cert_file,
            &*k.ssl_client_key_file,
            &*k.ssl_client_key_password
        ),
        ("", "", "", "")
    );

    let z = &c.zmq;
    assert_eq!(z.rpc_zmq_matchmaker, "redis");
    assert_eq!(z.rpc_zmq_host, local_hostname());
    assert_eq!(z.rpc_zmq_bind_address, "*");
    assert_eq!(z.rpc_zmq_contexts, 1);
    assert_eq!(z.rpc_zmq_topic_backlog, None);
    assert_eq!(z.rpc_zmq_ipc_dir, "/var/run/openstack");
    assert_eq!((z.rpc_zmq_min_port, z.rpc_zmq_max_port), (49153, 65536));
    assert_eq!(z.rpc_zmq_bind_port_retries, 100);
    assert_eq!((z.zmq_target_expire, z.zmq_target_update), (300, 180));
    assert!(!z.use_pub_sub && !z.use_router_proxy && !z.use_dynamic_connections);
    assert_eq!(z.zmq_failover_connections, 2);
    assert_eq!(z.rpc_zmq_serialization, "json");
    assert_eq!((z.zmq_linger, z.rpc_poll_timeout), (-1, 1));
    assert!(z.zmq_immediate);
    assert_eq!(
        (
            z.zmq_tcp_keepalive,
            z.zmq_tcp_keepalive_idle,
            z.zmq_tcp_keepalive_cnt,
            z.zmq_tcp_keepalive_intvl
        ),
        (-1, -1, -1, -1)
    );
    assert_eq!((z.rpc_thread_pool_size, z.rpc_message_ttl), (100, 300));
    assert!(!z.rpc_use_acks);
    assert_eq!(
        (
            z.rpc_ack_timeout_base,
            z.rpc_ack_timeout_multiplier,
            z.rpc_retry_attempts
        ),
        (15, 2, 3)
    );
    assert!(z.subscribe_on.is_empty());

    let m = &c.metrics;
    assert!(!m.metrics_enabled);
    assert_eq!(m.metrics_buffer_size, 1000);
    assert_eq!(m.metrics_socket_file, "/var/tmp/metrics_collector.sock");
    assert_eq!(m.metrics_process_name, "");
    assert_eq!(m.metrics_thread_stop_timeout, 10);

    assert_eq!(c.rpc_transport_url(), "rabbit://");
    assert_eq!(c.notification_transport_url(), "rabbit://");
    c.validate().unwrap();
}

#[test]
fn empty_files_give_the_defaults() {
    assert_eq!(ini(""), Config::default());
    assert_eq!(ini("# nothing\n\n[DEFAULT]\n"), Config::default());
    assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
}

#[test]
fn reads_a_nova_conf() {
    let c = ini(NOVA_CONF);
    assert_eq!(c.default.transport_url, NOVA_URL);
    assert_eq!(c.rpc_transport_url(), NOVA_URL);
    assert_eq!(c.notification_transport_url(), NOVA_URL);
    assert_eq!(c.default.control_exchange, "nova");
    assert_eq!(c.default.rpc_response_timeout, 180);
    assert_eq!(c.default.executor_thread_pool_size, 32);
    assert_eq!(c.notifications.driver, ["messagingv2", "log"]);
    assert_eq!(c.notifications.topics, ["notifications", "searchlight"]);
    assert_eq!(c.notifications.retry, -1);
    let r = &c.rabbit;
    assert!(!r.rabbit_ha_queues);
    assert!(r.amqp_durable_queues);
    assert!(r.rabbit_quorum_queue);
    assert!(r.rabbit_transient_quorum_queue);
    assert_eq!(r.heartbeat_timeout_threshold, 30);
    assert_eq!(r.rabbit_qos_prefetch_count, 64);
    assert_eq!(r.kombu_reconnect_delay, 0.5);
    assert_eq!(r.rabbit_retry_backoff, 0);
    assert_eq!(r.kombu_failover_strategy, "shuffle");
    // Untouched options keep oslo's defaults.
    assert_eq!(r.rabbit_transient_queues_ttl, 1800);
    assert_eq!(c.kafka, KafkaSection::default());
    assert_eq!(c.zmq, ZmqSection::default());
}

#[test]
fn toml_form_gives_the_same_config() {
    let from_toml = Config::from_toml_str(NOVA_TOML).unwrap();
    assert_eq!(from_toml, ini(NOVA_CONF));
}

#[test]
fn serialized_config_reads_back() {
    let mut c = ini(NOVA_CONF);
    c.notifications.transport_url = Some("kafka://k1:9092".into());
    c.zmq.rpc_zmq_topic_backlog = Some(10);
    c.rabbit.kombu_compression = Some("gzip".into());
    let text = toml::to_string(&c).unwrap();
    assert_eq!(Config::from_toml_str(&text).unwrap(), c);
    let text = toml::to_string(&Config::default()).unwrap();
    assert_eq!(Config::from_toml_str(&text).unwrap(), Config::default());
}

#[test]
fn multi_valued_driver() {
    let c = ini("[oslo_messaging_notifications]\ndriver = messagingv2, log\ndriver=routing\n");
    assert_eq!(c.notifications.driver, ["messagingv2", "log", "routing"]);
    // Single-valued options: the last occurrence wins.
    let c =
        ini("[oslo_messaging_notifications]\ntopics = a\ntopics = b, c\nretry = 1\nretry = 5\n");
    assert_eq!(c.notifications.topics, ["b", "c"]);
    assert_eq!(c.notifications.retry, 5);
    // Repeated sections merge.
    let c = ini("[oslo_messaging_notifications]\ndriver = log\n[DEFAULT]\n\
         [OSLO_MESSAGING_NOTIFICATIONS]\ndriver = noop\n");
    assert_eq!(c.notifications.driver, ["log", "noop"]);
    // TOML: an array or a single string.
    let c =
        Config::from_toml_str("[oslo_messaging_notifications]\ndriver = \"messaging\"\n").unwrap();
    assert_eq!(c.notifications.driver, ["messaging"]);
    let err = toml_err("[oslo_messaging_notifications]\ndriver = 3\n");
    assert!(
        err.starts_with("invalid value for [oslo_messaging_notifications] driver:"),
        "{err}"
    );
}

#[test]
fn lists_and_continuation_lines() {
    let c = ini(
        "[oslo_messaging_notifications]\ntopics = notifications,\n    searchlight ,\n\tother,\n\
         [oslo_messaging_zmq]\nsubscribe_on =\n",
    );
    assert_eq!(
        c.notifications.topics,
        ["notifications", "searchlight", "other"]
    );
    assert!(c.zmq.subscribe_on.is_empty());
    let c = ini("[oslo_messaging_notifications]\ntopics =\n");
    assert!(c.notifications.topics.is_empty());
}

#[test]
fn empty_values() {
    let c = ini(
        "[oslo_messaging_rabbit]\nkombu_compression =\nssl_ca_file =\n\
         [oslo_messaging_notifications]\ntransport_url =\n[oslo_messaging_zmq]\nrpc_zmq_topic_backlog = 7\n",
    );
    assert_eq!(c.rabbit.kombu_compression, None);
    assert_eq!(c.notifications.transport_url, None);
    assert_eq!(c.zmq.rpc_zmq_topic_backlog, Some(7));
    let err = ini_err("[DEFAULT]\nrpc_response_timeout =\n");
    assert!(err.contains("got an empty value"), "{err}");
}

#[test]
fn booleans_any_case() {
    for (word, want) in [
        ("true", true),
        ("True", true),
        ("YES", true),
        ("on", true),
        ("1", true),
        ("false", false),
        ("No", false),
        ("OFF", false),
        ("0", false),
    ] {
        let c = ini(&format!("[oslo_messaging_rabbit]\nssl = {word}\n"));
        assert_eq!(c.rabbit.ssl, want, "{word}");
    }
}

#[test]
fn notification_transport_url_precedence() {
    // Only [DEFAULT]: both use it.
    let c = ini("[DEFAULT]\ntransport_url = rabbit://r1//\n");
    assert_eq!(c.rpc_transport_url(), "rabbit://r1//");
    assert_eq!(c.notification_transport_url(), "rabbit://r1//");
    // Hybrid: RPC over rabbit, notifications over kafka.
    let c = ini("[DEFAULT]\ntransport_url = rabbit://r1//\n\
         [oslo_messaging_notifications]\ntransport_url = kafka://k1:9092\n");
    assert_eq!(c.rpc_transport_url(), "rabbit://r1//");
    assert_eq!(c.notification_transport_url(), "kafka://k1:9092");
    // Only the notification one: RPC keeps oslo's default.
    let c = ini("[oslo_messaging_notifications]\ntransport_url = kafka://k1:9092\n");
    assert_eq!(c.rpc_transport_url(), "rabbit://");
    assert_eq!(c.notification_transport_url(), "kafka://k1:9092");
    // An empty notification URL falls back, as `url or conf.transport_url` does.
    let mut c = ini("[DEFAULT]\ntransport_url = rabbit://r1//\n");
    c.notifications.transport_url = Some(String::new());
    assert_eq!(c.notification_transport_url(), "rabbit://r1//");
}

#[test]
fn deprecated_names() {
    let c = ini(
        "[DEFAULT]\nrpc_thread_pool_size = 8\nrpc_cast_timeout = 5\nrpc_zmq_host = node7\n\
         use_pub_sub = yes\n[oslo_messaging_rabbit]\nkombu_reconnect_timeout = 20\n",
    );
    assert_eq!(c.default.executor_thread_pool_size, 8);
    assert_eq!(c.rabbit.kombu_missing_consumer_retry_timeout, 20);
    assert_eq!(c.zmq.zmq_linger, 5);
    assert_eq!(c.zmq.rpc_zmq_host, "node7");
    assert!(c.zmq.use_pub_sub);

    // The current name wins whatever the order.
    for text in [
        "[DEFAULT]\nrpc_thread_pool_size = 8\nexecutor_thread_pool_size = 16\n\
         [oslo_messaging_rabbit]\nkombu_reconnect_timeout = 20\n\
         kombu_missing_consumer_retry_timeout = 40\n[oslo_messaging_zmq]\nrpc_zmq_host = z\n\
         [DEFAULT]\nrpc_zmq_host = d\n",
        "[oslo_messaging_rabbit]\nkombu_missing_consumer_retry_timeout = 40\n\
         kombu_reconnect_timeout = 20\n[DEFAULT]\nrpc_zmq_host = d\n\
         executor_thread_pool_size = 16\nrpc_thread_pool_size = 8\n[oslo_messaging_zmq]\nrpc_zmq_host = z\n",
    ] {
        let c = ini(text);
        assert_eq!(c.default.executor_thread_pool_size, 16);
        assert_eq!(c.rabbit.kombu_missing_consumer_retry_timeout, 40);
        assert_eq!(c.zmq.rpc_zmq_host, "z");
    }

    // TOML accepts them too.
    let c = Config::from_toml_str(
        "[DEFAULT]\nrpc_thread_pool_size = 8\n[oslo_messaging_rabbit]\nkombu_reconnect_timeout = 20\n",
    )
    .unwrap();
    assert_eq!(c.default.executor_thread_pool_size, 8);
    assert_eq!(c.rabbit.kombu_missing_consumer_retry_timeout, 20);

    // A bad value under an old name is reported where it was written.
    let err = ini_err("[DEFAULT]\nrpc_thread_pool_size = many\n");
    assert!(
        err.starts_with("invalid value for [DEFAULT] rpc_thread_pool_size (line 2):"),
        "{err}"
    );
}

#[test]
fn removed_and_foreign_options_are_ignored() {
    let c = ini(
        "[DEFAULT]\nnotification_driver = messaging\nrpc_backend = rabbit\nsome_nova_option = 1\n\
         [oslo_messaging_rabbit]\nrabbit_host = old\nrabbit_password = x\nheartbeat_in_pthread = true\n\
         kombu_ssl_keyfile = /k\n[oslo_messaging_amqp]\nfoo = bar\n[matchmaker_redis]\nhost = r\n",
    );
    assert_eq!(c, Config::default());
}

#[test]
fn section_names_are_case_insensitive_except_default() {
    let c = ini("[OSLO_MESSAGING_RABBIT]\nssl = true\n[default]\ncontrol_exchange = x\n");
    assert!(c.rabbit.ssl);
    // `[default]` is not `[DEFAULT]` for oslo.config.
    assert_eq!(c.default.control_exchange, "openstack");
}

#[test]
fn unknown_option_in_a_messaging_section() {
    let err = ini_err("[DEFAULT]\n[oslo_messaging_rabbit]\nrabbit_qos_prefech_count = 10\n");
    assert_eq!(
        err,
        "unknown option [oslo_messaging_rabbit] rabbit_qos_prefech_count (line 3)"
    );
    let err = ini_err("[oslo_messaging_kafka]\nsecret_thing = hunter2\n");
    assert!(
        err.starts_with("unknown option [oslo_messaging_kafka] secret_thing"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let err = toml_err("[oslo_messaging_rabbit]\nrabbit_qos_prefech_count = 10\n");
    assert_eq!(
        err,
        "unknown option [oslo_messaging_rabbit] rabbit_qos_prefech_count"
    );
    let err = ini_err("[oslo_messaging_metrics]\nmetrics_enabeld = true\n");
    assert!(
        err.contains("[oslo_messaging_metrics] metrics_enabeld"),
        "{err}"
    );
}

#[test]
fn badly_typed_values_name_section_option_and_value() {
    let err = ini_err("[oslo_messaging_rabbit]\nssl = maybe\n");
    assert_eq!(
        err,
        "invalid value for [oslo_messaging_rabbit] ssl (line 2): \
         expected a boolean (true/false, yes/no, on/off, 1/0), got \"maybe\""
    );
    let err = ini_err("[DEFAULT]\nrpc_response_timeout = sixty\n");
    assert!(
        err.starts_with(
            "invalid value for [DEFAULT] rpc_response_timeout (line 2): expected a non-negative integer"
        ),
        "{err}"
    );
    assert!(err.ends_with("got \"sixty\""), "{err}");
    let err = ini_err("[oslo_messaging_rabbit]\nrabbit_qos_prefetch_count = 70000\n");
    assert!(err.contains("from 0 to 65535, got \"70000\""), "{err}");
    let err = ini_err("[oslo_messaging_notifications]\nretry = -1.5\n");
    assert!(
        err.contains("[oslo_messaging_notifications] retry"),
        "{err}"
    );
    let err = ini_err("[oslo_messaging_kafka]\nkafka_consumer_timeout = soon\n");
    assert!(
        err.contains("[oslo_messaging_kafka] kafka_consumer_timeout (line 2): expected a number, got \"soon\""),
        "{err}"
    );
    let err = toml_err("[oslo_messaging_rabbit]\nssl = \"maybe\"\n");
    assert!(
        err.starts_with("invalid value for [oslo_messaging_rabbit] ssl:"),
        "{err}"
    );
    assert!(err.contains("maybe"), "{err}");
    let err = toml_err("[oslo_messaging_rabbit]\nrabbit_qos_prefetch_count = -1\n");
    assert!(
        err.starts_with("invalid value for [oslo_messaging_rabbit] rabbit_qos_prefetch_count:"),
        "{err}"
    );
    let err = toml_err("oslo_messaging_rabbit = 3\n");
    assert_eq!(
        err,
        "[oslo_messaging_rabbit] must be a table, found a integer"
    );
    let err = toml_err("[DEFAULT]\ncontrol_exchange = nova\n");
    assert!(
        err.starts_with("TOML syntax error at line 2, column 20"),
        "{err}"
    );
}

#[test]
fn choices_and_limits_are_checked() {
    for (text, want) in [
        (
            "[oslo_messaging_rabbit]\nkombu_failover_strategy = random\n",
            "invalid value for [oslo_messaging_rabbit] kombu_failover_strategy: \
             expected one of round-robin, shuffle, got \"random\"",
        ),
        (
            "[oslo_messaging_rabbit]\nrabbit_login_method = amqplain\n",
            "[oslo_messaging_rabbit] rabbit_login_method",
        ),
        (
            "[oslo_messaging_rabbit]\nrpc_conn_pool_size = 0\n",
            "[oslo_messaging_rabbit] rpc_conn_pool_size: must be between 1",
        ),
        (
            "[oslo_messaging_rabbit]\nkombu_reconnect_delay = 5\n",
            "[oslo_messaging_rabbit] kombu_reconnect_delay: must be between 0 and 4.5",
        ),
        (
            "[oslo_messaging_rabbit]\nrabbit_retry_interval = 0\n",
            "rabbit_retry_interval",
        ),
        (
            "[oslo_messaging_kafka]\ncompression_codec = brotli\n",
            "compression_codec",
        ),
        (
            "[oslo_messaging_kafka]\nsecurity_protocol = TLS\n",
            "security_protocol",
        ),
        (
            "[oslo_messaging_zmq]\nrpc_zmq_matchmaker = etcd\n",
            "rpc_zmq_matchmaker",
        ),
        (
            "[oslo_messaging_zmq]\nrpc_zmq_serialization = xml\n",
            "rpc_zmq_serialization",
        ),
        (
            "[oslo_messaging_zmq]\nrpc_zmq_max_port = 65537\n",
            "rpc_zmq_max_port",
        ),
        (
            "[oslo_messaging_zmq]\nrpc_zmq_min_port = 65536\n",
            "rpc_zmq_min_port",
        ),
    ] {
        let err = ini_err(text);
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

#[test]
fn secrets_never_show() {
    const SECRET: &str = "hunter2";
    let text = format!(
        "[DEFAULT]\ntransport_url = rabbit://nova:{SECRET}@r1:5672,nova:{SECRET}x@r2:5672/\n\
         [oslo_messaging_notifications]\ntransport_url = kafka://user:{SECRET}@k1:9092\n\
         [oslo_messaging_kafka]\nssl_client_key_password = {SECRET}\n"
    );
    let c = ini(&text);
    assert_eq!(c.kafka.ssl_client_key_password, SECRET);
    for shown in [format!("{c:?}"), format!("{c:#?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(
            shown.contains("rabbit://nova:****@r1:5672,nova:****@r2:5672/"),
            "{shown}"
        );
        assert!(shown.contains("kafka://user:****@k1:9092"), "{shown}");
        assert!(
            shown.contains("ssl_client_key_password: \"****\""),
            "{shown}"
        );
    }
    assert!(format!("{:?}", Config::default()).contains("ssl_client_key_password: \"\""));

    // Wrongly typed secrets (only possible in TOML) are reported without their value.
    for toml_text in [
        format!("[oslo_messaging_kafka]\nssl_client_key_password = [\"{SECRET}\"]\n"),
        format!("[DEFAULT]\ntransport_url = {{ url = \"rabbit://u:{SECRET}@h\" }}\n"),
        format!("[oslo_messaging_notifications]\ntransport_url = [\"kafka://u:{SECRET}@h\"]\n"),
    ] {
        let err = toml_err(&toml_text);
        assert!(
            err.starts_with("invalid value for secret option ["),
            "{err}"
        );
        assert!(!err.contains(SECRET), "{err}");
    }
    // Syntax errors do not quote the line.
    let err = toml_err(&format!(
        "[DEFAULT]\ntransport_url = \"rabbit://u:{SECRET}@h\n"
    ));
    assert!(!err.contains(SECRET), "{err}");
    let err = toml_err(&format!(
        "[DEFAULT]\ntransport_url = rabbit://u:{SECRET}@h\n"
    ));
    assert!(!err.contains(SECRET), "{err}");
    let err = ini_err(&format!("[DEFAULT]\npassword {SECRET}\n"));
    assert!(!err.contains(SECRET), "{err}");
    // A forgotten `=` makes the value part of the name (oslo reads `a b: c` as the
    // option `a b`): the unknown option is named without the part after the space.
    let err = ini_err(&format!(
        "[oslo_messaging_kafka]\nssl_client_key_password {SECRET}:x\n"
    ));
    assert!(
        err.starts_with("unknown option [oslo_messaging_kafka] ssl_client_key_password..."),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");
    let err = ini_err(&format!("[DEFAULT]\n  rabbit://u:{SECRET}@h\n"));
    assert!(!err.contains(SECRET), "{err}");
    let err = ini_err(&format!(
        "[DEFAULT]\nloop = $transport_url\ntransport_url = rabbit://u:{SECRET}@h/$loop\n"
    ));
    assert!(!err.contains(SECRET), "{err}");
    // The crate-level error's Display too.
    let err = Config::from_toml_str(&format!(
        "[oslo_messaging_kafka]\nssl_client_key_password = 12345{SECRET}\n"
    ))
    .unwrap_err();
    assert!(!err.to_string().contains(SECRET), "{err}");
}

#[test]
fn substitution_and_quotes() {
    let c = ini("[DEFAULT]\nrabbit_pw = p$$ss\nhost = ctl\n\
         transport_url = \"rabbit://nova:${rabbit_pw}@$host:5672/\"\n\
         [oslo_messaging_notifications]\ntransport_url = ${DEFAULT.transport_url}\n");
    assert_eq!(c.default.transport_url, "rabbit://nova:p$ss@ctl:5672/");
    assert_eq!(
        c.notification_transport_url(),
        "rabbit://nova:p$ss@ctl:5672/"
    );
}

#[test]
fn substitution_loops() {
    // In an option of ours: an error.
    let err = ini_err("[DEFAULT]\ncontrol_exchange = $a\na = $control_exchange\n");
    assert_eq!(
        err,
        "invalid value for [DEFAULT] control_exchange (line 2): \
         $-substitution loops or nests too deeply"
    );
    // In another library's option: not our business.
    assert_eq!(ini("[DEFAULT]\na = $b\nb = $a\n"), Config::default());
}

#[test]
fn from_file_picks_the_format_by_extension() {
    let dir = std::env::temp_dir().join(format!(
        "messaging-core-config-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("nova.conf");
    let toml_path = dir.join("nova.TOML");
    std::fs::write(&conf, NOVA_CONF).unwrap();
    std::fs::write(&toml_path, NOVA_TOML).unwrap();
    let expected = ini(NOVA_CONF);
    assert_eq!(Config::from_file(&conf).unwrap(), expected);
    assert_eq!(Config::from_file(&toml_path).unwrap(), expected);
    assert_eq!(Config::from_ini_file(&conf).unwrap(), expected);
    assert_eq!(Config::from_toml_file(&toml_path).unwrap(), expected);

    let bad = dir.join("bad.ini");
    std::fs::write(&bad, "[oslo_messaging_rabbit]\nssl = maybe\n").unwrap();
    let err = Config::from_file(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.ini: invalid value for [oslo_messaging_rabbit] ssl"),
        "{err}"
    );
    let missing = Config::from_file(dir.join("missing.conf"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("cannot read") && missing.contains("missing.conf"),
        "{missing}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn never_panics_on_mangled_input() {
    let specials = [
        '[', ']', '=', ':', '$', '{', '}', '"', '\'', ' ', '\n', '\t', ',', '#', 'é',
    ];
    for source in [NOVA_CONF, NOVA_TOML] {
        let chars: Vec<char> = source.chars().collect();
        for i in (0..chars.len()).step_by(3) {
            let truncated: String = chars[..i].iter().collect();
            let _ = Config::from_ini_str(&truncated);
            let _ = Config::from_toml_str(&truncated);
            for s in specials {
                let mut mutated = chars.clone();
                mutated[i] = s;
                let mutated: String = mutated.into_iter().collect();
                let _ = Config::from_ini_str(&mutated);
                let _ = Config::from_toml_str(&mutated);
            }
        }
    }
}
