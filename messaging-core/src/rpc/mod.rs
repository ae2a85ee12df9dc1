//! RPC: clients that call and cast, servers that dispatch to endpoints.

pub mod client;
pub mod dispatcher;
pub mod endpoint;
pub mod server;

pub use client::RpcClient;
pub use dispatcher::{AccessPolicy, Dispatcher};
pub use endpoint::{Endpoint, NoArgs};
pub use server::{RpcServer, RpcServerBuilder};
