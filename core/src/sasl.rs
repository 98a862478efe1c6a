//! SASL for clients: the server side of DIGEST-MD5 (RFC 2831) as
//! ZooKeeper runs it for its `sasl` request (op 102).
//!
//! ZooKeeper's server asks the JDK's DIGEST-MD5 server with protocol
//! `zookeeper` and server name `zk-sasl-md5`; clients (the Java client,
//! kazoo through pure-sasl) therefore use the realm `zk-sasl-md5` and the
//! digest-uri `zookeeper/zk-sasl-md5`. The exchange is two steps: an empty
//! token answered with a challenge (realm, nonce, charset,
//! `algorithm=md5-sess`; no qop directive, which means `auth`, as the JDK
//! writes it for ZooKeeper), then the client's digest-response answered with
//! `rspauth=...`. Only quality of protection `auth` is offered: ZooKeeper
//! does not wrap the session's bytes in SASL integrity or privacy.
//!
//! The authorization id a successful client gets (`sasl:<id>`) is made
//! from its user name as ZooKeeper's `SaslServerCallbackHandler` makes it
//! from a Kerberos-style name `service[/host][@REALM]`: the host kept
//! unless `kerberos.removeHostFromPrincipal`, the realm kept unless
//! `kerberos.removeRealmFromPrincipal`. (ZooKeeper also maps the service
//! part through Kerberos `auth_to_local` rules; DIGEST-MD5 user names are
//! plain names, which the default rule keeps as they are.)
//!
//! Why hand-written: no maintained Rust crate offers a DIGEST-MD5 server
//! (rsasl 2 implements PLAIN, LOGIN, SCRAM, GSSAPI, OAUTHBEARER and
//! EXTERNAL only); the hashing is the `md-5` crate's. The token decoder is
//! property-tested against arbitrary bytes (no panic, bounded work).
//!
//! Deterministic: the nonce comes from the caller (the core's seeded
//! generator).

use base64::Engine;
use md5::{Digest, Md5};
use std::collections::BTreeMap;

/// ZooKeeper's fixed DIGEST-MD5 server name, which is also the realm.
pub const DIGEST_REALM: &str = "zk-sasl-md5";
/// The digest-uri a ZooKeeper client sends.
pub const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";
/// Where a DIGEST-MD5 exchange happens: ZooKeeper's server name (also
/// the realm) and the digest-uri its clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Realm {
    pub realm: &'static str,
    pub uri: &'static str,
}

/// Clients of the `sasl` request.
pub const CLIENT_REALM: Realm = Realm {
    realm: DIGEST_REALM,
    uri: DIGEST_URI,
};

/// Servers of an ensemble (ZooKeeper's quorum SASL: protocol
/// `zookeeper-quorum`, server name `zk-quorum-sasl-md5`).
pub const QUORUM_REALM: Realm = Realm {
    realm: "zk-quorum-sasl-md5",
    uri: "zookeeper-quorum/zk-quorum-sasl-md5",
};

/// The longest token taken (a digest-response is a few hundred bytes).
pub const TOKEN_BYTES_MAX: usize = 8192;
/// Directives in one token at most.
pub const DIRECTIVES_MAX: usize = 32;

/// The server side of client SASL: who may log in and how ids are named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// `user_<name>="<password>"` of the JAAS `Server` section.
    pub users: BTreeMap<String, String>,
    /// `kerberos.removeHostFromPrincipal`.
    pub remove_host_from_principal: bool,
    /// `kerberos.removeRealmFromPrincipal`.
    pub remove_realm_from_principal: bool,
    /// `zookeeper.superUser`: the authorization id that is the super user.
    pub super_user: Option<String>,
    /// `zookeeper.allowSaslFailedClients`: a client whose SASL exchange
    /// fails keeps its connection (without a `sasl` id), unless SASL is
    /// enforced.
    pub allow_failed_clients: bool,
}

/// Why a client's SASL exchange failed. Each ends the exchange; the
/// connection is answered AuthFailed and closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("token of {0} bytes is longer than {TOKEN_BYTES_MAX}")]
    TooLong(usize),
    #[error("malformed directive list at byte {0}")]
    Malformed(usize),
    #[error("more than {DIRECTIVES_MAX} directives")]
    TooManyDirectives,
    #[error("directive {0} given twice")]
    Duplicate(String),
    #[error("directive {0} missing")]
    Missing(&'static str),
    #[error("directive {name} has a value that is not accepted: {value:?}")]
    BadValue { name: &'static str, value: String },
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("wrong password for user {0:?}")]
    WrongResponse(String),
    #[error("a token after the exchange completed")]
    AlreadyComplete,
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this token; the exchange goes on.
    Challenge(Vec<u8>),
    /// Authenticated as `authorization_id`; send `token` (rspauth).
    Success {
        token: Vec<u8>,
        authorization_id: String,
    },
}

/// One step of a SASL exchange that the shell runs (GSSAPI: accepting a
/// Kerberos ticket reads the keytab and the replay cache, which is IO),
/// handed to the core in the place of the `sasl` request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellStep {
    /// Send this token; the exchange goes on.
    Challenge(Vec<u8>),
    /// Authenticated as the Kerberos `principal` (`name[/host]@REALM`);
    /// send `token` (`None`: a null token).
    Success {
        token: Option<Vec<u8>>,
        principal: String,
    },
    /// The exchange failed, for this reason.
    Failed(String),
}

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestServer {
    /// No challenge sent yet.
    Start,
    /// The challenge with this nonce was sent.
    Challenged { nonce: String },
    /// Done (successfully); a further token is an error.
    Complete,
}

impl DigestServer {
    /// Takes the client's next token. `nonce_bytes` feeds the challenge's
    /// nonce when one is made.
    pub fn step(
        &mut self,
        token: &[u8],
        cfg: &SaslConfig,
        nonce_bytes: [u8; 30],
    ) -> Result<Step, SaslError> {
        self.step_in(&CLIENT_REALM, token, cfg, nonce_bytes)
    }

    /// [`DigestServer::step`] in another realm (the quorum's).
    pub fn step_in(
        &mut self,
        realm: &Realm,
        token: &[u8],
        cfg: &SaslConfig,
        nonce_bytes: [u8; 30],
    ) -> Result<Step, SaslError> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(SaslError::TooLong(token.len()));
        }
        match std::mem::replace(self, DigestServer::Complete) {
            DigestServer::Start => {
                // The client's first token is empty (DIGEST-MD5 has no
                // initial response); anything else is answered the same.
                let nonce = base64::engine::general_purpose::STANDARD.encode(nonce_bytes);
                let challenge = format!(
                    "realm=\"{}\",nonce=\"{nonce}\",charset=utf-8,algorithm=md5-sess",
                    realm.realm
                );
                *self = DigestServer::Challenged { nonce };
                Ok(Step::Challenge(challenge.into_bytes()))
            }
            DigestServer::Challenged { nonce } => verify(realm, token, &nonce, cfg),
            DigestServer::Complete => Err(SaslError::AlreadyComplete),
        }
    }
}

fn verify(r: &Realm, token: &[u8], nonce: &str, cfg: &SaslConfig) -> Result<Step, SaslError> {
    let d = parse_directives(token)?;
    let get = |name: &'static str| d.get(name).ok_or(SaslError::Missing(name));
    let bad = |name: &'static str, value: &str| SaslError::BadValue {
        name,
        value: value.to_string(),
    };
    let username = get("username")?;
    let realm = d.get("realm").map(String::as_str).unwrap_or("");
    if !realm.is_empty() && realm != r.realm {
        return Err(bad("realm", realm));
    }
    if get("nonce")? != nonce {
        return Err(bad("nonce", get("nonce")?));
    }
    let cnonce = get("cnonce")?;
    let nc = get("nc")?;
    if nc != "00000001" {
        return Err(bad("nc", nc));
    }
    let qop = d.get("qop").map(String::as_str).unwrap_or("auth");
    if qop != "auth" {
        return Err(bad("qop", qop));
    }
    let uri = get("digest-uri")?;
    if uri != r.uri {
        return Err(bad("digest-uri", uri));
    }
    if let Some(c) = d.get("charset") {
        if !c.eq_ignore_ascii_case("utf-8") {
            return Err(bad("charset", c));
        }
    }
    let response = get("response")?;
    if response.len() != 32 || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("response", response));
    }
    let password = cfg
        .users
        .get(username)
        .ok_or_else(|| SaslError::UnknownUser(username.clone()))?;
    let authzid = d.get("authzid").map(String::as_str);
    let a1 = a1_hex(username, realm, password, nonce, cnonce, authzid);
    let expected = kd(&a1, nonce, nc, cnonce, qop, &format!("AUTHENTICATE:{uri}"));
    if !eq_ignore_case_ct(&expected, response) {
        return Err(SaslError::WrongResponse(username.clone()));
    }
    let rspauth = kd(&a1, nonce, nc, cnonce, qop, &format!(":{uri}"));
    Ok(Step::Success {
        token: format!("rspauth={rspauth}").into_bytes(),
        authorization_id: authorization_id(username, cfg),
    })
}

/// The client side of one exchange (a server dialling a peer under quorum
/// SASL): the digest-response to the server's `challenge`, and the
/// `rspauth=` token the server must answer with.
pub fn client_response(
    r: &Realm,
    challenge: &[u8],
    user: &str,
    password: &str,
    cnonce: &str,
) -> Result<(Vec<u8>, Vec<u8>), SaslError> {
    let d = parse_directives(challenge)?;
    let nonce = d.get("nonce").ok_or(SaslError::Missing("nonce"))?;
    let realm = d.get("realm").map(String::as_str).unwrap_or(r.realm);
    if realm != r.realm {
        return Err(SaslError::BadValue {
            name: "realm",
            value: realm.to_string(),
        });
    }
    let a1 = a1_hex(user, realm, password, nonce, cnonce, None);
    let nc = "00000001";
    let response = kd(
        &a1,
        nonce,
        nc,
        cnonce,
        "auth",
        &format!("AUTHENTICATE:{}", r.uri),
    );
    let rspauth = kd(&a1, nonce, nc, cnonce, "auth", &format!(":{}", r.uri));
    let token = format!(
        "charset=utf-8,username=\"{}\",realm=\"{realm}\",nonce=\"{nonce}\",nc={nc},cnonce=\"{cnonce}\",\
         digest-uri=\"{}\",response={response},qop=auth",
        user.replace('\\', "\\\\").replace('"', "\\\""),
        r.uri
    );
    Ok((
        token.into_bytes(),
        format!("rspauth={rspauth}").into_bytes(),
    ))
}

/// RFC 2831 says user name, realm and password are hashed in ISO 8859-1
/// when every character fits, else in UTF-8 (as the JDK does).
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 0x100) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn a1_hex(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    authzid: Option<&str>,
) -> String {
    let mut inner = Md5::new();
    inner.update(latin1_or_utf8(user));
    inner.update(b":");
    inner.update(latin1_or_utf8(realm));
    inner.update(b":");
    inner.update(latin1_or_utf8(password));
    let mut a1 = Md5::new();
    a1.update(inner.finalize());
    a1.update(format!(":{nonce}:{cnonce}"));
    if let Some(z) = authzid {
        a1.update(format!(":{z}"));
    }
    hex(&a1.finalize())
}

fn kd(a1_hex: &str, nonce: &str, nc: &str, cnonce: &str, qop: &str, a2: &str) -> String {
    let a2_hex = hex(&Md5::digest(a2.as_bytes()));
    hex(&Md5::digest(
        format!("{a1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{a2_hex}").as_bytes(),
    ))
}

/// Compares without stopping at the first difference.
fn eq_ignore_case_ct(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
}

/// ZooKeeper's authorization id for an authenticated name.
pub fn authorization_id(name: &str, cfg: &SaslConfig) -> String {
    let (principal, realm) = match name.split_once('@') {
        Some((p, r)) => (p, Some(r)),
        None => (name, None),
    };
    let (service, host) = match principal.split_once('/') {
        Some((s, h)) if realm.is_some() => (s, Some(h)),
        _ => (principal, None),
    };
    let mut id = service.to_string();
    if let Some(h) = host.filter(|h| !h.is_empty() && !cfg.remove_host_from_principal) {
        id.push('/');
        id.push_str(h);
    }
    if let Some(r) = realm.filter(|r| !r.is_empty() && !cfg.remove_realm_from_principal) {
        id.push('@');
        id.push_str(r);
    }
    id
}

/// Parses an RFC 2831 directive list: `name=value` pairs separated by
/// commas (empty elements allowed), values a token or a quoted string with
/// `\` escapes, whitespace around elements ignored. Names are lower-cased;
/// a name given twice is an error. Bytes are UTF-8, or ISO 8859-1 when
/// they are not valid UTF-8.
pub fn parse_directives(token: &[u8]) -> Result<BTreeMap<String, String>, SaslError> {
    if token.len() > TOKEN_BYTES_MAX {
        return Err(SaslError::TooLong(token.len()));
    }
    let text: String = match std::str::from_utf8(token) {
        Ok(s) => s.to_string(),
        Err(_) => token.iter().map(|b| *b as char).collect(),
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = BTreeMap::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i == chars.len() {
            return Ok(out);
        }
        if chars[i] == ',' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !matches!(chars[i], '=' | ',' | '"') && !chars[i].is_whitespace() {
            i += 1;
        }
        if i == start {
            return Err(SaslError::Malformed(i));
        }
        let name: String = chars[start..i]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        skip_ws(&mut i);
        if i == chars.len() || chars[i] != '=' {
            return Err(SaslError::Malformed(i));
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = String::new();
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(SaslError::Malformed(i)),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let Some(c) = chars.get(i + 1) else {
                            return Err(SaslError::Malformed(i));
                        };
                        value.push(*c);
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                if chars[i] == '"' {
                    return Err(SaslError::Malformed(i));
                }
                value.push(chars[i]);
                i += 1;
            }
        }
        skip_ws(&mut i);
        if i < chars.len() && chars[i] != ',' {
            return Err(SaslError::Malformed(i));
        }
        if out.len() == DIRECTIVES_MAX {
            return Err(SaslError::TooManyDirectives);
        }
        if out.insert(name.clone(), value).is_some() {
            return Err(SaslError::Duplicate(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> SaslConfig {
        let mut users = BTreeMap::new();
        users.insert("bob".to_string(), "bobsecret".to_string());
        SaslConfig {
            users,
            ..Default::default()
        }
    }

    /// A client's digest-response, computed independently of `verify`'s
    /// code path order (RFC 2831 section 2.1.2.1).
    fn client_response(user: &str, pw: &str, nonce: &str, uri: &str) -> Vec<u8> {
        let cnonce = "OA6MHXh6VqTrRk";
        let a1 = a1_hex(user, DIGEST_REALM, pw, nonce, cnonce, None);
        let resp = kd(
            &a1,
            nonce,
            "00000001",
            cnonce,
            "auth",
            &format!("AUTHENTICATE:{uri}"),
        );
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"{DIGEST_REALM}\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={resp},qop=auth"
        )
        .into_bytes()
    }

    fn challenged() -> (DigestServer, String) {
        let mut s = DigestServer::Start;
        let Ok(Step::Challenge(c)) = s.step(b"", &cfg(), [7; 30]) else {
            panic!("challenge")
        };
        let d = parse_directives(&c).expect("own challenge parses");
        assert_eq!(d["realm"], DIGEST_REALM);
        assert!(!d.contains_key("qop"), "{d:?}");
        (s, d["nonce"].clone())
    }

    // RFC 2831's own example (section 4): user chris, password secret,
    // realm elwood.innosoft.com, imap service.
    #[test]
    fn rfc2831_example_response() {
        let a1 = a1_hex(
            "chris",
            "elwood.innosoft.com",
            "secret",
            "OA6MG9tEQGm2hh",
            "OA6MHXh6VqTrRk",
            None,
        );
        let r = kd(
            &a1,
            "OA6MG9tEQGm2hh",
            "00000001",
            "OA6MHXh6VqTrRk",
            "auth",
            "AUTHENTICATE:imap/elwood.innosoft.com",
        );
        assert_eq!(r, "d388dad90d4bbd760a152321f2143af7");
        let rsp = kd(
            &a1,
            "OA6MG9tEQGm2hh",
            "00000001",
            "OA6MHXh6VqTrRk",
            "auth",
            ":imap/elwood.innosoft.com",
        );
        assert_eq!(rsp, "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn right_password_succeeds_wrong_fails() {
        let (mut s, nonce) = challenged();
        let step = s
            .step(
                &client_response("bob", "bobsecret", &nonce, DIGEST_URI),
                &cfg(),
                [0; 30],
            )
            .expect("authenticated");
        let Step::Success {
            token,
            authorization_id,
        } = step
        else {
            panic!("success")
        };
        assert!(token.starts_with(b"rspauth="));
        assert_eq!(authorization_id, "bob");
        assert_eq!(
            s.step(b"", &cfg(), [0; 30]),
            Err(SaslError::AlreadyComplete)
        );

        let (mut s, nonce) = challenged();
        let e = s.step(
            &client_response("bob", "nope", &nonce, DIGEST_URI),
            &cfg(),
            [0; 30],
        );
        assert_eq!(e, Err(SaslError::WrongResponse("bob".into())));
        let (mut s, nonce) = challenged();
        let e = s.step(
            &client_response("eve", "x", &nonce, DIGEST_URI),
            &cfg(),
            [0; 30],
        );
        assert_eq!(e, Err(SaslError::UnknownUser("eve".into())));
        let (mut s, _) = challenged();
        let e = s.step(
            &client_response("bob", "bobsecret", "stale", DIGEST_URI),
            &cfg(),
            [0; 30],
        );
        assert!(
            matches!(e, Err(SaslError::BadValue { name: "nonce", .. })),
            "{e:?}"
        );
        let (mut s, nonce) = challenged();
        let e = s.step(
            &client_response("bob", "bobsecret", &nonce, "imap/x"),
            &cfg(),
            [0; 30],
        );
        assert!(
            matches!(
                e,
                Err(SaslError::BadValue {
                    name: "digest-uri",
                    ..
                })
            ),
            "{e:?}"
        );
    }

    // The client side agrees with the server side, in the quorum's realm.
    #[test]
    fn quorum_client_and_server_agree() {
        let mut s = DigestServer::Start;
        let Ok(Step::Challenge(c)) = s.step_in(&QUORUM_REALM, b"", &cfg(), [3; 30]) else {
            panic!("challenge")
        };
        let (resp, rspauth) =
            super::client_response(&QUORUM_REALM, &c, "bob", "bobsecret", "abc").expect("response");
        let Ok(Step::Success { token, .. }) = s.step_in(&QUORUM_REALM, &resp, &cfg(), [3; 30])
        else {
            panic!("success")
        };
        assert_eq!(token, rspauth);
        let mut s = DigestServer::Start;
        let Ok(Step::Challenge(c)) = s.step_in(&QUORUM_REALM, b"", &cfg(), [3; 30]) else {
            panic!("challenge")
        };
        let (resp, _) =
            super::client_response(&QUORUM_REALM, &c, "bob", "nope", "abc").expect("response");
        assert!(s.step_in(&QUORUM_REALM, &resp, &cfg(), [3; 30]).is_err());
        // A client-realm response is refused in the quorum realm.
        let mut s = DigestServer::Start;
        let Ok(Step::Challenge(c)) = s.step_in(&QUORUM_REALM, b"", &cfg(), [3; 30]) else {
            panic!("challenge")
        };
        assert!(super::client_response(&CLIENT_REALM, &c, "bob", "bobsecret", "abc").is_err());
    }

    #[test]
    fn authorization_ids_follow_the_kerberos_options() {
        let mut c = cfg();
        assert_eq!(
            authorization_id("zk/host1@EXAMPLE.COM", &c),
            "zk/host1@EXAMPLE.COM"
        );
        c.remove_host_from_principal = true;
        assert_eq!(
            authorization_id("zk/host1@EXAMPLE.COM", &c),
            "zk@EXAMPLE.COM"
        );
        c.remove_realm_from_principal = true;
        assert_eq!(authorization_id("zk/host1@EXAMPLE.COM", &c), "zk");
        assert_eq!(authorization_id("bob", &c), "bob");
    }

    #[test]
    fn directive_lists_parse_and_refuse() {
        let d = parse_directives(b" a=1 , b=\"x\\\"y,z\",,C=3").expect("parses");
        assert_eq!(
            (d["a"].as_str(), d["b"].as_str(), d["c"].as_str()),
            ("1", "x\"y,z", "3")
        );
        assert!(matches!(
            parse_directives(b"a=1,a=2"),
            Err(SaslError::Duplicate(_))
        ));
        assert!(matches!(
            parse_directives(b"a=\"open"),
            Err(SaslError::Malformed(_))
        ));
        assert!(matches!(
            parse_directives(b"=1"),
            Err(SaslError::Malformed(_))
        ));
        assert!(matches!(
            parse_directives(b"a 1"),
            Err(SaslError::Malformed(_))
        ));
    }

    proptest! {
        // The token decoder and the whole step take any bytes without
        // panicking; every non-empty failure is an error value.
        #[test]
        fn decoder_never_panics(token in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_directives(&token);
            let (mut s, _) = challenged();
            prop_assert!(s.step(&token, &cfg(), [1; 30]).is_err());
        }

        // Well-formed lists built from arbitrary names and values round-trip.
        #[test]
        fn quoted_values_round_trip(
            pairs in prop::collection::btree_map("[a-z][a-z0-9-]{0,8}", "[ -~]{0,20}", 0..8)
        ) {
            let text: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let parsed = parse_directives(text.join(",").as_bytes()).expect("parses");
            prop_assert_eq!(parsed, pairs.into_iter().collect::<BTreeMap<_, _>>());
        }
    }
}
