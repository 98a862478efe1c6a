//! The `zookeeper-client` crate (0.11) with its `tls` feature, unchanged,
//! against the real `paddock` binary and against Apache ZooKeeper 3.8 (its
//! Netty connection factory), each serving `secureClientPort` with mutual
//! TLS from the same PEM key and trust stores: certificates are made here
//! (rcgen), the client's subject becomes the same `x509` id on both, and
//! both make the same refusals (no client certificate, plaintext on the TLS
//! port, TLS on the plaintext port). ZooKeeper's half is skipped where it
//! is not installed, except under `CI`.

mod common;
use common::paddock_bin;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::time::timeout;
use zookeeper_client as zk;

const WAIT: Duration = Duration::from_secs(10);
const X509: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

struct Pki {
    ca_pem: String,
    server_store: String,
    client_cert: String,
    client_key: String,
}

fn name(cn: &str, ou: &str) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Paddock");
    dn.push(DnType::OrganizationalUnitName, ou);
    dn.push(DnType::CommonName, cn);
    dn
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = name("Paddock Test CA", "ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf = |cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        p.distinguished_name = name(cn, "test");
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("server");
    let (client_cert, client_key) = leaf("client1");
    Pki {
        ca_pem: ca_cert.pem(),
        server_store: format!("{server_key}{server_cert}{}", ca_cert.pem()),
        client_cert,
        client_key,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Paddock,
    ZooKeeper,
}

const ZK_JARS: &[&str] = &[
    "zookeeper",
    "slf4j-log4j12",
    "log4j-1.2",
    "netty-buffer",
    "netty-codec",
    "netty-common",
    "netty-handler",
    "netty-resolver",
    "netty-transport",
    "netty-transport-native-epoll",
    "netty-transport-native-unix-common",
];

fn zk_classpath() -> Option<String> {
    let jars: Vec<String> = ZK_JARS
        .iter()
        .map(|j| format!("/usr/share/java/{j}.jar"))
        .collect();
    jars.iter()
        .all(|j| Path::new(j).exists())
        .then(|| jars.join(":"))
}

struct Paddock {
    child: Child,
    plain: u16,
    secure: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Paddock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ruok(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"ruok").is_err() {
        return false;
    }
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).is_ok() && &buf == b"imok"
}

fn write(dir: &Path, file: &str, text: &str) -> String {
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn start(pki: &Pki, kind: Kind) -> Paddock {
    let (plain, secure) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let store = write(dir.path(), "server.pem", &pki.server_store);
    let trust = write(dir.path(), "ca.pem", &pki.ca_pem);
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={plain}\nclientPortAddress=127.0.0.1\n\
             secureClientPort={secure}\nsecureClientPortAddress=127.0.0.1\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location={store}\nssl.keyStore.type=PEM\n\
             ssl.trustStore.location={trust}\nssl.trustStore.type=PEM\n\
             ssl.clientAuth=need\nauthProvider.x509={X509}\n4lw.commands.whitelist=*\n\
             admin.enableServer=false\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut cmd = match kind {
        Kind::Paddock => {
            let mut c = Command::new(paddock_bin());
            c.arg(&cfg);
            c
        }
        Kind::ZooKeeper => {
            let mut c = Command::new("java");
            c.args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.admin.enableServer=false",
                "-cp",
                &zk_classpath().unwrap(),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&cfg);
            c
        }
    };
    let child = cmd
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut server = Paddock {
        child,
        plain,
        secure,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ruok(plain) {
        if let Some(st) = server.child.try_wait().unwrap() {
            let log = std::fs::read_to_string(server._dir.path().join("server.log"));
            panic!("{kind:?} exited ({st}) before serving: {log:?}");
        }
        assert!(
            Instant::now() < deadline,
            "{kind:?} did not answer ruok within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn tls(pki: &Pki, identity: bool) -> zk::TlsOptions {
    let o = zk::TlsOptions::new().with_pem_ca(&pki.ca_pem).unwrap();
    if identity {
        o.with_pem_identity(&pki.client_cert, &pki.client_key)
            .unwrap()
    } else {
        o
    }
}

async fn try_connect(
    options: Option<zk::TlsOptions>,
    cluster: String,
) -> Result<zk::Client, String> {
    let mut c = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .with_connection_timeout(Duration::from_secs(2))
        .with_fail_eagerly();
    if let Some(o) = options {
        c = c.with_tls(o);
    }
    match timeout(WAIT, c.connect(&cluster)).await {
        Err(_) => Err("timed out".into()),
        Ok(r) => r.map_err(|e| e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_on_paddock() {
    mutual_tls(Kind::Paddock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_on_zookeeper() {
    if zk_classpath().is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "ZooKeeper or Debian's Netty jars are missing under CI"
        );
        eprintln!("skipped: ZooKeeper with Netty is not installed");
        return;
    }
    mutual_tls(Kind::ZooKeeper).await;
}

/// Everything asserted here holds on both servers.
async fn mutual_tls(kind: Kind) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = pki();
    let p = start(&pki, kind);
    let secure = format!("tcp+tls://127.0.0.1:{}", p.secure);

    // ZooKeeper answers ruok before it serves sessions: the first session
    // may take a few tries.
    let deadline = Instant::now() + Duration::from_secs(60);
    let c = loop {
        match try_connect(Some(tls(&pki, true)), secure.clone()).await {
            Ok(c) => break c,
            Err(e) => {
                let log = std::fs::read_to_string(p._dir.path().join("server.log"));
                assert!(
                    Instant::now() < deadline,
                    "{kind:?}: a client with a certificate of the trusted CA does not connect: {e}\n{log:?}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    // The subject as Java's X500Principal.getName() writes it.
    let id = "CN=client1,OU=test,O=Paddock";
    let users = c.list_auth_users().await.unwrap();
    assert!(
        users.contains(&zk::AuthUser::new("x509", id)),
        "whoami: {users:?}"
    );
    let acl = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("x509", id),
    )];
    let only_me = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl));
    c.create("/tls", b"over tls", &only_me).await.unwrap();
    let (data, _) = c.get_data("/tls").await.unwrap();
    assert_eq!(data, b"over tls");

    // The same node through the plaintext port: the ACL shuts it.
    let plain = try_connect(None, format!("127.0.0.1:{}", p.plain))
        .await
        .expect("plaintext port");
    assert_eq!(plain.get_data("/tls").await.unwrap_err(), zk::Error::NoAuth);

    // No client certificate with ssl.clientAuth=need: no session.
    assert!(try_connect(Some(tls(&pki, false)), secure.clone())
        .await
        .is_err());
    // Plaintext on the TLS port, and TLS on the plaintext port: no session.
    assert!(try_connect(None, format!("127.0.0.1:{}", p.secure))
        .await
        .is_err());
    assert!(try_connect(
        Some(tls(&pki, true)),
        format!("tcp+tls://127.0.0.1:{}", p.plain)
    )
    .await
    .is_err());

    // The refused clients cost the server nothing: the TLS session still
    // works.
    c.set_data("/tls", b"still", None).await.unwrap();
    assert_eq!(c.get_data("/tls").await.unwrap().0, b"still");
}
