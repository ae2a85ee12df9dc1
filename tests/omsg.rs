//! The `omsg` command-line tool, run as a user runs it: its exit statuses, its output
//! on stdout, its messages on stderr. The tests without a broker use `memory://` (one
//! broker per process) or fail before connecting; the others need the RabbitMQ at
//! `RABBIT_URL` (default `rabbit://guest:guest@127.0.0.1:5672/`), started by
//! `scripts/services`, and fail when it is unreachable.
#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const OMSG: &str = env!("CARGO_BIN_EXE_omsg");
/// The longest any one `omsg` run may take before the test kills it and fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// How long a server or listener may take to say it is ready.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long a message may take to arrive where it should.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(15);
/// How long to watch for a message that must not arrive.
const QUIET_PERIOD: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------
// Running omsg

/// The lines a child process wrote on one stream, filled by a reader thread.
#[derive(Clone, Default)]
struct Lines {
    lines: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicBool>,
}

impl Lines {
    fn follow(self, stream: impl Read + Send + 'static) -> Self {
        let lines = self.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                match line {
                    Ok(line) => lines.lines.lock().unwrap().push(line),
                    Err(_) => break,
                }
            }
            lines.closed.store(true, Ordering::SeqCst);
        });
        self
    }

    fn all(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn text(&self) -> String {
        self.all().join("\n")
    }

    /// Waits (at most `limit`) for a line at index `from` or later matching `pred`.
    fn wait_for(&self, from: usize, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<usize> {
        let end = Instant::now() + limit;
        loop {
            let found = self.lines.lock().unwrap()[from..]
                .iter()
                .position(|l| pred(l))
                .map(|i| i + from);
            if found.is_some() || Instant::now() >= end {
                return found;
            }
            if self.closed.load(Ordering::SeqCst) {
                // The stream is finished; one last look for lines read meanwhile.
                return self.lines.lock().unwrap()[from..]
                    .iter()
                    .position(|l| pred(l))
                    .map(|i| i + from);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the stream is closed (the process ended), at most `limit`.
    fn wait_closed(&self, limit: Duration) {
        let end = Instant::now() + limit;
        while !self.closed.load(Ordering::SeqCst) && Instant::now() < end {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A running `omsg`; killed when dropped so that a failing test leaves nothing behind.
struct Omsg {
    what: String,
    child: Child,
    stdout: Lines,
    stderr: Lines,
    /// How many stdout lines the test has consumed with [`Omsg::next_line`].
    read: usize,
}

impl Omsg {
    fn spawn<S: AsRef<str>>(args: &[S]) -> Omsg {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        // A process group of its own, as a service manager starts a service (the queue
        // manager's counter restarts with a new group).
        let mut child = Command::new(OMSG)
            .args(&args)
            .process_group(0)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("omsg starts");
        let stdout = Lines::default().follow(child.stdout.take().unwrap());
        let stderr = Lines::default().follow(child.stderr.take().unwrap());
        Omsg {
            what: format!("omsg {}", args.join(" ")),
            child,
            stdout,
            stderr,
            read: 0,
        }
    }

    /// Waits for the exit status (at most `limit`, then kills and fails the test).
    fn wait(&mut self, limit: Duration) -> i32 {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.stdout.wait_closed(Duration::from_secs(5));
                self.stderr.wait_closed(Duration::from_secs(5));
                return status.code().unwrap_or(-1);
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`{}` did not finish within {limit:?}; stderr:\n{}",
                    self.what,
                    self.stderr.text()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next stdout line within `limit`, if any.
    fn next_line(&mut self, limit: Duration) -> Option<String> {
        let at = self.stdout.wait_for(self.read, limit, |_| true)?;
        self.read = at + 1;
        Some(self.stdout.all()[at].clone())
    }

    /// The next stdout line, or a failure showing what the process said.
    fn expect_line(&mut self, limit: Duration) -> String {
        if let Some(line) = self.next_line(limit) {
            return line;
        }
        let state = match self.child.try_wait() {
            Ok(Some(status)) => format!("exited ({status}) without printing a line"),
            _ => format!("printed no line within {limit:?}"),
        };
        panic!("`{}` {state}; stderr:\n{}", self.what, self.stderr.text());
    }

    /// Sends a signal (`TERM`, `INT`) with the system's `kill`.
    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "could not send SIG{name} to `{}`", self.what);
    }
}

impl Drop for Omsg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished `omsg` run did.
struct Finished {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

/// Runs `omsg args` to the end.
fn run<S: AsRef<str>>(args: &[S]) -> Finished {
    let start = Instant::now();
    let mut omsg = Omsg::spawn(args);
    let code = omsg.wait(RUN_LIMIT);
    Finished {
        code,
        stdout: omsg.stdout.text(),
        stderr: omsg.stderr.text(),
        took: start.elapsed(),
    }
}

/// Runs `omsg args` and expects exit 0.
fn run_ok<S: AsRef<str>>(args: &[S]) -> Finished {
    let done = run(args);
    assert_eq!(done.code, 0, "`omsg {}`: {done:?}", shown(args));
    done
}

/// Runs `omsg args` and expects exit `code` with every one of `needles` on stderr.
fn run_fails<S: AsRef<str>>(args: &[S], code: i32, needles: &[&str]) -> Finished {
    let done = run(args);
    assert_eq!(done.code, code, "`omsg {}`: {done:?}", shown(args));
    for needle in needles {
        assert!(
            done.stderr.contains(needle),
            "`omsg {}`: stderr lacks {needle:?}: {done:?}",
            shown(args)
        );
    }
    done
}

/// An argument list for messages.
fn shown<S: AsRef<str>>(args: &[S]) -> String {
    args.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ")
}

/// The words of `line` (split at spaces), then `tail` as they are (JSON with spaces).
fn args(line: &str, tail: &[&str]) -> Vec<String> {
    line.split_whitespace()
        .chain(tail.iter().copied())
        .map(String::from)
        .collect()
}

/// A name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(extension: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("{}.{extension}", unique("omsg-test")));
        std::fs::write(&path, text).expect("write the temporary file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

// ---------------------------------------------------------------------------------
// Without a broker

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

// ---------------------------------------------------------------------------------
// Against RabbitMQ

/// The broker URL for these tests, after checking that something listens there.
fn rabbit() -> String {
    let url = std::env::var("RABBIT_URL")
        .unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5672/".to_string());
    let address = first_host(&url);
    let reachable = address
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    assert!(
        reachable,
        "RabbitMQ is not reachable at {address} (RABBIT_URL); start it with scripts/services"
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
