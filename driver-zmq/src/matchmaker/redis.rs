//! [`Redis`]: registrations in a shared Redis.
//!
//! Each destination is a sorted set `omsg-zmq:<destination>` whose members are the
//! [`Member`] texts and whose scores are the instants (Unix milliseconds of the Redis
//! server's clock, `+inf` for no TTL) at which they expire: each member has its own
//! TTL, unlike oslo's sets where one `EXPIRE` covered them all. The key itself expires
//! with its newest member, so nothing is left behind when every node is gone.
//!
//! Registration and lookup are short Lua scripts, so that the expiry is computed on the
//! server's clock (nodes' clocks may differ; one Redis has one clock) and so that
//! registering adds the member, drops expired ones and sets the key's expiry in one
//! atomic step.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use messaging_core::{Detail, Error, ErrorKind, Result, TransportUrl};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue, RedisConnectionInfo};

use super::Matchmaker;
use crate::destination::{Destination, Member};

/// The prefix of every key this matchmaker writes.
const KEY_PREFIX: &str = "omsg-zmq:";

/// Where Redis is when the URL names no host, and its port when a host has none.
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 6379;

/// The longest one operation on one server may take, connecting included: a Redis that
/// does not answer must not stall senders and registration loops.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// For this long after a failure a server is asked last for lookups, so that a dead
/// server does not cost every lookup a timeout.
const DEMOTED_FOR: Duration = Duration::from_secs(10);

/// TTLs above this (about 3000 years) are clamped, so that the expiry stays an exact
/// integer on the server.
const MAX_TTL_MS: u128 = 100_000_000_000_000;

/// What replaces a password in `Debug` output and errors.
const MASK: &str = "****";

/// KEYS[1]: key; ARGV[1]: member; ARGV[2]: TTL in milliseconds, or '' for none.
///
/// `replicate_commands` lets Redis before 5 accept writes after `TIME`; later versions
/// do that anyway.
const REGISTER: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = '+inf'
if ARGV[2] ~= '' then score = string.format('%d', now + tonumber(ARGV[2])) end
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
if newest == nil then return 0 end
newest = tonumber(newest)
if newest == math.huge then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', newest))
end
return 1
";

/// KEYS[1]: key. Prunes the expired members and returns the live ones.
const LOOKUP: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
";

/// Registrations in Redis (`zmq+redis://[:password@]host:port[,host2:port2]`).
///
/// With several servers (independent ones, not replicas), writes go to every server
/// and succeed when at least one took them; lookups return the first non-empty answer,
/// asking servers in URL order but those that failed in the last seconds last. A
/// server that comes back empty after a restart thus does not hide the others'
/// registrations, though it answers with only the nodes that renewed since.
///
/// Connections are made on first use and kept; every operation on a server is bounded
/// by a 2 s timeout. `Debug` and errors name servers by `host:port` and never show
/// passwords.
#[derive(Clone)]
pub struct Redis {
    servers: Arc<[Server]>,
}

/// One Redis server of the URL.
struct Server {
    /// `host:port`, for messages.
    label: String,
    username: Option<String>,
    password: Option<String>,
    client: redis::Client,
    /// Made on first use; forgotten after failures it would not recover from.
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// When it last failed, to ask it last for lookups for a while.
    failed_at: Mutex<Option<Instant>>,
}

impl Redis {
    /// A matchmaker on the Redis servers of `url` (`zmq+redis://host:port`); connects on
    /// first use.
    ///
    /// A URL without hosts means `127.0.0.1:6379`, a host without port port 6379. A
    /// password (`zmq+redis://:secret@host`, or `user:secret@` for a Redis 6 ACL user)
    /// applies to the host it is written on. A virtual host, if any, is the database
    /// number (`zmq+redis://host/2`). Errors are [`Error::InvalidUrl`], with passwords
    /// masked.
    pub fn new(url: &TransportUrl) -> Result<Redis> {
        let bad = |reason: String| Error::InvalidUrl {
            url: url.masked(),
            reason,
        };
        let db = match url.virtual_host.as_deref() {
            None | Some("") => 0,
            Some(vhost) => vhost.parse::<i64>().map_err(|_| {
                bad(format!(
                    "the virtual host {vhost:?} is not a Redis database number"
                ))
            })?,
        };
        let hosts = if url.hosts.is_empty() {
            vec![Default::default()]
        } else {
            url.hosts.clone()
        };
        let mut servers = Vec::with_capacity(hosts.len());
        for (index, host) in hosts.into_iter().enumerate() {
            let hostname = host
                .hostname
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| DEFAULT_HOST.to_string());
            let port = host.port.unwrap_or(DEFAULT_PORT);
            if port == 0 {
                return Err(bad(format!("host {}: port 0", index + 1)));
            }
            let label = if hostname.contains(':') {
                format!("[{hostname}]:{port}")
            } else {
                format!("{hostname}:{port}")
            };
            let username = host.username.filter(|u| !u.is_empty());
            let password = host.password.filter(|p| !p.is_empty());
            let info = ConnectionInfo {
                addr: ConnectionAddr::Tcp(hostname, port),
                redis: RedisConnectionInfo {
                    db,
                    username: username.clone(),
                    password: password.clone(),
                    ..Default::default()
                },
            };
            let client =
                redis::Client::open(info).map_err(|e| bad(format!("host {}: {e}", index + 1)))?;
            servers.push(Server {
                label,
                username,
                password,
                client,
                connection: tokio::sync::Mutex::new(None),
                failed_at: Mutex::new(None),
            });
        }
        Ok(Redis {
            servers: servers.into(),
        })
    }

    /// Runs `cmd` on every server at once; fine when one of them took it.
    async fn write(&self, what: &str, cmd: &Cmd) -> Result<()> {
        let results =
            futures::future::join_all(self.servers.iter().map(|s| s.run::<redis::Value>(cmd)))
                .await;
        let failures: Vec<Detail> = results.into_iter().filter_map(|r| r.err()).collect();
        if failures.len() == self.servers.len() {
            return Err(all_failed(failures));
        }
        for failure in failures {
            tracing::warn!("{what} not written to every Redis matchmaker server: {failure}");
        }
        Ok(())
    }
}

impl Server {
    /// The connection, made on first use. Each attempt makes one try: the next operation
    /// makes the next.
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = &*slot {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(OPERATION_TIMEOUT)
            .set_response_timeout(OPERATION_TIMEOUT);
        let connection = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `cmd`, within [`OPERATION_TIMEOUT`]; the error's message names the server, its
    /// source is the Redis client's error.
    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> std::result::Result<T, Detail> {
        let attempt = async {
            let mut connection = self.connection().await?;
            cmd.query_async::<T>(&mut connection).await
        };
        let (message, error) = match tokio::time::timeout(OPERATION_TIMEOUT, attempt).await {
            Ok(Ok(value)) => return Ok(value),
            // The connection manager reconnects by itself after I/O errors; after others
            // (a failed authentication when it reconnected, say) it would keep failing.
            Ok(Err(e)) if e.is_io_error() => (format!("unreachable: {}", one_line(&e)), Some(e)),
            Ok(Err(e)) => {
                self.forget().await;
                (format!("failed: {}", one_line(&e)), Some(e))
            }
            Err(_) => {
                self.forget().await;
                let message = format!("unreachable: no answer within {OPERATION_TIMEOUT:?}");
                (message, None)
            }
        };
        *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let message = self.scrub(format!("Redis matchmaker at {} {message}", self.label));
        Err(match error {
            Some(e) => {
                let detail = Detail::new(kind_of(&e), message);
                match &self.password {
                    Some(password) => detail.with_source_hiding(e, password),
                    None => detail.with_source(e),
                }
            }
            // Nothing answered in time: as good as not there.
            None => Detail::new(ErrorKind::Unreachable, message),
        })
    }

    async fn forget(&self) {
        *self.connection.lock().await = None;
    }

    /// Whether it failed lately.
    fn demoted(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < DEMOTED_FOR)
    }

    /// `message` without the password, should a server or library ever echo it. Very
    /// short passwords are left: masking them would garble the text and hide little.
    fn scrub(&self, message: String) -> String {
        match &self.password {
            Some(password) if password.len() >= 3 => message.replace(password.as_str(), MASK),
            _ => message,
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: `redis::Client`'s own `Debug` shows the password.
        f.debug_struct("Server")
            .field("address", &self.label)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .finish()
    }
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("servers", &self.servers)
            .finish()
    }
}

/// A Redis error on one line (parse errors span several), for log lines and errors.
fn one_line(e: &redis::RedisError) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn key_of(destination: &Destination) -> String {
    format!("{KEY_PREFIX}{destination}")
}

#[async_trait]
impl Matchmaker for Redis {
    async fn register(
        &self,
        key: &Destination,
        member: &Member,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let ttl = ttl
            .map(|t| t.as_millis().min(MAX_TTL_MS).to_string())
            .unwrap_or_default();
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(REGISTER)
            .arg(1)
            .arg(key_of(key))
            .arg(member.to_string())
            .arg(ttl);
        self.write("registration", &cmd).await
    }

    async fn unregister(&self, key: &Destination, member: &Member) -> Result<()> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(key_of(key)).arg(member.to_string());
        self.write("unregistration", &cmd).await
    }

    async fn lookup(&self, key: &Destination) -> Result<Vec<Member>> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(LOOKUP).arg(1).arg(key_of(key));
        let (ready, demoted): (Vec<&Server>, Vec<&Server>) =
            self.servers.iter().partition(|s| !s.demoted());
        let mut failures = Vec::new();
        let mut answered = false;
        for server in ready.into_iter().chain(demoted) {
            let texts = match server.run::<Vec<Vec<u8>>>(&cmd).await {
                Ok(texts) => texts,
                Err(failure) => {
                    failures.push(failure);
                    continue;
                }
            };
            answered = true;
            let mut members: Vec<Member> = texts
                .into_iter()
                .filter_map(|text| {
                    let parsed = std::str::from_utf8(&text).ok().and_then(Member::parse);
                    if parsed.is_none() {
                        tracing::warn!(
                            key = %key_of(key),
                            server = %server.label,
                            member = %String::from_utf8_lossy(&text),
                            "Redis matchmaker: skipping a member that is not host:port[#pool]"
                        );
                    }
                    parsed
                })
                .collect();
            if !members.is_empty() {
                for failure in failures {
                    tracing::debug!("lookup answered by {}; before: {failure}", server.label);
                }
                // By address, as the in-process matchmaker, so that callers see a stable order.
                members.sort_by(|a, b| (&a.address, &a.pool).cmp(&(&b.address, &b.pool)));
                return Ok(members);
            }
        }
        if answered {
            for failure in failures {
                tracing::debug!("lookup found nobody; besides: {failure}");
            }
            return Ok(Vec::new());
        }
        Err(all_failed(failures))
    }
}

/// The error when no server answered: every server's failure, of the kind and with the
/// source of the last one.
fn all_failed(mut failures: Vec<Detail>) -> Error {
    let message = failures
        .iter()
        .map(|f| f.message())
        .collect::<Vec<_>>()
        .join("; ");
    match failures.pop() {
        Some(last) => Error::Transport(Detail::wrapping(message, Error::Transport(last))),
        None => Error::Transport(message.into()),
    }
}

/// The kind of a Redis client error.
fn kind_of(e: &redis::RedisError) -> ErrorKind {
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        ErrorKind::RefusedCredentials
    } else if e.is_connection_refusal() {
        ErrorKind::Unreachable
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connection_dropped() {
        ErrorKind::ConnectionLost
    } else if e.is_io_error() {
        ErrorKind::Io
    } else {
        ErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(url: &str) -> Result<Redis> {
        Redis::new(&url.parse().unwrap())
    }

    fn labels(r: &Redis) -> Vec<&str> {
        r.servers.iter().map(|s| s.label.as_str()).collect()
    }

    #[test]
    fn urls_name_servers_with_defaults() {
        assert_eq!(labels(&redis("zmq+redis://").unwrap()), ["127.0.0.1:6379"]);
        assert_eq!(
            labels(&redis("zmq+redis://h1,h2:6380,[::1]:7000,:6381").unwrap()),
            ["h1:6379", "h2:6380", "[::1]:7000", "127.0.0.1:6381"]
        );
        let r = redis("zmq+redis://:secret@h1:6379,user:pw@h2/3").unwrap();
        let (a, b) = (&r.servers[0], &r.servers[1]);
        assert_eq!(
            (a.username.as_deref(), a.password.as_deref()),
            (None, Some("secret"))
        );
        assert_eq!(
            (b.username.as_deref(), b.password.as_deref()),
            (Some("user"), Some("pw"))
        );
        assert_eq!(b.client.get_connection_info().redis.db, 3);
        // Only a password: the default host.
        assert_eq!(
            labels(&redis("zmq+redis://:secret@").unwrap()),
            ["127.0.0.1:6379"]
        );
    }

    #[test]
    fn bad_urls_are_refused_with_passwords_masked() {
        for (url, part) in [
            ("zmq+redis://:secret@h1/db0", "virtual host"),
            ("zmq+redis://:secret@h1:0", "port 0"),
        ] {
            match redis(url) {
                Err(e @ Error::InvalidUrl { .. }) => {
                    let text = format!("{e} {e:?}");
                    assert!(text.contains(part), "{text}");
                    assert!(!text.contains("secret"), "{text}");
                }
                other => panic!("{url}: expected InvalidUrl, got {other:?}"),
            }
        }
    }

    #[test]
    fn debug_masks_passwords() {
        let r = redis("zmq+redis://:s3cr3t-pass@h1:6379,admin:an0ther@h2").unwrap();
        let debug = format!("{r:?} {r:#?}");
        assert!(
            !debug.contains("s3cr3t-pass") && !debug.contains("an0ther"),
            "{debug}"
        );
        assert!(
            debug.contains("h1:6379") && debug.contains("h2:6379"),
            "{debug}"
        );
        assert!(debug.contains(MASK) && debug.contains("admin"), "{debug}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_without_its_password() {
        // Port 1: nothing listens there, so the connection is refused at once.
        let r = redis("zmq+redis://:s3cr3t-pass@127.0.0.1:1").unwrap();
        let key = Destination::Topic {
            exchange: "x".into(),
            topic: "t".into(),
        };
        let member = Member::node("h:1");
        let errors = [
            r.lookup(&key).await.unwrap_err(),
            r.register(&key, &member, None).await.unwrap_err(),
            r.unregister(&key, &member).await.unwrap_err(),
        ];
        for e in errors {
            assert!(matches!(e, Error::Transport(_)), "{e:?}");
            let text = format!("{e} {e:?}");
            assert!(
                text.contains("Redis matchmaker at 127.0.0.1:1 unreachable"),
                "{text}"
            );
            assert!(!text.contains("s3cr3t-pass"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_silent_server_costs_one_timeout() {
        // Accepts connections and never answers, as a hung Redis would.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                sockets.push(socket);
            }
        });
        let r = redis(&format!("zmq+redis://127.0.0.1:{port}")).unwrap();
        let key = Destination::Topic {
            exchange: "x".into(),
            topic: "t".into(),
        };
        let started = Instant::now();
        let e = r.lookup(&key).await.unwrap_err();
        let took = started.elapsed();
        assert!(
            took < OPERATION_TIMEOUT + Duration::from_secs(1),
            "{took:?}"
        );
        assert!(
            e.to_string()
                .contains(&format!("Redis matchmaker at 127.0.0.1:{port} unreachable")),
            "{e}"
        );
        held.abort();
    }

    #[test]
    fn scrub_masks_echoed_passwords() {
        let r = redis("zmq+redis://:s3cr3t-pass@h1,:ab@h2").unwrap();
        assert_eq!(r.servers[0].scrub("x s3cr3t-pass y".into()), "x **** y");
        assert_eq!(r.servers[1].scrub("tab".into()), "tab");
    }
}
