//! Without a broker

use super::*;

#[test]
fn every_command_has_help() {
    let top = run_ok(&["--help"]);
    for command in ["call", "cast", "notify", "listen", "serve", "Exit status"] {
        assert!(top.stdout.contains(command), "{top:?}");
    }
    let expectations = [
        (
            "call",
            "--url --config --topic --server --exchange --namespace --version --timeout \
             --context METHOD ARGS_JSON Exit",
        ),
        (
            "cast",
            "--fanout --topic --server --timeout METHOD ARGS_JSON",
        ),
        (
            "notify",
            "--topic --priority --publisher-id --format messagingv2 EVENT_TYPE PAYLOAD_JSON",
        ),
        (
            "listen",
            "--topic --pool --count --timeout metadata ctxt ready",
        ),
        (
            "serve",
            "--topic --server echo add fail sleep ready SIGTERM",
        ),
    ];
    for (command, needles) in expectations {
        let help = run_ok(&[command, "--help"]);
        for needle in needles.split_whitespace() {
            assert!(
                help.stdout.contains(needle),
                "`{command} --help` lacks {needle}: {help:?}"
            );
        }
        run_ok(&["help", command]);
    }
    let version = run_ok(&["--version"]);
    assert!(version.stdout.starts_with("omsg "), "{version:?}");
}

#[test]
fn usage_errors_exit_3() {
    let cases = [
        ("call --url memory:// --topic t --bogus m", "--bogus"),
        ("call --url memory:// m", "--topic"),
        ("frobnicate", "frobnicate"),
        ("notify --url memory:// --priority loud e", "loud"),
        ("notify --url memory:// --format v3 e", "v3"),
        ("call --url memory:// --topic t --timeout soon m", "soon"),
        ("call --url memory:// --topic t --timeout 0 m", "--timeout"),
        ("listen --url memory:// --count 0", "--count"),
        ("notify --url memory:// --timeout=-1 e", "--timeout"),
        ("serve --url memory:// --topic t", "--server"),
    ];
    for (line, needle) in cases {
        run_fails(&args(line, &[]), 3, &[needle]);
    }
}

#[test]
fn malformed_json_exits_3_naming_the_argument() {
    let call = "call --url memory:// --topic t";
    let done = run_fails(
        &args(call, &["m", r#"{"a": 1"#]),
        3,
        &["ARGS_JSON", "not valid JSON"],
    );
    assert!(done.stdout.is_empty(), "{done:?}");
    let cases: [(&str, &[&str], &[&str]); 6] = [
        (
            call,
            &["m", "[1, 2]"],
            &["ARGS_JSON", "must be a JSON object"],
        ),
        (
            call,
            &["--context", "{oops", "m"],
            &["--context", "not valid JSON"],
        ),
        (
            call,
            &["--context", "\"ctx\"", "m"],
            &["--context", "must be a JSON object"],
        ),
        (call, &["--version", "one", "m"], &["\"one\"", "version"]),
        (
            "cast --url memory:// --topic t",
            &["m", "nope"],
            &["ARGS_JSON", "not valid JSON"],
        ),
        (
            "notify --url memory://",
            &["e", r#"{"x":"#],
            &["PAYLOAD_JSON", "not valid JSON"],
        ),
    ];
    for (line, tail, needles) in cases {
        run_fails(&args(line, tail), 3, needles);
    }
}

#[test]
fn an_unknown_scheme_exits_3_listing_the_registered_ones() {
    for line in [
        "call --url nosuch://host --topic t m",
        "cast --url nosuch://host --topic t m",
        "notify --url nosuch://host e",
        "listen --url nosuch://host --timeout 5",
        "serve --url nosuch://host --topic t --server s",
    ] {
        run_fails(&args(line, &[]), 3, &["\"nosuch\"", "memory"]);
    }
}

#[test]
fn a_malformed_url_exits_3_naming_the_bad_part_but_never_the_password() {
    let done = run_fails(
        &args(
            "call --url memory://user:s3cret@host:99999/ --topic t m",
            &[],
        ),
        3,
        &["99999"],
    );
    assert!(!done.stderr.contains("s3cret"), "{done:?}");
    run_fails(
        &["notify", "--url", "not a url", "e"],
        3,
        &["invalid transport URL"],
    );
}

#[test]
fn without_url_or_config_it_exits_3_saying_so() {
    for line in [
        "call --topic t m",
        "cast --topic t m",
        "notify e",
        "listen --timeout 5",
        "serve --topic t --server s",
    ] {
        run_fails(
            &args(line, &[]),
            3,
            &["no transport URL", "--url", "--config"],
        );
    }
    run_fails(
        &args("call --config /nonexistent/omsg.conf --topic t m", &[]),
        3,
        &["/nonexistent/omsg.conf"],
    );
}

#[test]
fn a_call_nobody_answers_exits_2_at_the_timeout() {
    let done = run_fails(
        &args("call --url memory:// --topic t --timeout 0.5 m", &[]),
        2,
        &["timeout"],
    );
    assert!(done.took < Duration::from_secs(10), "{done:?}");
    assert!(done.stdout.is_empty(), "{done:?}");
}

#[test]
fn an_unreachable_broker_is_bounded_by_timeout_and_never_shows_the_password() {
    // Nothing listens on port 1: the driver keeps retrying until --timeout.
    let url = "rabbit://user:pw-s3cret@127.0.0.1:1/";
    for line in [
        format!("call --url {url} --topic t --timeout 1 m"),
        format!("cast --url {url} --topic t --timeout 1 m"),
        format!("notify --url {url} --timeout 1 e"),
        format!("listen --url {url} --timeout 1"),
    ] {
        let done = run_fails(&args(&line, &[]), 2, &["timeout"]);
        assert!(done.took < Duration::from_secs(15), "{done:?}");
        assert!(!done.stderr.contains("s3cret"), "{done:?}");
    }
}

#[test]
fn a_config_file_supplies_the_url_and_the_notification_url() {
    let ini = TempFile::new("conf", "[DEFAULT]\ntransport_url = nosuch://cfg-host\n");
    let cfg = ini.path();
    run_fails(
        &args(&format!("call --config {cfg} --topic t m"), &[]),
        3,
        &["\"nosuch\""],
    );
    // --url wins over the file.
    let line = format!("call --config {cfg} --url memory:// --topic t --timeout 0.3 m");
    run_fails(&args(&line, &[]), 2, &[]);
    // The file's rpc_response_timeout is the call's default timeout.
    let toml = TempFile::new(
        "toml",
        "[DEFAULT]\ntransport_url = \"memory://\"\nrpc_response_timeout = 1\n",
    );
    let line = format!("call --config {} --topic t m", toml.path());
    let done = run_fails(&args(&line, &[]), 2, &[]);
    assert!(done.took < Duration::from_secs(10), "{done:?}");
    // Hybrid: notifications use [oslo_messaging_notifications] transport_url.
    let hybrid = TempFile::new(
        "conf",
        "[DEFAULT]\ntransport_url = memory://\n\
         [oslo_messaging_notifications]\ntransport_url = nosuch2://events\n",
    );
    let cfg = hybrid.path();
    for line in [
        format!("notify --config {cfg} e"),
        format!("listen --config {cfg} --timeout 5"),
    ] {
        run_fails(&args(&line, &[]), 3, &["\"nosuch2\""]);
    }
    let line = format!("call --config {cfg} --topic t --timeout 0.3 m");
    run_fails(&args(&line, &[]), 2, &[]);
    let bad = TempFile::new(
        "conf",
        "[oslo_messaging_rabbit]\nrabbit_qos_prefech_count = 3\n",
    );
    let line = format!("notify --config {} e", bad.path());
    run_fails(&args(&line, &[]), 3, &["rabbit_qos_prefech_count"]);
}

#[test]
fn notify_prints_nothing_and_exits_0_once_sent() {
    let line = "notify --url memory:// --priority warning --format messaging e";
    let done = run_ok(&args(line, &["[1]"]));
    assert!(done.stdout.is_empty(), "{done:?}");
}

#[test]
fn listen_exits_2_at_the_timeout_with_nothing_on_stdout() {
    let line = "listen --url memory:// --count 1 --timeout 0.5";
    let done = run_fails(&args(line, &[]), 2, &["0 of 1"]);
    assert!(done.stdout.is_empty(), "{done:?}");
    assert!(
        done.stderr.lines().any(|l| l.starts_with("ready")),
        "{done:?}"
    );
}

#[test]
fn serve_prints_ready_then_stops_cleanly_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let mut serve = Omsg::spawn(&args("serve --url memory:// --topic t --server s", &[]));
        assert_eq!(serve.expect_line(READY_LIMIT), "ready");
        serve.signal(signal);
        let code = serve.wait(Duration::from_secs(20));
        assert_eq!(code, 0, "SIG{signal}; stderr:\n{}", serve.stderr.text());
        assert_eq!(serve.stdout.all(), ["ready"]);
    }
}

#[test]
fn listen_without_count_stops_cleanly_on_a_signal() {
    let mut listener = Omsg::spawn(&args("listen --url memory://", &[]));
    let ready = (listener.stderr).wait_for(0, READY_LIMIT, |l| l.starts_with("ready"));
    assert!(ready.is_some(), "stderr:\n{}", listener.stderr.text());
    listener.signal("INT");
    let code = listener.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "stderr:\n{}", listener.stderr.text());
    assert!(listener.stdout.all().is_empty());
}
