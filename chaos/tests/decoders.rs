//! Hostile bytes into every decoder that faces the network or the disk:
//! the client frame decoders, the peer message decoder, and log/snapshot
//! recovery. None may panic; each must answer with an error value.
//!
//! cargo-fuzz needs a nightly toolchain, which this machine cannot fetch,
//! so these are proptests. Cases per property: `CHAOS_PROPTEST_CASES`
//! (default 5,000; the soak section of chaos/README.md uses 200,000).
//! Inputs are both random and mutations of valid encodings, with the
//! checksums recomputed after mutating so the decoding behind them runs.

use paddock_core::peer::{self, PeerMsg, PeerState, Vote};
use paddock_core::proto::{self, Acl, ConnectRequest, CreateRequest, Request};
use paddock_core::storage::{self, DiskImage, Snapshot};
use paddock_core::txn::{ApplyOptions, State, Txn, TxnKind};
use paddock_core::{ServerId, SessionId, Zxid};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("CHAOS_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        extended_types_enabled: true,
        skip_acl: false,
        max_data_len: 1 << 20,
        enforce_quota: false,
        // Both optional providers, so their ids' validation is exercised.
        acl_providers: paddock_core::tree::acl::Providers {
            x509: true,
            sasl: true,
        },
    }
}

const OPCODES: &[i32] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    100,
    101,
    102,
    103,
    104,
    105,
    106,
    107,
    -10,
    -11,
    -1,
    99,
    i32::MIN,
    i32::MAX,
];

/// Valid request bodies to mutate (without the request header).
fn valid_requests() -> Vec<(i32, Vec<u8>)> {
    let create = |flags| Request::Create {
        opcode: proto::op::CREATE,
        req: CreateRequest {
            path: "/a/b".into(),
            data: b"data".to_vec(),
            acl: Acl::open_unsafe(),
            flags,
            ttl: None,
        },
    };
    let reqs = [
        create(0),
        create(3),
        Request::SetData {
            path: "/x".into(),
            data: vec![1, 2, 3],
            version: 7,
        },
        Request::GetData {
            path: "/x".into(),
            watch: true,
        },
        Request::Delete {
            path: "/x".into(),
            version: -1,
        },
        Request::GetChildren2 {
            path: "/".into(),
            watch: false,
        },
        Request::Sync { path: "/".into() },
        Request::AddWatch {
            path: "/w".into(),
            mode: 1,
        },
    ];
    reqs.iter()
        .map(|r| {
            let frame = proto::encode_request(1, r);
            let opcode = i32::from_be_bytes(frame[4..8].try_into().unwrap());
            (opcode, frame[8..].to_vec())
        })
        .collect()
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(at, kind, val) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        match kind % 4 {
            0 => bytes[at] ^= val | 1,
            1 => bytes[at] = val,
            2 => bytes.insert(at, val),
            _ => {
                bytes.remove(at);
            }
        }
    }
    if let Some(c) = cut {
        let c = c % (bytes.len() + 1);
        bytes.truncate(c);
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8)
}

fn txns(n: u64) -> Vec<Txn> {
    (1..=n)
        .map(|i| Txn {
            zxid: Zxid((1 << 32) | i),
            time_ms: 1_000 + i as i64,
            session: SessionId(0x100),
            cxid: i as i32,
            kind: if i == 1 {
                TxnKind::CreateSession { timeout_ms: 4_000 }
            } else {
                TxnKind::Write {
                    request: Request::Create {
                        opcode: proto::op::CREATE,
                        req: CreateRequest {
                            path: format!("/n{i}"),
                            data: vec![i as u8; 8],
                            acl: Acl::open_unsafe(),
                            flags: if i % 3 == 0 { 1 } else { 0 },
                            ttl: None,
                        },
                    },
                    auth: vec![],
                }
            },
        })
        .collect()
}

fn log_bytes(txns: &[Txn]) -> Vec<u8> {
    let mut out = storage::LOG_MAGIC.to_vec();
    for t in txns {
        storage::encode_record(t, &mut out);
    }
    out
}

fn snapshot_bytes(txns: &[Txn]) -> Vec<u8> {
    let mut s = State::default();
    for t in txns {
        s.apply(t, &opts());
    }
    Snapshot::of(&s).encode()
}

/// Re-seals a mutated log so every record's checksum holds again: the
/// record decoder then sees the damage.
fn reseal_log(mut b: Vec<u8>) -> Vec<u8> {
    let mut pos = 8;
    while pos + 8 <= b.len() {
        let len = u32::from_le_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        if len == 0 || pos + 8 + len > b.len() {
            break;
        }
        let crc = crc32c::crc32c(&b[pos + 8..pos + 8 + len]);
        b[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos += 8 + len;
    }
    b
}

fn reseal_snapshot(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() >= 20 {
        let len = (b.len() - 20) as u64;
        b[8..16].copy_from_slice(&len.to_le_bytes());
        let crc = crc32c::crc32c(&b[20..]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
    }
    b
}

fn reseal_peer(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() >= 5 {
        b[0] = peer::PEER_VERSION;
        let crc = crc32c::crc32c(&b[5..]);
        b[1..5].copy_from_slice(&crc.to_le_bytes());
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn client_request_decoder_never_panics_on_random_bytes(
        op in prop::sample::select(OPCODES),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = proto::decode_request(op, &body);
        let _ = ConnectRequest::decode(&body);
    }

    #[test]
    fn client_request_decoder_never_panics_on_mutated_requests(
        which in any::<prop::sample::Index>(),
        e in edits(),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let reqs = valid_requests();
        let (op, body) = reqs[which.index(reqs.len())].clone();
        let body = mutate(body, &e, cut);
        let _ = proto::decode_request(op, &body);
    }

    #[test]
    fn connect_request_decoder_never_panics_on_mutations(e in edits(), cut in proptest::option::of(any::<usize>())) {
        let valid = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 5,
            timeout_ms: 4000,
            session_id: 9,
            passwd: vec![7; 16],
            read_only: Some(false),
        }
        .encode();
        let _ = ConnectRequest::decode(&mutate(valid, &e, cut));
    }

    #[test]
    fn peer_decoder_never_panics(
        e in edits(),
        cut in proptest::option::of(any::<usize>()),
        random in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let valid = peer::encode(&PeerMsg::Vote(Vote {
            leader: ServerId(3),
            zxid: Zxid(0x2_0000_0010),
            peer_epoch: 2,
            round: 9,
            state: PeerState::Looking,
        }));
        let m = mutate(valid, &e, cut);
        let _ = peer::decode(&m);
        let _ = peer::decode(&reseal_peer(m));
        let _ = peer::decode(&random);
        let _ = peer::decode(&reseal_peer(random));
    }

    #[test]
    fn log_reader_and_recovery_never_panic_on_damaged_logs(
        n in 1u64..40,
        e in edits(),
        cut in proptest::option::of(any::<usize>()),
        reseal in any::<bool>(),
    ) {
        let t = txns(n);
        let mut b = mutate(log_bytes(&t), &e, cut);
        if reseal {
            b = reseal_log(b);
        }
        let (got, good, _) = storage::read_log(&b);
        prop_assert!(good <= b.len());
        prop_assert!(got.len() as u64 <= n + 8);
        let image = DiskImage { snapshots: vec![], logs: vec![("log.100000001".into(), b)] };
        let _ = storage::recover(&image, &opts());
    }

    #[test]
    fn snapshot_reader_and_recovery_never_panic_on_damaged_snapshots(
        n in 1u64..30,
        e in edits(),
        cut in proptest::option::of(any::<usize>()),
        reseal in any::<bool>(),
    ) {
        let t = txns(n);
        let mut s = mutate(snapshot_bytes(&t), &e, cut);
        if reseal {
            s = reseal_snapshot(s);
        }
        let _ = storage::read_snapshot(&s);
        let image = DiskImage {
            snapshots: vec![(format!("snapshot.{:x}", (1u64 << 32) | n), s)],
            logs: vec![("log.100000001".into(), log_bytes(&t))],
        };
        let r = storage::recover(&image, &opts());
        // With an intact log from the start, recovery always succeeds and
        // reaches the log's end, whatever happened to the snapshot.
        let r = r.map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(r.state.last_zxid, Zxid((1 << 32) | n));
    }
}
