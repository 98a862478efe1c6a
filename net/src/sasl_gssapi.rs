//! The server side of SASL GSSAPI (RFC 4752) for ZooKeeper's `sasl`
//! request (op 102), as ZooKeeper runs it with a Kerberos login.
//!
//! The exchange:
//! 1. the client's tokens go through `gss_accept_sec_context` until the
//!    context is established; each output token goes back as a challenge;
//! 2. once established, the server offers its security layers in a wrapped
//!    4-byte message: a bit mask (ZooKeeper asks for `auth` only, so just
//!    bit 1, "no security layer") and the largest message it takes (3 bytes,
//!    big-endian; 65536 as Java's server writes it). When the last
//!    `accept` produced a token, that token goes first and the client's
//!    next (empty) token is answered with the offer;
//! 3. the client answers with a wrapped message: its chosen layer, its
//!    size, and optionally an authorization id. A layer not offered fails
//!    the exchange. The exchange completes with a null token.
//!
//! The authenticated name is the client's principal as the Kerberos library
//! displays it (`alice@REALM`). The authorization id a client asks for is
//! not what it gets: ZooKeeper's callback authorizes every client and names
//! it from its principal; the core makes that name (see
//! `paddock_core::sasl::authorization_id`).
//!
//! Where this runs: in the connection task, not in the core. Accepting a
//! ticket reads the keytab and the replay cache (IO), so it cannot be part
//! of the sans-IO core. The connection task runs one step per `sasl`
//! request before it reads the next frame, and hands the outcome to the
//! core in the request's place (`Input::ClientSaslStep`); the core then
//! answers it in order with the connection's other replies and adds the
//! `sasl` id, exactly as for DIGEST-MD5.
//!
//! The mechanism is written against [`SecurityContext`] so its logic is
//! tested without a KDC; the real context is [`crate::gssapi::Context`].

use crate::client::NetEvent;
use crate::gssapi::{Accepted, Acceptor};
use paddock_core::sasl::ShellStep;
use paddock_core::ConnId;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::warn;

/// The bit of "no security layer" (SASL `auth`) in RFC 4752's mask.
pub const LAYER_NONE: u8 = 1;
/// The largest message the server says it takes (Java's default).
pub const MAX_RECV: u32 = 65536;
/// The longest client token taken (a ticket with a large PAC fits).
pub const TOKEN_BYTES_MAX: usize = 64 * 1024;

/// The GSSAPI calls the mechanism needs.
pub trait SecurityContext {
    fn accept(&mut self, token: &[u8]) -> Result<Accepted, String>;
    fn wrap(&mut self, msg: &[u8]) -> Result<Vec<u8>, String>;
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, String>;
}

impl SecurityContext for crate::gssapi::Context {
    /// Kerberos V5 establishes the acceptor's context from the client's
    /// first token (the AP-REQ). MIT's library answers some malformed
    /// tokens with "continue needed" (other mechanisms' token kinds); Java's
    /// Kerberos, ZooKeeper's, refuses them at once, and so does this.
    fn accept(&mut self, token: &[u8]) -> Result<Accepted, String> {
        match crate::gssapi::Context::accept(self, token)? {
            Accepted::Continue(_) => Err(
                "the token does not establish a Kerberos context (an AP-REQ does in one step)"
                    .into(),
            ),
            done => Ok(done),
        }
    }
    fn wrap(&mut self, msg: &[u8]) -> Result<Vec<u8>, String> {
        crate::gssapi::Context::wrap(self, msg)
    }
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, String> {
        crate::gssapi::Context::unwrap(self, token)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Accepting,
    /// Established; the last accept token was sent, an empty answer is due.
    Established {
        principal: String,
    },
    /// The layer offer was sent; the client's choice is due.
    Offered {
        principal: String,
    },
    Done,
}

/// One connection's GSSAPI exchange.
pub struct GssapiServer<C> {
    ctx: C,
    state: State,
}

impl<C: SecurityContext> GssapiServer<C> {
    pub fn new(ctx: C) -> Self {
        GssapiServer {
            ctx,
            state: State::Accepting,
        }
    }

    /// Whether the exchange is over (succeeded or failed).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the client's next token. A failure ends the exchange.
    pub fn step(&mut self, token: &[u8]) -> ShellStep {
        let state = std::mem::replace(&mut self.state, State::Done);
        match self.step_in(state, token) {
            Ok((next, out)) => {
                self.state = next;
                out
            }
            Err(why) => ShellStep::Failed(why),
        }
    }

    fn step_in(&mut self, state: State, token: &[u8]) -> Result<(State, ShellStep), String> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(format!(
                "GSSAPI token of {} bytes is longer than {TOKEN_BYTES_MAX}",
                token.len()
            ));
        }
        match state {
            State::Accepting => match self.ctx.accept(token)? {
                Accepted::Continue(t) => Ok((State::Accepting, ShellStep::Challenge(t))),
                Accepted::Established { token, principal } if token.is_empty() => {
                    let offer = self.offer()?;
                    Ok((State::Offered { principal }, ShellStep::Challenge(offer)))
                }
                Accepted::Established { token, principal } => Ok((
                    State::Established { principal },
                    ShellStep::Challenge(token),
                )),
            },
            State::Established { principal } => {
                if !token.is_empty() {
                    return Err(format!(
                        "expected an empty token after the context was established, got {} bytes",
                        token.len()
                    ));
                }
                let offer = self.offer()?;
                Ok((State::Offered { principal }, ShellStep::Challenge(offer)))
            }
            State::Offered { principal } => {
                let msg = self.ctx.unwrap(token)?;
                let chosen = parse_choice(&msg)?;
                if chosen != LAYER_NONE {
                    return Err(format!(
                        "the client chose security layer {chosen:#04x}; only {LAYER_NONE:#04x} (none, qop=auth) is offered"
                    ));
                }
                Ok((
                    State::Done,
                    ShellStep::Success {
                        token: None,
                        principal,
                    },
                ))
            }
            State::Done => Err("a token after the exchange ended".to_string()),
        }
    }

    fn offer(&mut self) -> Result<Vec<u8>, String> {
        self.ctx.wrap(&layer_offer())
    }
}

/// The server's offer: the layer mask and its largest message size.
pub fn layer_offer() -> [u8; 4] {
    let n = MAX_RECV.to_be_bytes();
    [LAYER_NONE, n[1], n[2], n[3]]
}

/// The client's chosen layer (one bit) from its unwrapped answer: 1 byte of
/// layer, 3 of size, then an optional authorization id in UTF-8.
pub fn parse_choice(msg: &[u8]) -> Result<u8, String> {
    if msg.len() < 4 {
        return Err(format!(
            "the client's security layer answer has {} bytes, fewer than 4",
            msg.len()
        ));
    }
    if std::str::from_utf8(&msg[4..]).is_err() {
        return Err("the client's authorization id is not UTF-8".to_string());
    }
    Ok(msg[0])
}

/// A connection's exchange with the real library.
pub type ConnGss = GssapiServer<crate::gssapi::Context>;

/// A client frame after the ConnectRequest on a GSSAPI listener: a `sasl`
/// request becomes its step's outcome; any other frame passes as it is.
pub async fn on_frame(
    acceptor: &Arc<Acceptor>,
    gss: &mut Option<ConnGss>,
    conn: ConnId,
    peer: SocketAddr,
    frame: Vec<u8>,
) -> NetEvent {
    let Some((xid, token)) = sasl_token(&frame) else {
        return NetEvent::Frame { conn, frame };
    };
    let server = gss
        .take()
        .unwrap_or_else(|| GssapiServer::new(crate::gssapi::Context::new(acceptor.clone())));
    // Accepting a ticket reads the keytab and the replay cache: off the
    // runtime's threads. The connection reads its next frame only after
    // this step, so the core sees the outcome in the request's place.
    let step = match tokio::task::spawn_blocking(move || {
        let mut server = server;
        let step = server.step(&token);
        (server, step)
    })
    .await
    {
        Ok((server, step)) => {
            *gss = Some(server);
            step
        }
        Err(e) => ShellStep::Failed(format!("the GSSAPI step did not finish: {e}")),
    };
    if let ShellStep::Failed(why) = &step {
        warn!("client {peer} failed SASL GSSAPI authentication: {why}");
    }
    NetEvent::SaslStep { conn, xid, step }
}

/// The xid and token of a `sasl` request frame (op 102), if it is one.
fn sasl_token(frame: &[u8]) -> Option<(i32, Vec<u8>)> {
    let xid = i32::from_be_bytes(frame.get(0..4)?.try_into().ok()?);
    let op = i32::from_be_bytes(frame.get(4..8)?.try_into().ok()?);
    if op != paddock_core::proto::op::SASL {
        return None;
    }
    match paddock_core::proto::decode_request(op, &frame[8..]) {
        Ok(paddock_core::proto::Request::Sasl { token }) => Some((xid, token)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context whose "wrap" prefixes `W` and whose accept needs two
    /// tokens (`a`, then `b`), answering the second with `reply`.
    struct Fake {
        accepts: usize,
        reply: Vec<u8>,
    }

    impl SecurityContext for Fake {
        fn accept(&mut self, token: &[u8]) -> Result<Accepted, String> {
            self.accepts += 1;
            match (self.accepts, token) {
                (1, b"a") => Ok(Accepted::Continue(b"c1".to_vec())),
                (2, b"b") => Ok(Accepted::Established {
                    token: self.reply.clone(),
                    principal: "alice@EXAMPLE.COM".into(),
                }),
                _ => Err("bad token".into()),
            }
        }
        fn wrap(&mut self, msg: &[u8]) -> Result<Vec<u8>, String> {
            Ok([b"W".as_slice(), msg].concat())
        }
        fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, String> {
            token
                .strip_prefix(b"W")
                .map(|m| m.to_vec())
                .ok_or_else(|| "integrity check failed".into())
        }
    }

    fn server(reply: &[u8]) -> GssapiServer<Fake> {
        GssapiServer::new(Fake {
            accepts: 0,
            reply: reply.to_vec(),
        })
    }

    fn wrapped_offer() -> Vec<u8> {
        [b"W".as_slice(), &[1, 1, 0, 0]].concat()
    }

    // Goal: with a final accept token, it is sent, the client's empty
    // token gets the wrapped offer (layer none, 65536), and a choice of
    // "none" completes with a null token and the principal.
    #[test]
    fn exchange_with_a_final_accept_token() {
        let mut s = server(b"aprep");
        assert_eq!(s.step(b"a"), ShellStep::Challenge(b"c1".to_vec()));
        assert_eq!(s.step(b"b"), ShellStep::Challenge(b"aprep".to_vec()));
        assert_eq!(s.step(b""), ShellStep::Challenge(wrapped_offer()));
        let answer = [b"W".as_slice(), &[1, 0, 0, 0], b"alice@EXAMPLE.COM"].concat();
        assert_eq!(
            s.step(&answer),
            ShellStep::Success {
                token: None,
                principal: "alice@EXAMPLE.COM".into()
            }
        );
        assert!(s.is_done());
        assert!(matches!(s.step(b""), ShellStep::Failed(_)));
    }

    // Goal: an established context without a token goes straight to the
    // offer.
    #[test]
    fn exchange_without_a_final_accept_token() {
        let mut s = server(b"");
        s.step(b"a");
        assert_eq!(s.step(b"b"), ShellStep::Challenge(wrapped_offer()));
    }

    // Goal: each way of getting the exchange wrong fails it, and it stays
    // failed.
    #[test]
    fn refusals() {
        let mut s = server(b"x");
        assert!(matches!(s.step(b"zz"), ShellStep::Failed(e) if e == "bad token"));
        assert!(matches!(s.step(b"a"), ShellStep::Failed(_)));

        let mut s = server(b"x");
        s.step(b"a");
        s.step(b"b");
        assert!(matches!(s.step(b"nonempty"), ShellStep::Failed(_)));

        for bad in [
            b"Xgarbage".to_vec(),                            // integrity fails
            [b"W".as_slice(), &[1, 0, 0]].concat(),          // short
            [b"W".as_slice(), &[4, 0, 1, 0]].concat(),       // privacy chosen
            [b"W".as_slice(), &[1, 0, 0, 0, 0xff]].concat(), // authzid not UTF-8
        ] {
            let mut s = server(b"");
            s.step(b"a");
            s.step(b"b");
            assert!(matches!(s.step(&bad), ShellStep::Failed(_)), "{bad:?}");
        }
        let mut s = server(b"");
        assert!(matches!(
            s.step(&vec![0u8; TOKEN_BYTES_MAX + 1]),
            ShellStep::Failed(_)
        ));
    }

    // Goal: only a well-formed `sasl` request is taken from the frame
    // stream; anything else passes to the core untouched.
    #[test]
    fn sasl_frames_are_recognised() {
        let mut f = 7i32.to_be_bytes().to_vec();
        f.extend(102i32.to_be_bytes());
        f.extend(3i32.to_be_bytes());
        f.extend(b"abc");
        assert_eq!(sasl_token(&f), Some((7, b"abc".to_vec())));
        let mut other = f.clone();
        other[7] = 4; // getData
        assert_eq!(sasl_token(&other), None);
        assert_eq!(sasl_token(&f[..5]), None);
        assert_eq!(sasl_token(&f[..10]), None, "a cut token");
    }
}
