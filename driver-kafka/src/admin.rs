//! Topics: created through the admin API when the driver needs them, their partition
//! counts remembered, and the logging context every librdkafka client of the driver
//! shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use messaging_core::{Detail, Error, ErrorKind, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::kinds::BrokerErrors;
use crate::options::KafkaOptions;

/// How long a metadata or admin request may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends librdkafka's log lines and errors to `tracing`, naming the driver's role, and
/// keeps the last error for the error of the operation it made fail.
#[derive(Clone, Debug, Default)]
pub struct LogContext {
    pub(crate) errors: BrokerErrors,
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Lost broker connections are reported here and retried by librdkafka.
        tracing::warn!(target: "librdkafka", %error, "{reason}");
        self.errors.record(error, reason);
    }
}

impl ConsumerContext for LogContext {}

/// A configuration error of librdkafka (client creation) with its error as the source,
/// unless that quotes the SASL password.
pub(crate) fn config_error(message: String, e: KafkaError, options: &KafkaOptions) -> Error {
    Error::Config(match options.password().filter(|p| !p.is_empty()) {
        Some(password) => Detail::new(ErrorKind::Config, message.replace(password, "****"))
            .with_source_hiding(e, password),
        None => Detail::new(ErrorKind::Config, message).with_source(e),
    })
}

/// The topics of one transport that are known to exist, with their partition counts.
pub struct Topics {
    options: Arc<KafkaOptions>,
    admin: Arc<AdminClient<LogContext>>,
    /// A client allowed to make brokers auto-create topics, for brokers without the
    /// CreateTopics request (made when first needed).
    auto_creator: OnceLock<Arc<AdminClient<LogContext>>>,
    known: Mutex<HashMap<String, usize>>,
    /// Held while a topic is being created, so that the first sends of many callers
    /// to a new topic make one request, not one each.
    creating: tokio::sync::Mutex<()>,
    /// What the error callbacks said, to explain a failed request. Shared with the
    /// producer: the admin client does not poll for errors, the producer does.
    errors: BrokerErrors,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics")
            .field("known", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl Topics {
    /// An admin client for the transport; does not connect yet.
    pub fn new(options: Arc<KafkaOptions>) -> Result<Topics> {
        let errors = BrokerErrors::default();
        let admin = options
            .client_config()
            .set("allow.auto.create.topics", "false")
            .create_with_context(LogContext {
                errors: errors.clone(),
            })
            .map_err(|e| config_error(format!("Kafka admin client: {e}"), e, &options))?;
        Ok(Topics {
            options,
            admin: Arc::new(admin),
            auto_creator: OnceLock::new(),
            known: Mutex::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
            errors,
        })
    }

    /// The partition count of `topic`, creating it (with `topic_partitions` partitions
    /// and `topic_replication_factor`) when it does not exist.
    pub async fn ensure(&self, topic: &str) -> Result<usize> {
        if let Some(n) = self.lock().get(topic) {
            return Ok(*n);
        }
        let _creating = self.creating.lock().await;
        if let Some(n) = self.lock().get(topic) {
            return Ok(*n);
        }
        let k = &self.options.kafka;
        if !k.create_topics {
            // The broker may create it when asked for its metadata.
            return self.partitions(topic, true, 5).await;
        }
        let new = NewTopic::new(
            topic,
            i32::try_from(k.topic_partitions).unwrap_or(i32::MAX),
            TopicReplication::Fixed(k.topic_replication_factor),
        );
        let options = AdminOptions::new()
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .request_timeout(Some(ADMIN_TIMEOUT));
        let began = Instant::now();
        let created = match self.admin.create_topics([&new], &options).await {
            Ok(results) => match results.into_iter().next() {
                Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => Ok(()),
                Some(Err((_, code))) => Err((code.to_string(), KafkaError::AdminOp(code))),
            },
            Err(e) => Err((e.to_string(), e)),
        };
        match created {
            Ok(()) => {
                tracing::debug!(topic, "Kafka topic ready");
                self.partitions(topic, false, 5).await
            }
            Err((reason, e)) => Err(Error::Transport(self.errors.detail(
                format!("cannot create Kafka topic {topic:?}: {reason}"),
                e,
                began,
            ))),
        }
    }

    /// The partition count of `topic` if it exists; never creates it.
    pub async fn lookup(&self, topic: &str) -> Result<Option<usize>> {
        if let Some(n) = self.lock().get(topic) {
            return Ok(Some(*n));
        }
        match self.partitions(topic, false, 1).await {
            Ok(n) => Ok(Some(n)),
            Err(Error::Undeliverable { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets what is known of `topic`, e.g. after the broker said it is gone.
    pub fn forget(&self, topic: &str) {
        self.lock().remove(topic);
    }

    /// Deletes `topic` (a reply topic at cleanup); failures are only logged.
    pub async fn delete(&self, topic: &str) {
        self.forget(topic);
        let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        match self.admin.delete_topics(&[topic], &options).await {
            Ok(results) => {
                if let Some(Err((_, code))) = results.into_iter().next() {
                    tracing::debug!(topic, %code, "Kafka topic not deleted");
                }
            }
            Err(e) => tracing::debug!(topic, error = %e, "Kafka topic not deleted"),
        }
    }

    /// Asks a broker for the topic's metadata (a blocking call, so off the runtime's
    /// threads) and remembers its partition count. A topic that does not exist is
    /// `Undeliverable`.
    async fn partitions(&self, topic: &str, auto_create: bool, attempts: u64) -> Result<usize> {
        let client = if auto_create {
            match self.auto_creator.get() {
                Some(c) => c.clone(),
                None => {
                    let made: AdminClient<LogContext> = self
                        .options
                        .client_config()
                        .set("allow.auto.create.topics", "true")
                        .create_with_context(LogContext {
                            errors: self.errors.clone(),
                        })
                        .map_err(|e| {
                            config_error(format!("Kafka client: {e}"), e, &self.options)
                        })?;
                    self.auto_creator.get_or_init(|| Arc::new(made)).clone()
                }
            }
        } else {
            self.admin.clone()
        };
        // Metadata of a just-created topic can lag behind on some brokers: ask again
        // a few times before calling it missing.
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            let (fetcher, name) = (client.clone(), topic.to_string());
            let began = Instant::now();
            let metadata = tokio::task::spawn_blocking(move || {
                fetcher.inner().fetch_metadata(Some(&name), ADMIN_TIMEOUT)
            })
            .await
            .map_err(|e| {
                let message = format!("Kafka metadata of {topic:?}: {e}");
                Error::Transport(Detail::new(ErrorKind::Other, message).with_source(e))
            })?
            .map_err(|e| {
                let message = format!("Kafka metadata of {topic:?}: {e}");
                Error::Transport(self.errors.detail(message, e, began))
            })?;
            let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
                last = "not in the metadata".into();
                continue;
            };
            match t.error() {
                None if !t.partitions().is_empty() => {
                    let n = t.partitions().len();
                    self.lock().insert(topic.to_string(), n);
                    return Ok(n);
                }
                None => last = "no partitions".into(),
                Some(code) => last = RDKafkaErrorCode::from(code).to_string(),
            }
        }
        tracing::debug!(topic, reason = %last, "Kafka topic missing");
        Err(Error::Undeliverable {
            exchange: String::new(),
            routing_key: topic.to_string(),
        })
    }

    /// What the error callbacks said, for the clients of the transport to add to.
    pub(crate) fn errors(&self) -> &BrokerErrors {
        &self.errors
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}
