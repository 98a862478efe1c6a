//! Apache ZooKeeper's snapshot file (`FileSnap`, `SnapStream`), decoded
//! from its bytes.
//!
//! The stream, after gzip or snappy (xerial's block framing) when the
//! name says so:
//!   FileHeader   int magic "ZKSN", int version 2, long dbid
//!   sessions     int count, then (long id, int timeout ms) each
//!   ACL cache    int count, then (long ref, vector<ACL>) each
//!   nodes        (ustring path, buffer data, long acl ref, StatPersisted)
//!                in depth-first order from the root (path ""), ended by
//!                the path "/"
//!   seal         long Adler-32 of every byte before it, ustring "/"
//!   digest       (3.6+) long zxid, int digestVersion, long digest, and a
//!                second seal over everything before it
//!
//! A snapshot is fuzzy: written while txns went on being applied, so the
//! txns after its name's zxid are replayed over it (see `zk::import`).

use super::tree::{StatPersisted, ZkNode, ZkTree};
use super::Compression;
use crate::proto::{read_acls, Acl, DecodeError, Reader};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

pub const SNAP_MAGIC: i32 = 0x5a4b_534e; // "ZKSN"
/// ACL reference meaning OPEN_ACL_UNSAFE (`ReferenceCountedACLCache`).
const OPEN_UNSAFE_ACL_ID: i64 = -1;
const SNAPPY_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";

/// The digest a 3.6+ snapshot carries: ZooKeeper's tree digest at `zxid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub version: i32,
    pub digest: u64,
}

/// Where and why decoding stopped before a complete, sealed snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Offset in the (decompressed) stream.
    pub offset: usize,
    pub why: String,
}

/// What a snapshot file holds; `tree` is partial when `damage` is set.
#[derive(Debug, Default)]
pub struct ZkSnapshot {
    pub version: i32,
    pub dbid: i64,
    pub sessions: Vec<(i64, i32)>,
    pub acl_lists: usize,
    pub tree: ZkTree,
    pub digest: Option<ZxidDigest>,
    /// Bytes of the decompressed stream.
    pub stream_len: usize,
    pub damage: Option<Damage>,
}

/// Undoes the file's compression. A stream cut short yields what could
/// be decompressed and the reason it stopped.
pub fn decompress(bytes: &[u8], c: Compression) -> (Cow<'_, [u8]>, Option<String>) {
    let (out, why) = match c {
        Compression::None => return (Cow::Borrowed(bytes), None),
        Compression::Gzip => {
            let mut out = Vec::with_capacity(bytes.len() * 4);
            let mut d = flate2::read::GzDecoder::new(bytes);
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match d.read(&mut buf) {
                    Ok(0) => break (out, None),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) => break (out, Some(format!("gzip: {e}"))),
                }
            }
        }
        Compression::Snappy => snappy_stream(bytes),
    };
    (Cow::Owned(out), why)
}

/// xerial snappy-java's `SnappyOutputStream`: an 8-byte magic, two ints
/// (version, compatible version), then blocks of `int len` + raw snappy.
fn snappy_stream(bytes: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    if bytes.len() < 16 || &bytes[..8] != SNAPPY_MAGIC {
        return (out, Some("snappy: no snappy-java stream header".into()));
    }
    let mut pos = 16;
    let mut dec = snap::raw::Decoder::new();
    while pos < bytes.len() {
        if bytes.len() - pos < 4 {
            return (out, Some(format!("snappy: block header cut at {pos}")));
        }
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        pos += 4;
        if bytes.len() - pos < len {
            return (out, Some(format!("snappy: block at {pos} cut short")));
        }
        match dec.decompress_vec(&bytes[pos..pos + len]) {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => return (out, Some(format!("snappy: block at {pos}: {e}"))),
        }
        pos += len;
    }
    (out, None)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    r: Reader<'a>,
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> usize {
        self.bytes.len() - self.r.remaining()
    }
}

fn damage(c: &Cursor, e: impl std::fmt::Display) -> Damage {
    Damage {
        offset: c.offset(),
        why: e.to_string(),
    }
}

/// Reads a seal: the Adler-32 of every byte before it, then "/".
fn seal(c: &mut Cursor) -> Result<(), Damage> {
    let at = c.offset();
    let want = adler2::adler32_slice(&c.bytes[..at]) as i64;
    let got = c.r.i64().map_err(|e| damage(c, e))?;
    let slash = c.r.ustring().map_err(|e| damage(c, e))?;
    if got != want || slash != "/" {
        return Err(Damage {
            offset: at,
            why: format!("checksum mismatch: the seal says {got:#x}, the bytes give {want:#x}"),
        });
    }
    Ok(())
}

fn stat(r: &mut Reader) -> Result<StatPersisted, DecodeError> {
    Ok(StatPersisted {
        czxid: r.i64()?,
        mzxid: r.i64()?,
        ctime: r.i64()?,
        mtime: r.i64()?,
        version: r.i32()?,
        cversion: r.i32()?,
        aversion: r.i32()?,
        ephemeral_owner: r.i64()?,
        pzxid: r.i64()?,
    })
}

/// Decodes a snapshot file's bytes (`compression` from its name).
pub fn decode(bytes: &[u8], compression: Compression) -> ZkSnapshot {
    let (stream, cut) = decompress(bytes, compression);
    let mut out = ZkSnapshot {
        stream_len: stream.len(),
        ..ZkSnapshot::default()
    };
    let mut c = Cursor {
        bytes: &stream,
        r: Reader::new(&stream),
    };
    if let Err(d) = decode_stream(&mut c, &mut out) {
        out.damage = Some(match cut {
            // The decompressor's reason explains a short stream better.
            Some(why) => Damage {
                offset: d.offset,
                why: format!("{} ({why})", d.why),
            },
            None => d,
        });
    } else if let Some(why) = cut {
        out.damage = Some(Damage {
            offset: stream.len(),
            why,
        });
    }
    out
}

fn decode_stream(c: &mut Cursor, out: &mut ZkSnapshot) -> Result<(), Damage> {
    let magic = c.r.i32().map_err(|e| damage(c, e))?;
    if magic != SNAP_MAGIC {
        return Err(Damage {
            offset: 0,
            why: format!("not a ZooKeeper snapshot (magic {magic:#x})"),
        });
    }
    out.version = c.r.i32().map_err(|e| damage(c, e))?;
    out.dbid = c.r.i64().map_err(|e| damage(c, e))?;
    decode_tree(c, out)?;
    seal(c)?;
    if c.r.remaining() == 0 {
        return Ok(());
    }
    let zxid = c.r.i64().map_err(|e| damage(c, e))?;
    let version = c.r.i32().map_err(|e| damage(c, e))?;
    let digest = if version < 2 {
        let s = c.r.ustring().map_err(|e| damage(c, e))?;
        u64::from_str_radix(&s, 16).unwrap_or(0)
    } else {
        c.r.i64().map_err(|e| damage(c, e))? as u64
    };
    seal(c)?;
    if zxid > 0 {
        out.digest = Some(ZxidDigest {
            zxid,
            version,
            digest,
        });
    }
    // 3.9 may add the last processed zxid with its own seal; anything
    // else after the seals is not ZooKeeper's.
    if c.r.remaining() >= 8 {
        c.r.i64().map_err(|e| damage(c, e))?;
        seal(c)?;
    }
    if c.r.remaining() != 0 {
        return Err(damage(c, "trailing bytes after the last seal"));
    }
    Ok(())
}

/// The snapshot a ZooKeeper leader streams after a SNAP packet
/// (`ZKDatabase.serializeSnapshot`, then the string "BenWasHere"): the
/// same sessions, ACL cache and nodes as a file, without the file header,
/// the seals or the digest. `bytes` must be exactly that stream.
pub fn decode_sync_stream(bytes: &[u8]) -> Result<ZkSnapshot, Damage> {
    let mut out = ZkSnapshot {
        stream_len: bytes.len(),
        ..ZkSnapshot::default()
    };
    let mut c = Cursor {
        bytes,
        r: Reader::new(bytes),
    };
    decode_tree(&mut c, &mut out)?;
    let sig = c.r.ustring().map_err(|e| damage(&c, e))?;
    if sig != SYNC_SIGNATURE {
        return Err(damage(
            &c,
            "the snapshot is not followed by ZooKeeper's signature",
        ));
    }
    if c.r.remaining() != 0 {
        return Err(damage(&c, "trailing bytes after the signature"));
    }
    Ok(out)
}

/// What a leader writes after a streamed snapshot (`LearnerHandler`).
pub const SYNC_SIGNATURE: &str = "BenWasHere";

/// Sessions, the ACL cache and the nodes up to the "/" terminator.
fn decode_tree(c: &mut Cursor, out: &mut ZkSnapshot) -> Result<(), Damage> {
    let n = c.r.i32().map_err(|e| damage(c, e))?;
    for _ in 0..n.max(0) {
        let id = c.r.i64().map_err(|e| damage(c, e))?;
        let timeout = c.r.i32().map_err(|e| damage(c, e))?;
        out.sessions.push((id, timeout));
        out.tree.sessions.insert(id, timeout);
    }
    let n = c.r.i32().map_err(|e| damage(c, e))?;
    let mut acls: BTreeMap<i64, Arc<Vec<Acl>>> = BTreeMap::new();
    for _ in 0..n.max(0) {
        let id = c.r.i64().map_err(|e| damage(c, e))?;
        let list = read_acls(&mut c.r).map_err(|e| damage(c, e))?;
        acls.insert(id, out.tree.intern_acl(list));
    }
    out.acl_lists = acls.len();
    let open = out.tree.intern_acl(Acl::open_unsafe());
    let mut first = true;
    loop {
        let at = c.offset();
        let path = c.r.ustring().map_err(|e| damage(c, e))?;
        if path == "/" {
            break;
        }
        if first != path.is_empty() {
            return Err(Damage {
                offset: at,
                why: format!("node {path:?} where the root was expected, or a second root"),
            });
        }
        first = false;
        let data =
            c.r.buffer_opt()
                .map_err(|e| damage(c, e))?
                .map(Arc::<[u8]>::from);
        let acl_ref = c.r.i64().map_err(|e| damage(c, e))?;
        let st = stat(&mut c.r).map_err(|e| damage(c, e))?;
        let acl = if acl_ref == OPEN_UNSAFE_ACL_ID {
            open.clone()
        } else {
            acls.get(&acl_ref).cloned().ok_or_else(|| Damage {
                offset: at,
                why: format!("node {path:?} refers to ACL {acl_ref}, which the snapshot lacks"),
            })?
        };
        let path = if path.is_empty() { "/".into() } else { path };
        out.tree
            .insert_loaded(
                path,
                ZkNode {
                    data,
                    acl,
                    stat: st,
                },
            )
            .map_err(|why| Damage { offset: at, why })?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::Writer;

    /// A snapshot stream as ZooKeeper writes one (tests only).
    pub(crate) fn stream(nodes: &[(&str, &[u8], i64)], digest: Option<(i64, u64)>) -> Vec<u8> {
        let mut w = Writer::new();
        w.i32(SNAP_MAGIC).i32(2).i64(0);
        w.i32(1).i64(0x77).i32(6000);
        w.i32(1).i64(1);
        crate::proto::write_acls(&mut w, &[Acl::open_unsafe()[0].clone()]);
        for (p, d, czxid) in nodes {
            w.ustring(p).buffer(d).i64(1);
            for v in [*czxid, *czxid, 0, 0] {
                w.i64(v);
            }
            w.i32(0).i32(0).i32(0).i64(0).i64(*czxid);
        }
        w.ustring("/");
        let mut b = w.into_vec();
        let sum = adler2::adler32_slice(&b) as i64;
        let mut w = Writer::new();
        w.i64(sum).ustring("/");
        if let Some((z, d)) = digest {
            w.i64(z).i32(2).i64(d as i64);
        }
        b.extend(w.into_vec());
        if digest.is_some() {
            let sum = adler2::adler32_slice(&b) as i64;
            let mut w = Writer::new();
            w.i64(sum).ustring("/");
            b.extend(w.into_vec());
        }
        b
    }

    #[test]
    fn decodes_a_sealed_snapshot_with_digest() {
        let b = stream(&[("", b"", 0), ("/a", b"hi", 3)], Some((3, 42)));
        let s = decode(&b, Compression::None);
        assert_eq!(s.damage, None);
        assert_eq!(s.sessions, vec![(0x77, 6000)]);
        assert_eq!(s.tree.node_count(), 2);
        assert_eq!(&**s.tree.get("/a").unwrap().data.as_ref().unwrap(), b"hi");
        assert_eq!(s.digest.map(|d| (d.zxid, d.digest)), Some((3, 42)));
    }

    #[test]
    fn a_cut_or_flipped_snapshot_says_where() {
        let b = stream(&[("", b"", 0), ("/a", b"hi", 3)], None);
        let cut = decode(&b[..b.len() - 3], Compression::None);
        assert!(cut.damage.is_some());
        let mut flipped = b.clone();
        let at = flipped.len() - 20;
        flipped[at] ^= 1;
        let d = decode(&flipped, Compression::None).damage.expect("damage");
        assert!(d.why.contains("checksum"), "{d:?}");
        // A node whose parent is missing is refused, as ZooKeeper does.
        let orphan = stream(&[("", b"", 0), ("/a/b", b"", 3)], None);
        assert!(decode(&orphan, Compression::None).damage.is_some());
    }

    #[test]
    fn gzip_and_snappy_streams_decode() {
        use std::io::Write;
        let b = stream(&[("", b"", 0), ("/a", b"hi", 3)], Some((3, 42)));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&b).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode(&gz, Compression::Gzip).damage, None);
        let mut sn = SNAPPY_MAGIC.to_vec();
        sn.extend_from_slice(&1i32.to_be_bytes());
        sn.extend_from_slice(&1i32.to_be_bytes());
        for chunk in b.chunks(7) {
            let c = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            sn.extend_from_slice(&(c.len() as u32).to_be_bytes());
            sn.extend_from_slice(&c);
        }
        let s = decode(&sn, Compression::Snappy);
        assert_eq!((s.damage, s.tree.node_count()), (None, 2));
        assert!(decode(&gz[..gz.len() / 2], Compression::Gzip)
            .damage
            .is_some());
    }
}
