//! Paddock's core: one ZooKeeper server as a deterministic state machine.
//!
//! No networking, no files, no threads, no clock reads: the caller passes
//! inputs and the time in, and takes effects (bytes to send, records to
//! persist, snapshots to write) out as values. The production shell and the
//! simulator drive this exact code.

pub mod boot;
pub mod canary;
pub mod codec;
pub mod config;
pub mod ids;
pub mod latency;
pub mod limits;
pub mod log;
pub mod membership;
pub mod node;
pub mod peer;
pub mod proto;
pub mod sasl;
pub mod session;
pub mod storage;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod zab;
pub mod zk;

pub use config::Config;
pub use ids::*;
pub use node::{Input, Node, NodeStats, Output};
pub use zab::ServerRole;
