//! Framing of the byte stream a ZooKeeper leader sends a learner: a
//! sequence of `QuorumPacket`s, except that a SNAP packet is followed by
//! the serialized database (sessions, ACL cache, nodes up to the "/"
//! terminator) and the string "BenWasHere", outside any packet.
//!
//! [`LeaderStream`] takes bytes as they arrive (any split) and yields
//! whole items. Finding where a streamed snapshot ends is done by a
//! resumable skim over its lengths (`SnapSkim`), so a snapshot of many
//! megabytes arriving in small reads is walked once, not re-parsed on
//! every read; it is decoded once, when complete.
//!
//! Invariant: `buf[..consumed]` has been handed out; nothing is yielded
//! twice, and after an error nothing more is yielded (the link is dead).

use super::packet::{kind, packet_len, PacketError, QuorumPacket, PACKET_DATA_MAX};

/// Bytes buffered while waiting for one item; more is an error.
pub const ITEM_BYTES_MAX: usize = 4 << 30;
/// Most sessions, ACL lists or nodes one streamed snapshot may announce.
pub const SNAP_COUNT_MAX: i32 = 100_000_000;

#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    Packet(QuorumPacket),
    /// The bytes of a streamed snapshot, signature included (for
    /// `zk::snapshot::decode_sync_stream`).
    Snapshot(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Packet(#[from] PacketError),
    #[error("streamed snapshot malformed at byte {at}: {why}")]
    Snapshot { at: usize, why: String },
    #[error("more than {ITEM_BYTES_MAX} bytes buffered for one item")]
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Sessions,
    Acls,
    /// Inside one ACL list: its ACL entries left, then the lists left.
    AclEntries,
    Nodes,
    Signature,
}

/// Where a skim of a streamed snapshot stands: offsets relative to the
/// snapshot's first byte.
#[derive(Debug, Clone)]
struct SnapSkim {
    phase: Phase,
    /// Items left in the current vector (sessions, lists, entries).
    left: i64,
    /// Lists left when inside one (Phase::AclEntries).
    lists_left: i64,
    at: usize,
}

#[derive(Debug, Default)]
pub struct LeaderStream {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out.
    consumed: usize,
    skim: Option<SnapSkim>,
    dead: bool,
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    b.get(at..at + 4)
        .map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

impl LeaderStream {
    pub fn new() -> LeaderStream {
        LeaderStream::default()
    }

    /// Bytes received but not yet part of an item.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.consumed > 0 && self.consumed * 2 >= self.buf.len() {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole item, `Ok(None)` until more bytes arrive.
    pub fn next_item(&mut self) -> Result<Option<Item>, StreamError> {
        if self.dead {
            return Ok(None);
        }
        let r = self.next_inner();
        if r.is_err() {
            self.dead = true;
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<Item>, StreamError> {
        if self.buffered() > ITEM_BYTES_MAX {
            return Err(StreamError::TooLarge);
        }
        let rest = &self.buf[self.consumed..];
        if let Some(skim) = &mut self.skim {
            let Some(end) = skim_snapshot(rest, skim)? else {
                return Ok(None);
            };
            let snap = rest[..end].to_vec();
            self.consumed += end;
            self.skim = None;
            return Ok(Some(Item::Snapshot(snap)));
        }
        let Some(n) = packet_len(rest)? else {
            return Ok(None);
        };
        let p = QuorumPacket::decode(&rest[..n])?;
        self.consumed += n;
        if p.kind == kind::SNAP {
            self.skim = Some(SnapSkim {
                phase: Phase::Sessions,
                left: -1,
                lists_left: 0,
                at: 0,
            });
        }
        Ok(Some(Item::Packet(p)))
    }
}

fn bad(at: usize, why: impl Into<String>) -> StreamError {
    StreamError::Snapshot {
        at,
        why: why.into(),
    }
}

/// A vector count at `s.at` (-1 reads as empty), bounded.
fn count(b: &[u8], s: &mut SnapSkim) -> Result<Option<i64>, StreamError> {
    let Some(n) = i32_at(b, s.at) else {
        return Ok(None);
    };
    if !(-1..=SNAP_COUNT_MAX).contains(&n) {
        return Err(bad(s.at, format!("count {n} out of bounds")));
    }
    s.at += 4;
    Ok(Some(n.max(0) as i64))
}

/// The length of a buffer or string at `at` (4 + its bytes), bounded.
fn buffer_len(b: &[u8], at: usize) -> Result<Option<usize>, StreamError> {
    let Some(n) = i32_at(b, at) else {
        return Ok(None);
    };
    if n < -1 || n as i64 > PACKET_DATA_MAX as i64 {
        return Err(bad(at, format!("length {n} out of bounds")));
    }
    let total = 4 + n.max(0) as usize;
    Ok((b.len() >= at + total).then_some(total))
}

/// Walks the snapshot from `s.at` as far as the bytes go; the snapshot's
/// length once its signature is complete.
fn skim_snapshot(b: &[u8], s: &mut SnapSkim) -> Result<Option<usize>, StreamError> {
    loop {
        match s.phase {
            Phase::Sessions => {
                if s.left < 0 {
                    let Some(n) = count(b, s)? else {
                        return Ok(None);
                    };
                    s.left = n;
                }
                // Each session is a long id and an int timeout.
                let can = ((b.len().saturating_sub(s.at)) / 12) as i64;
                let take = can.min(s.left);
                s.at += take as usize * 12;
                s.left -= take;
                if s.left > 0 {
                    return Ok(None);
                }
                s.phase = Phase::Acls;
                s.left = -1;
            }
            Phase::Acls => {
                if s.left < 0 {
                    let Some(n) = count(b, s)? else {
                        return Ok(None);
                    };
                    s.left = n;
                }
                if s.left == 0 {
                    s.phase = Phase::Nodes;
                    continue;
                }
                // One list: long ref, then a vector of ACLs.
                if b.len() < s.at + 12 {
                    return Ok(None);
                }
                let save = s.at;
                s.at += 8;
                let Some(n) = count(b, s)? else {
                    s.at = save;
                    return Ok(None);
                };
                s.lists_left = s.left - 1;
                s.left = n;
                s.phase = Phase::AclEntries;
            }
            Phase::AclEntries => {
                if s.left == 0 {
                    s.left = s.lists_left;
                    s.phase = if s.left == 0 {
                        Phase::Nodes
                    } else {
                        Phase::Acls
                    };
                    continue;
                }
                // int perms, ustring scheme, ustring id.
                let Some(a) = buffer_len(b, s.at + 4)? else {
                    return Ok(None);
                };
                let Some(c) = buffer_len(b, s.at + 4 + a)? else {
                    return Ok(None);
                };
                s.at += 4 + a + c;
                s.left -= 1;
            }
            Phase::Nodes => {
                let Some(p) = buffer_len(b, s.at)? else {
                    return Ok(None);
                };
                if p == 5 && &b[s.at + 4..s.at + 5] == b"/" {
                    s.at += 5;
                    s.phase = Phase::Signature;
                    continue;
                }
                // path, buffer data, long acl ref, StatPersisted (60 bytes).
                let Some(d) = buffer_len(b, s.at + p)? else {
                    return Ok(None);
                };
                let end = s.at + p + d + 8 + 60;
                if b.len() < end {
                    return Ok(None);
                }
                s.at = end;
            }
            Phase::Signature => {
                let Some(n) = buffer_len(b, s.at)? else {
                    return Ok(None);
                };
                return Ok(Some(s.at + n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Writer;

    /// A streamed snapshot as a ZooKeeper leader writes it: two sessions,
    /// one ACL list, root + /a, the terminator and the signature.
    pub(crate) fn sync_stream() -> Vec<u8> {
        let mut w = Writer::new();
        w.i32(2).i64(0x11).i32(4000).i64(0x12).i32(6000);
        w.i32(1).i64(1);
        crate::proto::write_acls(&mut w, &crate::proto::Acl::open_unsafe());
        for (p, d) in [("", &b""[..]), ("/a", &b"hello"[..])] {
            w.ustring(p).buffer(d).i64(1);
            for v in [5i64, 5, 100, 100] {
                w.i64(v);
            }
            w.i32(0).i32(0).i32(0).i64(0).i64(5);
        }
        w.ustring("/");
        w.ustring("BenWasHere");
        w.into_vec()
    }

    fn whole() -> (Vec<u8>, Vec<Item>) {
        let mut bytes = Vec::new();
        let ping = QuorumPacket::new(kind::PING, 7, None);
        let snap = QuorumPacket::new(kind::SNAP, 5, None);
        let nl = QuorumPacket::new(kind::NEWLEADER, 1 << 32, Some(b"cfg".to_vec()));
        ping.encode_into(&mut bytes);
        snap.encode_into(&mut bytes);
        bytes.extend_from_slice(&sync_stream());
        nl.encode_into(&mut bytes);
        let items = vec![
            Item::Packet(ping),
            Item::Packet(snap),
            Item::Snapshot(sync_stream()),
            Item::Packet(nl),
        ];
        (bytes, items)
    }

    fn drain(s: &mut LeaderStream, out: &mut Vec<Item>) {
        while let Some(i) = s.next_item().unwrap() {
            out.push(i);
        }
    }

    #[test]
    fn any_split_of_the_stream_yields_the_same_items() {
        let (bytes, want) = whole();
        for chunk in [1, 2, 3, 7, 13, 64, bytes.len()] {
            let mut s = LeaderStream::new();
            let mut got = Vec::new();
            for c in bytes.chunks(chunk) {
                s.push(c);
                drain(&mut s, &mut got);
            }
            assert_eq!(got, want, "chunk size {chunk}");
            assert_eq!(s.buffered(), 0);
        }
    }

    #[test]
    fn streamed_snapshot_decodes_with_the_snapshot_decoder() {
        let snap = crate::zk::snapshot::decode_sync_stream(&sync_stream()).unwrap();
        assert_eq!(snap.sessions, vec![(0x11, 4000), (0x12, 6000)]);
        let a = snap.tree.get("/a").unwrap();
        assert_eq!(a.data.as_deref(), Some(&b"hello"[..]));
        assert_eq!((a.stat.czxid, a.stat.ctime), (5, 100));
        let mut wrong = sync_stream();
        let n = wrong.len();
        wrong[n - 1] = b'X';
        assert!(crate::zk::snapshot::decode_sync_stream(&wrong).is_err());
    }

    #[test]
    fn a_hostile_count_in_a_snapshot_kills_the_stream_with_a_reason() {
        let mut bytes = QuorumPacket::new(kind::SNAP, 5, None).encode();
        bytes.extend_from_slice(&(-5i32).to_be_bytes());
        let mut s = LeaderStream::new();
        s.push(&bytes);
        assert!(matches!(s.next_item(), Ok(Some(Item::Packet(_)))));
        let e = s.next_item().unwrap_err();
        assert!(e.to_string().contains("count -5"), "{e}");
        s.push(&[0; 64]);
        assert_eq!(s.next_item(), Ok(None));
    }

    /// Bounded fuzz loop (no cargo-fuzz needed): random mutations of a
    /// valid stream, split at random points, never panic; errors are
    /// values. The long, time-bounded run is `core/tests/zk_quorum_fuzz.rs`.
    #[test]
    fn mutated_streams_never_panic() {
        use crate::zk::quorum::mutate;
        use rand::{Rng, SeedableRng};
        let (base, _) = whole();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
        for _ in 0..3_000 {
            let mut b = base.clone();
            mutate(&mut b, &mut rng, 5);
            let mut s = LeaderStream::new();
            let mut at = 0;
            while at < b.len() {
                let n = rng.gen_range(1..=b.len() - at);
                s.push(&b[at..at + n]);
                at += n;
                while let Ok(Some(item)) = s.next_item() {
                    if let Item::Snapshot(bytes) = item {
                        let _ = crate::zk::snapshot::decode_sync_stream(&bytes);
                    }
                }
            }
        }
    }
}
