//! Sending records: each waits for the broker's delivery report, a failed delivery is
//! tried again as `retry` allows, and the records of a topic go to its partitions in
//! turn so that the consumers of a group share them evenly.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use messaging_core::{Detail, Error, Result, Retry};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;

use crate::admin::{LogContext, Topics, config_error};
use crate::kinds::BrokerErrors;
use crate::options::KafkaOptions;
use crate::telemetry::{self, Failure, Publish};

/// Whether sending to a topic that does not exist creates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Create it (notification topics, which hold notifications until listened to).
    Create,
    /// Fail with `Undeliverable` (RPC topics exist once a server has listened).
    Refuse,
}

/// The producer of one transport, shared by its senders.
pub struct Producer {
    inner: FutureProducer<LogContext>,
    /// What the producer's error callback said, to explain a failed send.
    errors: BrokerErrors,
    topics: Arc<Topics>,
    options: Arc<KafkaOptions>,
    turn: AtomicUsize,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// A producer for the transport; librdkafka connects in the background.
    pub fn new(options: Arc<KafkaOptions>, topics: Arc<Topics>) -> Result<Producer> {
        let errors = topics.errors().clone();
        let context = LogContext {
            errors: errors.clone(),
        };
        let inner = options
            .producer_config()
            .create_with_context(context)
            .map_err(|e| config_error(format!("Kafka producer: {e}"), e, &options))?;
        Ok(Producer {
            inner,
            errors,
            topics,
            options,
            turn: AtomicUsize::new(0),
        })
    }

    /// Sends `payload` (a record of `kind`) to `topic` and waits until the broker has
    /// it. A failed attempt (each may take `producer_delivery_timeout`) is tried again
    /// while `retry` allows; then the send fails with `DeliveryFailure` naming the
    /// topic. Each delivered record and each failed attempt is counted (see
    /// [`telemetry`](crate::telemetry)).
    pub async fn send(
        &self,
        topic: &str,
        payload: &[u8],
        kind: Publish,
        missing: Missing,
        retry: Retry,
    ) -> Result<()> {
        let mut failures = 0u32;
        loop {
            let began = Instant::now();
            let partitions = match missing {
                Missing::Create => self.topics.ensure(topic).await,
                Missing::Refuse => match self.topics.lookup(topic).await {
                    Ok(Some(n)) => Ok(n),
                    Ok(None) => {
                        telemetry::failed(Failure::Undeliverable);
                        return Err(Error::Undeliverable {
                            exchange: String::new(),
                            routing_key: topic.to_string(),
                        });
                    }
                    Err(e) => Err(e),
                },
            };
            let outcome = match partitions {
                Ok(n) => {
                    let partition = self.turn.fetch_add(1, Ordering::Relaxed) % n.max(1);
                    let record = FutureRecord::<(), [u8]>::to(topic)
                        .payload(payload)
                        .partition(i32::try_from(partition).unwrap_or(0));
                    // From the hand-over to librdkafka to the delivery report: what
                    // the broker's acknowledgement took, batching (`linger.ms`)
                    // included, the topic's metadata not.
                    let handed = Instant::now();
                    match self
                        .inner
                        .send(record, Timeout::After(self.options.delivery_timeout()))
                        .await
                    {
                        Ok(_) => {
                            telemetry::delivered(kind, handed.elapsed().as_secs_f64());
                            return Ok(());
                        }
                        Err((e, _)) => {
                            if is_missing_topic(&e) {
                                self.topics.forget(topic);
                            }
                            let detail = self.errors.detail(e.to_string(), e, began);
                            (detail.to_string(), Error::Transport(detail))
                        }
                    }
                }
                Err(e) => (e.to_string(), e),
            };
            // The text of the failure, and the failure for its kind and source.
            let (outcome, cause) = outcome;
            telemetry::failed(Failure::Error);
            failures += 1;
            if !retry.allows_another(failures) {
                let message = format!(
                    "Kafka topic {topic:?} on {}: {outcome} (after {failures} attempts)",
                    self.options.brokers
                );
                return Err(Error::DeliveryFailure(Detail::wrapping(message, cause)));
            }
            let pause =
                Duration::from_millis(100 * 2u64.pow(failures.min(6))).min(Duration::from_secs(5));
            tracing::warn!(topic, error = %outcome, attempt = failures, ?pause, "Kafka delivery failed; trying again");
            tokio::time::sleep(pause).await;
        }
    }

    /// Waits for records still in flight, at most `limit`.
    pub fn flush(&self, limit: Duration) {
        if let Err(e) = self.inner.flush(Timeout::After(limit)) {
            tracing::warn!(error = %e, "Kafka records still unsent at close");
        }
    }
}

/// Whether the broker said the topic (or the partition) does not exist.
fn is_missing_topic(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopic
        )
    )
}
