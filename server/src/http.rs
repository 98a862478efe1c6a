//! The HTTP endpoints: Prometheus `/metrics` (ZooKeeper's
//! `metricsProvider.httpHost`/`httpPort`, default port 7000) and the
//! AdminServer (`admin.serverAddress`/`serverPort`/`commandURL`, default
//! 0.0.0.0:8080/commands), with Paddock's `/ready` and `/live` probes on
//! the AdminServer port.
//!
//! hyper serves HTTP/1.1 on the server's tokio runtime; nothing here reads
//! the node. A request becomes a [`Query`] sent to the driver (the node's
//! only owner), which answers on a oneshot channel between two turns, so
//! every answer is one consistent view and the hot path takes no lock.
//! A driver that does not answer within `ANSWER_WAIT` gets a 503.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

/// Queries waiting for the driver; past this, callers get a 503.
pub const QUERIES_MAX: usize = 64;
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// What an HTTP request asks the driver.
#[derive(Debug)]
pub enum Query {
    Metrics,
    /// An AdminServer command by name (`""` lists the commands).
    Command(String),
    Ready,
    Live,
}

/// The driver's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, v: &serde_json::Value) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: serde_json::to_string_pretty(v).unwrap_or_default(),
        }
    }
}

pub struct Asked {
    pub query: Query,
    pub reply: oneshot::Sender<Answer>,
}

/// Which paths a listener serves.
#[derive(Clone, Debug)]
pub enum Routes {
    /// `/metrics` only.
    Metrics,
    /// `<command_url>`, `<command_url>/<name>`, `/ready`, `/live`.
    Admin { command_url: String },
}

/// Binds `addr` and serves `routes` until the process ends.
pub async fn serve(
    addr: SocketAddr,
    routes: Routes,
    driver: mpsc::Sender<Asked>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!("http accept on {bound}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let routes = routes.clone();
            let driver = driver.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(req, routes.clone(), driver.clone()));
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                {
                    debug!("http connection from {peer}: {e}");
                }
            });
        }
    });
    Ok(bound)
}

fn route(method: &Method, path: &str, routes: &Routes) -> Option<Query> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match routes {
        Routes::Metrics => (path == "/metrics").then_some(Query::Metrics),
        Routes::Admin { command_url } => {
            if path == "/ready" {
                return Some(Query::Ready);
            }
            if path == "/live" {
                return Some(Query::Live);
            }
            let rest = path.strip_prefix(command_url.as_str())?;
            let rest = rest.trim_matches('/');
            if rest.contains('/') {
                return None;
            }
            Some(Query::Command(rest.to_string()))
        }
    }
}

async fn answer(
    req: Request<Incoming>,
    routes: Routes,
    driver: mpsc::Sender<Asked>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let Some(query) = route(req.method(), req.uri().path(), &routes) else {
        return Ok(reply(404, "text/plain", "not found\n".into()));
    };
    let (tx, rx) = oneshot::channel();
    if driver.try_send(Asked { query, reply: tx }).is_err() {
        return Ok(reply(503, "text/plain", "busy\n".into()));
    }
    match tokio::time::timeout(ANSWER_WAIT, rx).await {
        Ok(Ok(a)) => Ok(reply(a.status, a.content_type, a.body)),
        _ => Ok(reply(
            503,
            "text/plain",
            "the server did not answer\n".into(),
        )),
    }
}

fn reply(status: u16, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_command_url() {
        let admin = Routes::Admin {
            command_url: "/commands".into(),
        };
        let get = Method::GET;
        assert!(
            matches!(route(&get, "/commands", &admin), Some(Query::Command(c)) if c.is_empty())
        );
        assert!(
            matches!(route(&get, "/commands/mntr", &admin), Some(Query::Command(c)) if c == "mntr")
        );
        assert!(matches!(route(&get, "/ready", &admin), Some(Query::Ready)));
        assert!(route(&get, "/commands/a/b", &admin).is_none());
        assert!(route(&Method::POST, "/commands/mntr", &admin).is_none());
        assert!(matches!(
            route(&get, "/metrics", &Routes::Metrics),
            Some(Query::Metrics)
        ));
        assert!(route(&get, "/commands", &Routes::Metrics).is_none());
    }
}
