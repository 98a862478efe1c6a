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
use crate::sasl::{ShellStep, Step};

impl Node {
    pub(super) fn on_sasl(&mut self, conn: ConnId, xid: i32, token: &[u8]) {
        let Some(cfg) = self.config.sasl.clone() else {
            let f = reply_frame(xid, Zxid::ZERO, ErrorCode::Ok, &Response::Sasl(None));
            self.push_ready(conn, f, None);
            return;
        };
        let mut nonce = [0u8; 30];
        self.rng.fill(&mut nonce[..]);
        let Some(server) = self.clients.sasl_mut(conn) else {
            return;
        };
        let step = match server.step(token, &cfg, nonce) {
            Ok(Step::Challenge(t)) => ShellStep::Challenge(t),
            Ok(Step::Success {
                token,
                authorization_id,
            }) => {
                self.sasl_authenticated(conn, xid, Some(token), authorization_id);
                return;
            }
            Err(e) => ShellStep::Failed(e.to_string()),
        };
        self.on_sasl_step(conn, xid, step);
    }

    /// Answers one step of a connection's SASL exchange (from the DIGEST-MD5
    /// server here, or from the shell's GSSAPI).
    pub(super) fn on_sasl_step(&mut self, conn: ConnId, xid: i32, step: ShellStep) {
        let Some(c) = self.clients.get(conn) else {
            return;
        };
        if c.closed {
            return;
        }
        if c.session.is_none() || c.revalidating {
            // Only a client that does not wait for its session can get
            // here; answering now would pass its earlier requests.
            self.close(
                conn,
                "a SASL token before the session was established".into(),
            );
            return;
        }
        match step {
            ShellStep::Challenge(t) => {
                let f = reply_frame(xid, Zxid::ZERO, ErrorCode::Ok, &Response::Sasl(Some(t)));
                self.push_ready(conn, f, None);
            }
            ShellStep::Success { token, principal } => {
                let cfg = self.config.sasl.clone().unwrap_or_default();
                let id = crate::sasl::authorization_id(&principal, &cfg);
                self.sasl_authenticated(conn, xid, token, id);
            }
            ShellStep::Failed(e) => {
                let enforced = self.config.enforce_auth_schemes.iter().any(|s| s == "sasl");
                let allow = self
                    .config
                    .sasl
                    .as_ref()
                    .is_some_and(|c| c.allow_failed_clients);
                if allow && !enforced {
                    // zookeeper.allowSaslFailedClients: the connection stays,
                    // without a sasl id, and the answer is Ok with no token.
                    warn!(
                        "connection {}: SASL authentication failed ({e}); kept, as allowSaslFailedClients asks",
                        conn.0
                    );
                    let f = reply_frame(xid, Zxid::ZERO, ErrorCode::Ok, &Response::Sasl(None));
                    self.push_ready(conn, f, None);
                    return;
                }
                let code = if enforced {
                    ErrorCode::SessionClosedRequireSaslAuth
                } else {
                    ErrorCode::AuthFailed
                };
                let f = reply_frame(xid, Zxid::ZERO, code, &Response::Sasl(None));
                self.push_ready(conn, f, Some(format!("SASL authentication failed: {e}")));
            }
        }
    }

    /// A completed exchange: the `sasl` id (and `super` for the super
    /// user) joins the connection's ids, and the last token is answered.
    fn sasl_authenticated(
        &mut self,
        conn: ConnId,
        xid: i32,
        token: Option<Vec<u8>>,
        authorization_id: String,
    ) {
        let super_user = self.config.sasl.as_ref().and_then(|c| c.super_user.clone());
        let Some(c) = self.clients.ids_mut(conn) else {
            return;
        };
        if super_user.as_deref() == Some(authorization_id.as_str()) {
            c.push(Id::new("super", ""));
        }
        let id = Id::new("sasl", &authorization_id);
        if !c.contains(&id) {
            c.push(id);
        }
        debug!(
            "connection {} authenticated by SASL as {authorization_id}",
            conn.0
        );
        let f = reply_frame(xid, Zxid::ZERO, ErrorCode::Ok, &Response::Sasl(token));
        self.push_ready(conn, f, None);
    }

    /// Whether a request (not `auth`, not `sasl`) may proceed under
    /// enforced authentication; when not, it has been refused and the
    /// connection is closing.
    pub(super) fn auth_enforced(&mut self, conn: ConnId, xid: i32) -> bool {
        if self.config.enforce_auth_schemes.is_empty() {
            return true;
        }
        let Some(c) = self.clients.get(conn) else {
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
