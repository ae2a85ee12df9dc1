//! TestRoutingNotifier

use super::*;

#[test]
fn routing_load_notifiers_no_config() {
    let table = RoutingConfig::default();
    assert!(table.groups().is_empty());
    assert!(table.used_drivers().is_empty());
}

#[test]
fn routing_load_notifiers_no_extensions() {
    for text in ["", "---\n", "~\n"] {
        let table = RoutingConfig::from_yaml(text).unwrap();
        assert!(table.groups().is_empty(), "{text:?}");
        assert!(table.used_drivers().is_empty(), "{text:?}");
    }
}

/// oslo's `group_1: {rpc: foo}` only checks the group names (its driver values are
/// placeholders oslo would choke on when notifying); with criteria maps:
#[test]
fn routing_load_notifiers_config() {
    let table = RoutingConfig::from_yaml("group_1:\n  rpc: {}\ngroup_2:\n  rpc: {}\n").unwrap();
    assert_eq!(table.groups(), ["group_1", "group_2"]);
    assert_eq!(table.used_drivers(), ["rpc"]);
}

#[test]
fn routing_should_load_plugin() {
    let table = RoutingConfig::from_yaml("group_1:\n  zoo: {}\ngroup_2:\n  blah:\n").unwrap();
    let used = table.used_drivers();
    assert_eq!(used, ["blah", "zoo"]);
    assert!(!used.contains(&"foo"));
    assert!(used.contains(&"zoo"));
}

#[test]
fn routing_get_drivers_for_message_accepted_events() {
    let table = RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_events:\n      - foo.*\n      - blah.zoo.*\n      - zip\n",
    )
    .unwrap();
    assert!(table.drivers_for("unknown", Info).is_empty());
    assert_eq!(table.drivers_for("foo.1", Info), ["rpc"]);
    assert!(table.drivers_for("foo", Info).is_empty());
    assert_eq!(table.drivers_for("blah.zoo.zing", Info), ["rpc"]);
    assert_eq!(table.drivers_for("zip", Info), ["rpc"]);
}

/// oslo's ('unknown' priority) row: every priority other than the accepted ones.
#[test]
fn routing_get_drivers_for_message_accepted_priorities() {
    let table = RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_priorities:\n      - info\n      - error\n",
    )
    .unwrap();
    for priority in Priority::ALL {
        let expected: &[&str] = if matches!(priority, Priority::Info | Priority::Error) {
            &["rpc"]
        } else {
            &[]
        };
        assert_eq!(
            table.drivers_for("anything", priority),
            expected,
            "{priority:?}"
        );
    }
}

#[test]
fn routing_get_drivers_for_message_both() {
    let table = RoutingConfig::from_yaml(
        "group_1:
  rpc:
    accepted_priorities: [info]
    accepted_events: ['foo.*']
  driver_1:
    accepted_priorities: [info]
  driver_2:
    accepted_events: ['foo.*']
",
    )
    .unwrap();
    // oslo's 'unknown' priority: one that is not info.
    assert_eq!(table.drivers_for("foo.blah", Debug), ["driver_2"]);
    assert_eq!(table.drivers_for("unknown", Info), ["driver_1"]);
    assert_eq!(
        table.drivers_for("foo.blah", Info),
        ["driver_1", "driver_2", "rpc"]
    );
}

/// test_filter_func / test_notify: the drivers accepted in every group, together.
#[test]
fn routing_union_over_groups() {
    let table =
        RoutingConfig::from_yaml("group_1:\n  rpc: {}\ngroup_2:\n  foo: {}\n  rpc: {}\n").unwrap();
    assert_eq!(table.drivers_for("any", Info), ["foo", "rpc"]);
}

/// As `fnmatch` on POSIX: event patterns are case-sensitive; priority patterns are
/// lower-cased before matching.
#[test]
fn routing_pattern_case() {
    let table = RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_events: ['Foo.*']\n  log:\n    accepted_priorities: [INFO]\n",
    )
    .unwrap();
    assert_eq!(table.drivers_for("Foo.1", Debug), ["rpc"]);
    assert!(table.drivers_for("foo.1", Debug).is_empty());
    assert_eq!(table.drivers_for("x", Info), ["log"]);
}

fn config_error(result: Result<RoutingConfig>) -> String {
    match result {
        Err(Error::Config(text)) => text.to_string(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn routing_invalid_yaml() {
    let text = config_error(RoutingConfig::from_yaml("group_1: [unclosed"));
    assert!(text.contains("invalid routing notifier YAML"), "{text}");
    let text = config_error(RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_event: [foo]\n",
    ));
    assert!(text.contains("accepted_event"), "{text}");
    // oslo's placeholder `{rpc: foo}`: a driver's criteria must be a map.
    let text = config_error(RoutingConfig::from_yaml("group_1: {rpc: foo}\n"));
    assert!(
        text.contains("invalid routing notifier YAML") && text.contains("invalid type"),
        "{text}"
    );
}

#[test]
fn routing_invalid_pattern() {
    let text = config_error(RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_events: ['[']\n",
    ));
    assert!(
        text.contains("invalid routing pattern") && text.contains("\"[\""),
        "{text}"
    );
}

/// test_notify_filtered, end to end: only the accepted drivers send. The table
/// routes `my_event` to messagingv2, info to log, and `nothing` to messaging.
#[tokio::test]
async fn routing_notify_filtered() {
    let table = RoutingConfig::from_yaml(
        "group_1:
  messagingv2: {accepted_events: [my_event]}
  log: {accepted_priorities: [info]}
  messaging: {accepted_events: [nothing]}
",
    )
    .unwrap();
    assert_eq!(table.drivers_for("my_event", Info), ["log", "messagingv2"]);
    let transport = memory_transport(&Config::default()).await;
    let (listeners, mut rx) = listen_on_candidates(&transport, Info).await;
    let notifier = Notifier::new(&transport, "test").sinks([Sink::Routing(Arc::new(table))]);
    assert!(notifier.is_enabled());
    notifier.info(&Context::new(), "my_event", json!({})).await;
    let got = receive_exactly(&mut rx, 1, "my_event").await;
    assert_eq!(got[0].1.event_type, "my_event");
    notifier.info(&Context::new(), "nothing", json!({})).await;
    let got = receive_exactly(&mut rx, 1, "nothing").await;
    assert_eq!(got[0].1.event_type, "nothing");
    notifier.info(&Context::new(), "other", json!({})).await;
    receive_exactly(&mut rx, 0, "other").await;
    for l in listeners {
        l.stop().await;
    }
}

/// `[oslo_messaging_notifications] driver = routing` with `routing_config` naming the
/// YAML file.
#[tokio::test]
async fn routing_from_config() {
    let path = std::env::temp_dir().join(format!("routing_{}.yaml", new_id()));
    std::fs::write(
        &path,
        "group_1:\n  messagingv2: {accepted_events: ['compute.*']}\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.notifications.driver = vec!["routing".into()];
    config.notifications.routing_config = path.to_string_lossy().into_owned();
    let transport = memory_transport(&config).await;
    let notifier = Notifier::from_config(&transport, "test").unwrap();
    let (listeners, mut rx) = listen_on_candidates(&transport, Info).await;
    notifier
        .info(&Context::new(), "compute.start", json!({}))
        .await;
    notifier
        .info(&Context::new(), "network.start", json!({}))
        .await;
    let got = receive_exactly(&mut rx, 1, "routing from config").await;
    assert_eq!(got[0].1.event_type, "compute.start");
    for l in listeners {
        l.stop().await;
    }

    std::fs::write(&path, "group_1:\n  rpc: {accepted_events: ['compute.*']}\n").unwrap();
    match Notifier::from_config(&transport, "test") {
        Err(Error::Config(text)) => assert!(text.contains("\"rpc\""), "{text}"),
        other => panic!("expected a configuration error for driver rpc, got {other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
}
