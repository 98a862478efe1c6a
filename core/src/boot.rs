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
//!    and in the base a TRUNC rebuilds from, unless a reconfig wrote it;
//! 7. build the `Node`.
//!
//! The IO belongs to the caller, behind [`DataDir`]; this module only
//! decides what happens and in which order.

use crate::config::Config;
use crate::ids::{Now, Zxid};
use crate::node::Node;
pub use crate::storage::DataDir;
use crate::storage::{recover_marked, RecoveryError};
use crate::txn::ApplyOptions;

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
        // A member list a committed reconfig wrote (mzxid set by its txn)
        // is newer than the files': keep it.
        for state in [&mut recovered.state, &mut recovered.base] {
            let reconfigured = state
                .tree
                .get(crate::tree::CONFIG_NODE)
                .is_some_and(|n| n.mzxid != 0);
            if !reconfigured {
                state.tree.set_config_node(text.clone());
            }
        }
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
