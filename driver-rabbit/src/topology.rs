//! Names, flags and arguments of exchanges, queues and bindings, exactly as Python
//! oslo.messaging declares them (a peer declaring the same name with other flags
//! gets 406 PRECONDITION_FAILED), and declaring them.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ExchangeKind};

use crate::connection::Connector;
use crate::kinds::protocol_error;
use crate::options::RabbitOptions;

/// An exchange to declare.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ExchangeSpec {
    pub name: String,
    pub kind: Kind,
    pub durable: bool,
    pub auto_delete: bool,
}

/// Exchange types oslo uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Topic,
    Fanout,
}

/// A queue to declare, with the bindings that feed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueueSpec {
    pub name: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub arguments: Vec<(&'static str, AMQPValue)>,
    pub bindings: Vec<(ExchangeSpec, String)>,
    /// Deleted when its listener is cleaned up (fanout queues, reply queues).
    pub delete_on_close: bool,
    /// Read by this process only (a reply or fanout queue that is not a quorum queue):
    /// declared exclusive where the broker refuses transient non-exclusive queues.
    pub private: bool,
    /// A stream queue (`rabbit_stream_fanout`): consumed from an offset, which the
    /// consumer keeps across reconnects.
    pub stream: bool,
}

impl ExchangeSpec {
    /// The topic exchange `X` of RPC and notifications.
    pub(crate) fn topic(name: &str, options: &RabbitOptions) -> ExchangeSpec {
        ExchangeSpec {
            name: name.to_string(),
            kind: Kind::Topic,
            durable: options.durable(),
            auto_delete: options.rabbit.amqp_auto_delete,
        }
    }

    /// `<topic>_fanout`: not scoped by exchange, always auto-delete.
    pub(crate) fn fanout(topic: &str, options: &RabbitOptions) -> ExchangeSpec {
        ExchangeSpec {
            name: fanout_exchange(topic),
            kind: Kind::Fanout,
            durable: options.rabbit.rabbit_transient_quorum_queue,
            auto_delete: true,
        }
    }
}

/// The fanout exchange of a topic.
pub(crate) fn fanout_exchange(topic: &str) -> String {
    format!("{topic}_fanout")
}

/// A queue that lives as long as its service: `<topic>`, `<topic>.<server>`,
/// `<topic>.<priority>` or a pool; ha or quorum arguments, never `x-expires`.
pub(crate) fn service_queue(
    name: &str,
    bindings: Vec<(ExchangeSpec, String)>,
    options: &RabbitOptions,
) -> QueueSpec {
    let r = &options.rabbit;
    let mut arguments = Vec::new();
    if r.rabbit_ha_queues {
        arguments.push(("x-ha-policy", AMQPValue::LongString("all".into())));
    }
    if r.rabbit_quorum_queue {
        arguments.push(("x-queue-type", AMQPValue::LongString("quorum".into())));
        push_quorum_limits(&mut arguments, options);
    }
    QueueSpec {
        name: name.to_string(),
        durable: options.durable(),
        auto_delete: r.amqp_auto_delete,
        arguments,
        bindings,
        delete_on_close: false,
        private: false,
        stream: false,
    }
}

/// A per-process queue: the reply queue or a fanout queue; `x-expires` from
/// `rabbit_transient_queues_ttl`, quorum when `rabbit_transient_quorum_queue`. Deleted
/// when its consumer closes, unless the queue manager names it (a restarted service
/// takes it over; `x-expires` removes it otherwise).
pub(crate) fn transient_queue(
    name: &str,
    bindings: Vec<(ExchangeSpec, String)>,
    options: &RabbitOptions,
) -> QueueSpec {
    let transient_quorum = options.rabbit.rabbit_transient_quorum_queue;
    let mut arguments = Vec::new();
    if let Some(ttl) = options.transient_ttl() {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        arguments.push(("x-expires", AMQPValue::LongLongInt(ms)));
    }
    if transient_quorum {
        arguments.push(("x-queue-type", AMQPValue::LongString("quorum".into())));
        push_quorum_limits(&mut arguments, options);
    }
    QueueSpec {
        name: name.to_string(),
        durable: transient_quorum,
        auto_delete: false,
        arguments,
        bindings,
        delete_on_close: !options.rabbit.use_queue_manager,
        private: !transient_quorum,
        stream: false,
    }
}

/// `<topic>_fanout`, the one stream queue of a topic's fanout (`rabbit_stream_fanout`),
/// shared by every server of the topic, each reading it from its own offset: durable,
/// `x-max-age` from `rabbit_transient_queues_ttl` (`"1800s"`; none for 0), never
/// deleted by a server (the others read it too).
pub(crate) fn stream_fanout_queue(topic: &str, options: &RabbitOptions) -> QueueSpec {
    let mut arguments = vec![("x-queue-type", AMQPValue::LongString("stream".into()))];
    if let Some(ttl) = options.transient_ttl() {
        let age = format!("{}s", ttl.as_secs());
        arguments.push(("x-max-age", AMQPValue::LongString(age.as_str().into())));
    }
    QueueSpec {
        name: fanout_exchange(topic),
        durable: true,
        auto_delete: false,
        arguments,
        bindings: vec![(ExchangeSpec::fanout(topic, options), topic.to_string())],
        delete_on_close: false,
        private: false,
        stream: true,
    }
}

fn push_quorum_limits(arguments: &mut Vec<(&'static str, AMQPValue)>, options: &RabbitOptions) {
    let r = &options.rabbit;
    for (key, value) in [
        ("x-delivery-limit", r.rabbit_quorum_delivery_limit),
        ("x-max-in-memory-length", r.rabbit_quorum_max_memory_length),
        ("x-max-in-memory-bytes", r.rabbit_quorum_max_memory_bytes),
    ] {
        if value > 0 {
            arguments.push((key, AMQPValue::LongLongInt(value as i64)));
        }
    }
}

/// The consumer arguments: `x-cancel-on-ha-failover` when asked for (a stream queue's
/// consumer gets `x-stream-offset` instead, from its consumer).
pub(crate) fn consumer_arguments(options: &RabbitOptions) -> FieldTable {
    let mut table = FieldTable::default();
    if options.rabbit.enable_cancel_on_failover {
        table.insert("x-cancel-on-ha-failover".into(), AMQPValue::Boolean(true));
    }
    table
}

fn table(arguments: &[(&'static str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in arguments {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

/// Whether a broker error says an entity exists with other flags or arguments than
/// declared (406 `inequivalent arg 'durable'`, `'x-queue-type'`, ...): a peer declared
/// it first, otherwise configured.
/// An exchange of another type (`inequivalent arg 'type'`) is not: joining it would
/// route otherwise than asked, so that stays an error.
fn is_inequivalent(e: &lapin::Error) -> bool {
    protocol_error(e).is_some_and(|(kind, text)| {
        kind == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
            && text.contains("inequivalent arg")
            && !text.contains("inequivalent arg 'type'")
    })
}

/// Whether a broker error is 405 RESOURCE_LOCKED: an exclusive queue of another
/// connection (the one before a restart, which the broker has not yet cleaned up).
pub(crate) fn is_resource_locked(e: &lapin::Error) -> bool {
    protocol_error(e)
        .is_some_and(|(kind, _)| kind == AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED))
}

/// Whether a broker error is 404 NOT_FOUND (a passive declare of what is gone).
fn is_not_found(e: &lapin::Error) -> bool {
    protocol_error(e).is_some_and(|(kind, _)| kind == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
}

/// Whether the broker refused a transient (non-durable) queue that is not exclusive:
/// RabbitMQ 4.3 does by default, 4.0 to 4.2 with
/// `deprecated_features.permit.transient_nonexcl_queues = false`. It closes the whole
/// connection (541 INTERNAL_ERROR).
pub(crate) fn is_transient_queue_refusal(e: &lapin::Error) -> bool {
    protocol_error(e).is_some_and(|(_, text)| text.contains("transient_nonexcl_queues"))
}

/// Declares on `channel`, replacing it with a fresh one after an error that closed it.
///
/// An exchange or queue that exists with other flags or arguments than declared (a peer
/// configured otherwise declared it first: a quorum queue of Python services with
/// `rabbit_quorum_queue`, a durable one with `amqp_durable_queues`) is joined as it is,
/// after a passive declare, with a warning naming the options every service should
/// share. Where the broker refuses transient queues that are not exclusive (RabbitMQ
/// 4.3), private queues are declared exclusive and shared ones durable.
pub(crate) struct Declarer<'a> {
    connector: &'a Connector,
    connection: &'a Connection,
    channel: Channel,
    transient_refused: bool,
}

impl<'a> Declarer<'a> {
    pub(crate) fn new(
        connector: &'a Connector,
        connection: &'a Connection,
        channel: Channel,
    ) -> Self {
        Declarer {
            connector,
            connection,
            channel,
            transient_refused: false,
        }
    }

    /// Declares as a broker that refuses transient non-exclusive queues wants:
    /// [`QueueSpec::private`] queues exclusive (to this connection), other transient
    /// queues durable.
    pub(crate) fn transient_refused(mut self, refused: bool) -> Self {
        self.transient_refused = refused;
        self
    }

    /// The channel to use after the declarations.
    pub(crate) fn into_channel(self) -> Channel {
        self.channel
    }

    async fn reopen(&mut self) -> lapin::Result<()> {
        self.channel = self.connection.create_channel().await?;
        Ok(())
    }

    /// exchange.declare; an exchange that exists otherwise is joined as it is.
    pub(crate) async fn exchange(&mut self, spec: &ExchangeSpec) -> lapin::Result<()> {
        match declare_exchange(&self.channel, spec, false).await {
            Err(e) if is_inequivalent(&e) => {
                self.reopen().await?;
                match declare_exchange(&self.channel, spec, true).await {
                    Ok(()) => {
                        self.connector.joined("exchange", &spec.name, &e);
                        Ok(())
                    }
                    // Gone between the two (an auto-delete exchange): declared anew.
                    Err(gone) if is_not_found(&gone) => {
                        self.reopen().await?;
                        declare_exchange(&self.channel, spec, false).await
                    }
                    Err(other) => Err(other),
                }
            }
            other => other,
        }
    }

    /// Declares the queue's exchanges, the queue and its bindings, as kombu does; a
    /// queue that exists otherwise is joined as it is.
    pub(crate) async fn queue(&mut self, spec: &QueueSpec) -> lapin::Result<()> {
        for (exchange, _) in &spec.bindings {
            self.exchange(exchange).await?;
        }
        let exclusive = spec.private && self.transient_refused;
        let durable = spec.durable || (!spec.private && self.transient_refused);
        let form = QueueForm {
            durable,
            exclusive,
            passive: false,
        };
        match declare_queue(&self.channel, spec, form).await {
            Ok(()) => {}
            Err(e) if is_inequivalent(&e) => {
                self.reopen().await?;
                let passive = QueueForm {
                    passive: true,
                    ..form
                };
                match declare_queue(&self.channel, spec, passive).await {
                    Ok(()) => self.connector.joined("queue", &spec.name, &e),
                    // Gone between the two (expired, deleted): declared anew.
                    Err(gone) if is_not_found(&gone) => {
                        self.reopen().await?;
                        declare_queue(&self.channel, spec, form).await?;
                    }
                    Err(other) => return Err(other),
                }
            }
            Err(e) => return Err(e),
        }
        for (exchange, key) in &spec.bindings {
            self.channel
                .queue_bind(
                    spec.name.as_str().into(),
                    exchange.name.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }
}

/// How a queue is declared.
#[derive(Debug, Clone, Copy)]
struct QueueForm {
    durable: bool,
    exclusive: bool,
    /// Only check that it exists (any flags, any arguments).
    passive: bool,
}

async fn declare_exchange(
    channel: &Channel,
    spec: &ExchangeSpec,
    passive: bool,
) -> lapin::Result<()> {
    let kind = match spec.kind {
        Kind::Topic => ExchangeKind::Topic,
        Kind::Fanout => ExchangeKind::Fanout,
    };
    let options = ExchangeDeclareOptions {
        durable: spec.durable,
        auto_delete: spec.auto_delete,
        passive,
        ..Default::default()
    };
    channel
        .exchange_declare(
            spec.name.as_str().into(),
            kind,
            options,
            FieldTable::default(),
        )
        .await
}

async fn declare_queue(channel: &Channel, spec: &QueueSpec, form: QueueForm) -> lapin::Result<()> {
    let options = QueueDeclareOptions {
        durable: form.durable,
        exclusive: form.exclusive,
        passive: form.passive,
        auto_delete: spec.auto_delete,
        ..Default::default()
    };
    channel
        .queue_declare(spec.name.as_str().into(), options, table(&spec.arguments))
        .await
        .map(|_| ())
}

/// A readable name for a broker-side failure, e.g. to wrap in `ListenFailure`.
/// A refusal of how a queue was declared names the options that decide it.
pub(crate) fn describe(e: &lapin::Error) -> String {
    match protocol_error(e) {
        Some((kind, text)) if refuses_queue_form(&kind, &text) => {
            format!("{kind}: {text} ({QUEUE_FORM_OPTIONS})")
        }
        Some((kind, text)) => format!("{kind}: {text}"),
        None => e.to_string(),
    }
}

/// What decides how queues are declared, for refusals of it.
pub(crate) const QUEUE_FORM_OPTIONS: &str = "how queues are declared follows the \
     [oslo_messaging_rabbit] options rabbit_quorum_queue, amqp_durable_queues, \
     rabbit_transient_quorum_queue and amqp_auto_delete; every service sharing a queue \
     must set them alike, and RabbitMQ 4.3 needs rabbit_quorum_queue or amqp_durable_queues";

/// A 406 PRECONDITION_FAILED on a declaration, or the refusal of a transient queue.
fn refuses_queue_form(kind: &AMQPErrorKind, text: &str) -> bool {
    text.contains("transient_nonexcl_queues")
        || (*kind == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
            && (text.contains("inequivalent arg") || text.contains("invalid")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::LongString;
    use messaging_core::Config;

    fn long_string(s: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(s))
    }

    fn options(ini: &str) -> RabbitOptions {
        RabbitOptions::resolve(
            &"rabbit://h/".parse().unwrap(),
            &Config::from_ini_str(ini).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn defaults_match_oslo() {
        let o = options("");
        let x = ExchangeSpec::topic("openstack", &o);
        assert_eq!(
            (x.kind, x.durable, x.auto_delete),
            (Kind::Topic, false, false)
        );
        let q = service_queue("compute", vec![(x, "compute".into())], &o);
        assert!(!q.durable && !q.auto_delete && q.arguments.is_empty());
        let f = ExchangeSpec::fanout("compute", &o);
        assert_eq!(f.name, "compute_fanout");
        assert_eq!(
            (f.kind, f.durable, f.auto_delete),
            (Kind::Fanout, false, true)
        );
        let r = transient_queue("reply_x", vec![], &o);
        assert!(!r.durable && !r.auto_delete && r.private);
        assert_eq!(
            r.arguments,
            vec![("x-expires", AMQPValue::LongLongInt(1_800_000))]
        );
    }

    #[test]
    fn stream_fanout_queue_as_oslo() {
        let o = options(
            "[oslo_messaging_rabbit]\nrabbit_stream_fanout = true\nrabbit_transient_quorum_queue = true\nrabbit_qos_prefetch_count = 5\n",
        );
        let q = stream_fanout_queue("compute", &o);
        assert_eq!(q.name, "compute_fanout");
        assert!(q.durable && !q.auto_delete && q.stream && !q.private && !q.delete_on_close);
        assert_eq!(
            q.arguments,
            vec![
                ("x-queue-type", long_string("stream")),
                ("x-max-age", long_string("1800s")),
            ]
        );
        assert_eq!(q.bindings[0].0.name, "compute_fanout");
        assert!(q.bindings[0].0.durable && q.bindings[0].0.auto_delete);
        assert_eq!(q.bindings[0].1, "compute");
        let o = options(
            "[oslo_messaging_rabbit]\nrabbit_stream_fanout = true\nrabbit_transient_quorum_queue = true\nrabbit_qos_prefetch_count = 5\nrabbit_transient_queues_ttl = 0\n",
        );
        assert_eq!(stream_fanout_queue("t", &o).arguments.len(), 1);
    }

    #[test]
    fn quorum_and_ha_arguments() {
        let o = options(
            "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_quorum_delivery_limit = 5\nrabbit_transient_quorum_queue = true\nrabbit_transient_queues_ttl = 0\n",
        );
        let q = service_queue("t", vec![], &o);
        assert!(q.durable);
        assert_eq!(
            q.arguments,
            vec![
                ("x-queue-type", long_string("quorum")),
                ("x-delivery-limit", AMQPValue::LongLongInt(5)),
            ]
        );
        let r = transient_queue("reply_x", vec![], &o);
        assert!(r.durable && !r.private);
        assert_eq!(r.arguments[0], ("x-queue-type", long_string("quorum")));
        assert!(ExchangeSpec::fanout("t", &o).durable);
        let ha = options("[oslo_messaging_rabbit]\nrabbit_ha_queues = true\n");
        assert_eq!(
            service_queue("t", vec![], &ha).arguments,
            vec![("x-ha-policy", long_string("all"))]
        );
    }
}
