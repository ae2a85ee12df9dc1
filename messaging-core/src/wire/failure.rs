//! oslo's failure JSON: how a server's exception travels to the caller.
//! (Stub; being written.)

use serde_json::{Map, Value};

/// An exception raised by an RPC server, as described by oslo's failure JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteError {
    /// Exception class name, e.g. `ValueError`.
    pub class: String,
    /// Python module of the class, e.g. `builtins`.
    pub module: String,
    /// `str(exception)`.
    pub message: String,
    /// Traceback lines.
    pub traceback: Vec<String>,
    /// Positional constructor arguments.
    pub args: Vec<Value>,
    /// Keyword constructor arguments.
    pub kwargs: Map<String, Value>,
    /// Marks an error the endpoint expects (oslo's `expected_exceptions`): logged at debug level.
    pub expected: bool,
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "remote error: {} {}", self.class, self.message)
    }
}

impl std::error::Error for RemoteError {}
