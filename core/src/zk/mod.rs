//! Apache ZooKeeper's on-disk formats, read without IO: pure functions
//! over the bytes of a `version-2/` directory's files, for `paddock
//! import`, `paddock inspect`, and (later) a learner receiving a
//! ZooKeeper leader's SNAP, which carries the same serialized DataTree.
//!
//! Files, as ZooKeeper names them: `snapshot.<hex zxid>` (optionally
//! `.gz` or `.snappy`, per `snapshot.compression.method`), `log.<hex
//! first zxid>`, and the decimal `acceptedEpoch` / `currentEpoch`.

pub mod convert;
pub mod import;
pub mod password;
pub mod quorum;
pub mod snapshot;
pub mod tree;
pub mod txn;
pub mod txnlog;

/// What a ZooKeeper file name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZkFile {
    /// `snapshot.<hex>[.gz|.snappy]`: the zxid the snapshot started at.
    Snapshot { zxid: u64, compression: Compression },
    /// `log.<hex>`: the zxid of its first record.
    Log { first: u64 },
}

/// How a snapshot file is compressed (its name's suffix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
}

/// Parses a ZooKeeper data file name; `None` for anything else.
pub fn parse_zk_name(name: &str) -> Option<ZkFile> {
    if let Some(rest) = name.strip_prefix("log.") {
        return u64::from_str_radix(rest, 16)
            .ok()
            .map(|first| ZkFile::Log { first });
    }
    let rest = name.strip_prefix("snapshot.")?;
    let (hex, compression) = if let Some(h) = rest.strip_suffix(".gz") {
        (h, Compression::Gzip)
    } else if let Some(h) = rest.strip_suffix(".snappy") {
        (h, Compression::Snappy)
    } else {
        (rest, Compression::None)
    };
    u64::from_str_radix(hex, 16)
        .ok()
        .map(|zxid| ZkFile::Snapshot { zxid, compression })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_zookeeper_writes_them() {
        assert_eq!(
            parse_zk_name("snapshot.1a"),
            Some(ZkFile::Snapshot {
                zxid: 0x1a,
                compression: Compression::None
            })
        );
        assert_eq!(
            parse_zk_name("snapshot.100000000.snappy"),
            Some(ZkFile::Snapshot {
                zxid: 0x1_0000_0000,
                compression: Compression::Snappy
            })
        );
        assert_eq!(parse_zk_name("log.1"), Some(ZkFile::Log { first: 1 }));
        assert_eq!(parse_zk_name("log.1.corrupt"), None);
        assert_eq!(parse_zk_name("acceptedEpoch"), None);
    }
}
