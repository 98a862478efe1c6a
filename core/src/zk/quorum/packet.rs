//! ZooKeeper's `QuorumPacket` (zookeeper.jute): the unit of the learner
//! stream between a ZooKeeper leader and its followers and observers.
//!
//! On the wire a packet is the jute record itself, with no length prefix:
//!   int type, long zxid, buffer data (-1 = null),
//!   vector<Id> authinfo (-1 = null; each Id is ustring scheme, ustring id).
//! Packets follow each other directly on the TCP stream; the only bytes
//! between them that are not packets are a SNAP's snapshot (see
//! `stream`). So framing means finding where one record ends:
//! [`packet_len`] walks the lengths without copying and says "need more"
//! until the whole record is there.
//!
//! Limits: `data` at most [`PACKET_DATA_MAX`] bytes, at most
//! [`AUTHINFO_MAX`] ids of at most [`ID_FIELD_MAX`] bytes each. ZooKeeper
//! bounds a buffer by `jute.maxbuffer` (1 MiB by default) plus a margin;
//! our bound is larger so a leader configured with a bigger
//! `jute.maxbuffer` is still followed, and small enough that a hostile
//! length cannot make us buffer without end.

use crate::proto::{DecodeError, Id, Reader, Writer};

/// Largest `data` accepted in one packet.
pub const PACKET_DATA_MAX: usize = 64 << 20;
/// Most auth ids in one packet's `authinfo`.
pub const AUTHINFO_MAX: usize = 1024;
/// Longest scheme or id string of one auth id.
pub const ID_FIELD_MAX: usize = 64 << 10;

/// Packet types (`Leader.java`'s constants).
pub mod kind {
    pub const REQUEST: i32 = 1;
    pub const PROPOSAL: i32 = 2;
    pub const ACK: i32 = 3;
    pub const COMMIT: i32 = 4;
    pub const PING: i32 = 5;
    pub const REVALIDATE: i32 = 6;
    pub const SYNC: i32 = 7;
    pub const INFORM: i32 = 8;
    pub const COMMITANDACTIVATE: i32 = 9;
    pub const NEWLEADER: i32 = 10;
    pub const FOLLOWERINFO: i32 = 11;
    pub const UPTODATE: i32 = 12;
    pub const DIFF: i32 = 13;
    pub const TRUNC: i32 = 14;
    pub const SNAP: i32 = 15;
    pub const OBSERVERINFO: i32 = 16;
    pub const LEADERINFO: i32 = 17;
    pub const ACKEPOCH: i32 = 18;
    pub const INFORMANDACTIVATE: i32 = 19;
}

/// The protocol version a 3.4+ learner announces and a 3.4+ leader sends
/// in LEADERINFO (`0x10000`, "ZAB 1.0").
pub const PROTOCOL_VERSION: i32 = 0x10000;

/// ZooKeeper's name of a packet type, for logs.
pub fn kind_name(t: i32) -> &'static str {
    match t {
        kind::REQUEST => "REQUEST",
        kind::PROPOSAL => "PROPOSAL",
        kind::ACK => "ACK",
        kind::COMMIT => "COMMIT",
        kind::PING => "PING",
        kind::REVALIDATE => "REVALIDATE",
        kind::SYNC => "SYNC",
        kind::INFORM => "INFORM",
        kind::COMMITANDACTIVATE => "COMMITANDACTIVATE",
        kind::NEWLEADER => "NEWLEADER",
        kind::FOLLOWERINFO => "FOLLOWERINFO",
        kind::UPTODATE => "UPTODATE",
        kind::DIFF => "DIFF",
        kind::TRUNC => "TRUNC",
        kind::SNAP => "SNAP",
        kind::OBSERVERINFO => "OBSERVERINFO",
        kind::LEADERINFO => "LEADERINFO",
        kind::ACKEPOCH => "ACKEPOCH",
        kind::INFORMANDACTIVATE => "INFORMANDACTIVATE",
        _ => "UNKNOWN",
    }
}

/// One `QuorumPacket`. `data: None` is jute's null buffer, which
/// ZooKeeper distinguishes from an empty one on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumPacket {
    pub kind: i32,
    pub zxid: i64,
    pub data: Option<Vec<u8>>,
    /// `None` is a null vector (what ZooKeeper's leader sends).
    pub authinfo: Option<Vec<Id>>,
}

/// Why bytes from a ZooKeeper peer are not a valid packet. Each closes the
/// link with this reason in the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("packet data of {len} bytes exceeds the limit of {PACKET_DATA_MAX}")]
    DataTooLarge { len: i64 },
    #[error("negative length {len} for the packet's {field}")]
    NegativeLength { field: &'static str, len: i32 },
    #[error("{count} auth ids exceed the limit of {AUTHINFO_MAX}")]
    TooManyIds { count: i32 },
    #[error("an auth id field of {len} bytes exceeds the limit of {ID_FIELD_MAX}")]
    IdTooLarge { len: i32 },
    #[error("bad packet: {0}")]
    Decode(#[from] DecodeError),
    #[error("{what} packet has malformed data: {why}")]
    BadData { what: &'static str, why: String },
}

impl QuorumPacket {
    pub fn new(kind: i32, zxid: i64, data: Option<Vec<u8>>) -> QuorumPacket {
        QuorumPacket {
            kind,
            zxid,
            data,
            authinfo: None,
        }
    }

    /// Appends the packet's jute bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer {
            buf: std::mem::take(out),
        };
        w.i32(self.kind).i64(self.zxid);
        w.buffer_opt(self.data.as_deref());
        match &self.authinfo {
            None => {
                w.i32(-1);
            }
            Some(ids) => {
                w.i32(ids.len() as i32);
                for id in ids {
                    w.ustring(&id.scheme).ustring(&id.id);
                }
            }
        }
        *out = w.into_vec();
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }

    /// Decodes exactly one packet from `bytes` (no trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<QuorumPacket, PacketError> {
        match packet_len(bytes)? {
            Some(n) if n == bytes.len() => {}
            Some(n) => {
                return Err(PacketError::Decode(DecodeError::Trailing {
                    extra: bytes.len() - n,
                }))
            }
            None => {
                return Err(PacketError::Decode(DecodeError::Short {
                    at: bytes.len(),
                    need: 1,
                }))
            }
        }
        let mut r = Reader::new(bytes);
        let kind = r.i32()?;
        let zxid = r.i64()?;
        let data = r.buffer_opt()?.map(|b| b.to_vec());
        let count = r.i32()?;
        let authinfo = if count < 0 {
            None
        } else {
            let mut ids = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let scheme = r.ustring()?;
                let id = r.ustring()?;
                ids.push(Id { scheme, id });
            }
            Some(ids)
        };
        r.finish()?;
        Ok(QuorumPacket {
            kind,
            zxid,
            data,
            authinfo,
        })
    }
}

fn be_i32(buf: &[u8], at: usize) -> Option<i32> {
    buf.get(at..at + 4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The length of the packet at the start of `buf`: `Ok(None)` while it is
/// incomplete, an error as soon as a length is out of bounds (before the
/// bytes it announces arrive, so a hostile length costs nothing).
pub fn packet_len(buf: &[u8]) -> Result<Option<usize>, PacketError> {
    let mut at = 12;
    let Some(len) = be_i32(buf, at) else {
        return Ok(None);
    };
    at += 4;
    if len < -1 {
        return Err(PacketError::NegativeLength { field: "data", len });
    }
    if len > 0 {
        if len as usize > PACKET_DATA_MAX {
            return Err(PacketError::DataTooLarge { len: len as i64 });
        }
        at += len as usize;
    }
    let Some(count) = be_i32(buf, at) else {
        return Ok(None);
    };
    at += 4;
    if count < -1 {
        return Err(PacketError::NegativeLength {
            field: "authinfo",
            len: count,
        });
    }
    if count as i64 > AUTHINFO_MAX as i64 {
        return Err(PacketError::TooManyIds { count });
    }
    for _ in 0..count.max(0) * 2 {
        let Some(len) = be_i32(buf, at) else {
            return Ok(None);
        };
        at += 4;
        if len < -1 {
            return Err(PacketError::NegativeLength {
                field: "auth id",
                len,
            });
        }
        if len as i64 > ID_FIELD_MAX as i64 {
            return Err(PacketError::IdTooLarge { len });
        }
        at += len.max(0) as usize;
    }
    Ok((buf.len() >= at).then_some(at))
}

/// `LearnerInfo` (long serverid, int protocolVersion, long configVersion)
/// as the data of FOLLOWERINFO / OBSERVERINFO.
pub fn learner_info(sid: u64, config_version: i64) -> Vec<u8> {
    let mut w = Writer::new();
    w.i64(sid as i64).i32(PROTOCOL_VERSION).i64(config_version);
    w.into_vec()
}

/// A PING answer's data: (long session id, int timeout ms) per session
/// this learner's clients touched since the last PING.
pub fn ping_sessions(touched: &[(i64, i32)]) -> Vec<u8> {
    let mut w = Writer::with_capacity(touched.len() * 12);
    for (s, t) in touched {
        w.i64(*s).i32(*t);
    }
    w.into_vec()
}

/// A REQUEST's data: long sessionId, int cxid, int type, then the client
/// request's own bytes (`Learner.request`).
pub fn request_data(session: i64, cxid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(16 + body.len());
    w.i64(session).i32(cxid).i32(op);
    w.buf.extend_from_slice(body);
    w.into_vec()
}

/// A REVALIDATE answer from the leader: (long sessionId, boolean valid).
pub fn revalidate_answer(data: Option<&[u8]>) -> Result<(i64, bool), PacketError> {
    let mut r = Reader::new(data.unwrap_or(&[]));
    let bad = |e: DecodeError| PacketError::BadData {
        what: "REVALIDATE",
        why: e.to_string(),
    };
    let s = r.i64().map_err(bad)?;
    let v = r.bool().map_err(bad)?;
    Ok((s, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_packet() -> impl Strategy<Value = QuorumPacket> {
        let id = ("[a-z]{0,8}", "[ -~]{0,16}").prop_map(|(scheme, id)| Id { scheme, id });
        (
            any::<i32>(),
            any::<i64>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            proptest::option::of(proptest::collection::vec(id, 0..4)),
        )
            .prop_map(|(kind, zxid, data, authinfo)| QuorumPacket {
                kind,
                zxid,
                data,
                authinfo,
            })
    }

    proptest! {
        #[test]
        fn packets_round_trip_and_frame_exactly(p in arb_packet(), extra in proptest::collection::vec(any::<u8>(), 0..8)) {
            let bytes = p.encode();
            prop_assert_eq!(QuorumPacket::decode(&bytes).unwrap(), p);
            // Framing: every proper prefix says "need more"; with more
            // bytes behind it, the length is still the packet's own.
            for cut in 0..bytes.len() {
                prop_assert_eq!(packet_len(&bytes[..cut]).unwrap(), None);
            }
            let mut longer = bytes.clone();
            longer.extend_from_slice(&extra);
            prop_assert_eq!(packet_len(&longer).unwrap(), Some(bytes.len()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some(n)) = packet_len(&bytes) {
                prop_assert!(n <= bytes.len());
                // What frames must decode or be refused as a value.
                let _ = QuorumPacket::decode(&bytes[..n]);
            }
        }
    }

    #[test]
    fn matches_zookeepers_bytes_for_a_ping() {
        // PING zxid 0x100000005, null data, null authinfo: as Java's
        // BinaryOutputArchive writes it.
        let p = QuorumPacket::new(kind::PING, 0x1_0000_0005, None);
        let want: Vec<u8> = [
            &5i32.to_be_bytes()[..],
            &0x1_0000_0005i64.to_be_bytes(),
            &(-1i32).to_be_bytes(),
            &(-1i32).to_be_bytes(),
        ]
        .concat();
        assert_eq!(p.encode(), want);
    }

    #[test]
    fn hostile_lengths_are_refused_before_their_bytes_arrive() {
        let mut b = Vec::new();
        b.extend_from_slice(&8i32.to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            packet_len(&b),
            Err(PacketError::DataTooLarge { .. })
        ));
        let mut b2 = b[..12].to_vec();
        b2.extend_from_slice(&(-7i32).to_be_bytes());
        assert!(matches!(
            packet_len(&b2),
            Err(PacketError::NegativeLength { field: "data", .. })
        ));
        let mut b3 = b[..12].to_vec();
        b3.extend_from_slice(&(-1i32).to_be_bytes());
        b3.extend_from_slice(&100_000i32.to_be_bytes());
        assert!(matches!(
            packet_len(&b3),
            Err(PacketError::TooManyIds { .. })
        ));
    }

    #[test]
    fn learner_info_is_twenty_bytes_as_zookeeper_reads_it() {
        let d = learner_info(101, 0x2_0000_0000);
        assert_eq!(d.len(), 20);
        assert_eq!(i64::from_be_bytes(d[0..8].try_into().unwrap()), 101);
        assert_eq!(i32::from_be_bytes(d[8..12].try_into().unwrap()), 0x10000);
    }
}
