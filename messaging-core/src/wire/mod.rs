//! The wire formats every driver shares: envelope, RPC request, reply, failure,
//! notification message.

pub mod failure;
