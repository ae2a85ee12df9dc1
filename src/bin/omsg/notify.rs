//! `omsg notify`: sends one notification, like oslo's `oslo-messaging-send-notification`.

use std::time::Duration;

use clap::{Args, ValueEnum};
use messaging::notify::{Notifier, Priority, Sink};

use crate::common::{self, Failure, Outcome, Purpose, TransportArgs};

/// The notification formats of oslo's notifier drivers.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// oslo's `messaging` driver: the 1.0 format, without envelope.
    Messaging,
    /// oslo's `messagingv2` driver: inside the 2.0 envelope.
    Messagingv2,
}

/// The long help of `omsg notify`.
pub const ABOUT: &str = "Send one notification to <topic>.<priority> on the notification transport \
(--url, else [oslo_messaging_notifications] transport_url of --config, else its [DEFAULT] \
transport_url).\n\nExit status: 0 once sent; 2 when --timeout passes first; 3 on any other \
failure.";

/// `omsg notify`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  omsg notify --url rabbit://guest:guest@localhost:5672/ --priority error \
compute.instance.delete.end '{\"instance_id\": \"42\"}'"
)]
pub struct NotifyArgs {
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Topic (repeatable; default: the topics option of the configuration's
    /// oslo_messaging_notifications section, notifications).
    #[arg(long = "topic", value_name = "T")]
    pub topics: Vec<String>,
    /// Priority: audit, debug, info, warn (or warning), error, critical or sample.
    #[arg(long, value_name = "P", default_value = "info", value_parser = priority)]
    pub priority: Priority,
    /// Publisher id (default: omsg.HOSTNAME, with this machine's host name).
    #[arg(long, value_name = "ID")]
    pub publisher_id: Option<String>,
    /// Notification format.
    #[arg(long, value_enum, default_value_t = Format::Messagingv2)]
    pub format: Format,
    /// Context as a JSON object (credentials such as auth_token are removed before sending).
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// Give up (exit 2) when connecting and sending take longer than this many seconds,
    /// fractions allowed (default: no limit; sends are retried as the retry option of
    /// oslo_messaging_notifications says, forever by default).
    #[arg(long, value_name = "SECS", value_parser = common::seconds)]
    pub timeout: Option<Duration>,
    /// The event type, e.g. compute.instance.create.end.
    #[arg(value_name = "EVENT_TYPE")]
    pub event_type: String,
    /// The payload, any JSON value.
    #[arg(value_name = "PAYLOAD_JSON", default_value = "{}")]
    pub payload: String,
}

/// clap parser of a priority name.
pub fn priority(text: &str) -> Result<Priority, String> {
    text.parse::<Priority>().map_err(|_| {
        format!(
            "unknown priority {text:?}; one of audit, debug, info, warn, error, critical, sample"
        )
    })
}

/// The default publisher id: `omsg.<hostname>`, or `omsg`.
fn default_publisher_id() -> String {
    common::hostname().map_or_else(|| "omsg".into(), |host| format!("omsg.{host}"))
}

/// Sends the notification, within `--timeout` if given.
pub async fn run(args: NotifyArgs) -> Outcome {
    let payload = common::json_value(&args.payload, "PAYLOAD_JSON")?;
    let context = common::context(args.context.as_deref())?;
    let cfg = args.transport.config(Purpose::Notifications)?;
    let send = async {
        let transport = args.transport.open(&cfg, Purpose::Notifications).await?;
        let topics = if args.topics.is_empty() {
            cfg.notifications.topics.clone()
        } else {
            args.topics.clone()
        };
        let sink = match args.format {
            Format::Messaging => Sink::Messaging,
            Format::Messagingv2 => Sink::MessagingV2,
        };
        let publisher_id = args
            .publisher_id
            .clone()
            .unwrap_or_else(default_publisher_id);
        let notifier = Notifier::new(&transport, publisher_id)
            .sinks([sink])
            .topics(topics);
        let sent = notifier
            .try_notify(&context, &args.event_type, args.priority, payload)
            .await;
        common::close(&transport).await;
        Ok::<_, Failure>(sent?)
    };
    match args.timeout {
        None => send.await,
        Some(limit) => tokio::time::timeout(limit, send).await.map_err(|_| {
            Failure::Timeout(format!("could not send the notification within {limit:?}"))
        })?,
    }
}
