use serde::Deserialize;

use super::*;
use crate::{DriverRegistry, TransportUrl};

/// A driver section of every kind of option, standing for the drivers' own (which live
/// in their crates and test their options there).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
struct TestSection {
    flag: bool,
    count: u16,
    ratio: f64,
    mode: String,
    maybe: Option<String>,
    backlog: Option<u64>,
    list: Vec<String>,
    password: String,
    host: String,
    retry_timeout: u64,
    unused: u32,
}

impl Default for TestSection {
    fn default() -> Self {
        TestSection {
            flag: false,
            count: 0,
            ratio: 1.0,
            mode: "fast".into(),
            maybe: None,
            backlog: None,
            list: Vec::new(),
            password: String::new(),
            host: "localhost".into(),
            retry_timeout: 60,
            unused: 3,
        }
    }
}

impl DriverSection for TestSection {
    const SECTION: &'static str = "oslo_messaging_test";
    const DEPRECATED: &'static [Deprecated] = &[
        Deprecated::new("oslo_messaging_test", "reconnect_timeout", "retry_timeout"),
        Deprecated::new("DEFAULT", "host", "host"),
    ];
    const REMOVED: &'static [&'static str] = &["old_host", "old_port"];
    const IGNORED: &'static [Ignored] = &[Ignored::new("unused", "tests do not need it")];
    const SECRETS: &'static [&'static str] = &["password"];

    fn validate(&self) -> Result<()> {
        check_range(Self::SECTION, "ratio", self.ratio, 0.0, 4.5)?;
        check_choice(Self::SECTION, "mode", &self.mode, &["fast", "slow"])
    }
}

fn test_section(c: &Config) -> TestSection {
    c.section().unwrap_or_else(|e| panic!("{e}"))
}

fn test_section_err(c: &Config) -> String {
    match c.section::<TestSection>() {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(Error::Config(message)) => message.to_string(),
        Err(other) => panic!("expected a config error, got {other}"),
    }
}

/// The error of reading the test section from an INI text (which must load).
fn section_ini_err(text: &str) -> String {
    test_section_err(&ini(text))
}

/// The error of reading the test section from a TOML text (which must load).
fn section_toml_err(text: &str) -> String {
    test_section_err(&Config::from_toml_str(text).unwrap_or_else(|e| panic!("{e}")))
}

/// The core's sections of `c`, for comparing configurations.
fn core(c: &Config) -> (DefaultSection, NotificationsSection, MetricsSection) {
    (
        c.default.clone(),
        c.notifications.clone(),
        c.metrics.clone(),
    )
}

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

[oslo_messaging_test]
flag = yes
count: 64
list = a,
    b
password = TEST_PASS

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

[oslo_messaging_test]
flag = true
count = 64
list = ["a", "b"]
password = "TEST_PASS"
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

    let m = &c.metrics;
    assert!(!m.metrics_enabled);
    assert_eq!(m.metrics_buffer_size, 1000);
    assert_eq!(m.metrics_socket_file, "/var/tmp/metrics_collector.sock");
    assert_eq!(m.metrics_process_name, "");
    assert_eq!(m.metrics_thread_stop_timeout, 10);

    // A driver section the configuration does not set has its defaults.
    assert_eq!(test_section(&c), TestSection::default());

    assert_eq!(c.rpc_transport_url(), "rabbit://");
    assert_eq!(c.notification_transport_url(), "rabbit://");
    c.validate().unwrap();
    assert!(!local_hostname().is_empty());
}

#[test]
fn empty_files_give_the_defaults() {
    let defaults = core(&Config::default());
    for c in [
        ini(""),
        ini("# nothing\n\n[DEFAULT]\n"),
        Config::from_toml_str("").unwrap(),
        Config::from_toml_str("[DEFAULT]\n[oslo_messaging_test]\n").unwrap(),
    ] {
        assert_eq!(core(&c), defaults);
        assert_eq!(test_section(&c), TestSection::default());
    }
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
    let t = test_section(&c);
    assert!(t.flag);
    assert_eq!(t.count, 64);
    assert_eq!(t.list, ["a", "b"]);
    assert_eq!(t.password, "TEST_PASS");
    // Untouched options keep their defaults.
    assert_eq!(t.ratio, 1.0);
    assert_eq!(t.mode, "fast");
}

#[test]
fn toml_form_gives_the_same_config() {
    let from_toml = Config::from_toml_str(NOVA_TOML).unwrap();
    let from_ini = ini(NOVA_CONF);
    assert_eq!(core(&from_toml), core(&from_ini));
    assert_eq!(test_section(&from_toml), test_section(&from_ini));
}

#[test]
fn serialized_core_sections_read_back() {
    let mut c = ini(NOVA_CONF);
    c.notifications.transport_url = Some("kafka://k1:9092".into());
    c.metrics.metrics_process_name = "nova-api".into();
    let mut table = toml::Table::new();
    for (name, section) in [
        ("DEFAULT", toml::Value::try_from(&c.default).unwrap()),
        (
            "oslo_messaging_notifications",
            toml::Value::try_from(&c.notifications).unwrap(),
        ),
        (
            "oslo_messaging_metrics",
            toml::Value::try_from(&c.metrics).unwrap(),
        ),
    ] {
        table.insert(name.into(), section);
    }
    let text = toml::to_string(&table).unwrap();
    assert_eq!(core(&Config::from_toml_str(&text).unwrap()), core(&c));
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
    // In a driver section too, the last occurrence wins.
    let c = ini("[oslo_messaging_test]\ncount = 1\ncount = 2\n[oslo_messaging_test]\ncount = 3\n");
    assert_eq!(test_section(&c).count, 3);
}

#[test]
fn lists_and_continuation_lines() {
    let c = ini(
        "[oslo_messaging_notifications]\ntopics = notifications,\n    searchlight ,\n\tother,\n\
         [oslo_messaging_test]\nlist =\n",
    );
    assert_eq!(
        c.notifications.topics,
        ["notifications", "searchlight", "other"]
    );
    assert!(test_section(&c).list.is_empty());
    let c = ini("[oslo_messaging_notifications]\ntopics =\n");
    assert!(c.notifications.topics.is_empty());
}

#[test]
fn empty_values() {
    let c = ini("[oslo_messaging_test]\nmaybe =\nhost =\n\
         [oslo_messaging_notifications]\ntransport_url =\n[oslo_messaging_test]\nbacklog = 7\n");
    let t = test_section(&c);
    assert_eq!(t.maybe, None);
    assert_eq!(t.host, "");
    assert_eq!(c.notifications.transport_url, None);
    assert_eq!(t.backlog, Some(7));
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
        let c = ini(&format!("[oslo_messaging_test]\nflag = {word}\n"));
        assert_eq!(test_section(&c).flag, want, "{word}");
        let c = ini(&format!("[DEFAULT]\nrpc_ping_enabled = {word}\n"));
        assert_eq!(c.default.rpc_ping_enabled, want, "{word}");
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
    let c = ini("[DEFAULT]\nrpc_thread_pool_size = 8\nhost = node7\n\
         [oslo_messaging_test]\nreconnect_timeout = 20\n");
    assert_eq!(c.default.executor_thread_pool_size, 8);
    let t = test_section(&c);
    assert_eq!(t.retry_timeout, 20);
    assert_eq!(t.host, "node7");
    let (_, warnings) = c.load_section::<TestSection>(None).unwrap();
    assert_eq!(
        warnings,
        [
            "option [oslo_messaging_test] reconnect_timeout is deprecated, use \
             [oslo_messaging_test] retry_timeout",
            "option [DEFAULT] host is deprecated, use [oslo_messaging_test] host",
        ]
    );

    // The current name wins whatever the order.
    for text in [
        "[DEFAULT]\nrpc_thread_pool_size = 8\nexecutor_thread_pool_size = 16\n\
         [oslo_messaging_test]\nreconnect_timeout = 20\n\
         retry_timeout = 40\nhost = z\n\
         [DEFAULT]\nhost = d\n",
        "[oslo_messaging_test]\nretry_timeout = 40\n\
         reconnect_timeout = 20\n[DEFAULT]\nhost = d\n\
         executor_thread_pool_size = 16\nrpc_thread_pool_size = 8\n[oslo_messaging_test]\nhost = z\n",
    ] {
        let c = ini(text);
        assert_eq!(c.default.executor_thread_pool_size, 16);
        let t = test_section(&c);
        assert_eq!(t.retry_timeout, 40);
        assert_eq!(t.host, "z");
    }

    // TOML accepts them too.
    let c = Config::from_toml_str(
        "[DEFAULT]\nrpc_thread_pool_size = 8\n[oslo_messaging_test]\nreconnect_timeout = 20\n",
    )
    .unwrap();
    assert_eq!(c.default.executor_thread_pool_size, 8);
    assert_eq!(test_section(&c).retry_timeout, 20);

    // A bad value under an old name is reported where it was written.
    let err = ini_err("[DEFAULT]\nrpc_thread_pool_size = many\n");
    assert!(
        err.starts_with("invalid value for [DEFAULT] rpc_thread_pool_size (line 2):"),
        "{err}"
    );
    let err = section_ini_err("[oslo_messaging_test]\n\nreconnect_timeout = soon\n");
    assert!(
        err.starts_with("invalid value for [oslo_messaging_test] reconnect_timeout (line 3):"),
        "{err}"
    );
}

#[test]
fn removed_and_foreign_options_are_ignored() {
    let c = ini(
        "[DEFAULT]\nnotification_driver = messaging\nrpc_backend = rabbit\nsome_nova_option = 1\n\
         [oslo_messaging_test]\nold_host = old\nold_port = x\n\
         [oslo_messaging_amqp]\nfoo = bar\n[matchmaker_redis]\nhost = r\n",
    );
    assert_eq!(core(&c), core(&Config::default()));
    let (t, warnings) = c.load_section::<TestSection>(None).unwrap();
    assert_eq!(t, TestSection::default());
    assert_eq!(
        warnings,
        [
            "ignoring option [oslo_messaging_test] old_host: removed from oslo.messaging",
            "ignoring option [oslo_messaging_test] old_port: removed from oslo.messaging",
        ]
    );
    // `[matchmaker_redis]` is another library's, so its `host` is not the old `host`.
    assert_eq!(t.host, "localhost");
}

#[test]
fn ignored_options_are_read_and_typed() {
    let c = ini("[oslo_messaging_test]\nunused = 7\n");
    assert_eq!(test_section(&c).unused, 7);
    let err = section_ini_err("[oslo_messaging_test]\nunused = seven\n");
    assert!(
        err.starts_with("invalid value for [oslo_messaging_test] unused (line 2)"),
        "{err}"
    );
    let c = ini("[oslo_messaging_metrics]\nmetrics_buffer_size = 5\nmetrics_enabled = on\n");
    assert_eq!(c.metrics.metrics_buffer_size, 5);
    assert!(c.metrics.metrics_enabled);
}

#[test]
fn section_names_are_case_insensitive_except_default() {
    let c = ini("[OSLO_MESSAGING_TEST]\nflag = true\n[default]\ncontrol_exchange = x\n");
    assert!(test_section(&c).flag);
    // `[default]` is not `[DEFAULT]` for oslo.config.
    assert_eq!(c.default.control_exchange, "openstack");
}

#[test]
fn unknown_option_in_a_messaging_section() {
    // A driver's section: when it is read.
    let c = ini("[DEFAULT]\n[oslo_messaging_test]\nflga = 10\n");
    assert_eq!(
        test_section_err(&c),
        "unknown option [oslo_messaging_test] flga (line 3)"
    );
    let err = section_ini_err("[oslo_messaging_test]\nsecret_thing = hunter2\n");
    assert!(
        err.starts_with("unknown option [oslo_messaging_test] secret_thing"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let err = section_toml_err("[oslo_messaging_test]\nflga = 10\n");
    assert_eq!(err, "unknown option [oslo_messaging_test] flga");
    // The core's sections: at once.
    let err = ini_err("[oslo_messaging_metrics]\nmetrics_enabeld = true\n");
    assert_eq!(
        err,
        "unknown option [oslo_messaging_metrics] metrics_enabeld (line 2)"
    );
    let err = ini_err("[oslo_messaging_notifications]\ntopic = x\n");
    assert!(
        err.contains("[oslo_messaging_notifications] topic (line 2)"),
        "{err}"
    );
}

#[test]
fn badly_typed_values_name_section_option_and_value() {
    let err = section_ini_err("[oslo_messaging_test]\nflag = maybe\n");
    assert_eq!(
        err,
        "invalid value for [oslo_messaging_test] flag (line 2): \
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
    let err = section_ini_err("[oslo_messaging_test]\ncount = 70000\n");
    assert!(err.contains("from 0 to 65535, got \"70000\""), "{err}");
    let err = ini_err("[oslo_messaging_notifications]\nretry = -1.5\n");
    assert!(
        err.contains("[oslo_messaging_notifications] retry"),
        "{err}"
    );
    let err = section_ini_err("[oslo_messaging_test]\nratio = soon\n");
    assert!(
        err.contains("[oslo_messaging_test] ratio (line 2): expected a number, got \"soon\""),
        "{err}"
    );
    let err = section_toml_err("[oslo_messaging_test]\nflag = \"maybe\"\n");
    assert!(
        err.starts_with("invalid value for [oslo_messaging_test] flag:"),
        "{err}"
    );
    assert!(err.contains("maybe"), "{err}");
    let err = section_toml_err("[oslo_messaging_test]\ncount = -1\n");
    assert!(
        err.starts_with("invalid value for [oslo_messaging_test] count:"),
        "{err}"
    );
    let err = toml_err("oslo_messaging_test = 3\n");
    assert_eq!(
        err,
        "[oslo_messaging_test] must be a table, found a integer"
    );
    let err = toml_err("[DEFAULT]\ncontrol_exchange = nova\n");
    assert!(
        err.starts_with("TOML syntax error at line 2, column 20"),
        "{err}"
    );
}

#[test]
fn choices_and_limits_are_checked() {
    let err = section_ini_err("[oslo_messaging_test]\nmode = random\n");
    assert_eq!(
        err,
        "invalid value for [oslo_messaging_test] mode: expected one of fast, slow, got \"random\""
    );
    let err = section_ini_err("[oslo_messaging_test]\nratio = 5\n");
    assert_eq!(
        err,
        "invalid value for [oslo_messaging_test] ratio: must be between 0 and 4.5, got 5"
    );
}

#[test]
fn url_query_overrides_a_driver_section() {
    let url = |text: &str| -> TransportUrl { text.parse().unwrap() };
    let c = ini(
        "[oslo_messaging_test]\ncount = 3\nratio = 2\nreconnect_timeout = 5\n\
         [oslo_messaging_rabbit]\nanything = goes\n",
    );
    let t: TestSection = c
        .section_with_url(&url("test://h/?count=7&flag=yes&maybe=x&retry_timeout=9"))
        .unwrap();
    assert_eq!((t.count, t.ratio, t.flag), (7, 2.0, true));
    assert_eq!(t.maybe.as_deref(), Some("x"));
    // The URL's current name beats the file's old one.
    assert_eq!(t.retry_timeout, 9);
    // No query changes nothing.
    assert_eq!(
        c.section_with_url::<TestSection>(&url("test://h/"))
            .unwrap(),
        test_section(&c)
    );
    // A TOML file's section takes INI-typed values from the URL.
    let toml = Config::from_toml_str("[oslo_messaging_test]\ncount = 3\n").unwrap();
    let t: TestSection = toml.section_with_url(&url("test://h/?list=a,b")).unwrap();
    assert_eq!(
        (t.count, t.list),
        (3, vec!["a".to_string(), "b".to_string()])
    );

    for (query, want) in [
        (
            "nope=1",
            "query parameter \"nope\" is not a [oslo_messaging_test] option",
        ),
        (
            "reconnect_timeout=1",
            "\"reconnect_timeout\" is not a [oslo_messaging_test] option",
        ),
        (
            "count=lots",
            "query parameter \"count\": configuration error: invalid value for [oslo_messaging_test] count: expected an integer from 0 to 65535, got \"lots\"",
        ),
        ("password=x&count=-1", "query parameter \"count\""),
    ] {
        match c.section_with_url::<TestSection>(&url(&format!("test://u:s3cret@h/?{query}"))) {
            Err(Error::InvalidUrl { url, reason }) => {
                assert!(reason.contains(want), "{query}: {reason}");
                assert!(!url.contains("s3cret"), "{url}");
            }
            other => panic!("{query}: {other:?}"),
        }
    }
    // The URL's values are checked like the file's.
    let err = c
        .section_with_url::<TestSection>(&url("test://h/?mode=slowest"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected one of fast, slow"), "{err}");
}

#[test]
fn secrets_never_show() {
    const SECRET: &str = "hunter2";
    let text = format!(
        "[DEFAULT]\ntransport_url = rabbit://nova:{SECRET}@r1:5672,nova:{SECRET}x@r2:5672/\n\
         [oslo_messaging_notifications]\ntransport_url = kafka://user:{SECRET}@k1:9092\n\
         [oslo_messaging_test]\npassword = {SECRET}\n"
    );
    let c = ini(&text);
    assert_eq!(test_section(&c).password, SECRET);
    for shown in [format!("{c:?}"), format!("{c:#?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(
            shown.contains("rabbit://nova:****@r1:5672,nova:****@r2:5672/"),
            "{shown}"
        );
        assert!(shown.contains("kafka://user:****@k1:9092"), "{shown}");
        // A driver's options are shown by name only.
        assert!(shown.contains("password"), "{shown}");
    }

    // Wrongly typed secrets (only possible in TOML) are reported without their value.
    for toml_text in [
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
    let err = section_toml_err(&format!(
        "[oslo_messaging_test]\npassword = [\"{SECRET}\"]\n"
    ));
    assert_eq!(
        err,
        "invalid value for secret option [oslo_messaging_test] password (value not shown)"
    );
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
    let err = section_ini_err(&format!("[oslo_messaging_test]\npassword {SECRET}:x\n"));
    assert!(
        err.starts_with("unknown option [oslo_messaging_test] password..."),
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
        "[oslo_messaging_test]\npassword = 12345{SECRET}\n"
    ))
    .unwrap_err();
    assert!(!err.to_string().contains(SECRET), "{err}");
}

#[test]
fn substitution_and_quotes() {
    let c = ini("[DEFAULT]\nrabbit_pw = p$$ss\nhost = ctl\n\
         transport_url = \"rabbit://nova:${rabbit_pw}@$host:5672/\"\n\
         [oslo_messaging_notifications]\ntransport_url = ${DEFAULT.transport_url}\n\
         [oslo_messaging_test]\nmode = ${DEFAULT.speed}\n[DEFAULT]\nspeed = slow\n");
    assert_eq!(c.default.transport_url, "rabbit://nova:p$ss@ctl:5672/");
    assert_eq!(
        c.notification_transport_url(),
        "rabbit://nova:p$ss@ctl:5672/"
    );
    assert_eq!(test_section(&c).mode, "slow");
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
    let err = section_ini_err("[oslo_messaging_test]\nmode = $mode\n");
    assert_eq!(
        err,
        "invalid value for [oslo_messaging_test] mode (line 2): \
         $-substitution loops or nests too deeply"
    );
    // In another library's option: not our business.
    let c = ini("[DEFAULT]\na = $b\nb = $a\n");
    assert_eq!(core(&c), core(&Config::default()));
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
    for c in [
        Config::from_file(&conf).unwrap(),
        Config::from_file(&toml_path).unwrap(),
        Config::from_ini_file(&conf).unwrap(),
        Config::from_toml_file(&toml_path).unwrap(),
    ] {
        assert_eq!(core(&c), core(&expected));
        assert_eq!(test_section(&c), test_section(&expected));
    }

    let bad = dir.join("bad.ini");
    std::fs::write(&bad, "[DEFAULT]\nrpc_ping_enabled = maybe\n").unwrap();
    let err = Config::from_file(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.ini: invalid value for [DEFAULT] rpc_ping_enabled"),
        "{err}"
    );
    // A driver's section names the file too, though it is read later.
    std::fs::write(&bad, "[oslo_messaging_test]\nflag = maybe\n").unwrap();
    let err = Config::from_file(&bad)
        .unwrap()
        .section::<TestSection>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.ini: invalid value for [oslo_messaging_test] flag (line 2)"),
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

#[tokio::test]
async fn the_registry_checks_every_registered_section() {
    let mut registry = DriverRegistry::with_memory();
    registry.register_section::<TestSection>();
    assert_eq!(registry.sections(), ["oslo_messaging_test"]);
    let typo = ini("[DEFAULT]\ntransport_url = memory://\n[oslo_messaging_test]\nflga = 1\n");
    // The memory driver does not read the test section; the registry checks it anyway.
    let err = registry.rpc_transport(&typo).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration error: unknown option [oslo_messaging_test] flga (line 4)"
    );
    let err = registry.check_config(&typo).unwrap_err();
    assert!(err.to_string().contains("flga"), "{err}");
    // Without the section registered, nobody claims it: not checked.
    DriverRegistry::with_memory()
        .rpc_transport(&typo)
        .await
        .unwrap();

    let fine = ini(
        "[DEFAULT]\ntransport_url = memory://\n[oslo_messaging_test]\nold_host = h\n\
         [oslo_messaging_metrics]\nmetrics_enabled = true\n",
    );
    let warnings = registry.check_config(&fine).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("old_host: removed"));
    registry.notification_transport(&fine).await.unwrap();
}

#[test]
fn never_panics_on_mangled_input() {
    let specials = [
        '[', ']', '=', ':', '$', '{', '}', '"', '\'', ' ', '\n', '\t', ',', '#', 'é',
    ];
    let load = |text: &str| {
        for c in [Config::from_ini_str(text), Config::from_toml_str(text)]
            .into_iter()
            .flatten()
        {
            let _ = c.section::<TestSection>();
        }
    };
    for source in [NOVA_CONF, NOVA_TOML] {
        let chars: Vec<char> = source.chars().collect();
        for i in (0..chars.len()).step_by(3) {
            let truncated: String = chars[..i].iter().collect();
            load(&truncated);
            for s in specials {
                let mut mutated = chars.clone();
                mutated[i] = s;
                let mutated: String = mutated.into_iter().collect();
                load(&mutated);
            }
        }
    }
}
