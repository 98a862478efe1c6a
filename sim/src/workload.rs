//! Workloads shaped like ZooKeeper recipes. Each client runs one recipe
//! from its own random stream; replies steer it (the lock node it owns,
//! the children it last listed, the config version it last read), so
//! requests look like what Curator and kazoo send: ephemeral-sequential
//! locks, sequential queues, leader election with predecessor watches,
//! versioned config updates, multi, sync and persistent watches.
//!
//! Only OPEN_ACL_UNSAFE is used (the model does not check ACLs).

use crate::history::{History, Outcome};
use crate::rng::SimRng;
use crate::scenario::Recipe;
use paddock_core::proto::{
    create_mode, op, Acl, CreateRequest, MultiOp, OpResult, Request, Response,
};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct RecipeState {
    /// The recipe's root exists (created or NodeExists).
    rooted: bool,
    /// The ephemeral-sequential node this session owns.
    mine: Option<String>,
    /// The history entry whose reply last listed the root's children
    /// (read from there: copying each listing cost more than the rest of
    /// a step).
    children_from: Option<usize>,
    /// The /config version last read.
    config_version: Option<i32>,
    /// The configuration version a successful reconfig last answered.
    member_version: Option<i64>,
    persistent_watch: bool,
    counter: u64,
}

/// A queue producer turns consumer once its last listing holds this many
/// items: producers and consumers keep pace in a queue that works, and an
/// unbounded one would make every listing, snapshot and model check grow
/// with the run (quadratic in its length).
const QUEUE_DEPTH_MAX: usize = 48;

fn root_of(r: Recipe) -> &'static str {
    match r {
        Recipe::Lock => "/lock",
        Recipe::Queue => "/queue",
        Recipe::Election => "/election",
        Recipe::Config => "/config",
        Recipe::Reconfig => "/reconfig",
    }
}

/// `root/name`. The workload builds a request per step, so its strings
/// avoid the formatter.
fn under(root: &str, name: &str) -> String {
    [root, "/", name].concat()
}

/// The data a client writes: `c{client}-{counter}`, unique per write.
fn client_data(client: usize, counter: u64) -> Vec<u8> {
    fn decimal(out: &mut Vec<u8>, mut n: u64) {
        let start = out.len();
        loop {
            out.push(b'0' + (n % 10) as u8);
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out[start..].reverse();
    }
    let mut d = Vec::with_capacity(24);
    d.push(b'c');
    decimal(&mut d, client as u64);
    d.push(b'-');
    decimal(&mut d, counter);
    d
}

fn create(path: String, data: Vec<u8>, flags: i32, opcode: i32) -> Request {
    Request::Create {
        opcode,
        req: CreateRequest {
            path,
            data,
            acl: Acl::open_unsafe(),
            flags,
            ttl: None,
        },
    }
}

impl RecipeState {
    /// The children the last listing returned (none before one).
    fn children<'h>(&self, hist: &'h History) -> &'h [Arc<str>] {
        let listed = self.children_from.map(|i| &hist.ops[i].outcome);
        match listed {
            Some(Outcome::Reply {
                body: Some(Response::Children(c) | Response::Children2(c, _)),
                ..
            }) => c,
            _ => &[],
        }
    }

    /// The next request. `servers` is how many servers the run has
    /// (reconfigs name ids 1..=servers; 0: no more membership changes).
    pub fn next(
        &mut self,
        recipe: Recipe,
        client: usize,
        servers: u64,
        rng: &mut SimRng,
        hist: &History,
    ) -> Request {
        let root = root_of(recipe);
        let children = self.children(hist);
        self.counter += 1;
        let data = client_data(client, self.counter);
        if !self.rooted {
            return create(root.into(), Vec::new(), create_mode::PERSISTENT, op::CREATE);
        }
        let roll = rng.range(0, 100);
        let child = |rng: &mut SimRng| -> Option<String> {
            (!children.is_empty()).then(|| under(root, &children[rng.index(children.len())]))
        };
        match recipe {
            Recipe::Lock => match (&self.mine, roll) {
                (None, 0..=59) => create(
                    under(root, "lock-"),
                    data,
                    create_mode::EPHEMERAL_SEQUENTIAL,
                    op::CREATE2,
                ),
                (None, _) => Request::Multi(vec![
                    MultiOp::Check {
                        path: root.into(),
                        version: -1,
                    },
                    MultiOp::Create {
                        opcode: op::CREATE,
                        req: CreateRequest {
                            path: under(root, "lock-"),
                            data,
                            acl: Acl::open_unsafe(),
                            flags: create_mode::EPHEMERAL_SEQUENTIAL,
                            ttl: None,
                        },
                    },
                ]),
                (Some(_), 0..=39) => Request::GetChildren {
                    path: root.into(),
                    watch: true,
                },
                (Some(m), 40..=59) => Request::Exists {
                    path: m.clone(),
                    watch: true,
                },
                (Some(m), _) => Request::Delete {
                    path: m.clone(),
                    version: -1,
                },
            },
            Recipe::Queue => match roll {
                0..=39 | 90.. if children.len() >= QUEUE_DEPTH_MAX => {
                    let head = children.iter().min().expect("a full queue");
                    Request::Delete {
                        path: under(root, head),
                        version: 0,
                    }
                }
                0..=39 => create(
                    under(root, "item-"),
                    data,
                    create_mode::PERSISTENT_SEQUENTIAL,
                    op::CREATE,
                ),
                40..=59 => Request::GetChildren2 {
                    path: root.into(),
                    watch: rng.chance(0.5),
                },
                60..=74 => match child(rng) {
                    Some(p) => Request::GetData {
                        path: p,
                        watch: false,
                    },
                    None => Request::Sync { path: root.into() },
                },
                75..=89 => match children.iter().min() {
                    Some(c) => Request::Delete {
                        path: under(root, c),
                        version: 0,
                    },
                    None => Request::Exists {
                        path: under(root, "item-0000000000"),
                        watch: true,
                    },
                },
                _ => Request::Multi(vec![
                    MultiOp::Create {
                        opcode: op::CREATE2,
                        req: CreateRequest {
                            path: under(root, "item-"),
                            data: data.clone(),
                            acl: Acl::open_unsafe(),
                            flags: create_mode::PERSISTENT_SEQUENTIAL,
                            ttl: None,
                        },
                    },
                    MultiOp::Create {
                        opcode: op::CREATE,
                        req: CreateRequest {
                            path: under(root, "item-"),
                            data,
                            acl: Acl::open_unsafe(),
                            flags: create_mode::PERSISTENT_SEQUENTIAL,
                            ttl: None,
                        },
                    },
                ]),
            },
            Recipe::Election => match (&self.mine, roll) {
                (None, 0..=49) => create(
                    under(root, "c-"),
                    data,
                    create_mode::EPHEMERAL_SEQUENTIAL,
                    op::CREATE,
                ),
                (_, 0..=69) => Request::GetChildren {
                    path: root.into(),
                    watch: true,
                },
                (_, 70..=89) => match child(rng) {
                    Some(p) => Request::Exists {
                        path: p,
                        watch: true,
                    },
                    None => Request::Sync { path: root.into() },
                },
                (Some(m), _) => Request::SetData {
                    path: m.clone(),
                    data,
                    version: -1,
                },
                (None, _) => Request::Sync { path: root.into() },
            },
            Recipe::Reconfig if (25..60).contains(&roll) => Request::SetData {
                path: root.into(),
                data,
                version: -1,
            },
            Recipe::Reconfig => self.reconfig(roll, servers, rng),
            Recipe::Config => match roll {
                0..=29 => Request::GetData {
                    path: root.into(),
                    watch: true,
                },
                30..=49 => Request::SetData {
                    path: root.into(),
                    data,
                    version: self.config_version.unwrap_or(-1),
                },
                50..=59 => Request::Multi(vec![
                    MultiOp::Check {
                        path: root.into(),
                        version: self.config_version.unwrap_or(0),
                    },
                    MultiOp::SetData {
                        path: root.into(),
                        data,
                        version: -1,
                    },
                ]),
                60..=69 if !self.persistent_watch => Request::AddWatch {
                    path: root.into(),
                    mode: (client % 2) as i32,
                },
                60..=74 => Request::Sync { path: root.into() },
                75..=87 => create(
                    under(root, &format!("k{}", rng.range(0, 8))),
                    data,
                    create_mode::PERSISTENT,
                    op::CREATE2,
                ),
                _ => Request::Delete {
                    path: under(root, &format!("k{}", rng.range(0, 8))),
                    version: -1,
                },
            },
        }
    }

    /// One step of the reconfiguring client (besides its plain writes): a
    /// read, or one time in four a membership change — add (as participant or observer), remove,
    /// swap, or a whole new list — from the last answered version or -1.
    fn reconfig(&mut self, roll: u64, servers: u64, rng: &mut SimRng) -> Request {
        if roll >= 25 || servers == 0 {
            return Request::Exists {
                path: "/".into(),
                watch: false,
            };
        }
        let pick = |rng: &mut SimRng| rng.range(1, servers + 1);
        let spec = |id: u64, observer: bool| {
            let role = if observer { "observer" } else { "participant" };
            format!("server.{id}={}:{role};{}", member_addr(id), client_addr(id))
        };
        let (mut joining, mut leaving, mut new_members) = (None, None, None);
        match rng.range(0, 100) {
            0..=29 => joining = Some(spec(pick(rng), rng.chance(0.2))),
            30..=54 => leaving = Some(pick(rng).to_string()),
            55..=79 => {
                joining = Some(spec(pick(rng), rng.chance(0.2)));
                leaving = Some(pick(rng).to_string());
            }
            _ => {
                let mut list = Vec::new();
                for id in 1..=servers {
                    if rng.chance(0.6) {
                        list.push(spec(id, rng.chance(0.15)));
                    }
                }
                new_members = Some(list.join(","));
            }
        }
        let cur_config_id = match self.member_version {
            Some(v) if rng.chance(0.5) => v,
            _ => -1,
        };
        Request::Reconfigure(paddock_core::proto::ReconfigRequest {
            joining_servers: joining,
            leaving_servers: leaving,
            new_members,
            cur_config_id,
        })
    }

    /// Steers the recipe by what a reply said.
    /// Steers the recipe by a reply; `op` is the request's history entry,
    /// where the reply is kept.
    pub fn on_reply(&mut self, op: usize, req: &Request, err: i32, body: Option<&Response>) {
        const NODE_EXISTS: i32 = -110;
        // A read-only server refuses the root's create: the recipe goes on
        // (its reads are served; its writes are refused the same way).
        const NOT_READ_ONLY: i32 = -119;
        match (req, body) {
            (Request::Create { req: c, .. }, _)
                if !c.path[1..].contains('/')
                    && (err == 0 || err == NODE_EXISTS || err == NOT_READ_ONLY) =>
            {
                self.rooted = true;
            }
            (
                Request::Create { req: c, .. },
                Some(Response::Path(p) | Response::PathStat(p, _)),
            ) if c.flags == create_mode::EPHEMERAL_SEQUENTIAL => {
                self.mine = Some(p.clone());
            }
            (Request::Multi(_), Some(Response::Multi(rs))) => {
                for r in rs {
                    if let OpResult::Create(p) | OpResult::Create2(p, _) = r {
                        if p.starts_with("/lock/") {
                            self.mine = Some(p.clone());
                        }
                    }
                }
            }
            (Request::Delete { path, .. }, _) if self.mine.as_deref() == Some(path) => {
                self.mine = None;
            }
            (
                Request::GetChildren { .. } | Request::GetChildren2 { .. },
                Some(Response::Children(_) | Response::Children2(..)),
            ) => {
                self.children_from = Some(op);
            }
            (Request::GetData { path, .. }, Some(Response::Data(_, s))) if path == "/config" => {
                self.config_version = Some(s.version);
            }
            (Request::SetData { path, .. }, Some(Response::Stat(s))) if path == "/config" => {
                self.config_version = Some(s.version);
            }
            (Request::AddWatch { .. }, _) if err == 0 => self.persistent_watch = true,
            (Request::Reconfigure(_), Some(Response::Data(d, _))) => {
                let text = String::from_utf8_lossy(d);
                self.member_version = text
                    .lines()
                    .find_map(|l| l.strip_prefix("version="))
                    .and_then(|v| i64::from_str_radix(v, 16).ok());
            }
            _ => {}
        }
    }
}

/// Server `id`'s quorum and election addresses in the simulator's member
/// lists (names only: the simulator's links are by id).
pub fn member_addr(id: u64) -> String {
    format!("sim{id}:2888:3888")
}

/// Server `id`'s client address in the simulator's member lists.
pub fn client_addr(id: u64) -> String {
    format!("sim{id}:2181")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_data_is_the_formatted_pair() {
        for (c, n) in [(0, 0), (3, 9), (12, 10), (7, 1_234_567_890), (5, u64::MAX)] {
            assert_eq!(client_data(c, n), format!("c{c}-{n}").into_bytes());
        }
        assert_eq!(under("/queue", "item-"), "/queue/item-");
    }
}
