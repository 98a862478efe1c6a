//! Fuzzing the ZooKeeper learner-stream decoder (QuorumPackets and a
//! SNAP's streamed snapshot) without cargo-fuzz: random mutations of a
//! valid stream, fed in random splits, must never panic and must end in
//! items or an error value. By default a few seconds; the long run is
//! `PADDOCK_FUZZ_SECS=600 cargo test -p paddock-core --release --test
//! zk_quorum_fuzz -- --nocapture` (README).

// A test outside the core's sources: its time budget is wall-clock.
#![allow(clippy::disallowed_methods)]

use paddock_core::proto::{write_acls, Acl, Writer};
use paddock_core::zk::quorum::{kind, mutate, Item, LeaderStream, QuorumPacket};
use paddock_core::zk::snapshot::decode_sync_stream;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

fn sync_stream() -> Vec<u8> {
    let mut w = Writer::new();
    w.i32(1).i64(0x11).i32(4000);
    w.i32(1).i64(1);
    write_acls(&mut w, &Acl::open_unsafe());
    for (p, d) in [("", &b""[..]), ("/a", &b"hello"[..]), ("/a/b", &b"x"[..])] {
        w.ustring(p).buffer(d).i64(1);
        for v in [5i64, 5, 100, 100] {
            w.i64(v);
        }
        w.i32(0).i32(0).i32(0).i64(0).i64(5);
    }
    w.ustring("/").ustring("BenWasHere");
    w.into_vec()
}

fn base() -> Vec<u8> {
    let mut b = Vec::new();
    QuorumPacket::new(kind::LEADERINFO, 1 << 32, Some(vec![0, 1, 0, 0])).encode_into(&mut b);
    QuorumPacket::new(kind::SNAP, 5, None).encode_into(&mut b);
    b.extend_from_slice(&sync_stream());
    QuorumPacket::new(kind::NEWLEADER, 1 << 32, Some(b"server.1=x".to_vec())).encode_into(&mut b);
    QuorumPacket::new(kind::UPTODATE, -1, None).encode_into(&mut b);
    QuorumPacket::new(kind::INFORM, 6, Some(vec![1; 40])).encode_into(&mut b);
    QuorumPacket::new(kind::PING, 6, None).encode_into(&mut b);
    b
}

#[test]
fn mutated_learner_streams_never_panic() {
    let secs: u64 = std::env::var("PADDOCK_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("PADDOCK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(18);
    let budget = Duration::from_secs(secs);
    let start = Instant::now();
    let base = base();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut rounds, mut items, mut errors, mut snaps) = (0u64, 0u64, 0u64, 0u64);
    while start.elapsed() < budget {
        rounds += 1;
        let mut b = base.clone();
        mutate(&mut b, &mut rng, 7);
        let mut s = LeaderStream::new();
        let mut at = 0;
        while at < b.len() {
            let n = rng.gen_range(1..=b.len() - at);
            s.push(&b[at..at + n]);
            at += n;
            loop {
                match s.next_item() {
                    Ok(Some(Item::Snapshot(bytes))) => {
                        snaps += 1;
                        let _ = decode_sync_stream(&bytes);
                    }
                    Ok(Some(Item::Packet(_))) => items += 1,
                    Ok(None) => break,
                    Err(e) => {
                        errors += 1;
                        assert!(!e.to_string().is_empty());
                        // The stream is dead: nothing more comes out.
                        s.push(&base);
                        assert_eq!(s.next_item(), Ok(None));
                        break;
                    }
                }
            }
        }
    }
    eprintln!("{rounds} rounds, {items} packets, {snaps} snapshots, {errors} errors (seed {seed})");
    assert!(rounds > 100 && items > 0 && errors > 0);
}
