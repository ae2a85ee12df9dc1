//! Against Zaqar (`ZAQAR_URL`, default `zaqar://127.0.0.1:8888`, started by
//! `scripts/services zaqar`), each test in a project of its own.

use super::*;

/// A transport URL in a new project, after checking that Zaqar listens.
fn zaqar() -> String {
    let base = std::env::var("ZAQAR_URL").unwrap_or_else(|_| "zaqar://127.0.0.1:8888".into());
    let base = base.trim_end_matches('/');
    let address = base.split_once("://").map_or(base, |(_, rest)| rest);
    require_tcp(address, "Zaqar", "ZAQAR_URL", "scripts/services zaqar");
    format!(
        "{base}/{}?poll_interval=0.01&idle_poll_interval=0.05",
        unique("omsg-project")
    )
}

#[test]
fn zaqar_serve_answers_calls_and_casts_fan_out() {
    let url = zaqar();
    let topic = unique("omsg-calc");
    let mut servers: Vec<Omsg> = ["s1", "s2"]
        .iter()
        .map(|s| {
            let mut omsg = Omsg::spawn(&args(
                &format!("serve --url {url} --topic {topic} --server {s}"),
                &[],
            ));
            let ready = omsg.expect_line(READY_LIMIT);
            assert_eq!(ready, "ready", "stderr:\n{}", omsg.stderr.text());
            omsg
        })
        .collect();
    let call = format!("call --url {url} --topic {topic} --timeout 20");
    let sum = run_ok(&args(
        &call,
        &["--server", "s2", "add", r#"{"a": 2, "b": 3}"#],
    ));
    assert_eq!(sum.stdout, "5");
    let announced = parse(&servers[1].expect_line(ARRIVAL_LIMIT));
    assert_eq!(
        announced,
        json!({"method": "add", "args": {"a": 2, "b": 3}})
    );
    let cast = format!("cast --url {url} --topic {topic} --fanout");
    run_ok(&args(&cast, &["echo", r#"{"data": "all"}"#]));
    for server in &mut servers {
        let line = parse(&server.expect_line(ARRIVAL_LIMIT));
        assert_eq!(line, json!({"method": "echo", "args": {"data": "all"}}));
    }
}

#[test]
fn zaqar_notify_and_listen_round_trip() {
    let url = zaqar();
    let topic = unique("omsg-events");
    let mut listener = Omsg::spawn(&args(
        &format!("listen --url {url} --topic {topic} --count 1 --timeout 40"),
        &[],
    ));
    let ready = listener
        .stderr
        .wait_for(0, READY_LIMIT, |l| l.starts_with("ready"));
    assert!(ready.is_some(), "stderr:\n{}", listener.stderr.text());
    let line = format!("notify --url {url} --topic {topic} --priority info --publisher-id p1");
    run_ok(&args(
        &line,
        &["compute.instance.create.end", r#"{"id": 42}"#],
    ));
    let code = listener.wait(Duration::from_secs(40));
    let stdout = listener.stdout.all();
    assert_eq!(
        code,
        0,
        "stdout: {stdout:?}; stderr:\n{}",
        listener.stderr.text()
    );
    let n = parse(&stdout[0]);
    assert_eq!(n["publisher_id"], "p1");
    assert_eq!(n["event_type"], "compute.instance.create.end");
    assert_eq!(n["payload"], json!({"id": 42}));
}
