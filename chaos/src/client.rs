//! A raw jute client over std TCP: one connection, one session, requests
//! one at a time, every read and write bounded by a timeout.
//!
//! A timeout or a broken connection is `Io`: the request's outcome is
//! unknown (it may or may not have committed), exactly what a ZooKeeper
//! client reports as ConnectionLoss.

use paddock_core::proto::{
    self, Acl, ConnectRequest, ConnectResponse, CreateRequest, Reader, ReplyHeader, Request, Stat,
};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Frames larger than this from a server are a protocol error.
const FRAME_MAX: usize = 4 << 20;

/// What a client remembers of its session across connections.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    /// The largest zxid seen in any reply (sent as lastZxidSeen).
    pub last_zxid: i64,
}

#[derive(Debug)]
pub enum ConnectError {
    Io(io::Error),
    /// The server answered with session id 0: the session is gone.
    Expired,
}

pub struct Conn {
    stream: TcpStream,
    xid: i32,
    pub server: usize,
}

pub fn write_frame(s: &mut TcpStream, frame: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(frame.len() + 4);
    buf.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    buf.extend_from_slice(frame);
    s.write_all(&buf)
}

pub fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if len < 0 || len as usize > FRAME_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame length {len}"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

fn invalid(e: impl std::fmt::Debug) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}"))
}

/// The reply to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

impl Conn {
    /// Opens a connection and creates (`session` None) or resumes a
    /// session.
    pub fn connect(
        a: SocketAddr,
        server: usize,
        session: Option<&Session>,
        timeout_ms: i32,
        io_timeout: Duration,
    ) -> Result<(Conn, Session), ConnectError> {
        let mut stream =
            TcpStream::connect_timeout(&a, Duration::from_secs(1)).map_err(ConnectError::Io)?;
        stream
            .set_read_timeout(Some(io_timeout))
            .map_err(ConnectError::Io)?;
        stream
            .set_write_timeout(Some(io_timeout))
            .map_err(ConnectError::Io)?;
        let _ = stream.set_nodelay(true);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: session.map(|s| s.last_zxid).unwrap_or(0),
            timeout_ms: session.map(|s| s.timeout_ms).unwrap_or(timeout_ms),
            session_id: session.map(|s| s.id).unwrap_or(0),
            passwd: session.map(|s| s.passwd.clone()).unwrap_or(vec![0; 16]),
            read_only: Some(false),
        };
        write_frame(&mut stream, &req.encode()).map_err(ConnectError::Io)?;
        let frame = read_frame(&mut stream).map_err(ConnectError::Io)?;
        let resp = ConnectResponse::decode(&frame).map_err(|e| ConnectError::Io(invalid(e)))?;
        if resp.session_id == 0 || resp.timeout_ms <= 0 {
            return Err(ConnectError::Expired);
        }
        let out = Session {
            id: resp.session_id,
            passwd: resp.passwd,
            timeout_ms: resp.timeout_ms,
            last_zxid: session.map(|s| s.last_zxid).unwrap_or(0),
        };
        Ok((
            Conn {
                stream,
                xid: 0,
                server,
            },
            out,
        ))
    }

    /// Sends one request and waits for its reply, skipping notifications.
    pub fn call(&mut self, req: &Request) -> io::Result<Reply> {
        self.xid += 1;
        let xid = self.xid;
        write_frame(&mut self.stream, &proto::encode_request(xid, req))?;
        // Bounded: a server sends at most a handful of notifications here.
        for _ in 0..10_000 {
            let frame = read_frame(&mut self.stream)?;
            let mut r = Reader::new(&frame);
            let h = ReplyHeader::read(&mut r).map_err(invalid)?;
            if h.xid == -1 || h.xid == -2 {
                continue;
            }
            if h.xid != xid {
                return Err(invalid(format!("reply xid {} to request xid {xid}", h.xid)));
            }
            return Ok(Reply {
                zxid: h.zxid,
                err: h.err,
                body: frame[16..].to_vec(),
            });
        }
        Err(invalid("too many notifications"))
    }

    pub fn raw(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

pub fn create_req(path: &str, data: &[u8], ephemeral: bool) -> Request {
    Request::Create {
        opcode: proto::op::CREATE,
        req: CreateRequest {
            path: path.into(),
            data: data.to_vec(),
            acl: Acl::open_unsafe(),
            flags: if ephemeral { 1 } else { 0 },
            ttl: None,
        },
    }
}

pub fn set_req(path: &str, data: &[u8]) -> Request {
    Request::SetData {
        path: path.into(),
        data: data.to_vec(),
        version: -1,
    }
}

pub fn get_req(path: &str) -> Request {
    Request::GetData {
        path: path.into(),
        watch: false,
    }
}

pub fn children_req(path: &str) -> Request {
    Request::GetChildren {
        path: path.into(),
        watch: false,
    }
}

/// (data, stat) of a getData reply body.
pub fn parse_get(body: &[u8]) -> io::Result<(Vec<u8>, Stat)> {
    let mut r = Reader::new(body);
    let data = r.buffer().map_err(invalid)?;
    let stat = Stat::read(&mut r).map_err(invalid)?;
    Ok((data, stat))
}

/// Children of a getChildren reply body.
pub fn parse_children(body: &[u8]) -> io::Result<Vec<String>> {
    let mut r = Reader::new(body);
    r.vec_ustring().map_err(invalid)
}
