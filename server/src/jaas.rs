//! The JAAS login configuration file ZooKeeper's SASL reads
//! (`java.security.auth.login.config`): named sections of login modules,
//! each `ModuleClass Flag key=value ...;`, with `//` and `/* */` comments,
//! as Java's `ConfigFile` parses it.
//!
//! The server's section (`Server`, or `zookeeper.sasl.serverconfig`) gives
//! the client SASL login: either
//! `org.apache.zookeeper.server.auth.DigestLoginModule` with
//! `user_<name>="<password>"` options (DIGEST-MD5), or Java's
//! `com.sun.security.auth.module.Krb5LoginModule` with `useKeyTab=true`,
//! `keyTab`, `principal` and `storeKey=true` (GSSAPI: as in ZooKeeper, a
//! Kerberos login makes the server speak GSSAPI only). Any other module,
//! a mix of the two, or a Kerberos login that cannot accept tickets (no
//! keytab, no principal, key not stored) is refused at start, naming the
//! file and what is wrong: Paddock will not serve as if it could.
//! The quorum sections take DigestLoginModule only.

use std::collections::BTreeMap;
use std::path::Path;

pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";
pub const KRB5_LOGIN_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";

/// The client SASL login of the server's section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerLogin {
    /// DIGEST-MD5 with these users and passwords.
    Digest(BTreeMap<String, String>),
    /// GSSAPI, accepting tickets for `principal` with the keys in `keytab`.
    Kerberos { keytab: String, principal: String },
}

/// One login module entry of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub class: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokens(text: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && cs.get(i + 1) == Some(&'/') {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && cs.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < cs.len() && !(cs[i] == '*' && cs[i + 1] == '/') {
                i += 1;
            }
            if i + 1 >= cs.len() {
                return Err("an unterminated /* comment".into());
            }
            i += 2;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => return Err("an unterminated quoted value".into()),
                    Some('"') => break,
                    Some('\\') if i + 1 < cs.len() => {
                        s.push(cs[i + 1]);
                        i += 2;
                        continue;
                    }
                    Some(ch) => s.push(*ch),
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Quoted(s));
        } else if matches!(c, '{' | '}' | ';' | '=') {
            out.push(Tok::Punct(c));
            i += 1;
        } else {
            let start = i;
            while i < cs.len()
                && !cs[i].is_whitespace()
                && !matches!(cs[i], '{' | '}' | ';' | '=' | '"')
            {
                i += 1;
            }
            out.push(Tok::Word(cs[start..i].iter().collect()));
        }
    }
    Ok(out)
}

/// Parses the whole file: section name -> its modules.
pub fn parse(text: &str) -> Result<BTreeMap<String, Vec<Module>>, String> {
    let toks = tokens(text)?;
    let mut sections = BTreeMap::new();
    let mut i = 0;
    let word = |i: usize, what: &str| -> Result<String, String> {
        match toks.get(i) {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Ok(w.clone()),
            other => Err(format!("expected {what}, found {other:?}")),
        }
    };
    let punct = |i: usize, p: char| -> Result<(), String> {
        match toks.get(i) {
            Some(Tok::Punct(c)) if *c == p => Ok(()),
            other => Err(format!("expected '{p}', found {other:?}")),
        }
    };
    while i < toks.len() {
        let name = word(i, "a section name")?;
        punct(i + 1, '{')?;
        i += 2;
        let mut modules = Vec::new();
        while !matches!(toks.get(i), Some(Tok::Punct('}'))) {
            let class = word(i, "a login module class")?;
            let flag = word(
                i + 1,
                "a control flag (required, requisite, sufficient, optional)",
            )?;
            i += 2;
            let mut options = BTreeMap::new();
            while !matches!(toks.get(i), Some(Tok::Punct(';'))) {
                let k = word(i, "an option name")?;
                punct(i + 1, '=')?;
                let v = word(i + 2, "an option value")?;
                options.insert(k, v);
                i += 3;
            }
            i += 1;
            modules.push(Module {
                class,
                flag,
                options,
            });
        }
        i += 1;
        // The `;` after a section's `}` is optional in practice.
        if matches!(toks.get(i), Some(Tok::Punct(';'))) {
            i += 1;
        }
        sections.insert(name, modules);
    }
    Ok(sections)
}

/// The DIGEST-MD5 users of the server section, or `None` when the file has
/// no such section (ZooKeeper then runs without a SASL login).
pub fn server_users(
    path: &Path,
    section: &str,
) -> Result<Option<BTreeMap<String, String>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("java.security.auth.login.config={}: {e}", path.display()))?;
    let sections = parse(&text)
        .map_err(|e| format!("java.security.auth.login.config={}: {e}", path.display()))?;
    let Some(modules) = sections.get(section) else {
        return Ok(None);
    };
    let mut users = BTreeMap::new();
    for m in modules {
        if m.class != DIGEST_LOGIN_MODULE {
            return Err(format!(
                "java.security.auth.login.config={}: section {section} uses login module {}, which paddock does not \
                 implement (only {DIGEST_LOGIN_MODULE}, SASL DIGEST-MD5; Kerberos/GSSAPI is not available)",
                path.display(),
                m.class
            ));
        }
        for (k, v) in &m.options {
            if let Some(user) = k.strip_prefix("user_") {
                users.insert(user.to_string(), v.clone());
            }
        }
    }
    Ok(Some(users))
}

/// The client SASL login of the server section, or `None` when the file
/// has no such section (ZooKeeper then runs without a SASL login).
pub fn server_login(path: &Path, section: &str) -> Result<Option<ServerLogin>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("java.security.auth.login.config={}: {e}", path.display()))?;
    let sections = parse(&text)
        .map_err(|e| format!("java.security.auth.login.config={}: {e}", path.display()))?;
    let Some(modules) = sections.get(section) else {
        return Ok(None);
    };
    let Some(krb) = modules.iter().find(|m| m.class == KRB5_LOGIN_MODULE) else {
        return server_users(path, section).map(|u| u.map(ServerLogin::Digest));
    };
    let refuse = |why: String| {
        format!(
            "java.security.auth.login.config={}: section {section}: {why}",
            path.display()
        )
    };
    if modules.len() > 1 {
        return Err(refuse(format!(
            "{KRB5_LOGIN_MODULE} together with other login modules; paddock takes it alone"
        )));
    }
    let (keytab, principal) = krb5_keys(krb, true).map_err(refuse)?;
    Ok(Some(ServerLogin::Kerberos { keytab, principal }))
}

/// The keytab and principal of a Krb5LoginModule login; `accept`: it
/// must be able to accept tickets (`storeKey=true`).
fn krb5_keys(krb: &Module, accept: bool) -> Result<(String, String), String> {
    let opt = |k: &str| krb.options.get(k).map(String::as_str);
    let is_true = |k: &str| opt(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !is_true("useKeyTab") {
        return Err(
            "a server's Kerberos login takes its keys from a keytab: set useKeyTab=true and keyTab"
                .into(),
        );
    }
    if accept && !is_true("storeKey") {
        return Err(
            "storeKey=true is needed: without the stored key the server cannot accept tickets"
                .into(),
        );
    }
    let keytab = opt("keyTab").ok_or("no keyTab")?;
    let principal = opt("principal").ok_or("no principal")?;
    Ok((keytab.to_string(), principal.to_string()))
}

/// Quorum Kerberos: (keytab, principal) of the `QuorumServer` login and of
/// the `QuorumLearner` login, when the server section holds a
/// Krb5LoginModule; `None` when it does not (DIGEST-MD5, see
/// [`quorum_credentials`]).
#[allow(clippy::type_complexity)]
pub fn quorum_kerberos(
    path: &Path,
    server_section: &str,
    learner_section: &str,
) -> Result<Option<((String, String), (String, String))>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("java.security.auth.login.config={}: {e}", path.display()))?;
    let sections = parse(&text)
        .map_err(|e| format!("java.security.auth.login.config={}: {e}", path.display()))?;
    let krb = |section: &str| {
        sections
            .get(section)
            .and_then(|m| m.iter().find(|m| m.class == KRB5_LOGIN_MODULE))
    };
    let Some(server) = krb(server_section) else {
        return Ok(None);
    };
    let refuse = |section: &str, why: String| {
        format!(
            "java.security.auth.login.config={}: section {section}: {why}",
            path.display()
        )
    };
    let server = krb5_keys(server, true).map_err(|w| refuse(server_section, w))?;
    let learner = krb(learner_section).ok_or_else(|| {
        refuse(
            learner_section,
            format!("missing, or without {KRB5_LOGIN_MODULE}, which quorum Kerberos needs"),
        )
    })?;
    let learner = krb5_keys(learner, false).map_err(|w| refuse(learner_section, w))?;
    Ok(Some((server, learner)))
}

/// Quorum SASL's credentials: the users of the `QuorumServer` section and
/// the `username`/`password` of the `QuorumLearner` section (or the
/// sections `quorum.auth.*.saslLoginContext` names), DigestLoginModule
/// only.
pub fn quorum_credentials(
    path: &Path,
    server_section: &str,
    learner_section: &str,
) -> Result<(BTreeMap<String, String>, String, String), String> {
    let users = server_users(path, server_section)?.ok_or_else(|| {
        format!(
            "java.security.auth.login.config={}: no {server_section} section, which quorum SASL needs",
            path.display()
        )
    })?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("java.security.auth.login.config={}: {e}", path.display()))?;
    let sections = parse(&text)
        .map_err(|e| format!("java.security.auth.login.config={}: {e}", path.display()))?;
    let learner = sections
        .get(learner_section)
        .and_then(|m| m.first())
        .ok_or_else(|| {
            format!(
                "java.security.auth.login.config={}: no {learner_section} section, which quorum SASL needs",
                path.display()
            )
        })?;
    if learner.class != DIGEST_LOGIN_MODULE {
        return Err(format!(
            "java.security.auth.login.config={}: section {learner_section} uses {}, which paddock does not implement",
            path.display(),
            learner.class
        ));
    }
    let get = |k: &str| {
        learner.options.get(k).cloned().ok_or_else(|| {
            format!(
                "java.security.auth.login.config={}: section {learner_section} has no {k}",
                path.display()
            )
        })
    };
    Ok((users, get("username")?, get("password")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeepers_documented_example_parses() {
        let text = r#"
            // the server's users
            Server {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   user_super="adminsecret"
                   user_bob="bob\"secret";
            };
            /* the client's */
            Client {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   username="bob"
                   password="bobsecret";
            };
        "#;
        let s = parse(text).expect("parses");
        let server = &s["Server"][0];
        assert_eq!(server.class, DIGEST_LOGIN_MODULE);
        assert_eq!(server.flag, "required");
        assert_eq!(server.options["user_bob"], "bob\"secret");
        assert_eq!(s["Client"][0].options["username"], "bob");
        assert!(parse("Server { x required a=; };").is_err());
        assert!(parse("Server { x required a=\"open; };").is_err());
    }

    // Goal: a Krb5LoginModule server section gives the keytab and
    // principal; a login that could not accept tickets is refused, naming
    // the option.
    #[test]
    fn kerberos_server_login() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("jaas.conf");
        let write = |body: &str| {
            std::fs::write(
                &p,
                format!("Server {{ {KRB5_LOGIN_MODULE} required {body}; }};"),
            )
            .expect("write")
        };
        write(
            r#"useKeyTab=true keyTab="/k/zk.keytab" storeKey=true useTicketCache=false principal="zookeeper/localhost@EXAMPLE.COM""#,
        );
        assert_eq!(
            server_login(&p, "Server").expect("ok"),
            Some(ServerLogin::Kerberos {
                keytab: "/k/zk.keytab".into(),
                principal: "zookeeper/localhost@EXAMPLE.COM".into()
            })
        );
        for (body, needle) in [
            (r#"keyTab="/k" storeKey=true principal="p""#, "useKeyTab"),
            (r#"useKeyTab=true keyTab="/k" principal="p""#, "storeKey"),
            (r#"useKeyTab=true storeKey=true principal="p""#, "keyTab"),
            (r#"useKeyTab=true storeKey=true keyTab="/k""#, "principal"),
        ] {
            write(body);
            let e = server_login(&p, "Server").expect_err(body);
            assert!(e.contains(needle), "{e}");
        }
        std::fs::write(
            &p,
            format!("Server {{ {KRB5_LOGIN_MODULE} required useKeyTab=true storeKey=true keyTab=\"/k\" principal=\"p\"; {DIGEST_LOGIN_MODULE} required user_a=\"b\"; }};"),
        )
        .expect("write");
        assert!(server_login(&p, "Server").is_err());
        assert_eq!(server_login(&p, "Other").expect("no section"), None);
    }

    // Goal: quorum Kerberos takes both sections' keytabs and principals;
    // a server section without a learner Kerberos login is refused, naming
    // the section; DIGEST-MD5 sections are not Kerberos.
    #[test]
    fn quorum_kerberos_logins() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("jaas.conf");
        let server = format!(
            "QuorumServer {{ {KRB5_LOGIN_MODULE} required useKeyTab=true storeKey=true keyTab=\"/s\" principal=\"zkquorum/h@R\"; }};"
        );
        std::fs::write(
            &p,
            format!("{server} QuorumLearner {{ {KRB5_LOGIN_MODULE} required useKeyTab=true keyTab=\"/l\" principal=\"learner/h@R\"; }};"),
        )
        .expect("write");
        assert_eq!(
            quorum_kerberos(&p, "QuorumServer", "QuorumLearner").expect("ok"),
            Some((
                ("/s".into(), "zkquorum/h@R".into()),
                ("/l".into(), "learner/h@R".into())
            ))
        );
        std::fs::write(&p, &server).expect("write");
        let e = quorum_kerberos(&p, "QuorumServer", "QuorumLearner").expect_err("no learner");
        assert!(e.contains("QuorumLearner"), "{e}");
        std::fs::write(
            &p,
            format!("QuorumServer {{ {DIGEST_LOGIN_MODULE} required user_a=\"b\"; }};"),
        )
        .expect("write");
        assert_eq!(
            quorum_kerberos(&p, "QuorumServer", "QuorumLearner").expect("ok"),
            None
        );
    }

    #[test]
    fn kerberos_is_refused_for_the_quorum_naming_the_module() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("jaas.conf");
        std::fs::write(
            &p,
            "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k\" principal=\"zk/h@R\"; };",
        )
        .expect("write");
        let e = server_users(&p, "Server").expect_err("refused");
        assert!(e.contains("Krb5LoginModule"), "{e}");
        assert_eq!(server_users(&p, "Other").expect("no section"), None);
    }
}
