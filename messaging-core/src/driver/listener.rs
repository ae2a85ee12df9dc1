//! [`ChannelListener`]: a [`Listener`] over a channel that a driver's consumers fill.

use async_trait::async_trait;

use super::contract::Listener;

/// What fills a [`ChannelListener`]: a driver's consumers, which can be stopped and
/// closed.
#[async_trait]
pub trait MessageSource: Send {
    /// Stops taking new messages; those already taken stay in the channel.
    fn stop(&mut self);
    /// Releases the consumers (connections, fanout queues, group membership).
    async fn close(&mut self);
}

/// A [`Listener`] over a channel that a driver's consumers fill: `next` takes from
/// the channel (cancel-safe), and returns `None` once the consumers are stopped and
/// every sender is gone.
///
/// Over a bounded channel ([`ChannelListener::bounded`]) the consumers wait for room
/// when the server falls behind, which is how a driver without a broker to hold the
/// backlog pushes back on its senders.
pub struct ChannelListener<T, S> {
    rx: Queue<T>,
    source: S,
}

/// The receiving end of a [`ChannelListener`]'s channel.
enum Queue<T> {
    Unbounded(tokio::sync::mpsc::UnboundedReceiver<T>),
    Bounded(tokio::sync::mpsc::Receiver<T>),
}

impl<T, S> ChannelListener<T, S> {
    /// A listener taking from `rx`, which `source`'s consumers fill.
    pub fn new(rx: tokio::sync::mpsc::UnboundedReceiver<T>, source: S) -> Self {
        ChannelListener {
            rx: Queue::Unbounded(rx),
            source,
        }
    }

    /// A listener taking from the bounded `rx`, which `source`'s consumers fill.
    pub fn bounded(rx: tokio::sync::mpsc::Receiver<T>, source: S) -> Self {
        ChannelListener {
            rx: Queue::Bounded(rx),
            source,
        }
    }
}

#[async_trait]
impl<T: Send + 'static, S: MessageSource + 'static> Listener<T> for ChannelListener<T, S> {
    async fn next(&mut self) -> Option<T> {
        match &mut self.rx {
            Queue::Unbounded(rx) => rx.recv().await,
            Queue::Bounded(rx) => rx.recv().await,
        }
    }

    async fn stop(&mut self) {
        self.source.stop();
    }

    fn backlog(&self) -> Option<usize> {
        Some(match &self.rx {
            Queue::Unbounded(rx) => rx.len(),
            Queue::Bounded(rx) => rx.len(),
        })
    }

    async fn cleanup(&mut self) {
        self.source.stop();
        self.source.close().await;
        match &mut self.rx {
            Queue::Unbounded(rx) => rx.close(),
            Queue::Bounded(rx) => rx.close(),
        }
    }
}
