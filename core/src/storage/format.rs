//! The file formats: log records and snapshot files (see `storage`).

use crate::codec;
use crate::ids::{SessionId, Zxid};
use crate::tree::{DataTree, Znode};
use crate::txn::{SessionMeta, State, Txn};
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use std::io::Write;

pub const LOG_MAGIC: &[u8; 8] = b"PDKLOG01";
pub const SNAP_MAGIC: &[u8; 8] = b"PDKSNP01";
pub(crate) const RECORD_HEADER: usize = 8;
/// A record larger than this is corruption, not data (a txn holds at most
/// one `jute.maxbuffer` frame plus its context).
pub const RECORD_LEN_MAX: usize = 64 << 20;

pub fn log_file_name(first: Zxid) -> String {
    format!("log.{:x}", first.0)
}

pub fn snapshot_file_name(zxid: Zxid) -> String {
    format!("snapshot.{:x}", zxid.0)
}

/// Parses `log.<hex>` / `snapshot.<hex>`.
pub fn parse_file_name(name: &str) -> Option<(&str, Zxid)> {
    let (kind, hex) = name.split_once('.')?;
    if kind != "log" && kind != "snapshot" {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| (kind, Zxid(z)))
}

/// Appends one framed log record for `txn`.
pub fn encode_record(txn: &Txn, out: &mut Vec<u8>) {
    let start = out.len();
    codec::encode_after(&[0u8; RECORD_HEADER], txn, out);
    let len = out.len() - start - RECORD_HEADER;
    assert!(len <= RECORD_LEN_MAX, "log record of {len} bytes");
    let crc = crc32c::crc32c(&out[start + RECORD_HEADER..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Why reading a log stopped before the end of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogStop {
    /// Clean end (end of bytes or zero padding).
    End,
    /// A record header or body runs past the end: a torn write.
    Torn { offset: usize },
    /// A checksum or decode failure.
    Corrupt { offset: usize, why: String },
    /// The file does not start with the log magic.
    BadHeader,
}

/// Decodes a log file's records; returns them, the offset of the end of
/// the last good record, and why it stopped.
pub fn read_log(bytes: &[u8]) -> (Vec<Txn>, usize, LogStop) {
    if bytes.len() < LOG_MAGIC.len() || &bytes[..LOG_MAGIC.len()] != LOG_MAGIC {
        return (Vec::new(), 0, LogStop::BadHeader);
    }
    let mut pos = LOG_MAGIC.len();
    let mut txns = Vec::new();
    loop {
        if pos == bytes.len() {
            return (txns, pos, LogStop::End);
        }
        if bytes.len() - pos < RECORD_HEADER {
            if bytes[pos..].iter().all(|&b| b == 0) {
                return (txns, pos, LogStop::End);
            }
            return (txns, pos, LogStop::Torn { offset: pos });
        }
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len == 0 && crc == 0 {
            return (txns, pos, LogStop::End);
        }
        if len > RECORD_LEN_MAX {
            return (
                txns,
                pos,
                LogStop::Corrupt {
                    offset: pos,
                    why: format!("record length {len}"),
                },
            );
        }
        let body_at = pos + RECORD_HEADER;
        if bytes.len() - body_at < len {
            return (txns, pos, LogStop::Torn { offset: pos });
        }
        let body = &bytes[body_at..body_at + len];
        if crc32c::crc32c(body) != crc {
            return (
                txns,
                pos,
                LogStop::Corrupt {
                    offset: pos,
                    why: "checksum mismatch".into(),
                },
            );
        }
        match codec::decode::<Txn>(body) {
            Ok(t) => txns.push(t),
            Err(e) => {
                return (
                    txns,
                    pos,
                    LogStop::Corrupt {
                        offset: pos,
                        why: e.to_string(),
                    },
                )
            }
        }
        pos = body_at + len;
    }
}

#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    zxid: Zxid,
    digest: u64,
    nodes: Vec<(String, Znode)>,
    sessions: Vec<(SessionId, SessionMeta)>,
}

/// `SnapshotBody` by reference, for writing: the same bytes (a `&str`
/// encodes as a `String`, a `&T` as a `T`) without copying every path and
/// node of the tree first.
#[derive(Serialize)]
struct SnapshotBodyRef<'a> {
    zxid: Zxid,
    digest: u64,
    nodes: Vec<(&'a str, &'a Znode)>,
    sessions: Vec<(SessionId, &'a SessionMeta)>,
}

/// An O(1) clone of the replicated state at `zxid`, to be serialised on
/// another thread.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub zxid: Zxid,
    tree: DataTree,
    sessions: OrdMap<SessionId, SessionMeta>,
}

impl Snapshot {
    pub fn of(state: &State) -> Snapshot {
        Snapshot {
            zxid: state.last_zxid,
            tree: state.tree.clone(),
            sessions: state.sessions.clone(),
        }
    }

    pub fn node_count(&self) -> usize {
        self.tree.node_count()
    }

    /// The whole snapshot file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let body = SnapshotBodyRef {
            zxid: self.zxid,
            digest: self.tree.digest(),
            nodes: self.tree.iter().map(|(p, n)| (&**p, n)).collect(),
            sessions: self.sessions.iter().map(|(k, v)| (*k, v)).collect(),
        };
        let mut out =
            Vec::with_capacity(self.tree.data_size() as usize + 128 * self.tree.node_count() + 32);
        out.extend_from_slice(SNAP_MAGIC);
        out.extend_from_slice(&[0u8; 12]);
        codec::encode_into(&body, &mut out);
        let body_len = out.len() - 20;
        let crc = crc32c::crc32c(&out[20..]);
        out[8..16].copy_from_slice(&(body_len as u64).to_le_bytes());
        out[16..20].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Writes the file's bytes to `w` (the shell's file, on its thread).
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&self.encode())
    }
}

/// Decodes and verifies a snapshot file.
pub fn read_snapshot(bytes: &[u8]) -> Result<State, String> {
    if bytes.len() < 20 || &bytes[..8] != SNAP_MAGIC {
        return Err("not a snapshot (bad magic)".into());
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    if bytes.len() - 20 != len {
        return Err(format!(
            "snapshot body is {} bytes, header says {len}",
            bytes.len() - 20
        ));
    }
    if crc32c::crc32c(&bytes[20..]) != crc {
        return Err("snapshot checksum mismatch".into());
    }
    let body: SnapshotBody = codec::decode(&bytes[20..]).map_err(|e| e.to_string())?;
    let tree = DataTree::from_nodes(body.nodes)?;
    if tree.digest() != body.digest {
        return Err("snapshot tree digest mismatch".into());
    }
    Ok(State {
        tree,
        sessions: body.sessions.into_iter().collect(),
        last_zxid: body.zxid,
    })
}
