//! The leader's word on a reconfig request (op 16), decided as it is
//! proposed, with ZooKeeper's checks in PrepRequestProcessor's order:
//! ReconfigDisabled; Unimplemented on a standalone server;
//! ReconfigInProgress while a reconfig is proposed and not committed;
//! BadVersion when `curConfigId` is not -1 and not the last seen
//! configuration's version; BadArguments for a bad member list or fewer
//! than two voters (ZooKeeper's default standaloneEnabled); NewConfigNoQuorum
//! unless this leader and the followers it has synced hold a majority of
//! the new configuration's voters; NoAuth without WRITE on
//! `/zookeeper/config` (the super user and `skipACL` pass). The new
//! configuration's version is the txn's zxid.

use super::*;
use crate::membership::{Membership, MEMBERS_MAX};
use crate::proto::{perms, ErrorCode, Id, ReconfigRequest, Request};
use crate::tree::acl;
use crate::txn::TxnKind;
use tracing::info;

impl Leader {
    /// A client's reconfig about to be proposed at `zxid` becomes the txn
    /// that carries its outcome; any other write passes unchanged.
    pub(super) fn resolve_reconfig(&self, cx: &Ctx, zxid: Zxid, kind: TxnKind) -> TxnKind {
        match kind {
            TxnKind::Write {
                request: Request::Reconfigure(rc),
                auth,
            } => {
                let outcome = self.reconfig_outcome(cx, zxid, &rc, &auth);
                if let Err(e) = &outcome {
                    info!("reconfig at {zxid} refused: {e:?}");
                }
                TxnKind::Reconfig { outcome }
            }
            other => other,
        }
    }

    fn reconfig_outcome(
        &self,
        cx: &Ctx,
        zxid: Zxid,
        rc: &ReconfigRequest,
        auth: &[Id],
    ) -> Result<String, ErrorCode> {
        if !cx.cfg.reconfig_enabled {
            return Err(ErrorCode::ReconfigDisabled);
        }
        if self.standalone {
            return Err(ErrorCode::Unimplemented);
        }
        if cx.cfg.next_voters.is_some() {
            return Err(ErrorCode::ReconfigInProgress);
        }
        let (_, text) = cx.log.config_at(cx.log.last_logged());
        let last_seen = std::str::from_utf8(text)
            .ok()
            .and_then(|t| Membership::parse(t).ok())
            .ok_or(ErrorCode::BadArguments)?;
        if rc.cur_config_id != -1 && rc.cur_config_id as u64 != last_seen.version {
            return Err(ErrorCode::BadVersion);
        }
        let next = match &rc.new_members {
            Some(members) => Membership::from_members(members),
            None => {
                last_seen.incremental(rc.joining_servers.as_deref(), rc.leaving_servers.as_deref())
            }
        };
        let mut next = next.map_err(|e| {
            info!("reconfig: {e}");
            ErrorCode::BadArguments
        })?;
        next.version = zxid.0;
        if next.voters().len() < 2 || next.members.len() > MEMBERS_MAX {
            return Err(ErrorCode::BadArguments);
        }
        // ZooKeeper's isQuorumSynced: followers past their NEWLEADER ack.
        let mut new_rule = cx.cfg.clone();
        new_rule.voters = next.voters();
        new_rule.next_voters = None;
        let synced = QuorumVerifier::of(&new_rule).contains_quorum(
            [self.me]
                .into_iter()
                .chain(self.followers_at(Stage::NewLeaderAcked)),
        );
        if !synced {
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        let node_acl = cx
            .log
            .state()
            .tree
            .get(crate::tree::CONFIG_NODE)
            .map(|n| n.acl.clone())
            .unwrap_or_default();
        if !cx.cfg.skip_acl && !acl::check(&node_acl, perms::WRITE, auth) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(next.render())
    }
}
