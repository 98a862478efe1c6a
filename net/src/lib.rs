//! Tokio transports: the client listener with ZooKeeper framing; no protocol logic.
