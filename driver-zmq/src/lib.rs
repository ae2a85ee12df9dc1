//! Brokerless ZeroMQ transport with matchmakers: not yet implemented.
