//! Against RabbitMQ

use super::*;

/// The broker URL for these tests, after checking that something listens there.
fn rabbit() -> String {
    let url = std::env::var("RABBIT_URL")
        .unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5672/".to_string());
    require_tcp(
        &first_host(&url),
        "RabbitMQ",
        "RABBIT_URL",
        "scripts/services",
    );
    url
}

/// `host:port` of the first host of a transport URL (port 5672 when it names none).
fn first_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = authority.split(',').next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.is_empty() { "localhost" } else { host };
    let has_port = match host.rfind(']') {
        Some(end) => host[end..].contains(':'),
        None => host.contains(':'),
    };
    if has_port {
        host.to_string()
    } else {
        format!("{host}:5672")
    }
}

/// Starts `omsg serve` (`line` names the transport, topic and server) and waits for its
/// `ready`.
fn serve(line: &str) -> Omsg {
    let mut omsg = Omsg::spawn(&args(&format!("serve {line}"), &[]));
    let ready = omsg.expect_line(READY_LIMIT);
    assert_eq!(ready, "ready", "stderr:\n{}", omsg.stderr.text());
    omsg
}

/// Starts `omsg listen` and waits for its `ready` line on stderr.
fn listen(line: &str) -> Omsg {
    let mut omsg = Omsg::spawn(&args(&format!("listen {line}"), &[]));
    let ready = omsg
        .stderr
        .wait_for(0, READY_LIMIT, |l| l.starts_with("ready"));
    if ready.is_none() {
        let state = match omsg.child.try_wait() {
            Ok(Some(status)) => format!("exited ({status})"),
            _ => format!("is not ready after {READY_LIMIT:?}"),
        };
        panic!("`{}` {state}; stderr:\n{}", omsg.what, omsg.stderr.text());
    }
    omsg
}

/// The request line `omsg serve` prints for `method` with `args`.
fn request_line(method: &str, args: Value) -> Value {
    json!({"method": method, "args": args})
}

#[test]
fn rabbit_serve_answers_echo_add_and_sleep() {
    let url = rabbit();
    let topic = unique("omsg-calc");
    let mut server = serve(&format!("--url {url} --topic {topic} --server s1"));
    let call = format!("call --url {url} --topic {topic} --timeout 20");
    let data = json!({"x": [1, "two", null, {"y": 1.5}], "z": "é"});
    let data_args = json!({"data": data}).to_string();
    let echo = run_ok(&args(&call, &["echo", &data_args]));
    assert_eq!(parse(&echo.stdout), data);
    let announced = parse(&server.expect_line(ARRIVAL_LIMIT));
    assert_eq!(announced, request_line("echo", json!({"data": data})));

    let sum = run_ok(&args(
        &call,
        &["--server", "s1", "add", r#"{"a": 2, "b": 3}"#],
    ));
    assert_eq!(sum.stdout, "5");
    let sum = run_ok(&args(&call, &["add", r#"{"a": "ab", "b": "c"}"#]));
    assert_eq!(parse(&sum.stdout), json!("abc"));
    let ctx = r#"{"user": "u1"}"#;
    let slept = run_ok(&args(
        &call,
        &["--context", ctx, "sleep", r#"{"seconds": 0.2}"#],
    ));
    assert_eq!(parse(&slept.stdout), json!(0.2));
    let null = run_ok(&args(&call, &["echo", r#"{"data": null}"#]));
    assert_eq!(null.stdout, "null");
}

#[test]
fn rabbit_remote_errors_exit_1_with_class_module_and_message() {
    let url = rabbit();
    let topic = unique("omsg-fail");
    let _server = serve(&format!("--url {url} --topic {topic} --server s1"));
    let call = format!("call --url {url} --topic {topic} --timeout 20");
    let done = run_fails(
        &args(&call, &["fail", r#"{"message": "the-answer-is-no"}"#]),
        1,
        &["ValueError", "builtins", "the-answer-is-no"],
    );
    assert!(done.stdout.is_empty(), "{done:?}");
    run_fails(
        &args(&call, &["add", r#"{"a": 1, "b": "x"}"#]),
        1,
        &["TypeError", "builtins", "unsupported operand"],
    );
    run_fails(
        &args(&call, &["no_such_method"]),
        1,
        &["NoSuchMethod", "oslo_messaging.rpc.dispatcher"],
    );
}

#[test]
fn rabbit_a_call_nobody_answers_exits_2_at_the_timeout() {
    let url = rabbit();
    let topic = unique("omsg-nobody");
    let line = format!("call --url {url} --topic {topic} --timeout 1 echo");
    let done = run_fails(&args(&line, &[r#"{"data": 1}"#]), 2, &["timeout"]);
    assert!(done.took < Duration::from_secs(15), "{done:?}");
    assert!(done.stdout.is_empty(), "{done:?}");
}

#[test]
fn rabbit_casts_reach_one_server_the_named_one_or_all_with_fanout() {
    let url = rabbit();
    let topic = unique("omsg-cast");
    let mut s1 = serve(&format!("--url {url} --topic {topic} --server s1"));
    let mut s2 = serve(&format!("--url {url} --topic {topic} --server s2"));
    let cast = |options: &str, data: &str| {
        let line = format!("cast --url {url} --topic {topic} --timeout 20 {options} echo");
        let done = run_ok(&args(&line, &[&json!({"data": data}).to_string()]));
        assert!(done.stdout.is_empty(), "{done:?}");
    };
    let expected = |data: &str| request_line("echo", json!({"data": data}));

    cast("--server s2", "directed");
    assert_eq!(parse(&s2.expect_line(ARRIVAL_LIMIT)), expected("directed"));
    let stray = s1.next_line(QUIET_PERIOD);
    assert_eq!(stray, None, "a directed cast reached another server");

    cast("--fanout", "everyone");
    assert_eq!(parse(&s1.expect_line(ARRIVAL_LIMIT)), expected("everyone"));
    assert_eq!(parse(&s2.expect_line(ARRIVAL_LIMIT)), expected("everyone"));

    cast("", "anyone");
    let deadline = Instant::now() + ARRIVAL_LIMIT;
    let (mut got1, mut got2) = (None, None);
    while got1.is_none() && got2.is_none() && Instant::now() < deadline {
        got1 = s1.next_line(Duration::from_millis(50));
        got2 = s2.next_line(Duration::from_millis(50));
    }
    got1 = got1.or_else(|| s1.next_line(QUIET_PERIOD));
    got2 = got2.or_else(|| s2.next_line(QUIET_PERIOD));
    let got: Vec<Value> = got1.iter().chain(&got2).map(|l| parse(l)).collect();
    assert_eq!(
        got,
        [expected("anyone")],
        "a plain cast goes to exactly one server"
    );
}

/// Sends one notification in `format` and checks what `omsg listen` prints.
fn notification_round_trip(format: &str) {
    let url = rabbit();
    let topic = unique("omsg-events");
    let mut listener = listen(&format!(
        "--url {url} --topic {topic} --count 1 --timeout 40"
    ));
    let line = format!(
        "notify --url {url} --topic {topic} --priority warning --publisher-id compute.host1 \
         --format {format} --context"
    );
    let tail = [
        r#"{"user": "u1", "auth_token": "secret-token"}"#,
        "compute.instance.create.end",
        r#"{"id": 42, "tags": ["a"]}"#,
    ];
    run_ok(&args(&line, &tail));
    let code = listener.wait(Duration::from_secs(40));
    let stdout = listener.stdout.all();
    let stderr = listener.stderr.text();
    assert_eq!(code, 0, "stdout: {stdout:?}; stderr:\n{stderr}");
    assert_eq!(stdout.len(), 1, "one line per notification: {stdout:?}");
    let n = parse(&stdout[0]);
    let keys: Vec<&String> = n.as_object().unwrap().keys().collect();
    let expected_keys = [
        "priority",
        "publisher_id",
        "event_type",
        "payload",
        "metadata",
        "ctxt",
    ];
    assert_eq!(keys, expected_keys);
    assert_eq!(n["priority"], "warn");
    assert_eq!(n["publisher_id"], "compute.host1");
    assert_eq!(n["event_type"], "compute.instance.create.end");
    assert_eq!(n["payload"], json!({"id": 42, "tags": ["a"]}));
    let metadata: Vec<&String> = n["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(metadata, ["message_id", "timestamp"]);
    for key in ["message_id", "timestamp"] {
        let value = n["metadata"][key].as_str().unwrap_or_default();
        assert!(!value.is_empty(), "{n}");
    }
    assert_eq!(n["ctxt"]["user"], "u1");
    assert!(!stdout[0].contains("secret-token"), "credentials leak: {n}");
}

#[test]
fn rabbit_notify_and_listen_round_trip_messagingv2() {
    notification_round_trip("messagingv2");
}

#[test]
fn rabbit_notify_and_listen_round_trip_messaging() {
    notification_round_trip("messaging");
}

#[test]
fn rabbit_listen_several_topics_and_pools() {
    let url = rabbit();
    let (a, b) = (unique("omsg-a"), unique("omsg-b"));
    let common = format!("--url {url} --timeout 40 --topic {a}");
    let mut both = listen(&format!("{common} --topic {b} --count 2"));
    let mut pool1 = listen(&format!("{common} --pool p1 --count 1"));
    let mut pool2 = listen(&format!("{common} --pool p2 --count 1"));
    run_ok(&args(&format!("notify --url {url} --topic {a} on.a"), &[]));
    let line = format!("notify --url {url} --topic {b} --priority error on.b");
    run_ok(&args(&line, &["\"text\""]));
    for listener in [&mut both, &mut pool1, &mut pool2] {
        let code = listener.wait(Duration::from_secs(40));
        let stderr = listener.stderr.text();
        assert_eq!(code, 0, "`{}`; stderr:\n{stderr}", listener.what);
    }
    let seen = |listener: &Omsg| {
        let mut seen: Vec<Value> = (listener.stdout.all().iter())
            .map(|l| parse(l))
            .map(|n| json!([n["event_type"], n["priority"], n["payload"]]))
            .collect();
        seen.sort_by_key(|n| n[0].to_string());
        seen
    };
    let on_a = json!(["on.a", "info", {}]);
    let on_b = json!(["on.b", "error", "text"]);
    assert_eq!(seen(&both), [on_a.clone(), on_b]);
    assert_eq!(
        seen(&pool1),
        std::slice::from_ref(&on_a),
        "every pool gets a copy"
    );
    assert_eq!(seen(&pool2), [on_a]);
}

#[test]
fn rabbit_listen_exits_2_at_the_timeout() {
    let url = rabbit();
    let topic = unique("omsg-silent");
    let line = format!("listen --url {url} --topic {topic} --timeout 2");
    let done = run_fails(&args(&line, &[]), 2, &["timeout"]);
    assert!(done.stdout.is_empty(), "{done:?}");
    assert!(done.took < Duration::from_secs(20), "{done:?}");
}

#[test]
fn rabbit_namespace_version_and_exchange_select_the_endpoint() {
    let url = rabbit();
    let topic = unique("omsg-ns");
    let exchange = unique("omsg-x");
    let _server = serve(&format!(
        "--url {url} --topic {topic} --server s1 --namespace calc --version 1.3 --exchange {exchange}"
    ));
    let call = |options: &str| {
        let line = format!("call --url {url} --topic {topic} {options} add");
        args(&line, &[r#"{"a": 1, "b": 1}"#])
    };
    let to = format!("--exchange {exchange} --timeout 20");
    let ok = run_ok(&call(&format!("{to} --namespace calc --version 1.2")));
    assert_eq!(ok.stdout, "2");
    let newer = call(&format!("{to} --namespace calc --version 2.0"));
    run_fails(&newer, 1, &["UnsupportedVersion"]);
    run_fails(&call(&to), 1, &["UnsupportedVersion"]);
    // The same topic in the default exchange has no server.
    run_fails(&call("--namespace calc --timeout 1"), 2, &[]);
}

/// A server or listener the broker refuses (a quorum queue cannot be auto-delete) exits
/// 3, saying once what it could not listen on, with the targets as users write them.
#[test]
fn rabbit_a_refused_listen_is_said_once_with_readable_targets() {
    let url = rabbit();
    let refused = format!(
        "{url}{}rabbit_quorum_queue=true&amqp_auto_delete=true",
        if url.contains('?') { '&' } else { '?' }
    );
    // Quorum queues make the control exchange durable: one of the test's own.
    let exchange = unique("omsg-refused");
    let ini = TempFile::new(
        "conf",
        &format!("[DEFAULT]\ncontrol_exchange = {exchange}\n"),
    );
    let topic = unique("omsg-refused");
    let config = ini.path();
    for (line, target) in [
        (
            format!("serve --url {refused} --config {config} --topic {topic} --server s1"),
            format!("could not listen on <Target topic={topic}, server=s1>: "),
        ),
        (
            format!("listen --url {refused} --config {config} --topic {topic} --timeout 20"),
            format!("could not listen on <Target topic={topic}>: "),
        ),
    ] {
        let done = run_fails(&args(&line, &[]), 3, &[&target, "amqp_auto_delete"]);
        assert_eq!(
            done.stderr.matches("could not listen").count(),
            1,
            "{done:?}"
        );
        assert!(!done.stderr.contains("Target {"), "{done:?}");
    }
    delete_exchange(&exchange);
}

/// Deletes exchange `name` on the test broker (`AMQP_URL`, else `RABBIT_URL` in
/// lapin's form), best effort.
fn delete_exchange(name: &str) {
    let amqp = std::env::var("AMQP_URL").unwrap_or_else(|_| {
        let url = rabbit().replacen("rabbit://", "amqp://", 1);
        let url = url.split('?').next().unwrap_or_default().to_string();
        match url.strip_suffix('/') {
            Some(base) if base.matches('/').count() == 2 => format!("{base}/%2f"),
            _ => url,
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let Ok(connection) =
            lapin::Connection::connect(&amqp, lapin::ConnectionProperties::default()).await
        else {
            return;
        };
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .exchange_delete(name.into(), Default::default())
                .await;
            let _ = channel.close(200, "OK".into()).await;
        }
        let _ = connection.close(200, "OK".into()).await;
    });
}

#[test]
fn rabbit_config_file_supplies_the_url() {
    let url = rabbit();
    let topic = unique("omsg-cfg");
    let ini = TempFile::new(
        "conf",
        &format!("[DEFAULT]\ntransport_url = {url}\nrpc_response_timeout = 20\n"),
    );
    let cfg = ini.path();
    let _server = serve(&format!("--config {cfg} --topic {topic} --server s1"));
    let line = format!("call --config {cfg} --topic {topic} add");
    let done = run_ok(&args(&line, &[r#"{"a": 20, "b": 22}"#]));
    assert_eq!(done.stdout, "42");
    // Notifications take [oslo_messaging_notifications] transport_url, not [DEFAULT]'s.
    let events = unique("omsg-cfg-events");
    let toml = TempFile::new(
        "toml",
        &format!(
            "[DEFAULT]\ntransport_url = \"memory://\"\n\
             [oslo_messaging_notifications]\ntransport_url = \"{url}\"\n"
        ),
    );
    let cfg = toml.path();
    let mut listener = listen(&format!(
        "--config {cfg} --topic {events} --count 1 --timeout 40"
    ));
    run_ok(&args(
        &format!("notify --config {cfg} --topic {events} from.config"),
        &[],
    ));
    let code = listener.wait(Duration::from_secs(40));
    assert_eq!(code, 0, "stderr:\n{}", listener.stderr.text());
    let n = parse(&listener.stdout.all()[0]);
    assert_eq!(n["event_type"], "from.config");
}

#[test]
fn rabbit_serve_finishes_in_flight_requests_on_sigterm() {
    let url = rabbit();
    let topic = unique("omsg-drain");
    let mut server = serve(&format!("--url {url} --topic {topic} --server s1"));
    let line = format!("call --url {url} --topic {topic} --timeout 30 sleep");
    let mut call = Omsg::spawn(&args(&line, &[r#"{"seconds": 1.5}"#]));
    let announced = parse(&server.expect_line(ARRIVAL_LIMIT));
    assert_eq!(announced, request_line("sleep", json!({"seconds": 1.5})));
    server.signal("TERM");
    let code = call.wait(Duration::from_secs(30));
    assert_eq!(code, 0, "stderr:\n{}", call.stderr.text());
    assert_eq!(parse(&call.stdout.text()), json!(1.5));
    let code = server.wait(Duration::from_secs(30));
    assert_eq!(code, 0, "stderr:\n{}", server.stderr.text());
}

/// `rabbitmqctl` against the test broker (`RABBITMQCTL` names another command, e.g.
/// `scripts/services rabbit4-ctl`), returning its standard output.
fn rabbitmqctl(args: &[&str]) -> String {
    let ctl = std::env::var("RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".into());
    let mut words = ctl.split_whitespace();
    let program = words.next().unwrap_or("rabbitmqctl");
    let out = Command::new(program)
        .args(words)
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names and consumer counts of the queues whose names start with `prefix`.
fn queues_named(prefix: &str) -> Vec<String> {
    let listed = rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "consumers",
    ]);
    let mut found: Vec<String> = listed
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect();
    found.sort();
    found
}

/// With `use_queue_manager`, a server restarted (as a service manager does: a new
/// process group) takes over the fanout queue it had, `<topic>_fanout_<host>:<proc>:1`,
/// which its stop left in place.
#[test]
fn rabbit_a_restarted_server_with_the_queue_manager_reuses_its_queue_names() {
    let url = rabbit();
    let topic = unique("omsg-qm");
    let process = unique("qm");
    let sep = if url.contains('?') { '&' } else { '?' };
    let qm_url = format!("{url}{sep}use_queue_manager=true&hostname=h1&processname={process}");
    let fanout = format!("{topic}_fanout_h1:{process}:1");
    let mut names = Vec::new();
    for run in 1..=2 {
        let mut server = serve(&format!("--url {qm_url} --topic {topic} --server s1"));
        let listed = queues_named(&format!("{topic}_fanout_"));
        assert_eq!(listed, [format!("{fanout}\t1")], "run {run}");
        let cast = format!("cast --url {url} --topic {topic} --timeout 20 --fanout echo");
        run_ok(&args(&cast, &[r#"{"data": "all"}"#]));
        assert_eq!(
            parse(&server.expect_line(ARRIVAL_LIMIT)),
            request_line("echo", json!({"data": "all"}))
        );
        server.signal("TERM");
        assert_eq!(server.wait(Duration::from_secs(30)), 0);
        // Kept for the restart, unconsumed until then; where transient queues are
        // refused (RabbitMQ 4.3) it was exclusive, and goes with its connection (the
        // broker removes it shortly after).
        let settled = Instant::now() + Duration::from_secs(15);
        let left = loop {
            let left = queues_named(&format!("{topic}_fanout_"));
            if left.is_empty() || left == [format!("{fanout}\t0")] || Instant::now() > settled {
                break left;
            }
            thread::sleep(Duration::from_millis(200));
        };
        names.push(left);
    }
    assert!(
        names[0] == [format!("{fanout}\t0")] || names[0].is_empty(),
        "{names:?}"
    );
    assert_eq!(names[0], names[1], "the restarted server reused its queue");
    if !names[1].is_empty() {
        rabbitmqctl(&["delete_queue", &fanout]);
    }
    // (An exclusive one is gone with its connection.)
    let _ = std::fs::remove_file(format!("/dev/shm/h1_{process}_qmanager"));
}

/// The body of `http://addr/metrics`, if something answers there.
fn metrics_page(addr: &str) -> Option<String> {
    use std::io::Write;
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_string())
}

#[test]
fn rabbit_serve_shows_the_rpc_metrics_on_its_prometheus_page() {
    let url = rabbit();
    let topic = unique("omsg-metrics");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = serve(&format!(
        "--url {url} --topic {topic} --server s1 --metrics {addr}"
    ));
    let call = format!("call --url {url} --topic {topic} --timeout 20");
    for _ in 0..3 {
        run_ok(&args(&call, &["add", r#"{"a": 1, "b": 2}"#]));
    }
    run(&args(&call, &["fail", r#"{"message": "no"}"#]));
    let served = format!(
        "oslo_messaging_rpc_server_invocation_end_total{{exchange=\"None\",topic=\"{topic}\",\
         server=\"s1\",endpoint=\"None\",namespace=\"None\",version=\"None\",method=\"add\",\
         process=\"\"}} 3"
    );
    let raised = "exception=\"ValueError\"";
    let end = Instant::now() + ARRIVAL_LIMIT;
    let page = loop {
        let page = metrics_page(&addr).unwrap_or_default();
        if (page.contains(&served) && page.contains(raised)) || Instant::now() >= end {
            break page;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert!(page.contains(&served), "no {served} on the page:\n{page}");
    assert!(
        page.lines().any(
            |l| l.starts_with("oslo_messaging_rpc_server_exception_total{")
                && l.contains(raised)
                && l.contains("method=\"fail\"")
                && l.ends_with(" 1")
        ),
        "no exception count on the page:\n{page}"
    );
    assert!(
        page.contains("oslo_messaging_rpc_server_processing_seconds_bucket{")
            && page.contains("le=\"0.01\""),
        "no histogram with oslo.metrics' buckets:\n{page}"
    );
    assert!(
        page.contains("oslo_messaging_driver_publishes_total{driver=\"rabbit\",kind=\"reply\"}"),
        "no driver publishes:\n{page}"
    );
    server.signal("TERM");
    assert_eq!(
        server.wait(Duration::from_secs(30)),
        0,
        "stderr:\n{}",
        server.stderr.text()
    );
}
