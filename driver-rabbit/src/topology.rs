//! Names, flags and arguments of exchanges, queues and bindings, exactly as Python
//! oslo.messaging declares them (a peer declaring the same name with other flags
//! gets 406 PRECONDITION_FAILED), and declaring them.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ExchangeKind};

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
    }
}

/// A per-process queue: the reply queue or a fanout queue; `x-expires` from
/// `rabbit_transient_queues_ttl`, quorum when `rabbit_transient_quorum_queue`.
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
        delete_on_close: true,
        private: !transient_quorum,
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

/// The consumer arguments: `x-cancel-on-ha-failover` when asked for.
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

/// Whether a broker error says the declared `durable` flag differs from the
/// existing entity's: oslo then declares again as non-durable.
fn is_durable_mismatch(e: &lapin::Error) -> bool {
    protocol_error(e).is_some_and(|(kind, text)| {
        kind == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
            && text.contains("inequivalent arg 'durable'")
    })
}

/// Whether the broker refused a transient (non-durable) queue that is not exclusive:
/// RabbitMQ 4.3 does by default, 4.0 to 4.2 with
/// `deprecated_features.permit.transient_nonexcl_queues = false`. It closes the whole
/// connection (541 INTERNAL_ERROR).
pub(crate) fn is_transient_queue_refusal(e: &lapin::Error) -> bool {
    protocol_error(e).is_some_and(|(_, text)| text.contains("transient_nonexcl_queues"))
}

/// The AMQP error kind and text of a broker error.
pub(crate) fn protocol_error(e: &lapin::Error) -> Option<(AMQPErrorKind, String)> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(err) => {
            Some((err.kind().clone(), err.get_message().to_string()))
        }
        _ => None,
    }
}

/// Declares on `channel`, replacing it with a fresh one after an error that closed it
/// (the durable-mismatch fallback). Returns the channel to go on with.
pub(crate) struct Declarer<'a> {
    connection: &'a Connection,
    channel: Channel,
    exclusive_private: bool,
}

impl<'a> Declarer<'a> {
    pub(crate) fn new(connection: &'a Connection, channel: Channel) -> Self {
        Declarer {
            connection,
            channel,
            exclusive_private: false,
        }
    }

    /// Declares [`QueueSpec::private`] queues exclusive (to this connection).
    pub(crate) fn exclusive_private(mut self, exclusive: bool) -> Self {
        self.exclusive_private = exclusive;
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

    /// exchange.declare, with oslo's fallback to non-durable on a durable mismatch.
    pub(crate) async fn exchange(&mut self, spec: &ExchangeSpec) -> lapin::Result<()> {
        match declare_exchange(&self.channel, spec, spec.durable).await {
            Err(e) if spec.durable && is_durable_mismatch(&e) => {
                tracing::warn!(exchange = %spec.name, "exchange exists as non-durable; declaring it non-durable");
                self.reopen().await?;
                declare_exchange(&self.channel, spec, false).await
            }
            other => other,
        }
    }

    /// Declares the queue's exchanges, the queue and its bindings, as kombu does.
    pub(crate) async fn queue(&mut self, spec: &QueueSpec) -> lapin::Result<()> {
        for (exchange, _) in &spec.bindings {
            self.exchange(exchange).await?;
        }
        let exclusive = spec.private && self.exclusive_private;
        match declare_queue(&self.channel, spec, spec.durable, exclusive).await {
            Ok(()) => {}
            Err(e) if spec.durable && is_durable_mismatch(&e) => {
                tracing::warn!(queue = %spec.name, "queue exists as non-durable; declaring it non-durable");
                self.reopen().await?;
                declare_queue(&self.channel, spec, false, exclusive).await?;
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

async fn declare_exchange(
    channel: &Channel,
    spec: &ExchangeSpec,
    durable: bool,
) -> lapin::Result<()> {
    let kind = match spec.kind {
        Kind::Topic => ExchangeKind::Topic,
        Kind::Fanout => ExchangeKind::Fanout,
    };
    let options = ExchangeDeclareOptions {
        durable,
        auto_delete: spec.auto_delete,
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

async fn declare_queue(
    channel: &Channel,
    spec: &QueueSpec,
    durable: bool,
    exclusive: bool,
) -> lapin::Result<()> {
    let options = QueueDeclareOptions {
        durable,
        exclusive,
        auto_delete: spec.auto_delete,
        ..Default::default()
    };
    channel
        .queue_declare(spec.name.as_str().into(), options, table(&spec.arguments))
        .await
        .map(|_| ())
}

/// A readable name for a broker-side failure, e.g. to wrap in `ListenFailure`.
pub(crate) fn describe(e: &lapin::Error) -> String {
    match protocol_error(e) {
        Some((kind, text)) => format!("{kind}: {text}"),
        None => e.to_string(),
    }
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
