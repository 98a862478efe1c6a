//! ACL checks and the authentication schemes ZooKeeper ships: `world`,
//! `auth`, `digest` (user:base64(sha1(user:password))), `ip` (address or
//! CIDR), and the super user (`Id("super", "")` granted by the configured
//! super digest), mirroring `ZooKeeperServer.checkACL`, `fixupACL` and the
//! authentication providers.

use crate::proto::{perms, Acl, ErrorCode, Id};
use base64::Engine;
use sha1::{Digest, Sha1};

/// Whether `auth` may do `perm` on a node with `acl`.
pub fn check(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|id| id.scheme == "super") {
        return true;
    }
    for a in acl {
        if a.perms & perm == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return true;
        }
        for who in auth.iter().filter(|w| w.scheme == a.id.scheme) {
            let matched = match a.id.scheme.as_str() {
                "ip" => ip_matches(&who.id, &a.id.id),
                // SASLAuthenticationProvider.matches: the user "super".
                "sasl" => who.id == "super" || who.id == a.id.id,
                _ => who.id == a.id.id,
            };
            if matched {
                return true;
            }
        }
    }
    false
}

/// Validates and expands a client-supplied ACL (`fixupACL`): duplicates
/// removed, `auth` replaced by the requester's authenticated ids, unknown
/// schemes and malformed ids refused. An `x509` or `sasl` id needs its
/// provider configured (`authProvider.N`), as in ZooKeeper, whose
/// `ProviderRegistry` knows no other scheme without one.
pub fn fixup(acls: &[Acl], auth: &[Id], providers: Providers) -> Result<Vec<Acl>, ErrorCode> {
    let mut uniq: Vec<Acl> = Vec::with_capacity(acls.len());
    for a in acls {
        if !uniq.contains(a) {
            uniq.push(a.clone());
        }
    }
    if uniq.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(uniq.len());
    for a in uniq {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => out.push(a),
            "auth" => {
                let mut any = false;
                // The ids of authenticated schemes (isAuthenticated):
                // digest, x509 and sasl; not ip, not super.
                for who in auth
                    .iter()
                    .filter(|w| matches!(w.scheme.as_str(), "digest" | "x509" | "sasl"))
                {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: who.clone(),
                    });
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if digest_id_valid(&a.id.id) => out.push(a),
            "ip" if ip_id_valid(&a.id.id) => out.push(a),
            "x509" if providers.x509 && x500_name_valid(&a.id.id) => out.push(a),
            "sasl" if providers.sasl && kerberos_name_valid(&a.id.id) => out.push(a),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// The optional authentication providers configured (`authProvider.N`):
/// their schemes are valid in ACLs. `ip` and `digest` always are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Providers {
    /// `X509AuthenticationProvider`.
    pub x509: bool,
    /// `SASLAuthenticationProvider`.
    pub sasl: bool,
}

/// Both optional providers (tests of the ids themselves).
#[cfg(test)]
const ALL: Providers = Providers {
    x509: true,
    sasl: true,
};

/// Roughly `new X500Principal(id)`: `type=value` pairs separated by `,`.
fn x500_name_valid(id: &str) -> bool {
    !id.is_empty()
        && id.split(',').all(|ava| {
            ava.split_once('=')
                .is_some_and(|(t, _)| !t.trim().is_empty())
        })
}

/// `new KerberosName(id)`: a name with `@` must be
/// `service[/host]@REALM` with no further `/` or `@`.
fn kerberos_name_valid(id: &str) -> bool {
    let Some((principal, realm)) = id.split_once('@') else {
        return true;
    };
    if realm.contains(['@', '/']) {
        return false;
    }
    match principal.split_once('/') {
        Some((service, host)) => !service.contains('@') && !host.contains(['/', '@']),
        None => true,
    }
}

fn digest_id_valid(id: &str) -> bool {
    // Java's split(":") drops trailing empty parts: "u:" is one part.
    let parts: Vec<&str> = id.split(':').collect();
    let mut n = parts.len();
    while n > 0 && parts[n - 1].is_empty() {
        n -= 1;
    }
    n == 2
}

/// `user:password` -> `user:base64(sha1(user:password))`.
pub fn digest_of(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{}:{}",
        user,
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The ids an `addAuth(scheme, auth)` grants, or `AuthFailed`.
pub fn authenticate(
    scheme: &str,
    auth: &[u8],
    remote_ip: &str,
    super_digest: Option<&str>,
) -> Result<Vec<Id>, ErrorCode> {
    match scheme {
        "digest" => {
            let text = std::str::from_utf8(auth).map_err(|_| ErrorCode::AuthFailed)?;
            let digest = digest_of(text);
            let mut ids = Vec::new();
            if super_digest == Some(digest.as_str()) {
                ids.push(Id::new("super", ""));
            }
            ids.push(Id::new("digest", &digest));
            Ok(ids)
        }
        "ip" => Ok(vec![Id::new("ip", remote_ip)]),
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// The ids a verified client certificate with this subject grants
/// (`X509AuthenticationProvider`): `x509:<subject>`, and `super` too when
/// it is the configured x509 super user.
pub fn x509_ids(subject: &str, super_user: Option<&str>) -> Vec<Id> {
    let mut ids = Vec::new();
    if super_user == Some(subject) {
        ids.push(Id::new("super", subject));
    }
    ids.push(Id::new("x509", subject));
    ids
}

/// The user name `whoAmI` reports for an id.
pub fn user_name(id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or("").to_owned(),
        _ => id.id.clone(),
    }
}

fn parse_ip(s: &str) -> Option<Vec<u8>> {
    if let Ok(v4) = s.parse::<core::net::Ipv4Addr>() {
        return Some(v4.octets().to_vec());
    }
    s.parse::<core::net::Ipv6Addr>()
        .ok()
        .map(|v6| v6.octets().to_vec())
}

fn ip_id_valid(id: &str) -> bool {
    let (addr, bits) = match id.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (id, None),
    };
    let Some(bytes) = parse_ip(addr) else {
        return false;
    };
    match bits {
        None => true,
        Some(b) => b
            .parse::<usize>()
            .map(|n| n <= bytes.len() * 8)
            .unwrap_or(false),
    }
}

fn ip_matches(client: &str, acl_id: &str) -> bool {
    let (addr, bits) = match acl_id.split_once('/') {
        Some((a, b)) => (a, b.parse::<usize>().ok()),
        None => (acl_id, None),
    };
    let (Some(want), Some(have)) = (parse_ip(addr), parse_ip(client)) else {
        return false;
    };
    if want.len() != have.len() {
        return false;
    }
    let bits = bits.unwrap_or(want.len() * 8).min(want.len() * 8);
    for i in 0..bits {
        let mask = 0x80u8 >> (i % 8);
        if want[i / 8] & mask != have[i / 8] & mask {
            return false;
        }
    }
    true
}

/// Whether a node's ACL grants anything at all (used by getACL masking).
pub fn has_admin(acl: &[Acl], auth: &[Id]) -> bool {
    check(acl, perms::ADMIN, auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x509_and_sasl_ids_in_acls() {
        let x = Id::new("x509", "CN=client,O=Paddock");
        let acl = vec![Acl {
            perms: perms::READ,
            id: x.clone(),
        }];
        assert_eq!(fixup(&acl, &[], ALL).unwrap(), acl);
        assert!(check(
            &acl,
            perms::READ,
            &x509_ids("CN=client,O=Paddock", None)
        ));
        assert!(!check(
            &acl,
            perms::READ,
            &x509_ids("CN=other,O=Paddock", None)
        ));
        assert!(check(
            &acl,
            perms::READ,
            &x509_ids("CN=root", Some("CN=root"))
        ));
        let auth = vec![Acl {
            perms: perms::ALL,
            id: Id::new("auth", ""),
        }];
        assert_eq!(
            fixup(&auth, std::slice::from_ref(&x), ALL).unwrap()[0].id,
            x
        );
        let bad = vec![Acl {
            perms: perms::READ,
            id: Id::new("x509", "no-equals"),
        }];
        assert_eq!(fixup(&bad, &[], ALL), Err(ErrorCode::InvalidAcl));
        let sasl = vec![Acl {
            perms: perms::READ,
            id: Id::new("sasl", "alice"),
        }];
        assert!(check(&sasl, perms::READ, &[Id::new("sasl", "alice")]));
        assert!(check(&sasl, perms::READ, &[Id::new("sasl", "super")]));
        assert!(!check(&sasl, perms::READ, &[Id::new("sasl", "bob")]));
        assert!(kerberos_name_valid("zk/host@EXAMPLE.COM"));
        assert!(!kerberos_name_valid("a@b@c"));
    }

    #[test]
    fn digest_matches_zookeeper_tool() {
        // DigestAuthenticationProvider.generateDigest("super:test")
        assert_eq!(
            digest_of("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn ip_cidr_matching() {
        assert!(ip_matches("127.0.0.1", "127.0.0.0/8"));
        assert!(ip_matches("10.1.2.3", "10.1.2.3"));
        assert!(!ip_matches("10.1.2.4", "10.1.2.3"));
        assert!(!ip_matches("192.168.0.1", "127.0.0.0/8"));
    }

    #[test]
    fn fixup_rules() {
        let world = Acl::open_unsafe();
        assert_eq!(fixup(&world, &[], ALL).unwrap(), world);
        assert_eq!(fixup(&[], &[], ALL), Err(ErrorCode::InvalidAcl));
        let auth = vec![Acl {
            perms: 31,
            id: Id::new("auth", ""),
        }];
        assert_eq!(
            fixup(&auth, &[Id::new("ip", "127.0.0.1")], ALL),
            Err(ErrorCode::InvalidAcl)
        );
        let digest = Id::new("digest", "u:abc");
        assert_eq!(
            fixup(&auth, std::slice::from_ref(&digest), ALL).unwrap()[0].id,
            digest
        );
        let bad = vec![Acl {
            perms: 31,
            id: Id::new("digest", "nocolon"),
        }];
        assert_eq!(fixup(&bad, &[], ALL), Err(ErrorCode::InvalidAcl));
        let bad = vec![Acl {
            perms: 31,
            id: Id::new("world", "someone"),
        }];
        assert_eq!(fixup(&bad, &[], ALL), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn check_honours_perms_and_super() {
        let acl = vec![Acl {
            perms: perms::READ,
            id: Id::new("digest", "u:h"),
        }];
        assert!(check(&acl, perms::READ, &[Id::new("digest", "u:h")]));
        assert!(!check(&acl, perms::WRITE, &[Id::new("digest", "u:h")]));
        assert!(!check(&acl, perms::READ, &[Id::new("ip", "127.0.0.1")]));
        assert!(check(&acl, perms::WRITE, &[Id::new("super", "")]));
    }

    // Goal: x509 and sasl ids are InvalidACL without their provider, as
    // in ZooKeeper; each provider makes only its own scheme valid.
    #[test]
    fn x509_and_sasl_ids_need_their_provider() {
        let x = vec![Acl {
            perms: perms::ALL,
            id: Id::new("x509", "CN=a,O=b"),
        }];
        let s = vec![Acl {
            perms: perms::ALL,
            id: Id::new("sasl", "bob"),
        }];
        let none = Providers::default();
        let only_x509 = Providers {
            x509: true,
            sasl: false,
        };
        let only_sasl = Providers {
            x509: false,
            sasl: true,
        };
        assert_eq!(fixup(&x, &[], none), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&s, &[], none), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&x, &[], only_x509).unwrap(), x);
        assert_eq!(fixup(&s, &[], only_x509), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&s, &[], only_sasl).unwrap(), s);
        assert_eq!(fixup(&x, &[], only_sasl), Err(ErrorCode::InvalidAcl));
    }
}
