//! [`Answers`]: hands what comes back to a node (replies, acks, refusals) to the
//! sends waiting for it.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use messaging_core::driver::ReplyWaiters;
use tokio::sync::oneshot;

use crate::frame::{Frame, Kind};

/// The sends of one node waiting for an answer.
#[derive(Default)]
pub struct Answers {
    /// Calls waiting for replies, keyed by `msg_id`.
    pub replies: ReplyWaiters,
    acks: Mutex<HashMap<Bytes, oneshot::Sender<Result<(), String>>>>,
}

/// A notification waiting for its ack; forgets itself when dropped.
pub struct PendingAck<'a> {
    id: Bytes,
    answers: &'a Answers,
    /// `Ok` once acked, `Err(reason)` when refused.
    pub rx: oneshot::Receiver<Result<(), String>>,
}

impl Drop for PendingAck<'_> {
    fn drop(&mut self) {
        self.answers.lock().remove(&self.id);
    }
}

impl Answers {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Bytes, oneshot::Sender<Result<(), String>>>> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a notification `id` before it is sent.
    pub fn expect_ack(&self, id: Bytes) -> PendingAck<'_> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.clone(), tx);
        PendingAck {
            id,
            answers: self,
            rx,
        }
    }

    /// Hands an answer to whoever waits for it.
    pub fn handle(&self, frame: Frame) {
        match frame.kind {
            Kind::Reply => self.replies.deliver_body(&frame.body),
            Kind::Ack => {
                if let Some(tx) = self.lock().remove(&frame.id) {
                    let _ = tx.send(Ok(()));
                }
            }
            Kind::Refused => {
                let reason = String::from_utf8_lossy(&frame.body).into_owned();
                match self.lock().remove(&frame.id) {
                    Some(tx) => {
                        let _ = tx.send(Err(reason));
                    }
                    None => self.replies.refuse(&frame.id_str(), reason),
                }
            }
            other => tracing::debug!(kind = ?other, "not an answer; dropped"),
        }
    }
}
