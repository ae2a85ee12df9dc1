//! [`ZaqarClient`]: the v2 HTTP API calls the driver makes, with Zaqar's headers on
//! every request, failures turned into the core's errors, and temporary ones (no
//! answer, 5xx, 408, 429) tried again with exponential backoff.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use messaging_core::{Detail, Error, ErrorKind, Result, Retry};
use reqwest::header::{HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::keystone::Keystone;
use crate::kinds;
use crate::telemetry::{self, Publish};

/// Zaqar's upper limit on messages per claim, pop or listing page.
pub const MAX_PER_REQUEST: usize = 20;

/// A message as Zaqar hands it out (claimed, popped or listed).
#[derive(Debug, Deserialize)]
pub struct QueuedMessage {
    /// The message's id.
    pub id: String,
    /// The body as posted, still encoded.
    pub body: Box<RawValue>,
}

/// Messages claimed together, deleted with the claim's id.
#[derive(Debug)]
pub struct Claim {
    /// The claim's id.
    pub id: String,
    /// The messages.
    pub messages: Vec<QueuedMessage>,
}

#[derive(Deserialize)]
struct Messages {
    messages: Vec<QueuedMessage>,
}

#[derive(Deserialize)]
struct Page {
    messages: Vec<QueuedMessage>,
    #[serde(default)]
    links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    rel: String,
    href: String,
}

#[derive(Deserialize)]
struct Posted {
    resources: Vec<String>,
}

#[derive(Deserialize)]
struct Refusal {
    title: Option<String>,
    description: Option<String>,
}

/// How the client reaches Zaqar.
#[derive(Clone)]
pub struct ClientSettings {
    /// `http://host:port` or `https://host:port`, without a trailing `/`.
    pub endpoint: String,
    /// `X-Project-ID`; with Keystone, `None` takes the token's project.
    pub project: Option<String>,
    /// The `Client-ID` (a UUID): Zaqar hides a client's own messages from its
    /// listings unless asked, and names claims' owners by it.
    pub client_id: uuid::Uuid,
    /// Keystone, when requests carry a token.
    pub keystone: Option<Arc<Keystone>>,
    /// A CA certificate (PEM) trusted for `https` besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any server certificate (tests only).
    pub insecure: bool,
    /// Longest time one request may take.
    pub request_timeout: Duration,
    /// First and longest wait between attempts of a request.
    pub backoff: (Duration, Duration),
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("endpoint", &self.endpoint)
            .field("project", &self.project)
            .field("client_id", &self.client_id)
            .field("keystone", &self.keystone)
            .field("insecure", &self.insecure)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// A Zaqar v2 client; cheap to clone (clones share connections and the token).
///
/// ```no_run
/// # async fn run() -> messaging_core::Result<()> {
/// use driver_zaqar::client::{ClientSettings, ZaqarClient};
/// use messaging_core::Retry;
/// use std::time::Duration;
///
/// let client = ZaqarClient::new(ClientSettings {
///     endpoint: "http://127.0.0.1:8888".into(),
///     project: Some("demo".into()),
///     client_id: uuid::Uuid::new_v4(),
///     keystone: None,
///     ca_pem: None,
///     insecure: false,
///     request_timeout: Duration::from_secs(30),
///     backoff: (Duration::from_millis(100), Duration::from_secs(5)),
/// })?;
/// let body = serde_json::value::to_raw_value(&serde_json::json!({"hello": 1})).unwrap();
/// client.post("greetings", &[&*body], 3600, Retry::Times(3)).await?;
/// if let Some(claim) = client.claim("greetings", 10, 60, 60).await? {
///     for message in &claim.messages {
///         client.delete("greetings", &message.id, Some(&claim.id)).await?;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ZaqarClient {
    http: reqwest::Client,
    settings: Arc<ClientSettings>,
}

/// One request: what the error messages call it, and how it is made.
struct Call<'a> {
    method: Method,
    path: String,
    query: &'a [(&'a str, String)],
    body: Option<String>,
}

impl fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// An answer.
struct Answer {
    /// The token the request carried, if any.
    token: Option<String>,
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
    /// From sending the request to the end of the answer.
    took: Duration,
}

impl ZaqarClient {
    /// A client for `settings`; nothing is sent yet.
    pub fn new(settings: ClientSettings) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .danger_accept_invalid_certs(settings.insecure);
        if let Some(pem) = &settings.ca_pem {
            let certificate = reqwest::Certificate::from_pem(pem).map_err(|e| {
                Error::Config(
                    Detail::new(ErrorKind::Config, "the Zaqar CA certificate is not PEM")
                        .with_source(e),
                )
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder
            .build()
            .map_err(|e| Error::transport(ErrorKind::Tls, "could not set up the HTTP client", e))?;
        Ok(ZaqarClient {
            http,
            settings: Arc::new(settings),
        })
    }

    /// The endpoint, e.g. `http://127.0.0.1:8888`.
    pub fn endpoint(&self) -> &str {
        &self.settings.endpoint
    }

    /// The `Client-ID` this client sends.
    pub fn client_id(&self) -> uuid::Uuid {
        self.settings.client_id
    }

    /// `GET /v2/ping`: whether Zaqar answers (and takes the credentials).
    pub async fn ping(&self, retry: Retry) -> Result<()> {
        self.call(Method::GET, "/v2/ping".into(), &[], None, retry)
            .await
            .map(drop)
    }

    /// Creates `queue` (Zaqar creates queues on first post too; this makes one that
    /// exists before anything is posted).
    pub async fn create_queue(&self, queue: &str, retry: Retry) -> Result<()> {
        let path = format!("/v2/queues/{queue}");
        self.call(Method::PUT, path, &[], Some("{}".into()), retry)
            .await
            .map(drop)
    }

    /// Deletes `queue` and its messages.
    pub async fn delete_queue(&self, queue: &str, retry: Retry) -> Result<()> {
        let path = format!("/v2/queues/{queue}");
        self.call(Method::DELETE, path, &[], None, retry)
            .await
            .map(drop)
    }

    /// Posts `bodies` (each a JSON value) to `queue`, to live `ttl` seconds (at least
    /// 60); returns the new messages' ids.
    pub async fn post(
        &self,
        queue: &str,
        bodies: &[&RawValue],
        ttl: u32,
        retry: Retry,
    ) -> Result<Vec<String>> {
        self.post_as(None, queue, bodies, ttl, retry).await
    }

    /// [`post`](Self::post) of messages of `kind`, counted in the driver's metrics
    /// (see [`telemetry`](crate::telemetry)).
    pub(crate) async fn publish(
        &self,
        kind: Publish,
        queue: &str,
        bodies: &[&RawValue],
        ttl: u32,
        retry: Retry,
    ) -> Result<Vec<String>> {
        self.post_as(Some(kind), queue, bodies, ttl, retry).await
    }

    /// [`post`](Self::post), counted as messages of `kind` if given.
    async fn post_as(
        &self,
        kind: Option<Publish>,
        queue: &str,
        bodies: &[&RawValue],
        ttl: u32,
        retry: Retry,
    ) -> Result<Vec<String>> {
        let mut text =
            String::with_capacity(16 + bodies.iter().map(|b| b.get().len() + 24).sum::<usize>());
        text.push_str("{\"messages\":[");
        for (i, body) in bodies.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str("{\"ttl\":");
            text.push_str(&ttl.to_string());
            text.push_str(",\"body\":");
            text.push_str(body.get());
            text.push('}');
        }
        text.push_str("]}");
        let path = format!("/v2/queues/{queue}/messages");
        let answer = self
            .call_counted(Method::POST, path, &[], Some(text), retry, kind.is_some())
            .await?;
        if let Some(kind) = kind {
            telemetry::posted(kind, bodies.len(), answer.took.as_secs_f64());
        }
        let posted: Posted = decode(&answer, "posted messages")?;
        Ok(posted
            .resources
            .iter()
            .map(|href| href.rsplit('/').next().unwrap_or_default().to_string())
            .collect())
    }

    /// Claims up to `limit` (at most [`MAX_PER_REQUEST`]) messages of `queue` for
    /// `ttl` seconds, extending their lives by `grace` seconds if needed (both at
    /// least 60); `None` when none is free.
    pub async fn claim(
        &self,
        queue: &str,
        limit: usize,
        ttl: u32,
        grace: u32,
    ) -> Result<Option<Claim>> {
        let path = format!("/v2/queues/{queue}/claims");
        let query = [("limit", limit.clamp(1, MAX_PER_REQUEST).to_string())];
        let body = format!("{{\"ttl\":{ttl},\"grace\":{grace}}}");
        let answer = self
            .call(Method::POST, path, &query, Some(body), Retry::Times(0))
            .await?;
        if answer.status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let id = answer
            .headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| malformed("a claim without a Location"))?
            .to_string();
        let claimed: Messages = decode(&answer, "claimed messages")?;
        Ok(Some(Claim {
            id,
            messages: claimed.messages,
        }))
    }

    /// Takes up to `limit` free messages of `queue` and deletes them, in one request.
    pub async fn pop(&self, queue: &str, limit: usize) -> Result<Vec<QueuedMessage>> {
        let path = format!("/v2/queues/{queue}/messages");
        let query = [("pop", limit.clamp(1, MAX_PER_REQUEST).to_string())];
        let answer = self
            .call(Method::DELETE, path, &query, None, Retry::Times(0))
            .await?;
        if answer.status == StatusCode::NO_CONTENT || answer.body.is_empty() {
            return Ok(Vec::new());
        }
        Ok(decode::<Messages>(&answer, "popped messages")?.messages)
    }

    /// Lists a page of up to `limit` live unclaimed messages of `queue`, this client's
    /// own included, without taking them, starting after `marker`; with the marker of
    /// the next page. (Zaqar 23 on Redis fails a first page that includes claimed
    /// messages.)
    pub async fn list_page(
        &self,
        queue: &str,
        limit: usize,
        marker: Option<&str>,
    ) -> Result<(Vec<QueuedMessage>, Option<String>)> {
        let path = format!("/v2/queues/{queue}/messages");
        let mut query = vec![
            ("limit", limit.clamp(1, MAX_PER_REQUEST).to_string()),
            ("echo", "true".to_string()),
        ];
        if let Some(marker) = marker {
            query.push(("marker", marker.to_string()));
        }
        let answer = self
            .call(Method::GET, path, &query, None, Retry::Times(2))
            .await?;
        if answer.status == StatusCode::NO_CONTENT || answer.body.is_empty() {
            return Ok((Vec::new(), None));
        }
        let page: Page = decode(&answer, "listed messages")?;
        let next = page
            .links
            .iter()
            .find(|l| l.rel == "next")
            .and_then(|l| {
                l.href
                    .split(['?', '&'])
                    .find_map(|p| p.strip_prefix("marker="))
            })
            .map(str::to_string);
        Ok((page.messages, next))
    }

    /// Deletes one message, with the id of the claim that holds it if any.
    pub async fn delete(&self, queue: &str, id: &str, claim: Option<&str>) -> Result<()> {
        let path = format!("/v2/queues/{queue}/messages/{id}");
        let query: Vec<(&str, String)> = claim
            .map(|c| vec![("claim_id", c.to_string())])
            .unwrap_or_default();
        self.call(Method::DELETE, path, &query, None, Retry::Times(3))
            .await
            .map(drop)
    }

    /// Releases a claim: its messages become free again at once.
    pub async fn release(&self, queue: &str, claim: &str) -> Result<()> {
        let path = format!("/v2/queues/{queue}/claims/{claim}");
        self.call(Method::DELETE, path, &[], None, Retry::Times(3))
            .await
            .map(drop)
    }

    /// Makes a request, again after a temporary failure while `retry` allows.
    async fn call(
        &self,
        method: Method,
        path: String,
        query: &[(&str, String)],
        body: Option<String>,
        retry: Retry,
    ) -> Result<Answer> {
        self.call_counted(method, path, query, body, retry, false)
            .await
    }

    /// [`call`](Self::call); with `count_failures`, each failed attempt is counted as
    /// a failed publish.
    async fn call_counted(
        &self,
        method: Method,
        path: String,
        query: &[(&str, String)],
        body: Option<String>,
        retry: Retry,
        count_failures: bool,
    ) -> Result<Answer> {
        let call = Call {
            method,
            path,
            query,
            body,
        };
        let (first, longest) = self.settings.backoff;
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(first)
            .with_max_delay(longest)
            .with_jitter()
            .without_max_times()
            .build();
        let mut failures = 0u32;
        let mut token_refreshed = false;
        loop {
            let (error, temporary) = match self.attempt(&call).await {
                Ok(answer) if answer.status.is_success() => return Ok(answer),
                Ok(answer) => {
                    if answer.status == StatusCode::UNAUTHORIZED
                        && !token_refreshed
                        && let Some(keystone) = &self.settings.keystone
                    {
                        // The token may have been revoked before it expired: one new one.
                        keystone.forget(answer.token.as_deref()).await;
                        token_refreshed = true;
                        continue;
                    }
                    (
                        refusal(&call, &answer),
                        kinds::status_is_temporary(answer.status),
                    )
                }
                Err(e) => {
                    let temporary = e.is_temporary();
                    (e, temporary)
                }
            };
            failures += 1;
            if count_failures {
                telemetry::failed();
            }
            if !temporary || !retry.allows_another(failures) {
                if temporary {
                    let attempts = if failures == 1 { "attempt" } else { "attempts" };
                    return Err(Error::DeliveryFailure(Detail::wrapping(
                        format!("Zaqar {call}: gave up after {failures} {attempts}: {error}"),
                        error,
                    )));
                }
                return Err(error);
            }
            let delay = delays.next().unwrap_or(longest);
            tracing::warn!(
                request = %call,
                %error,
                attempt = failures,
                "Zaqar request failed; trying again in {delay:?}"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt of a request.
    async fn attempt(&self, call: &Call<'_>) -> Result<Answer> {
        let url = format!("{}{}", self.settings.endpoint, call.path);
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .header("Client-ID", self.settings.client_id.to_string());
        let project = match (&self.settings.project, &self.settings.keystone) {
            (Some(project), _) => Some(project.clone()),
            (None, Some(keystone)) => Some(keystone.project_id(&self.http).await?),
            (None, None) => None,
        };
        if let Some(project) = project {
            request = request.header("X-Project-ID", project);
        }
        let mut sent_token = None;
        if let Some(keystone) = &self.settings.keystone {
            let value = keystone.token(&self.http).await?;
            let mut token = HeaderValue::from_str(&value)
                .map_err(|_| malformed("a Keystone token that is not a header value"))?;
            token.set_sensitive(true);
            request = request.header("X-Auth-Token", token);
            sent_token = Some(value);
        }
        if !call.query.is_empty() {
            request = request.query(call.query);
        }
        if let Some(body) = &call.body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.clone());
        }
        let failed = |e: reqwest::Error| {
            Error::Transport(
                Detail::new(kinds::of_request(&e), format!("Zaqar {call}: no answer"))
                    .with_source(e.without_url()),
            )
        };
        // Real time, not tokio's: a paused test clock must not bend the histogram.
        let sent = std::time::Instant::now();
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(failed)?;
        Ok(Answer {
            token: sent_token,
            status,
            headers,
            body,
            took: sent.elapsed(),
        })
    }
}

/// The error of an answer that is not a success, with Zaqar's title and description.
fn refusal(call: &Call<'_>, answer: &Answer) -> Error {
    let said = serde_json::from_slice::<Refusal>(&answer.body)
        .ok()
        .map(|r| {
            [r.title, r.description]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ")
        })
        .filter(|s| !s.is_empty());
    let mut message = format!("Zaqar {call}: {}", answer.status);
    if let Some(said) = said {
        message.push_str(": ");
        message.push_str(&said);
    }
    Error::Transport(Detail::new(kinds::of_status(answer.status), message))
}

fn decode<'a, T: Deserialize<'a>>(answer: &'a Answer, what: &str) -> Result<T> {
    serde_json::from_slice(&answer.body).map_err(|e| {
        malformed(&format!(
            "{what} Zaqar sent are not JSON of the v2 API: {e}"
        ))
    })
}

fn malformed(what: &str) -> Error {
    Error::Malformed(format!("Zaqar answered with {what}"))
}
