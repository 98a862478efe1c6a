//! The ZooKeeper client wire protocol (jute): the encoding, the records and
//! the numeric codes. Peer messages are not here: they are serde types
//! encoded through [`crate::codec`].

pub mod codes;
pub mod jute;
pub mod records;
pub mod replies;

pub use codes::*;
pub use jute::{DecodeError, Reader, Writer};
pub use records::*;
pub use replies::*;
