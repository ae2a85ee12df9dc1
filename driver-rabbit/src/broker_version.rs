//! The version a RabbitMQ node announces (the `version` server property of its
//! `connection.start`), for the options that mean nothing on some versions:
//! `rabbit_ha_queues` (classic queue mirroring, `x-ha-policy`) is gone from RabbitMQ 4.0
//! on. lapin does not keep the server properties, so a connection of its own reads them
//! and goes no further (the broker logs it as closed before the handshake).

use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, parse_frame};
use lapin::protocol::{AMQPClass, connection::AMQPMethod};
use lapin::types::AMQPValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The AMQP 0-9-1 protocol header a client opens with.
const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

/// More than any `connection.start` RabbitMQ sends (about 500 bytes).
const MAX_START: usize = 16 * 1024;

/// How long the probe may take in all.
const PATIENCE: Duration = Duration::from_secs(5);

/// The version `host:port` announces, `None` when it does not answer in time or says
/// nothing readable.
pub(crate) async fn announced(host: &str, port: u16) -> Option<String> {
    tokio::time::timeout(PATIENCE, read_start(host, port))
        .await
        .ok()
        .flatten()
}

async fn read_start(host: &str, port: u16) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
    stream.write_all(PROTOCOL_HEADER).await.ok()?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    while received.len() < MAX_START {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(&chunk[..n]);
        if let Some(version) = version_in(&received) {
            return Some(version);
        }
    }
    None
}

/// The `version` server property of the `connection.start` frame at the start of
/// `bytes`, once it has arrived whole.
fn version_in(bytes: &[u8]) -> Option<String> {
    let (_, frame) = parse_frame(bytes).ok()?;
    match frame {
        AMQPFrame::Method(0, AMQPClass::Connection(AMQPMethod::Start(start))) => {
            match start.server_properties.inner().get("version")? {
                AMQPValue::LongString(v) => {
                    Some(String::from_utf8_lossy(v.as_bytes()).into_owned())
                }
                AMQPValue::ShortString(v) => Some(v.as_str().to_string()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The major version of a version string (`"4.0.5"` → 4; Debian's `"4.0.5-6+deb13u2"`
/// too).
pub(crate) fn major(version: &str) -> Option<u32> {
    version.split(['.', '-']).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors() {
        assert_eq!(major("4.0.5"), Some(4));
        assert_eq!(major("3.10.8"), Some(3));
        assert_eq!(major("4.0.5-6+deb13u2"), Some(4));
        assert_eq!(major("garbage"), None);
    }

    #[test]
    fn a_partial_frame_says_nothing_yet() {
        assert_eq!(version_in(b"\x01\x00\x00\x00\x00\x01"), None);
        assert_eq!(version_in(b""), None);
    }
}
