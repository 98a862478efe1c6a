//! Client authentication that is not `addauth`: the `sasl` request
//! (op 102, DIGEST-MD5 in [`crate::sasl`]) and enforced authentication.
//!
//! Mirrors ZooKeeper 3.8's `ZooKeeperServer.processSasl` and
//! `AuthenticationHelper`:
//! - every reply to a `sasl` request carries zxid 0 and a SetSASLResponse;
//! - success adds `sasl:<authorization id>` (and `super` for
//!   `zookeeper.superUser`) to the connection's ids;
//! - failure answers AuthFailed (SessionClosedRequireSaslAuth when SASL is
//!   enforced) with a null token and closes the connection;
//! - without a SASL login configured, ZooKeeper's server has no SASL
//!   server and answers Ok with a null token: so does Paddock;
//! - with enforcement on, any request but `auth` and `sasl` from a
//!   connection holding no id of an enforced scheme is answered
//!   SessionClosedRequireSaslAuth (zxid 0) and the connection closed (the
//!   session is left to expire).

use super::*;
use crate::proto::{ErrorCode, Response};
use crate::sasl::{DigestServer, Step};

impl Node {
    pub(super) fn on_sasl(&mut self, conn: ConnId, xid: i32, token: &[u8]) {
        let Some(cfg) = self.config.sasl.clone() else {
            let f = reply_frame(xid, Zxid::ZERO, ErrorCode::Ok, &Response::Sasl(None));
            self.push_ready(conn, f, None);
            return;
        };
        let mut nonce = [0u8; 30];
        self.rng.fill(&mut nonce[..]);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let server = c.sasl.get_or_insert(DigestServer::Start);
        match server.step(token, &cfg, nonce) {
            Ok(Step::Challenge(t)) => {
                let f = reply_frame(xid, Zxid::ZERO, ErrorCode::Ok, &Response::Sasl(Some(t)));
                self.push_ready(conn, f, None);
            }
            Ok(Step::Success {
                token,
                authorization_id,
            }) => {
                if cfg.super_user.as_deref() == Some(authorization_id.as_str()) {
                    c.auth.push(Id::new("super", ""));
                }
                let id = Id::new("sasl", &authorization_id);
                if !c.auth.contains(&id) {
                    c.auth.push(id);
                }
                debug!(
                    "connection {} authenticated by SASL as {authorization_id}",
                    conn.0
                );
                let f = reply_frame(xid, Zxid::ZERO, ErrorCode::Ok, &Response::Sasl(Some(token)));
                self.push_ready(conn, f, None);
            }
            Err(e) => {
                let code = if self.config.enforce_auth_schemes.iter().any(|s| s == "sasl") {
                    ErrorCode::SessionClosedRequireSaslAuth
                } else {
                    ErrorCode::AuthFailed
                };
                let f = reply_frame(xid, Zxid::ZERO, code, &Response::Sasl(None));
                self.push_ready(conn, f, Some(format!("SASL authentication failed: {e}")));
            }
        }
    }

    /// Whether a request (not `auth`, not `sasl`) may proceed under
    /// enforced authentication; when not, it has been refused and the
    /// connection is closing.
    pub(super) fn auth_enforced(&mut self, conn: ConnId, xid: i32) -> bool {
        if self.config.enforce_auth_schemes.is_empty() {
            return true;
        }
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let schemes = &self.config.enforce_auth_schemes;
        if c.auth.iter().any(|id| schemes.contains(&id.scheme)) {
            return true;
        }
        let held: Vec<&str> = c.auth.iter().map(|id| id.scheme.as_str()).collect();
        let why = format!(
            "authentication required: the connection's schemes {held:?} include none of {schemes:?}"
        );
        let f = reply_frame(
            xid,
            Zxid::ZERO,
            ErrorCode::SessionClosedRequireSaslAuth,
            &Response::Empty,
        );
        self.push_ready(conn, f, Some(why));
        false
    }
}
