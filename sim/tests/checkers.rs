//! Each checker can fail: a real run's history, doctored in one way, must
//! be flagged by the checker that owns that rule.

use paddock_core::proto::Request;
use paddock_core::ServerRole;
use paddock_sim::check;
use paddock_sim::history::{Outcome, Received};
use paddock_sim::scenario::{Overrides, Scenario};
use paddock_sim::world::World;
use std::collections::BTreeMap;

/// A calm standalone run, driven through its fault phase.
fn recorded() -> World {
    let o = Overrides {
        servers: Some(1),
        only_faults: Some(Default::default()),
        ..Overrides::default()
    };
    let mut w = World::new(Scenario::draw(5, &o), false);
    w.run_until(w.scn.safety_ms * paddock_sim::world::MS);
    w
}

fn history_of(w: &World) -> Vec<paddock_core::txn::Txn> {
    let logs: BTreeMap<u64, _> = w
        .servers
        .iter()
        .map(|(i, s)| (*i, s.disk.logged_txns()))
        .collect();
    check::committed_history(&logs).expect("one server agrees with itself")
}

#[test]
fn the_undoctored_history_passes() {
    let w = recorded();
    let (_, v) = check::replay(&history_of(&w), &w.hist);
    assert!(v.is_empty(), "{v:?}");
    assert!(check::session_order(&w.hist).is_empty());
}

#[test]
fn a_wrong_write_reply_is_caught() {
    let mut w = recorded();
    let i = w
        .hist
        .ops
        .iter()
        .position(|o| o.request.is_write() && matches!(o.outcome, Outcome::Reply { err: 0, .. }))
        .expect("an acked write");
    if let Outcome::Reply { err, .. } = &mut w.hist.ops[i].outcome {
        *err = -110;
    }
    let (_, v) = check::replay(&history_of(&w), &w.hist);
    assert!(v.iter().any(|x| x.contains("the model says")), "{v:?}");
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    let w = recorded();
    let mut txns = history_of(&w);
    txns.pop();
    let (_, v) = check::replay(&txns, &w.hist);
    assert!(
        v.iter()
            .any(|x| x.contains("acknowledged write lost") || x.contains("beyond the committed")),
        "{v:?}"
    );
}

#[test]
fn a_stale_read_is_caught() {
    let mut w = recorded();
    let i = w
        .hist
        .ops
        .iter()
        .position(|o| {
            matches!(
                o.request,
                Request::GetData { .. }
                    | Request::GetChildren { .. }
                    | Request::GetChildren2 { .. }
            ) && matches!(o.outcome, Outcome::Reply { err: 0, .. })
        })
        .expect("a read");
    if let Outcome::Reply { zxid, .. } = &mut w.hist.ops[i].outcome {
        *zxid = 1; // claims an older state than the one it showed
    }
    let (_, v) = check::replay(&history_of(&w), &w.hist);
    assert!(
        v.iter().any(|x| x.contains("the state at that zxid")),
        "{v:?}"
    );
}

#[test]
fn zxids_going_backwards_in_a_session_are_caught() {
    let mut w = recorded();
    let (_, frames) = w
        .hist
        .conns
        .values_mut()
        .find(|(_, f)| f.len() > 3)
        .expect("a busy connection");
    let at = frames.last().unwrap().0 + 1;
    frames.push((
        at,
        Received::Reply {
            xid: 999,
            zxid: 1,
            err: 0,
        },
    ));
    let v = check::session_order(&w.hist);
    assert!(v.iter().any(|x| x.contains("answered from zxid")), "{v:?}");
}

#[test]
fn a_watch_event_after_its_data_is_caught() {
    let mut w = recorded();
    let (_, frames) = w
        .hist
        .conns
        .values_mut()
        .find(|(_, f)| {
            f.iter()
                .any(|r| matches!(r.1, Received::Reply { zxid, .. } if zxid > 2))
        })
        .expect("a connection with replies");
    let at = frames.last().unwrap().0 + 1;
    frames.push((
        at,
        Received::Event {
            zxid: 2,
            event: 3,
            path: "/config".into(),
        },
    ));
    let v = check::session_order(&w.hist);
    assert!(
        v.iter().any(|x| x.contains("arrived after a reply")),
        "{v:?}"
    );
}

#[test]
fn an_ephemeral_outliving_its_session_is_caught() {
    let w = recorded();
    let (mut model, _) = check::replay(&history_of(&w), &w.hist);
    let s = *model.sessions.keys().next().expect("a session");
    model.sessions.remove(&s);
    let mut n = model.nodes["/"].clone();
    n.owner = s;
    n.children.clear();
    model.nodes.insert("/ghost".into(), n);
    let v = check::ephemerals(&model, &w.hist, &[]);
    assert!(
        v.iter().any(|x| x.contains("ephemeral of dead session")),
        "{v:?}"
    );
}

#[test]
fn servers_disagreeing_on_a_zxid_are_caught() {
    let w = recorded();
    let mut a = history_of(&w);
    let b = a.clone();
    a.last_mut().expect("txns").cxid += 1;
    let logs: BTreeMap<u64, _> = [(1, a), (2, b)].into_iter().collect();
    assert!(check::committed_history(&logs).is_err());
}

#[test]
fn a_second_leader_in_an_epoch_is_caught() {
    // The leaders a 3-voter run established, replayed with one doctored in.
    let o = Overrides {
        servers: Some(3),
        only_faults: Some(Default::default()),
        ..Overrides::default()
    };
    let mut w = World::new(Scenario::draw(5, &o), false);
    w.run_until(w.scn.safety_ms * paddock_sim::world::MS);
    let (epoch, leader) = w
        .servers
        .iter()
        .filter_map(|(id, s)| s.node.as_ref().map(|n| (id, n)))
        .find(|(_, n)| n.role() == ServerRole::Leader)
        .map(|(id, n)| (n.epochs().1, *id))
        .expect("a calm ensemble has a leader");
    let mut leaders = BTreeMap::new();
    assert_eq!(
        check::one_leader_per_epoch(&mut leaders, epoch, leader),
        None
    );
    assert_eq!(
        check::one_leader_per_epoch(&mut leaders, epoch, leader),
        None
    );
    assert_eq!(
        check::one_leader_per_epoch(&mut leaders, epoch + 1, 9),
        None
    );
    let other = if leader == 1 { 2 } else { 1 };
    let v = check::one_leader_per_epoch(&mut leaders, epoch, other);
    assert!(
        v.as_deref().is_some_and(|v| v.contains("two leaders")),
        "{v:?}"
    );
}
