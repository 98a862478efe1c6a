//! Client connections: frames between simulated clients and servers with
//! per-direction FIFO latency, connects, think time, drops.

use super::{ConnState, Ev, World};
use crate::client::Phase;
use crate::profile;
use crate::scenario::FaultKind;
use paddock_core::proto::ConnectResponse;
use paddock_core::{ConnId, Input, SessionId};

impl World {
    pub(super) fn client_latency(&mut self) -> u64 {
        let l = self.scn.level(FaultKind::ClientLatency) as u64;
        if l > 0 {
            profile::CLIENT_NET_SLOW_PER_LEVEL
                .at_level(l)
                .draw(&mut self.rng_client_net)
        } else {
            profile::CLIENT_NET.draw(&mut self.rng_client_net)
        }
    }

    pub(super) fn send_to_client(&mut self, conn: u64, frame: Vec<u8>) {
        let lat = self.client_latency();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let t = (self.now + lat).max(c.last_to_client);
        c.last_to_client = t;
        self.at(t, Ev::ToClient { conn, frame });
    }

    pub(super) fn send_to_server(&mut self, conn: u64, frame: Vec<u8>) {
        let lat = self.client_latency();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let t = (self.now + lat).max(c.last_to_server);
        c.last_to_server = t;
        self.at(t, Ev::ToServer { conn, frame });
    }

    /// Judges a server's first frame on a connection, its ConnectResponse:
    /// a session it confirms must be live at the current leader.
    pub(super) fn on_server_frame(&mut self, s: u64, conn: u64, frame: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if std::mem::replace(&mut c.answered, true) || self.scn.voters <= 1 {
            return;
        }
        let Ok(resp) = ConnectResponse::decode(frame) else {
            return;
        };
        if resp.session_id == 0 || resp.timeout_ms <= 0 {
            return;
        }
        if resp.read_only == Some(true) {
            // A read-only server's local session: no leader knows it.
            self.hist.read_only_conns.insert(conn);
            return;
        }
        let servers = self
            .servers
            .iter()
            .filter_map(|(id, v)| v.node.as_ref().map(|n| (*id, n)));
        if let Some(why) = super::live::confirmed_session(
            s,
            SessionId(resp.session_id),
            self.checker.leaders(),
            servers,
        ) {
            self.fail_safety(why);
        }
    }

    pub(super) fn on_to_client(&mut self, conn: u64, frame: Vec<u8>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let client = c.client;
        if !c.open_client || self.clients[client].conn != Some(conn) {
            return;
        }
        let was = self.clients[client].phase;
        match self.clients[client].on_frame(self.now, &frame, &mut self.hist) {
            Ok(replies) => {
                for f in replies {
                    self.send_to_server(conn, f);
                }
            }
            Err(e) => {
                self.fail_safety(format!("client {client} on conn {conn}: {e}"));
                return;
            }
        }
        if was == Phase::Handshake {
            let (sid, phase) = (
                self.clients[client].session_id(),
                self.clients[client].phase,
            );
            self.log(format!(
                "client {client} conn {conn}: session {sid:#x} ({phase:?})"
            ));
            if phase == Phase::Handshake {
                // Expired: hang up; the next connect opens a new session.
                self.drop_client_conn(client);
            } else {
                self.at(self.now, Ev::ClientWake { c: client });
            }
        }
    }

    pub(super) fn on_client_connect(&mut self, c: usize) {
        if self.clients[c].conn.is_some() {
            return;
        }
        let s = match self.clients[c].pinned {
            Some(s) => s,
            None => {
                let servers = self.scn.servers();
                servers[self.clients[c].rng.index(servers.len())]
            }
        };
        if !self.alive(s) || self.servers[&s].paused_until.is_some() {
            let t = self.now + profile::CLIENT_RETRY_UNAVAILABLE.draw(&mut self.clients[c].rng);
            self.at(t, Ev::ClientConnect { c });
            return;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            conn,
            ConnState {
                client: c,
                server: s,
                server_inc: self.servers[&s].inc,
                open_server: true,
                open_client: true,
                answered: false,
                last_to_client: 0,
                last_to_server: 0,
            },
        );
        self.log(format!("client {c} connects to server {s} as conn {conn}"));
        self.input(
            s,
            Input::ClientConnected {
                conn: ConnId(conn),
                addr: format!("10.0.0.{}", c + 1),
            },
        );
        let hello = self.clients[c].on_connected(conn, self.now);
        self.send_to_server(conn, hello);
    }

    pub(super) fn on_client_wake(&mut self, c: usize) {
        let cl = &mut self.clients[c];
        if cl.conn.is_none() || cl.phase != Phase::Connected {
            return;
        }
        let conn = cl.conn.expect("connected");
        if cl.read_timed_out(self.now) {
            self.log(format!(
                "client {c} conn {conn}: nothing heard for 2/3 of the session timeout; reconnecting"
            ));
            self.drop_client_conn(c);
            return;
        }
        let mut frames = Vec::new();
        if !self.quiet {
            while let Some(f) = cl.next_request(self.now, &mut self.hist) {
                frames.push(f);
                if !cl.rng.chance(profile::CLIENT_BURST_MORE) {
                    break;
                }
            }
        }
        if frames.is_empty() {
            if let Some(p) = cl.ping(self.now) {
                frames.push(p);
            }
        }
        let think = profile::CLIENT_THINK.draw(&mut cl.rng);
        for f in frames {
            self.send_to_server(conn, f);
        }
        self.at(self.now + think, Ev::ClientWake { c });
    }

    pub(super) fn drop_client_conn(&mut self, client: usize) {
        let Some(conn) = self.clients[client].conn else {
            return;
        };
        self.clients[client].on_closed(&mut self.hist);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.open_client = false;
            let lat = profile::CLIENT_HANGUP_SEEN.draw(&mut self.rng_client_net);
            self.at(self.now + lat, Ev::ServerSawClose { conn });
        }
        let t = self.now + profile::CLIENT_RECONNECT_AFTER_DROP.draw(&mut self.clients[client].rng);
        self.at(t, Ev::ClientConnect { c: client });
    }
}
