//! Kafka transport for notifications (oslo compatible) and RPC: not yet implemented.
