//! Apache ZooKeeper's transaction log file (`FileTxnLog`), decoded from
//! its bytes.
//!
//!   FileHeader  int magic "ZKLG", int version 2, long dbid
//!   records     long Adler-32 of the entry, buffer entry (int length +
//!               bytes: see `zk::txn`), byte 'B' (end of record)
//!   then zeros  ZooKeeper preallocates the file; an entry of length 0
//!               ends the log, as in its reader.
//!
//! A record cut short (the file ends inside it, or its end byte is not
//! 'B') is a torn write; a complete record whose checksum fails, or that
//! does not decode, is corruption. Both stop the reading there.

use super::txn::{decode_entry, ZkEntry};

pub const LOG_MAGIC: i32 = 0x5a4b_4c47; // "ZKLG"
const HEADER_LEN: usize = 16;
/// ZooKeeper refuses an entry longer than `jute.maxbuffer` plus a margin;
/// a length past this is damage, not data.
pub const ENTRY_LEN_MAX: usize = 64 << 20;

/// Why reading a log stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEnd {
    /// End of the bytes, or the zeros ZooKeeper preallocates.
    Clean,
    /// A record cut short at `offset` (a crash during its write).
    Torn { offset: usize },
    /// A complete record at `offset` fails its checksum or its decoding.
    Corrupt { offset: usize, why: String },
    /// Not a ZooKeeper log.
    BadHeader { why: String },
}

/// A log file's entries, each with the offset of its record.
#[derive(Debug)]
pub struct ZkLog {
    pub version: i32,
    pub dbid: i64,
    pub entries: Vec<(usize, ZkEntry)>,
    pub end: LogEnd,
    /// Offset just past the last good record.
    pub good_len: usize,
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// Decodes a log file's bytes.
pub fn read_log(bytes: &[u8]) -> ZkLog {
    let mut out = ZkLog {
        version: 0,
        dbid: 0,
        entries: Vec::new(),
        end: LogEnd::Clean,
        good_len: 0,
    };
    if bytes.len() < HEADER_LEN {
        out.end = LogEnd::BadHeader {
            why: format!("{} bytes, shorter than a log header", bytes.len()),
        };
        return out;
    }
    let magic = be_i32(bytes);
    if magic != LOG_MAGIC {
        out.end = LogEnd::BadHeader {
            why: format!("not a ZooKeeper txn log (magic {magic:#x})"),
        };
        return out;
    }
    out.version = be_i32(&bytes[4..]);
    out.dbid = be_i64(&bytes[8..]);
    let mut pos = HEADER_LEN;
    out.good_len = pos;
    loop {
        let rest = &bytes[pos..];
        if rest.len() < 12 {
            if rest.iter().all(|&b| b == 0) {
                return out;
            }
            out.end = LogEnd::Torn { offset: pos };
            return out;
        }
        let crc = be_i64(rest);
        let len = be_i32(&rest[8..]);
        if len == 0 {
            // Preallocated space: the end, as ZooKeeper reads it.
            return out;
        }
        if len < 0 || len as usize > ENTRY_LEN_MAX {
            out.end = LogEnd::Corrupt {
                offset: pos,
                why: format!("entry length {len}"),
            };
            return out;
        }
        let len = len as usize;
        if rest.len() < 12 + len + 1 {
            out.end = LogEnd::Torn { offset: pos };
            return out;
        }
        let body = &rest[12..12 + len];
        if rest[12 + len] != b'B' {
            // ZooKeeper: "Last transaction was partial."
            out.end = LogEnd::Torn { offset: pos };
            return out;
        }
        let sum = adler2::adler32_slice(body) as i64;
        if sum != crc {
            out.end = LogEnd::Corrupt {
                offset: pos,
                why: format!("checksum mismatch (record says {crc:#x}, bytes give {sum:#x})"),
            };
            return out;
        }
        match decode_entry(body) {
            Ok(e) => out.entries.push((pos, e)),
            Err(why) => {
                out.end = LogEnd::Corrupt { offset: pos, why };
                return out;
            }
        }
        pos += 12 + len + 1;
        out.good_len = pos;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::{op, Writer};

    /// A log file as ZooKeeper writes one, with `pad` zero bytes after
    /// (tests only): one setData of /a per zxid.
    pub(crate) fn log_file(zxids: &[i64], pad: usize) -> Vec<u8> {
        let mut w = Writer::new();
        w.i32(LOG_MAGIC).i32(2).i64(0);
        let mut b = w.into_vec();
        for z in zxids {
            let mut w = Writer::new();
            w.i64(0x55).i32(1).i64(*z).i64(1000).i32(op::SET_DATA);
            w.ustring("/a").buffer(b"v").i32(*z as i32);
            let e = w.into_vec();
            let mut w = Writer::new();
            w.i64(adler2::adler32_slice(&e) as i64).buffer(&e);
            b.extend(w.into_vec());
            b.push(b'B');
        }
        b.extend(std::iter::repeat_n(0u8, pad));
        b
    }

    #[test]
    fn reads_records_up_to_the_preallocated_zeros() {
        let b = log_file(&[1, 2, 3], 100);
        let l = read_log(&b);
        assert_eq!(l.end, LogEnd::Clean);
        let z: Vec<i64> = l.entries.iter().map(|(_, e)| e.hdr.zxid).collect();
        assert_eq!(z, vec![1, 2, 3]);
        assert_eq!(l.good_len, b.len() - 100);
    }

    #[test]
    fn a_torn_tail_and_a_flipped_byte_are_told_apart() {
        let b = log_file(&[1, 2, 3], 0);
        let l = read_log(&b[..b.len() - 4]);
        assert_eq!(l.entries.len(), 2);
        assert!(matches!(l.end, LogEnd::Torn { .. }), "{:?}", l.end);
        let mut f = b.clone();
        let n = f.len();
        f[n - 5] ^= 0x10;
        let l = read_log(&f);
        assert_eq!(l.entries.len(), 2);
        assert!(matches!(l.end, LogEnd::Corrupt { .. }), "{:?}", l.end);
        assert!(matches!(
            read_log(b"PDKLOG01xxxxxxxx").end,
            LogEnd::BadHeader { .. }
        ));
    }
}
