//! Tokio transports for Paddock: the client listener with ZooKeeper's
//! framing. No protocol logic lives here: frames go to the driver as bytes
//! and come back as bytes; decoding them is the core's job.
//!
//! - [`framing`]: the 4-byte big-endian length prefix, the `jute.maxbuffer`
//!   limit, and recognising a four-letter word on a fresh connection.
//! - [`peer`]: the links between members of an ensemble.
//! - [`tls`], [`keystore`]: client TLS on rustls, from ZooKeeper's `ssl.*`
//!   settings and its PEM/PKCS12 stores.
//! - [`gssapi`], [`sasl_gssapi`]: SASL GSSAPI (Kerberos) for clients, on
//!   the system's MIT GSSAPI library loaded at run time.
//! - [`client`]: the accept loop and one task per connection that reads
//!   frames and writes batched replies; `cnxn_limits`: its `maxCnxns` and
//!   `maxClientCnxns` counts.

pub mod client;
mod cnxn_limits;
pub mod framing;
pub mod gssapi;
pub mod keystore;
pub mod peer;
pub mod peer_sasl;
pub mod peer_tls;
pub mod sasl_gssapi;
pub mod tls;

pub use client::{ClientListener, ConnHandle, ListenerConfig, NetEvent, TlsListen};
