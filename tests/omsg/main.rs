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

mod with_rabbitmq;
mod with_zaqar;
mod without_broker;

const OMSG: &str = env!("CARGO_BIN_EXE_omsg");
/// The longest any one `omsg` run may take before the test kills it and fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// How long a server or listener may take to say it is ready.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long a message may take to arrive where it should.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(15);
/// How long to watch for a message that must not arrive.
const QUIET_PERIOD: Duration = Duration::from_secs(1);

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

/// Fails the test unless something accepts TCP connections at `address` (`host:port`),
/// naming the service, the variable that moves it and the script that starts it.
fn require_tcp(address: &str, service: &str, variable: &str, script: &str) {
    let reachable = address
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    assert!(
        reachable,
        "{service} is not reachable at {address} ({variable}); start it with {script}"
    );
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
