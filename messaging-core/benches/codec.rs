//! Encode + decode throughput of the wire formats: a ~100-byte RPC call request and a
//! notification, each through the 2.0 envelope and back, on one core.
//!
//! Run: `cargo bench -p messaging-core --bench codec`. Prints a table; the target is at
//! least 500,000 messages per second per core for each.

use std::hint::black_box;
use std::time::{Duration, Instant};

use messaging_core::Context;
use messaging_core::wire::notification::{new_message_id, utc_now_timestamp};
use messaging_core::wire::{ContextPacking, NotificationMessage, ReplyAddress, Request};
use serde_json::{Map, Value, json};

fn call_request() -> Request {
    let args: Map<String, Value> = json!({"a": 1, "b": 2})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut r = Request::new("add", args, Context::new().with("user", "u1"));
    r.reply = Some(ReplyAddress {
        msg_id: "0123456789abcdef0123456789abcdef".into(),
        reply_q: "reply_0123456789abcdef".into(),
        call_monitor_timeout: None,
    });
    r
}

fn notification() -> NotificationMessage {
    NotificationMessage {
        message_id: new_message_id(),
        publisher_id: "compute.host1".into(),
        event_type: "compute.instance.create.end".into(),
        priority: "INFO".into(),
        payload: json!({"instance_id": "8c2d8e2e-1a2b-4c5d-9e8f-0a1b2c3d4e5f", "state": "active", "memory_mb": 2048}),
        timestamp: utc_now_timestamp(),
        unique_id: Some("fedcba9876543210fedcba9876543210".into()),
        context: Context::new(),
    }
}

/// Runs `round_trip` for about `budget` and returns (messages per second, bytes per message).
fn measure(budget: Duration, mut round_trip: impl FnMut() -> usize) -> (f64, usize) {
    let mut size = 0;
    for _ in 0..10_000 {
        size = round_trip();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            black_box(round_trip());
        }
        n += 1_000;
    }
    (n as f64 / start.elapsed().as_secs_f64(), size)
}

/// Python doing the same work as oslo.messaging's RabbitMQ path: `serialize_msg` (the
/// envelope around `jsonutils.dumps`, which is `json.dumps` for plain data), kombu's
/// `json.dumps` of the body, then `json.loads` twice and `deserialize_msg`.
const PYTHON_CODEC: &str = r#"
import json, sys, time
msg = json.loads(sys.argv[1]); budget = float(sys.argv[2])
def serialize_msg(raw):
    return {'oslo.version': '2.0', 'oslo.message': json.dumps(raw)}
def deserialize_msg(msg):
    if not isinstance(msg, dict) or not ('oslo.version' in msg and 'oslo.message' in msg):
        return msg
    return json.loads(msg['oslo.message'])
n = 0; start = time.perf_counter()
while time.perf_counter() - start < budget:
    for _ in range(1000):
        body = json.dumps(serialize_msg(msg))
        deserialize_msg(json.loads(body))
    n += 1000
print(n / (time.perf_counter() - start))
"#;

/// Messages per second of the Python codec path, if `python3` is installed.
fn python_rate(message: &Map<String, Value>, budget: Duration) -> Option<f64> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            PYTHON_CODEC,
            &Value::Object(message.clone()).to_string(),
            &budget.as_secs_f64().to_string(),
        ])
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test` this runs as a quick smoke check.
    let budget = if std::env::args().any(|a| a == "--bench") {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(20)
    };
    let request = call_request();
    let inner_len = serde_json::to_vec(&request.to_map(ContextPacking::Flattened))
        .map(|v| v.len())
        .unwrap_or(0);
    let (call_rate, call_size) = measure(budget, || {
        let body = request.encode(ContextPacking::Flattened).expect("encode");
        let decoded = Request::decode(&body).expect("decode");
        black_box(decoded);
        body.len()
    });
    let note = notification();
    let (note_rate, note_size) = measure(budget, || {
        let body = note
            .encode(ContextPacking::Flattened, true)
            .expect("encode");
        let decoded = NotificationMessage::decode(&body).expect("decode");
        black_box(decoded);
        body.len()
    });
    // The raw serde_json baseline: the same inner message as a plain object, no envelope.
    let raw = request.to_map(ContextPacking::Flattened);
    let (raw_rate, raw_size) = measure(budget, || {
        let body = serde_json::to_vec(&raw).expect("encode");
        let decoded: Map<String, Value> = serde_json::from_slice(&body).expect("decode");
        black_box(decoded);
        body.len()
    });
    let python = python_rate(&request.to_map(ContextPacking::Flattened), budget);
    println!("codec round trip (encode + decode), one core, {budget:?} per row");
    println!("| message | inner bytes | wire bytes | messages/s | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| RPC call request (enveloped) | {inner_len} | {call_size} | {call_rate:.0} | 500000 |"
    );
    println!("| notification (messagingv2) | - | {note_size} | {note_rate:.0} | 500000 |");
    println!(
        "| raw serde_json map, same request, no envelope | {inner_len} | {raw_size} | {raw_rate:.0} | - |"
    );
    match python {
        Some(rate) => println!(
            "| Python oslo.messaging codec path, same request | {inner_len} | - | {rate:.0} | - |"
        ),
        None => {
            println!("| Python oslo.messaging codec path | - | - | n/a (python3 not found) | - |")
        }
    }
}
