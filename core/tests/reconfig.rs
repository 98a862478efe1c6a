//! Dynamic reconfiguration end to end over real `Node`s: the request's
//! answers (ZooKeeper's error codes and order), a joiner added and
//! activated everywhere, a leader that removes itself handing over, a
//! participant turned observer, and `/zookeeper/config` on every member.

mod harness;

use harness::*;
use paddock_core::membership::Membership;
use paddock_core::proto::{self, ErrorCode, ReconfigRequest, Request};
use paddock_core::*;

const SUPER: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="; // super:test

fn spec(id: u64) -> String {
    format!("server.{id}=h{id}:2888:3888:participant;h{id}:2181")
}

fn list(ids: &[u64]) -> String {
    let mut t: String = ids.iter().map(|i| spec(*i) + "\n").collect();
    t.push_str("version=0");
    t
}

/// A member whose zoo.cfg lists `ids` (itself among them).
fn config(id: u64, ids: &[u64]) -> Config {
    let mut c = Config::ensemble(id, ids, &[]);
    c.tick_time_ms = 100;
    c.min_session_timeout_ms = 200;
    c.max_session_timeout_ms = 2000;
    c.reconfig_enabled = true;
    c.super_digest = Some(SUPER.into());
    c.member_list = Some(std::sync::Arc::from(list(ids).into_bytes()));
    c
}

fn reconfig(joining: Option<String>, leaving: Option<&str>, version: i64) -> Request {
    Request::Reconfigure(ReconfigRequest {
        joining_servers: joining,
        leaving_servers: leaving.map(String::from),
        new_members: None,
        cur_config_id: version,
    })
}

fn super_auth(c: &mut Cluster, conn: u64) {
    let node = c.conn_node[&conn];
    let auth = Request::Auth {
        auth_type: 0,
        scheme: "digest".into(),
        auth: b"super:test".to_vec(),
    };
    c.nodes.get_mut(&node).unwrap().handle(
        now(c.now_ms),
        Input::ClientFrame {
            conn: ConnId(conn),
            frame: proto::encode_request(-4, &auth),
        },
    );
    c.run_ms(20);
    c.inbox.remove(&conn);
}

fn config_text(c: &mut Cluster, conn: u64, xid: i32) -> Membership {
    let (h, body) = c.call(conn, xid, &get("/zookeeper/config"));
    assert_eq!(h.err, 0);
    Membership::parse(std::str::from_utf8(&data_of(&body)).unwrap()).unwrap()
}

fn three() -> Cluster {
    let mut c = Cluster::with_configs((1..=3).map(|i| config(i, &[1, 2, 3])).collect());
    c.run_ms(3000);
    assert!(c.leader().is_some(), "a leader is elected");
    c
}

// Goal: ZooKeeper's answers, in its order of checks: NoAuth only after the
// arguments and the new configuration's quorum were found good.
#[test]
fn a_reconfig_is_refused_as_zookeeper_refuses_it() {
    let mut c = three();
    let follower = (1..=3).find(|i| Some(*i) != c.leader()).unwrap();
    c.connect(1, follower);
    let (h, _) = c.call(1, 1, &reconfig(Some(spec(4)), None, -1));
    assert_eq!(h.err, ErrorCode::NoAuth as i32, "no super user");
    super_auth(&mut c, 1);
    let (h, _) = c.call(1, 2, &reconfig(Some("server.4=h4:2888".into()), None, -1));
    assert_eq!(h.err, ErrorCode::BadArguments as i32, "too few ports");
    let (h, _) = c.call(1, 3, &reconfig(Some(spec(4)), None, 7));
    assert_eq!(h.err, ErrorCode::BadVersion as i32, "stale fromConfig");
    let (h, _) = c.call(1, 4, &reconfig(None, Some("1,2"), -1));
    assert_eq!(h.err, ErrorCode::BadArguments as i32, "one voter left");
    let new_members = Request::Reconfigure(ReconfigRequest {
        joining_servers: None,
        leaving_servers: None,
        new_members: Some(format!("{},{},{}", spec(1), spec(4), spec(5))),
        cur_config_id: -1,
    });
    let (h, _) = c.call(1, 5, &new_members);
    assert_eq!(
        h.err,
        ErrorCode::NewConfigNoQuorum as i32,
        "4 and 5 are not synced"
    );
    // Disabled: the first check of all.
    let mut d = Cluster::with_configs(
        (1..=3)
            .map(|i| Config {
                reconfig_enabled: false,
                ..config(i, &[1, 2, 3])
            })
            .collect(),
    );
    d.run_ms(3000);
    d.connect(1, 1);
    let (h, _) = d.call(1, 1, &reconfig(Some(spec(4)), None, -1));
    assert_eq!(h.err, ErrorCode::ReconfigDisabled as i32);
}

// Goal: a joiner is added through the old and new quorums, the new
// configuration (version = the txn's zxid) is on every member, a second
// reconfig from the old version is BadVersion, and the joiner votes.
#[test]
fn a_joiner_is_added_and_the_configuration_is_everywhere() {
    let mut c = three();
    c.add(config(4, &[1, 2, 3, 4]));
    c.run_ms(2000);
    c.connect(1, 1);
    super_auth(&mut c, 1);
    let (h, body) = c.call(1, 1, &reconfig(Some(spec(4)), None, 0));
    assert_eq!(h.err, 0, "added");
    let answered = Membership::parse(std::str::from_utf8(&data_of(&body)).unwrap()).unwrap();
    assert_eq!(answered.version, h.zxid as u64, "version is the zxid");
    assert_eq!(answered.voters().len(), 4);
    c.run_ms(500);
    for (conn, id) in [(2u64, 2u64), (3, 3), (4, 4)] {
        c.connect(conn, id);
        assert_eq!(config_text(&mut c, conn, 1), answered, "on server {id}");
    }
    assert!(c
        .activated
        .iter()
        .any(|(id, v)| *id == 4 && *v == answered.version));
    let (h, _) = c.call(1, 2, &reconfig(Some(spec(5)), None, 0));
    assert_eq!(h.err, ErrorCode::BadVersion as i32);
    // One old follower down: three of the four voters remain and commit.
    let leader = c.leader().unwrap();
    let others: Vec<u64> = (1..=3).filter(|i| *i != leader).collect();
    c.crash(others[0]);
    c.run_ms(2000);
    let leader = c.leader().expect("still led");
    c.connect(5, leader);
    let (h, _) = c.call(5, 1, &create("/after", b"x", 0));
    assert_eq!(
        h.err, 0,
        "three of four voters (the joiner among them) commit"
    );
    // The joiner down too: two of the old three would have been a quorum,
    // two of the four are not.
    c.crash(4);
    c.run_ms(100);
    let node = c.conn_node[&5];
    if c.nodes.contains_key(&node) {
        c.nodes.get_mut(&node).unwrap().handle(
            now(c.now_ms),
            Input::ClientFrame {
                conn: ConnId(5),
                frame: proto::encode_request(2, &create("/nope", b"x", 0)),
            },
        );
        c.run_ms(1000);
        let frames = c.inbox.remove(&5).unwrap_or_default();
        assert!(
            frames.iter().all(|f| f[..4] != 2i32.to_be_bytes()
                || i32::from_be_bytes([f[12], f[13], f[14], f[15]]) != 0),
            "no commit by two of four voters"
        );
    }
}

// Goal: a leader that removes itself commits the change, steps down, and
// the remaining voters elect a leader among themselves at once.
#[test]
fn a_leader_that_removes_itself_hands_over() {
    let mut c = three();
    let old = c.leader().unwrap();
    c.connect(1, old);
    super_auth(&mut c, 1);
    let (h, body) = c.call(1, 1, &reconfig(None, Some(&old.to_string()), -1));
    assert_eq!(h.err, 0);
    let m = Membership::parse(std::str::from_utf8(&data_of(&body)).unwrap()).unwrap();
    assert!(!m.members.contains_key(&ServerId(old)));
    c.run_ms(3000);
    let new = c.leader().expect("a new leader");
    assert_ne!(new, old);
    c.connect(2, new);
    let (h, _) = c.call(2, 1, &create("/x", b"x", 0));
    assert_eq!(h.err, 0, "the two remaining voters commit");
    assert_ne!(c.nodes[&old].role(), ServerRole::Leader);
}

// Goal: a participant turned observer rejoins as an observer and still
// serves; the two remaining voters decide.
#[test]
fn a_participant_becomes_an_observer() {
    let mut c = three();
    let leader = c.leader().unwrap();
    let f = (1..=3).find(|i| *i != leader).unwrap();
    c.connect(1, leader);
    super_auth(&mut c, 1);
    let obs = format!("server.{f}=h{f}:2888:3888:observer;h{f}:2181");
    let (h, _) = c.call(1, 1, &reconfig(Some(obs), None, -1));
    assert_eq!(h.err, 0);
    c.run_ms(3000);
    assert_eq!(c.nodes[&f].role(), ServerRole::Observer);
    c.connect(2, f);
    let (h, _) = c.call(2, 1, &create("/o", b"x", 0));
    assert_eq!(h.err, 0);
}
