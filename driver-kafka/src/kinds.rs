//! What kind of failure a librdkafka error is, for the [`ErrorKind`] of the errors the
//! driver returns.
//!
//! librdkafka retries broker connections by itself: a request to a broker that cannot
//! be reached, refuses our TLS or our login mostly ends in a time-out, while the cause
//! goes to the client's error callback. [`BrokerErrors`] keeps what that callback said
//! so the time-out can be reported as what it was.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use messaging_core::{Detail, ErrorKind};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// The kind of a librdkafka error code.
pub(crate) fn of_code(code: RDKafkaErrorCode) -> ErrorKind {
    use RDKafkaErrorCode as C;
    match code {
        C::Authentication
        | C::SaslAuthenticationFailed
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState => ErrorKind::RefusedCredentials,
        C::SSL => ErrorKind::Tls,
        C::AllBrokersDown | C::BrokerTransportFailure | C::Resolve | C::BrokerNotAvailable => {
            ErrorKind::Unreachable
        }
        C::MessageTimedOut | C::OperationTimedOut | C::RequestTimedOut => ErrorKind::Timeout,
        C::NetworkException => ErrorKind::ConnectionLost,
        C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::DelegationTokenAuthorizationFailed
        | C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::UnknownPartition
        | C::PolicyViolation
        | C::InvalidReplicationFactor
        | C::InvalidPartitions => ErrorKind::RefusedByBroker,
        _ => ErrorKind::Other,
    }
}

/// The kind of a librdkafka error.
pub(crate) fn of(e: &KafkaError) -> ErrorKind {
    match e {
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => ErrorKind::Config,
        KafkaError::AdminOp(code) => of_code(*code),
        other => other.rdkafka_error_code().map_or(ErrorKind::Other, of_code),
    }
}

/// The last error of each kind librdkafka reported through a client's error callback,
/// with when: a refused login is followed by "all brokers are down", which must not
/// hide it.
#[derive(Clone, Debug, Default)]
pub(crate) struct BrokerErrors(Arc<Mutex<Vec<(Instant, KafkaError, String)>>>);

impl BrokerErrors {
    /// Keeps an error of the error callback, in place of the last one of its kind.
    pub(crate) fn record(&self, error: KafkaError, reason: &str) {
        let mut errors = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let kind = of(&error);
        errors.retain(|(_, e, _)| of(e) != kind);
        errors.push((Instant::now(), error, reason.to_string()));
    }

    /// The error the callback reported since `since` that says most: a refused login,
    /// then a TLS failure, then the broker unreachable; none if it said none of these.
    fn since(&self, since: Instant) -> Option<(KafkaError, String)> {
        let rank = |kind| match kind {
            ErrorKind::RefusedCredentials => 3,
            ErrorKind::Tls => 2,
            ErrorKind::Unreachable => 1,
            _ => 0,
        };
        let errors = self.0.lock().unwrap_or_else(|e| e.into_inner());
        errors
            .iter()
            .filter(|(at, e, _)| *at >= since && rank(of(e)) > 0)
            .max_by_key(|(_, e, _)| rank(of(e)))
            .map(|(_, e, reason)| (e.clone(), reason.clone()))
    }

    /// The detail of `error`, which ended an operation begun at `began`: saying
    /// `message`, of the kind of `error` with it as the source, unless `error` only
    /// says the operation did not finish and the error callback said why meanwhile;
    /// then the callback's error is the kind and the source, and its reason is added.
    pub(crate) fn detail(&self, message: String, error: KafkaError, began: Instant) -> Detail {
        self.explain(Detail::new(of(&error), message).with_source(error), began)
    }

    /// `detail`, of an operation begun at `began`, or if it only says the operation did
    /// not finish and the error callback said why meanwhile, the callback's error as
    /// the kind and the source, with its reason added to the message.
    pub(crate) fn explain(&self, detail: Detail, began: Instant) -> Detail {
        if !matches!(
            detail.kind(),
            ErrorKind::Timeout | ErrorKind::Unreachable | ErrorKind::Other
        ) {
            return detail;
        }
        let Some((cause, reason)) = self.since(began) else {
            return detail;
        };
        let message = format!("{detail} (the broker connection failed: {reason})");
        Detail::new(of(&cause), message).with_source(cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_by_kind() {
        assert_eq!(
            of(&KafkaError::Global(RDKafkaErrorCode::SSL)),
            ErrorKind::Tls
        );
        assert_eq!(
            of(&KafkaError::AdminOp(RDKafkaErrorCode::AllBrokersDown)),
            ErrorKind::Unreachable
        );
        assert_eq!(
            of(&KafkaError::Global(RDKafkaErrorCode::Authentication)),
            ErrorKind::RefusedCredentials
        );
    }

    #[test]
    fn a_time_out_says_what_the_callback_reported_meanwhile() {
        let errors = BrokerErrors::default();
        let began = Instant::now();
        let timed_out = KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut);
        let d = errors.detail("metadata".into(), timed_out.clone(), began);
        assert_eq!(d.kind(), ErrorKind::Timeout);
        errors.record(
            KafkaError::Global(RDKafkaErrorCode::SSL),
            "ssl handshake failed",
        );
        errors.record(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        let d = errors.detail("metadata".into(), timed_out, began);
        assert_eq!(d.kind(), ErrorKind::Tls);
        assert_eq!(
            d.message(),
            "metadata (the broker connection failed: ssl handshake failed)"
        );
        assert!(d.source().unwrap().is::<KafkaError>());
        // Not an error of an operation that began later.
        let d = errors.detail(
            "later".into(),
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
            Instant::now(),
        );
        assert_eq!(d.kind(), ErrorKind::Timeout);
    }
}
