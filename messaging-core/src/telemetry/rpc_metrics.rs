//! oslo.messaging's RPC metric families, named and labelled as oslo.metrics serves
//! them, so that one dashboard shows Python and Rust services alike.
//!
//! Every invocation is recorded through the [`metrics`] facade (nothing happens until
//! the application installs a recorder, such as a Prometheus exporter) and, when the
//! transport's `[oslo_messaging_metrics] metrics_enabled` is set, sent to the
//! oslo.metrics daemon as well ([`OsloMetricsSink`]).
//!
//! oslo.messaging emits the client families only; the server families are defined by
//! oslo.metrics but never sent by Python. Both are emitted here.
//!
//! Label values are written as the oslo.metrics daemon writes them (it applies Python's
//! `str()`): an unset field is `None`, a fanout cast is `True`.

use std::time::Instant;

use serde_json::Value;

use super::oslo_metrics::OsloMetricsSink;
use crate::{Error, Target};

/// Client: invocations started (`call_type`, `exchange`, `topic`, `namespace`,
/// `version`, `server`, `fanout`, `method`, `timeout`, `process`).
pub const RPC_CLIENT_INVOCATION_START: &str = "oslo_messaging_rpc_client_invocation_start_total";
/// Client: invocations that ended without an exception.
pub const RPC_CLIENT_INVOCATION_END: &str = "oslo_messaging_rpc_client_invocation_end_total";
/// Client: seconds from sending to the reply (a call) or to the broker taking the
/// message (a cast), for invocations without an exception.
pub const RPC_CLIENT_PROCESSING_SECONDS: &str = "oslo_messaging_rpc_client_processing_seconds";
/// Client: invocations that failed, with the exception's class name (`exception`).
pub const RPC_CLIENT_EXCEPTION: &str = "oslo_messaging_rpc_client_exception_total";
/// Server: requests dispatched (`exchange`, `topic`, `server`, `endpoint`, `namespace`,
/// `version`, `method`, `process`).
pub const RPC_SERVER_INVOCATION_START: &str = "oslo_messaging_rpc_server_invocation_start_total";
/// Server: requests whose method returned.
pub const RPC_SERVER_INVOCATION_END: &str = "oslo_messaging_rpc_server_invocation_end_total";
/// Server: seconds the method ran, for requests whose method returned.
pub const RPC_SERVER_PROCESSING_SECONDS: &str = "oslo_messaging_rpc_server_processing_seconds";
/// Server: requests whose method failed, with the exception's class name.
pub const RPC_SERVER_EXCEPTION: &str = "oslo_messaging_rpc_server_exception_total";

/// The histogram buckets oslo.metrics uses for the processing-seconds families, for
/// exporters that take buckets per metric.
pub const PROCESSING_SECONDS_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 25.0, 50.0, 75.0,
    100.0,
];

/// Whether a client invocation waits for a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallType {
    /// `call`: waits for the reply.
    Call,
    /// `cast`: returns once the message is sent.
    Cast,
}

impl CallType {
    /// `call` or `cast`, as oslo's `call_type` label and OpenTelemetry's
    /// `messaging.operation` say it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Call => "call",
            CallType::Cast => "cast",
        }
    }
}

/// A label's value as oslo.messaging sends it: JSON `null`, a boolean or a string.
#[derive(Debug, Clone, PartialEq)]
enum LabelValue {
    None,
    Bool(bool),
    Text(String),
}

impl LabelValue {
    fn of(value: Option<&str>) -> Self {
        value.map_or(LabelValue::None, |v| LabelValue::Text(v.to_string()))
    }

    /// As the oslo.metrics daemon exports it (Python's `str()`).
    fn exported(&self) -> String {
        match self {
            LabelValue::None => "None".to_string(),
            LabelValue::Bool(true) => "True".to_string(),
            LabelValue::Bool(false) => "False".to_string(),
            LabelValue::Text(s) => s.clone(),
        }
    }

    fn json(&self) -> Value {
        match self {
            LabelValue::None => Value::Null,
            LabelValue::Bool(b) => Value::Bool(*b),
            LabelValue::Text(s) => Value::String(s.clone()),
        }
    }
}

/// The labels of one invocation, in oslo's order, `process` last.
#[derive(Debug, Clone)]
pub(crate) struct Labels(Vec<(&'static str, LabelValue)>);

impl Labels {
    /// A client invocation's labels: the fields of the (prepared) target, as oslo takes
    /// them. The exchange is the target's own (`None` for the transport's default) and
    /// `timeout` is always `None`, as oslo sends it.
    pub(crate) fn client(
        target: &Target,
        method: &str,
        call_type: CallType,
        process: &str,
    ) -> Self {
        Labels(vec![
            ("call_type", LabelValue::Text(call_type.as_str().into())),
            ("exchange", LabelValue::of(target.exchange.as_deref())),
            ("topic", LabelValue::of(target.topic.as_deref())),
            ("namespace", LabelValue::of(target.namespace.as_deref())),
            ("version", LabelValue::of(target.version.as_deref())),
            ("server", LabelValue::of(target.server.as_deref())),
            (
                "fanout",
                if target.fanout {
                    LabelValue::Bool(true)
                } else {
                    LabelValue::None
                },
            ),
            ("method", LabelValue::Text(method.to_string())),
            ("timeout", LabelValue::None),
            ("process", LabelValue::Text(process.to_string())),
        ])
    }

    /// A server invocation's labels: the server's target (`exchange`, `topic`,
    /// `server`), the endpoint's name, and the request's namespace, version and method.
    pub(crate) fn server(
        target: &Target,
        endpoint: Option<&str>,
        namespace: Option<&str>,
        version: Option<&str>,
        method: &str,
        process: &str,
    ) -> Self {
        Labels(vec![
            ("exchange", LabelValue::of(target.exchange.as_deref())),
            ("topic", LabelValue::of(target.topic.as_deref())),
            ("server", LabelValue::of(target.server.as_deref())),
            ("endpoint", LabelValue::of(endpoint)),
            ("namespace", LabelValue::of(namespace)),
            ("version", LabelValue::of(version)),
            ("method", LabelValue::Text(method.to_string())),
            ("process", LabelValue::Text(process.to_string())),
        ])
    }

    fn with_exception(&self, class: String) -> Labels {
        let mut labels = self.0.clone();
        // oslo puts `exception` before `process`.
        labels.insert(labels.len() - 1, ("exception", LabelValue::Text(class)));
        Labels(labels)
    }

    fn exported(&self) -> Vec<(&'static str, String)> {
        self.0.iter().map(|(k, v)| (*k, v.exported())).collect()
    }

    /// The `labels` object of an oslo.metrics datagram.
    pub(crate) fn json(&self) -> serde_json::Map<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.json()))
            .collect()
    }
}

/// The families of one side.
struct Families {
    start: &'static str,
    end: &'static str,
    seconds: &'static str,
    exception: &'static str,
}

const CLIENT: Families = Families {
    start: RPC_CLIENT_INVOCATION_START,
    end: RPC_CLIENT_INVOCATION_END,
    seconds: RPC_CLIENT_PROCESSING_SECONDS,
    exception: RPC_CLIENT_EXCEPTION,
};

const SERVER: Families = Families {
    start: RPC_SERVER_INVOCATION_START,
    end: RPC_SERVER_INVOCATION_END,
    seconds: RPC_SERVER_PROCESSING_SECONDS,
    exception: RPC_SERVER_EXCEPTION,
};

/// One invocation being measured: `start` is counted when it is made, then
/// [`Invocation::finish`] counts the end and observes the seconds, or counts the
/// exception. An invocation dropped unfinished (its future cancelled) counts only its
/// start, as oslo's does when the caller goes away.
pub(crate) struct Invocation {
    families: &'static Families,
    labels: Labels,
    began: Instant,
    sink: Option<OsloMetricsSink>,
}

impl Invocation {
    /// Starts measuring a client invocation.
    pub(crate) fn client(labels: Labels, sink: Option<OsloMetricsSink>) -> Self {
        Self::start(&CLIENT, labels, sink)
    }

    /// Starts measuring a server invocation.
    pub(crate) fn server(labels: Labels, sink: Option<OsloMetricsSink>) -> Self {
        Self::start(&SERVER, labels, sink)
    }

    fn start(families: &'static Families, labels: Labels, sink: Option<OsloMetricsSink>) -> Self {
        metrics::counter!(families.start, &labels.exported()).increment(1);
        if let Some(sink) = &sink {
            sink.increment(families.start, &labels);
        }
        Invocation {
            families,
            labels,
            began: Instant::now(),
            sink,
        }
    }

    /// Records the outcome: the end and the seconds taken, or the exception's class.
    pub(crate) fn finish<T>(self, outcome: &Result<T, Error>) {
        match outcome {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(exception_class(e)),
        }
    }

    /// Records an invocation that ended without an exception.
    pub(crate) fn succeeded(self) {
        let seconds = self.began.elapsed().as_secs_f64();
        let exported = self.labels.exported();
        metrics::histogram!(self.families.seconds, &exported).record(seconds);
        metrics::counter!(self.families.end, &exported).increment(1);
        if let Some(sink) = &self.sink {
            sink.observe(self.families.seconds, seconds, &self.labels);
            sink.increment(self.families.end, &self.labels);
        }
    }

    /// Records an invocation that failed with an exception of class `class`.
    pub(crate) fn failed(self, class: String) {
        let labels = self.labels.with_exception(class);
        metrics::counter!(self.families.exception, &labels.exported()).increment(1);
        if let Some(sink) = &self.sink {
            sink.increment(self.families.exception, &labels);
        }
    }
}

/// The class name a Python caller would see for `error` (`ex.__class__.__name__`):
/// oslo's exception classes, and `<class>_Remote` for a failure raised by the server,
/// as oslo names the exceptions it rebuilds from a reply.
pub(crate) fn exception_class(error: &Error) -> String {
    let oslo = match error {
        Error::Timeout(_) => "MessagingTimeout",
        Error::Remote(failure) => return format!("{}_Remote", failure.class),
        Error::NoSuchMethod { .. } => "NoSuchMethod",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::InvalidTarget { .. } => "InvalidTarget",
        Error::InvalidUrl { .. } => "InvalidTransportURL",
        Error::UnknownDriver { .. } => "DriverLoadFailure",
        Error::DeliveryFailure(_) => "MessageDeliveryFailure",
        Error::Undeliverable { .. } => "MessageUndeliverable",
        Error::VersionCap { .. } => "RPCVersionCapError",
        Error::Serialization(_) | Error::Malformed(_) => "SerializationError",
        Error::ListenFailure { .. } => "ServerListenError",
        Error::Config(_) => "ConfigError",
        _ => "MessagingException",
    };
    oslo.to_string()
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::RemoteError;

    type Snapshot = Vec<(String, Vec<(String, String)>, DebugValue)>;

    fn recorded(f: impl FnOnce()) -> Snapshot {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, f);
        let mut out: Snapshot = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_string(), l.value().to_string()))
                    .collect();
                (key.name().to_string(), labels, value)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn label_names(labels: &[(String, String)]) -> Vec<&str> {
        labels.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn a_client_call_counts_start_end_and_seconds_with_oslo_labels() {
        let target = Target::topic("compute").server("host1").version("1.2");
        let got = recorded(|| {
            let labels = Labels::client(&target, "add", CallType::Call, "nova-api");
            Invocation::client(labels, None).finish(&Ok::<(), Error>(()));
        });
        let names: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            names,
            [
                RPC_CLIENT_INVOCATION_END,
                RPC_CLIENT_INVOCATION_START,
                RPC_CLIENT_PROCESSING_SECONDS
            ]
        );
        for (_, labels, _) in &got {
            assert_eq!(
                label_names(labels),
                [
                    "call_type",
                    "exchange",
                    "topic",
                    "namespace",
                    "version",
                    "server",
                    "fanout",
                    "method",
                    "timeout",
                    "process"
                ]
            );
            let value = |name: &str| labels.iter().find(|(k, _)| k == name).unwrap().1.clone();
            assert_eq!(value("call_type"), "call");
            assert_eq!(value("exchange"), "None");
            assert_eq!(value("topic"), "compute");
            assert_eq!(value("version"), "1.2");
            assert_eq!(value("server"), "host1");
            assert_eq!(value("fanout"), "None");
            assert_eq!(value("timeout"), "None");
            assert_eq!(value("process"), "nova-api");
        }
        assert!(matches!(got[0].2, DebugValue::Counter(1)));
        assert!(matches!(&got[2].2, DebugValue::Histogram(v) if v.len() == 1));
    }

    #[test]
    fn a_failed_fanout_cast_counts_start_and_the_exception_only() {
        let target = Target::topic("compute").fanout(true);
        let got = recorded(|| {
            let labels = Labels::client(&target, "reset", CallType::Cast, "");
            let failure = Error::DeliveryFailure(crate::Detail::new(
                crate::ErrorKind::ConnectionLost,
                "gone",
            ));
            Invocation::client(labels, None).finish(&Err::<(), _>(failure));
        });
        let names: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(names, [RPC_CLIENT_EXCEPTION, RPC_CLIENT_INVOCATION_START]);
        let exception = &got[0].1;
        assert_eq!(
            label_names(exception),
            [
                "call_type",
                "exchange",
                "topic",
                "namespace",
                "version",
                "server",
                "fanout",
                "method",
                "timeout",
                "exception",
                "process"
            ]
        );
        assert!(exception.contains(&("exception".into(), "MessageDeliveryFailure".into())));
        assert!(exception.contains(&("fanout".into(), "True".into())));
        assert!(exception.contains(&("call_type".into(), "cast".into())));
    }

    #[test]
    fn server_invocations_have_oslo_metrics_server_labels() {
        let target = Target::topic("compute").server("host1").exchange("nova");
        let got = recorded(|| {
            let labels = Labels::server(&target, Some("ComputeAPI"), None, Some("1.0"), "add", "p");
            Invocation::server(labels.clone(), None).succeeded();
            Invocation::server(labels, None).failed("ValueError".into());
        });
        let names: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            names,
            [
                RPC_SERVER_EXCEPTION,
                RPC_SERVER_INVOCATION_END,
                RPC_SERVER_INVOCATION_START,
                RPC_SERVER_PROCESSING_SECONDS
            ]
        );
        assert_eq!(
            label_names(&got[1].1),
            [
                "exchange",
                "topic",
                "server",
                "endpoint",
                "namespace",
                "version",
                "method",
                "process"
            ]
        );
        assert!(
            got[0]
                .1
                .contains(&("exception".into(), "ValueError".into()))
        );
        assert!(got[1].1.contains(&("endpoint".into(), "ComputeAPI".into())));
        assert!(got[1].1.contains(&("namespace".into(), "None".into())));
        assert!(matches!(got[2].2, DebugValue::Counter(2)));
    }

    #[test]
    fn exception_classes_are_the_ones_python_callers_see() {
        let remote = Error::Remote(Box::new(RemoteError::value_error("bad")));
        assert_eq!(exception_class(&remote), "ValueError_Remote");
        let timeout = Error::Timeout(crate::Detail::new(crate::ErrorKind::Timeout, "late"));
        assert_eq!(exception_class(&timeout), "MessagingTimeout");
    }

    #[test]
    fn labels_travel_to_oslo_metrics_as_json_nulls_booleans_and_strings() {
        let target = Target::topic("t").fanout(true);
        let json = Labels::client(&target, "m", CallType::Cast, "proc").json();
        assert_eq!(json["exchange"], Value::Null);
        assert_eq!(json["fanout"], Value::Bool(true));
        assert_eq!(json["method"], Value::String("m".into()));
        assert_eq!(json["process"], Value::String("proc".into()));
    }
}
