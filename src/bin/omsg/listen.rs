//! `omsg listen`: prints notifications as JSON lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use messaging::notify::{Notification, NotificationListener, NotificationResult, Priority};
use messaging::{Target, Transport};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::common::{self, Failure, Outcome, Purpose, TransportArgs};

/// How long a stopped listener may take to settle what it holds before exit.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The long help of `omsg listen`.
pub const ABOUT: &str = "Listen for notifications of every priority on the notification transport and \
print each as one line of JSON on stdout, with the keys priority (lower case), publisher_id, \
event_type, payload, metadata (message_id, timestamp) and ctxt. Nothing else goes to stdout; \
a line starting with `ready` goes to stderr once it consumes.\n\n\
Exit status: 0 after --count notifications (or on SIGINT/SIGTERM); 2 when --timeout passes \
first; 3 on any other failure.";

/// `omsg listen`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  omsg listen --config /etc/nova/nova.conf --topic versioned_notifications --pool omsg --count 10 \
| jq .event_type"
)]
pub struct ListenArgs {
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Topic (repeatable; default: the topics option of the configuration's
    /// oslo_messaging_notifications section, notifications).
    #[arg(long = "topic", value_name = "T")]
    pub topics: Vec<String>,
    /// Listener pool: every pool gets its own copy of each notification (default: share
    /// the topic's queue with the services that consume it).
    #[arg(long, value_name = "NAME")]
    pub pool: Option<String>,
    /// Exit 0 after printing this many notifications.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Give up (exit 2) when this many seconds have passed since start, fractions allowed.
    #[arg(long, value_name = "SECS", value_parser = common::seconds)]
    pub timeout: Option<Duration>,
}

/// What the handler tells the main task.
enum Event {
    /// `--count` notifications are printed.
    Done,
    /// stdout is gone.
    WriteFailed(Failure),
}

/// The handler's state, shared by the per-priority handlers.
struct Printer {
    count: Option<u64>,
    printed: AtomicU64,
    events: mpsc::UnboundedSender<Event>,
}

impl Printer {
    /// Prints `n`. Beyond `--count`, hands the notification back (requeue, where the
    /// driver can) rather than consuming it unseen.
    fn handle(&self, n: Notification) -> NotificationResult {
        // Handlers run one at a time (the listener's default), so load-then-add is exact.
        let printed = self.printed.load(Ordering::SeqCst);
        if self.count.is_some_and(|count| printed >= count) {
            return NotificationResult::Requeue;
        }
        let line = json!({
            "priority": n.priority.as_str(),
            "publisher_id": n.publisher_id,
            "event_type": n.event_type,
            "payload": n.payload,
            "metadata": {
                "message_id": n.metadata.message_id,
                "timestamp": n.metadata.timestamp,
            },
            "ctxt": n.context.0,
        });
        if let Err(e) = common::print_json_line(&line) {
            let _ = self.events.send(Event::WriteFailed(e));
            return NotificationResult::Requeue;
        }
        let printed = printed + 1;
        self.printed.store(printed, Ordering::SeqCst);
        if self.count == Some(printed) {
            let _ = self.events.send(Event::Done);
        }
        NotificationResult::Handled
    }
}

/// Listens until `--count`, `--timeout` or a signal.
pub async fn run(args: ListenArgs) -> Outcome {
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let timed_out = |printed: u64| {
        let waited = args.timeout.unwrap_or_default();
        Failure::Timeout(match args.count {
            Some(count) => format!("{printed} of {count} notifications within {waited:?}"),
            None => format!("listened for {waited:?} ({printed} notifications)"),
        })
    };
    let cfg = args.transport.config(Purpose::Notifications)?;
    let topics = if args.topics.is_empty() {
        cfg.notifications.topics.clone()
    } else {
        args.topics.clone()
    };
    let transport = tokio::select! {
        t = args.transport.open(&cfg, Purpose::Notifications) => t?,
        () = until(deadline) => return Err(timed_out(0)),
        () = common::shutdown_signal() => return Ok(()),
    };
    let outcome = listen(&args, &transport, &topics, deadline, timed_out).await;
    common::close(&transport).await;
    outcome
}

async fn listen(
    args: &ListenArgs,
    transport: &Transport,
    topics: &[String],
    deadline: Option<Instant>,
    timed_out: impl Fn(u64) -> Failure,
) -> Outcome {
    let (events, mut received) = mpsc::unbounded_channel();
    let printer = Arc::new(Printer {
        count: args.count,
        printed: AtomicU64::new(0),
        events,
    });
    let mut builder = NotificationListener::new(transport, topics.iter().map(Target::topic));
    for priority in Priority::ALL {
        let printer = printer.clone();
        builder = builder.on(priority, move |n: Notification| {
            let printer = printer.clone();
            async move { printer.handle(n) }
        });
    }
    if let Some(pool) = &args.pool {
        builder = builder.pool(pool);
    }
    if args.count.is_some() && transport.capabilities().requeue {
        builder = builder.allow_requeue(true);
    }
    let listener = tokio::select! {
        l = builder.start() => l?,
        () = until(deadline) => return Err(timed_out(0)),
        () = common::shutdown_signal() => return Ok(()),
    };
    eprintln!(
        "ready: listening on {} at {}{}",
        topics.join(", "),
        transport.url().masked(),
        args.pool
            .as_ref()
            .map(|p| format!(" in pool {p}"))
            .unwrap_or_default()
    );
    let outcome = tokio::select! {
        event = received.recv() => match event {
            Some(Event::Done) | None => Ok(()),
            Some(Event::WriteFailed(e)) => Err(e),
        },
        () = until(deadline) => Err(timed_out(printer.printed.load(Ordering::SeqCst))),
        () = common::shutdown_signal() => Ok(()),
    };
    listener.stop().await;
    if let Err(e) = listener.wait_timeout(DRAIN_LIMIT).await {
        tracing::warn!(error = %e, "the listener did not finish in time");
    }
    outcome
}

/// Resolves at `deadline`, never without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
