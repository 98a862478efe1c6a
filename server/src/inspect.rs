//! `paddock inspect FILE [--json]`: prints a Paddock or Apache ZooKeeper
//! log or snapshot file, in the spirit of ZooKeeper's `TxnLogToolkit -d`
//! and `SnapshotFormatter -d`: one line per txn (zxid, time, session,
//! cxid, type, path) or per znode (path and every stat field), then a
//! summary line. `--json` prints the same as one JSON object per line.
//!
//! A damaged file prints what could be read, then where the damage starts
//! and why, and the command exits non-zero.

use anyhow::{bail, Context, Result};
use paddock_core::proto::Request;
use paddock_core::storage::{self, LogStop, LOG_MAGIC, SNAP_MAGIC};
use paddock_core::txn::{Txn, TxnKind};
use paddock_core::zk::snapshot::{self as zksnap};
use paddock_core::zk::tree::ZkNode;
use paddock_core::zk::txn::{type_name, ZkEntry};
use paddock_core::zk::txnlog::{self, LogEnd};
use paddock_core::zk::{parse_zk_name, Compression, ZkFile};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`): a few lines instead of a
/// date-time crate for one timestamp format.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Milliseconds since the epoch as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

struct Out {
    json: bool,
}

impl Out {
    fn txn(&self, zxid: u64, time: i64, session: i64, cxid: i32, kind: &str, path: &str) {
        if self.json {
            println!(
                "{}",
                json!({"zxid": format!("{zxid:#x}"), "time": time, "session": format!("{:#x}", session as u64),
                       "cxid": cxid, "type": kind, "path": path})
            );
        } else {
            println!(
                "{} zxid {zxid:#x} session {:#x} cxid {cxid:#x} {kind} {path}",
                utc(time),
                session as u64
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn node(&self, path: &str, n: &ZkNode, num_children: usize) {
        let s = &n.stat;
        let data_len = n.data.as_ref().map_or(0, |d| d.len());
        let acl: Vec<String> = n
            .acl
            .iter()
            .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms))
            .collect();
        if self.json {
            println!(
                "{}",
                json!({"path": path, "czxid": format!("{:#x}", s.czxid), "mzxid": format!("{:#x}", s.mzxid),
                       "pzxid": format!("{:#x}", s.pzxid), "ctime": s.ctime, "mtime": s.mtime,
                       "version": s.version, "cversion": s.cversion, "aversion": s.aversion,
                       "ephemeralOwner": format!("{:#x}", s.ephemeral_owner as u64),
                       "dataLength": data_len, "numChildren": num_children, "acl": acl})
            );
        } else {
            println!(
                "{path} czxid {:#x} mzxid {:#x} pzxid {:#x} ctime {} mtime {} version {} cversion {} \
                 aversion {} ephemeralOwner {:#x} dataLength {data_len} numChildren {num_children} acl {}",
                s.czxid,
                s.mzxid,
                s.pzxid,
                utc(s.ctime),
                utc(s.mtime),
                s.version,
                s.cversion,
                s.aversion,
                s.ephemeral_owner as u64,
                acl.join(",")
            );
        }
    }

    fn summary(&self, v: serde_json::Value, text: String) {
        if self.json {
            println!("{}", json!({ "summary": v }));
        } else {
            println!("{text}");
        }
    }
}

/// The command: `args` are what follows `inspect`.
pub fn main(args: &[std::ffi::OsString]) -> Result<()> {
    let mut json = false;
    let mut file = None;
    for a in args {
        match a.to_str() {
            Some("--json") => json = true,
            _ if file.is_none() => file = Some(Path::new(a).to_path_buf()),
            _ => bail!("usage: paddock inspect FILE [--json]"),
        }
    }
    let Some(file) = file else {
        bail!("usage: paddock inspect FILE [--json]");
    };
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = Out { json };
    let damage = if bytes.starts_with(LOG_MAGIC) {
        paddock_log(&out, &bytes)
    } else if bytes.starts_with(SNAP_MAGIC) {
        paddock_snapshot(&out, &bytes)
    } else if bytes.starts_with(b"ZKLG") {
        zk_log(&out, &bytes)
    } else {
        let compression = match parse_zk_name(&name) {
            Some(ZkFile::Snapshot { compression, .. }) => compression,
            _ if bytes.starts_with(b"ZKSN") => Compression::None,
            _ => bail!(
                "{}: neither a paddock nor a ZooKeeper log or snapshot",
                file.display()
            ),
        };
        zk_snapshot(&out, &bytes, compression)
    };
    match damage {
        None => Ok(()),
        Some(why) => bail!("{}: {why}", file.display()),
    }
}

fn zk_log(out: &Out, bytes: &[u8]) -> Option<String> {
    let log = txnlog::read_log(bytes);
    for (_, ZkEntry { hdr, txn, .. }) in &log.entries {
        out.txn(
            hdr.zxid as u64,
            hdr.time,
            hdr.client_id,
            hdr.cxid,
            type_name(hdr.kind),
            txn.path().unwrap_or(""),
        );
    }
    let first = log.entries.first().map(|(_, e)| e.hdr.zxid).unwrap_or(0);
    let last = log.entries.last().map(|(_, e)| e.hdr.zxid).unwrap_or(0);
    let (end, damage) = match &log.end {
        LogEnd::Clean => ("clean".to_string(), None),
        LogEnd::Torn { offset } => (
            format!("a torn record at offset {offset}"),
            Some(format!("torn record at offset {offset}")),
        ),
        LogEnd::Corrupt { offset, why } => (
            format!("damage at offset {offset}: {why}"),
            Some(format!("damage at offset {offset}: {why}")),
        ),
        LogEnd::BadHeader { why } => (why.clone(), Some(why.clone())),
    };
    out.summary(
        json!({"kind": "zookeeper-log", "version": log.version, "dbid": log.dbid, "txns": log.entries.len(),
               "first_zxid": format!("{first:#x}"), "last_zxid": format!("{last:#x}"), "end": end}),
        format!(
            "ZooKeeper txn log (version {}, dbid {}): {} txns, zxids {first:#x} to {last:#x}; end: {end}",
            log.version,
            log.dbid,
            log.entries.len()
        ),
    );
    damage
}

fn zk_snapshot(out: &Out, bytes: &[u8], c: Compression) -> Option<String> {
    let s = zksnap::decode(bytes, c);
    let mut children: BTreeMap<&str, usize> = BTreeMap::new();
    for (p, _) in s.tree.nodes() {
        if p != "/" {
            let parent = match p.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &p[..i],
            };
            *children.entry(parent).or_default() += 1;
        }
    }
    for (p, n) in s.tree.nodes() {
        out.node(p, n, children.get(p.as_str()).copied().unwrap_or(0));
    }
    let max_zxid = s
        .tree
        .nodes()
        .map(|(_, n)| n.stat.mzxid.max(n.stat.pzxid))
        .max()
        .unwrap_or(0);
    let digest = s
        .digest
        .map(|d| format!("{:#x} at zxid {:#x}", d.digest, d.zxid))
        .unwrap_or_else(|| "none".into());
    let end = match &s.damage {
        None => "sealed (Adler-32 checks pass)".to_string(),
        Some(d) => format!("damage at offset {}: {}", d.offset, d.why),
    };
    out.summary(
        json!({"kind": "zookeeper-snapshot", "znodes": s.tree.node_count(), "sessions": s.sessions.len(),
               "acl_lists": s.acl_lists, "max_zxid": format!("{max_zxid:#x}"),
               "tree_digest": format!("{:#x}", s.tree.digest()), "digest": digest, "end": end}),
        format!(
            "ZooKeeper snapshot: {} znodes, {} sessions, {} ACL lists, highest zxid in a stat {max_zxid:#x}, \
             stored digest {digest}, digest of what was read {:#x}; {end}",
            s.tree.node_count(),
            s.sessions.len(),
            s.acl_lists,
            s.tree.digest()
        ),
    );
    s.damage
        .map(|d| format!("damage at offset {}: {}", d.offset, d.why))
}

/// The type and path of a Paddock txn, in ZooKeeper's words.
fn describe(t: &Txn) -> (&'static str, String) {
    match &t.kind {
        TxnKind::CreateSession { .. } => ("createSession", String::new()),
        TxnKind::CloseSession => ("closeSession", String::new()),
        TxnKind::Reconfig { .. } => ("reconfig", "/zookeeper/config".into()),
        TxnKind::Write { request, .. } => match request {
            Request::Create { opcode, req } => (type_name(*opcode), req.path.clone()),
            Request::Delete { path, .. } => ("delete", path.clone()),
            Request::DeleteContainer { path } => ("deleteContainer", path.clone()),
            Request::SetData { path, .. } | Request::SetDataNull { path, .. } => {
                ("setData", path.clone())
            }
            Request::SetAcl { path, .. } => ("setACL", path.clone()),
            Request::Check { path, .. } => ("check", path.clone()),
            Request::Multi(ops) => ("multi", format!("{} ops", ops.len())),
            Request::Reconfig => ("reconfig", "/zookeeper/config".into()),
            Request::CloseSession => ("closeSession", String::new()),
            _ => ("other", String::new()),
        },
    }
}

fn paddock_log(out: &Out, bytes: &[u8]) -> Option<String> {
    let (txns, good, stop) = storage::read_log(bytes);
    for t in &txns {
        let (kind, path) = describe(t);
        out.txn(t.zxid.0, t.time_ms, t.session.0, t.cxid, kind, &path);
    }
    let first = txns.first().map(|t| t.zxid.0).unwrap_or(0);
    let last = txns.last().map(|t| t.zxid.0).unwrap_or(0);
    let damage = match &stop {
        LogStop::End => None,
        LogStop::Torn { offset } => Some(format!("torn record at offset {offset}")),
        LogStop::Corrupt { offset, why } => Some(format!("damage at offset {offset}: {why}")),
        LogStop::BadHeader => Some("no paddock log header".into()),
    };
    let end = damage.clone().unwrap_or_else(|| "clean".into());
    out.summary(
        json!({"kind": "paddock-log", "txns": txns.len(), "first_zxid": format!("{first:#x}"),
               "last_zxid": format!("{last:#x}"), "good_bytes": good, "end": end}),
        format!(
            "paddock log: {} txns, zxids {first:#x} to {last:#x}; {good} good bytes; end: {end}",
            txns.len()
        ),
    );
    damage
}

fn paddock_snapshot(out: &Out, bytes: &[u8]) -> Option<String> {
    let state = match storage::read_snapshot(bytes) {
        Ok(s) => s,
        Err(e) => {
            out.summary(
                json!({"kind": "paddock-snapshot", "end": e}),
                format!("paddock snapshot: unreadable: {e}"),
            );
            return Some(e);
        }
    };
    for (p, n) in state.tree.iter() {
        out.node(p, &ZkNode::from_paddock(n), n.children.len());
    }
    out.summary(
        json!({"kind": "paddock-snapshot", "znodes": state.tree.node_count(), "sessions": state.sessions.len(),
               "zxid": format!("{:#x}", state.last_zxid.0), "digest": format!("{:#x}", state.tree.digest()),
               "end": "checksum and digest pass"}),
        format!(
            "paddock snapshot: {} znodes, {} sessions, zxid {}, digest {:#x}; checksum and digest pass",
            state.tree.node_count(),
            state.sessions.len(),
            state.last_zxid,
            state.tree.digest()
        ),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_764_763_200_000), "2025-12-03T12:00:00.000Z");
    }
}
