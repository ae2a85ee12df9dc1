//! The driver against the real RabbitMQ: what the conformance suite cannot see
//! (declare flags and arguments on the broker, malformed messages, compression,
//! failover, reconnection, passwords kept out of errors, logs and `Debug`).

#[path = "../support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable};
use messaging_core::{Context, Error, Retry, RpcClient, RpcServer, Target};
use serde_json::{Value, json};

mod compression;
mod connections;
mod declarations;
mod delivery_failures;

/// Everything logged by this test binary, to search for passwords and warnings.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// Stops a server and the transport gracefully.
async fn finish(server: RpcServer, transport: messaging_core::Transport) {
    server.stop().await;
    server.wait().await.unwrap();
    transport.cleanup().await;
}

async fn echo(client: &RpcClient, data: Value) -> messaging_core::Result<Value> {
    client
        .call(&Context::new(), "echo", json!({ "data": data }))
        .await
}
