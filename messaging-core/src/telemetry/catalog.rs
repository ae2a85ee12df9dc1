//! The metric families beyond oslo's: what an operator needs during an incident. All
//! go through the [`metrics`] facade only (the oslo.metrics daemon knows oslo's
//! families and refuses others). Every driver family has a `driver` label (`rabbit`,
//! `kafka`, `zmq`, `zaqar`, `memory`), so one dashboard panel covers them all.

/// Counter: notifications a notifier handed to the transport (`topic`, `priority`).
pub const NOTIFICATIONS_SENT: &str = "oslo_messaging_notifications_sent_total";
/// Counter: notifications the transport did not take (`topic`, `priority`).
pub const NOTIFICATION_SEND_FAILURES: &str = "oslo_messaging_notification_send_failures_total";
/// Counter: notifications a listener's handlers finished (`priority`, `result`:
/// `handled` or `requeued`).
pub const NOTIFICATIONS_HANDLED: &str = "oslo_messaging_notifications_handled_total";
/// Gauge: calls waiting for their reply in this process (`topic`).
pub const RPC_CLIENT_CALLS_IN_FLIGHT: &str = "oslo_messaging_rpc_client_calls_in_flight";
/// Gauge: requests a server has taken and is running (`topic`, `server`).
pub const RPC_SERVER_REQUESTS_IN_FLIGHT: &str = "oslo_messaging_rpc_server_requests_in_flight";
/// Gauge: requests a server has received and not yet started: those its driver holds
/// for it and the one waiting for a free `max_concurrency` slot (`topic`, `server`).
pub const RPC_SERVER_BACKLOG: &str = "oslo_messaging_rpc_server_backlog";
/// Histogram: seconds a call waited for its reply after the request was sent
/// (`topic`); calls that timed out are not in it.
pub const REPLY_WAIT_SECONDS: &str = "oslo_messaging_reply_wait_seconds";
/// Counter: messages a driver handed to its broker (`driver`, `kind`: `rpc`,
/// `reply`, `notification`).
pub const PUBLISHES: &str = "oslo_messaging_driver_publishes_total";
/// Histogram: seconds from publishing to the broker's confirmation (RabbitMQ
/// publisher confirms, Kafka delivery reports, Zaqar's answer) (`driver`).
pub const PUBLISH_CONFIRM_SECONDS: &str = "oslo_messaging_driver_publish_confirm_seconds";
/// Counter: publishes the broker refused or returned (`driver`, `reason`: `nack`,
/// `returned`, `error`).
pub const PUBLISH_FAILURES: &str = "oslo_messaging_driver_publish_failures_total";
/// Counter: connections made again after one was lost (`driver`).
pub const RECONNECTS: &str = "oslo_messaging_driver_reconnects_total";
/// Counter: seconds spent without a connection, added when it is back (`driver`).
pub const DISCONNECTED_SECONDS: &str = "oslo_messaging_driver_disconnected_seconds_total";
/// Gauge: records a Kafka consumer group has yet to read (`group`, `topic`,
/// `partition`).
pub const KAFKA_CONSUMER_LAG: &str = "oslo_messaging_kafka_consumer_lag";
/// Gauge: ZeroMQ peers a transport is connected to.
pub const ZMQ_PEERS: &str = "oslo_messaging_zmq_peers";
/// Gauge: messages waiting in a ZeroMQ transport's outgoing queues.
pub const ZMQ_QUEUE_DEPTH: &str = "oslo_messaging_zmq_queue_depth";
