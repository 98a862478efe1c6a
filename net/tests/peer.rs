//! Peer links over loopback: the handshake, messages both ways, garbage on
//! the port refused without harm, a closed link reported Down then Up, and
//! members with different server lists refusing each other.

use paddock_core::ServerId;
use paddock_net::peer::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test]
async fn two_servers_link_and_exchange() {
    let a1 = free_addr();
    let a2 = free_addr();
    let members: BTreeMap<ServerId, std::net::SocketAddr> =
        [(ServerId(1), a1), (ServerId(2), a2)].into();
    let (tx1, mut rx1) = tokio::sync::mpsc::unbounded_channel();
    let (tx2, mut rx2) = tokio::sync::mpsc::unbounded_channel();
    let n1 = PeerNet::start(ServerId(1), members.clone(), vec![a1], 7, tx1, None, None)
        .await
        .unwrap();
    let n2 = PeerNet::start(ServerId(2), members.clone(), vec![a2], 7, tx2, None, None)
        .await
        .unwrap();
    let up1 = tokio::time::timeout(Duration::from_secs(3), rx1.recv())
        .await
        .unwrap()
        .unwrap();
    let up2 = tokio::time::timeout(Duration::from_secs(3), rx2.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(up1, PeerEvent::Up(ServerId(2))), "{up1:?}");
    assert!(matches!(up2, PeerEvent::Up(ServerId(1))), "{up2:?}");
    n1.send(ServerId(2), b"hello".to_vec());
    n2.send(ServerId(1), b"world".to_vec());
    let m2 = tokio::time::timeout(Duration::from_secs(3), rx2.recv())
        .await
        .unwrap()
        .unwrap();
    let m1 = tokio::time::timeout(Duration::from_secs(3), rx1.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(m2, PeerEvent::Message(ServerId(1), ref b) if b == b"hello"),
        "{m2:?}"
    );
    assert!(
        matches!(m1, PeerEvent::Message(ServerId(2), ref b) if b == b"world"),
        "{m1:?}"
    );
    // garbage on the port is refused; the link keeps working
    let mut g = tokio::net::TcpStream::connect(a1).await.unwrap();
    g.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    n2.send(ServerId(1), b"again".to_vec());
    let m = tokio::time::timeout(Duration::from_secs(3), rx1.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(m, PeerEvent::Message(ServerId(2), ref b) if b == b"again"),
        "{m:?}"
    );
    // closing a link reports Down then Up again (re-dialled)
    n1.close(ServerId(2));
    let d = tokio::time::timeout(Duration::from_secs(3), rx1.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(d, PeerEvent::Down(ServerId(2))), "{d:?}");
    let u = tokio::time::timeout(Duration::from_secs(5), rx1.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(u, PeerEvent::Up(ServerId(2))), "{u:?}");
}

#[tokio::test]
async fn a_different_server_list_is_refused() {
    let a1 = free_addr();
    let a2 = free_addr();
    let members: BTreeMap<ServerId, std::net::SocketAddr> =
        [(ServerId(1), a1), (ServerId(2), a2)].into();
    let (tx1, mut rx1) = tokio::sync::mpsc::unbounded_channel();
    let (tx2, _rx2) = tokio::sync::mpsc::unbounded_channel();
    let _n1 = PeerNet::start(ServerId(1), members.clone(), vec![a1], 7, tx1, None, None)
        .await
        .unwrap();
    let _n2 = PeerNet::start(ServerId(2), members.clone(), vec![a2], 8, tx2, None, None)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_millis(500), rx1.recv()).await;
    assert!(
        got.is_err(),
        "no link between members with different server lists: {got:?}"
    );
}
