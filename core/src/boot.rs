//! Start-up: the one sequence by which a server comes up from its data
//! dir, used by the server and the simulator alike.
//!
//! Order (each step depends on the one before):
//! 1. read every log and snapshot, and whether the `repairing` mark is set;
//! 2. recover the state (`storage::recover_marked`);
//! 3. if durable records were lost and peers can repair this server, make
//!    the mark durable *before* the repairs erase the evidence of the loss;
//! 4. carry out the repairs (truncations, files set aside);
//! 5. read the epoch files (after the repairs: they never move back);
//! 6. fill `/zookeeper/config` from `Config::member_list`, in the state
//!    and in the base a TRUNC rebuilds from;
//! 7. build the `Node`.
//!
//! The IO belongs to the caller, behind [`DataDir`]; this module only
//! decides what happens and in which order.

use crate::config::Config;
use crate::ids::{Now, Zxid};
use crate::node::Node;
use crate::storage::{recover_marked, DiskImage, RecoveryError, Repair};
use crate::txn::ApplyOptions;

/// A data directory as start-up needs it. The server's implementation
/// does file IO; the simulator's holds the files in memory.
pub trait DataDir {
    type Error: std::fmt::Display + std::fmt::Debug;
    /// Every `log.*` and `snapshot.*` file.
    fn image(&mut self) -> Result<DiskImage, Self::Error>;
    /// Whether the `repairing` mark is present.
    fn repair_mark(&mut self) -> Result<bool, Self::Error>;
    /// Makes the `repairing` mark present and durable.
    fn set_repair_mark(&mut self) -> Result<(), Self::Error>;
    /// Carries out recovery's repairs, durably.
    fn apply_repairs(&mut self, repairs: &[Repair]) -> Result<(), Self::Error>;
    /// The contents of `acceptedEpoch` and `currentEpoch`, where present.
    #[allow(clippy::type_complexity)]
    fn epoch_files(&mut self) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), Self::Error>;
}

#[derive(Debug, thiserror::Error)]
pub enum BootError<E: std::fmt::Display + std::fmt::Debug> {
    #[error("{0}")]
    Io(E),
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
}

/// A server ready to serve, and what start-up found.
pub struct Booted {
    pub node: Node,
    /// Recovery's lines for the log.
    pub notes: Vec<String>,
    /// Durable records were lost and the `repairing` mark was set: the
    /// server syncs from a leader before it votes again.
    pub marked: bool,
    pub last_zxid: Zxid,
}

/// Brings a server up from `dir` (see the module header for the order).
pub fn boot<D: DataDir>(
    config: Config,
    dir: &mut D,
    now: Now,
) -> Result<Booted, BootError<D::Error>> {
    let image = dir.image().map_err(BootError::Io)?;
    let mark = dir.repair_mark().map_err(BootError::Io)?;
    let recovered = recover_marked(&image, &ApplyOptions::from_config(&config), mark)?;
    drop(image);
    let marked = recovered.damaged && config.repairs_from_peers();
    if marked {
        dir.set_repair_mark().map_err(BootError::Io)?;
    }
    dir.apply_repairs(&recovered.repairs)
        .map_err(BootError::Io)?;
    let (accepted, current) = dir.epoch_files().map_err(BootError::Io)?;
    let mut recovered = recovered.with_epoch_files(accepted.as_deref(), current.as_deref());
    if let Some(text) = &config.member_list {
        recovered.state.tree.set_config_node(text.clone());
        recovered.base.tree.set_config_node(text.clone());
    }
    let notes = recovered.notes.clone();
    let last_zxid = recovered.state.last_zxid;
    Ok(Booted {
        node: Node::new(config, recovered, now),
        notes,
        marked,
        last_zxid,
    })
}
