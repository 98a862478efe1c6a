//! Hostile input on the sockets of a live 3-server ensemble while real
//! clients work: random bytes, half frames, huge and negative length
//! prefixes and stalled connections on every client port, and the same on
//! every quorum and election port (plus a forged handshake followed by an
//! oversized frame). No server may panic or exit, all keep serving, the
//! clients keep making progress, and each server logs why it dropped the
//! hostile connections.

use paddock_chaos::client::{self, Conn};
use paddock_chaos::cluster::{addr, Cluster, ClusterSpec};
use paddock_chaos::proxy::membership_digest;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

fn send(a: SocketAddr, bytes: &[u8]) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok()?;
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(bytes);
    Some(s)
}

/// The attacks, each a byte string sent on a fresh connection; `keep`
/// says whether the connection is then held open (stalled) or dropped.
fn attacks(rng: &mut impl Rng) -> Vec<(&'static str, Vec<u8>, bool)> {
    let random: Vec<u8> = (0..4096).map(|_| rng.gen()).collect();
    let mut half = 200u32.to_be_bytes().to_vec();
    half.extend_from_slice(&[7u8; 90]);
    vec![
        ("random bytes", random, false),
        ("half a frame, then close", half.clone(), false),
        ("half a frame, then stall", half, true),
        (
            "huge length prefix",
            [0x7f, 0xff, 0xff, 0xff, 1, 2, 3].to_vec(),
            false,
        ),
        (
            "negative length prefix",
            [0xff, 0xff, 0xff, 0xf0, 1].to_vec(),
            false,
        ),
        (
            "length prefix only, then stall",
            100u32.to_be_bytes().to_vec(),
            true,
        ),
        ("nothing, stalled", Vec::new(), true),
    ]
}

#[test]
fn hostile_bytes_on_client_and_peer_ports_do_not_disturb_the_ensemble() {
    let seed = 0x5eed_u64;
    println!("hostile: seed {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let c = Cluster::start(ClusterSpec::voters(3)).expect("cluster");
    c.wait_for_all(WAIT).expect("leader");

    // Real clients, one per server, writing and reading throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let (stop, progress) = (stop.clone(), progress.clone());
            let a = c.servers[i].client_addr();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let Ok((mut conn, _)) =
                        Conn::connect(a, i + 1, None, 10_000, Duration::from_secs(5))
                    else {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    };
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let p = format!("/w{i}-{n}");
                        match conn.call(&client::create_req(&p, b"x", false)) {
                            Ok(r) if r.err == 0 => {}
                            _ => break,
                        }
                        match conn.call(&client::get_req(&p)) {
                            Ok(r) if r.err == 0 => {
                                progress.fetch_add(1, Ordering::SeqCst);
                            }
                            _ => break,
                        }
                    }
                }
            })
        })
        .collect();

    let mut held = Vec::new();
    for round in 0..3 {
        for (i, s) in c.servers.iter().enumerate() {
            let mut targets = vec![("client", s.client_addr())];
            targets.push(("quorum", addr(s.quorum_port)));
            targets.push(("election", addr(s.election_port)));
            for (port, a) in targets {
                for (what, bytes, keep) in attacks(&mut rng) {
                    if let Some(conn) = send(a, &bytes) {
                        if keep {
                            held.push(conn);
                        }
                    } else if round == 0 {
                        println!(
                            "server {} {port} port refused the connection for {what}",
                            i + 1
                        );
                    }
                }
            }
            // A forged handshake (a real member id, the right digest),
            // then a frame longer than any peer frame may be.
            let members: Vec<(u64, String, u16, u16, bool)> = c
                .servers
                .iter()
                .enumerate()
                .map(|(j, t)| {
                    let q = if j < i {
                        c.proxy.listen_addr(i, j).port()
                    } else {
                        t.quorum_port
                    };
                    (
                        t.id as u64,
                        "127.0.0.1".to_string(),
                        q,
                        t.election_port,
                        false,
                    )
                })
                .collect();
            // A larger member's id (that member's real link is replaced
            // for a moment, as a real impostor would), else a stranger's.
            let forged_id = if i + 1 < c.servers.len() {
                c.servers.len() as u64
            } else {
                99
            };
            let mut hello = b"PDKP".to_vec();
            hello.extend_from_slice(&2u32.to_be_bytes());
            hello.extend_from_slice(&forged_id.to_be_bytes());
            hello.extend_from_slice(&membership_digest(&members).to_be_bytes());
            hello.extend_from_slice(&u32::MAX.to_be_bytes());
            let _ = send(addr(s.quorum_port), &hello);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Past the peer handshake timeout (5 s) with the stalled ones open.
    let before = progress.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(7));
    let during = progress.load(Ordering::SeqCst);
    drop(held);

    let leader = c.wait_for_all(WAIT);
    std::thread::sleep(Duration::from_secs(2));
    let after = progress.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.join();
    }
    assert!(leader.is_ok(), "{leader:?}\n{}", c.all_logs_tail(40));
    assert!(c.panicked().is_empty(), "panics:\n{}", c.all_logs_tail(60));
    for i in 0..3 {
        assert!(c.servers[i].running(), "server {} still runs", i + 1);
        let log = c.log(i);
        assert!(
            log.contains("closing connection from"),
            "server {} logs why it closed hostile client connections:\n{log}",
            i + 1
        );
        assert!(
            log.contains("peer connection from") && log.contains("refused"),
            "server {} logs why it refused hostile peer connections:\n{log}",
            i + 1
        );
    }
    assert!(
        during > before && after > during,
        "clients kept working: {before} then {during} then {after} round trips"
    );
    assert!(
        (0..3).any(|i| c.log(i).contains("exceeds the peer frame limit")),
        "the forged link's oversized frame was refused with a reason"
    );
    c.wait_for_convergence(WAIT).expect("converged");
    let mut reasons = std::collections::BTreeSet::new();
    for i in 0..3 {
        for l in c.log(i).lines() {
            for key in ["closing connection from", "refused:"] {
                if let Some(at) = l.find(key) {
                    let tail = &l[at..];
                    let reason = tail.split_once(": ").map(|x| x.1).unwrap_or(tail);
                    reasons.insert(reason.chars().take(70).collect::<String>());
                }
            }
        }
    }
    println!("reasons logged: {reasons:#?}");
    let _ = Instant::now();
}
