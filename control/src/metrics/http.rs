//! The `/metrics` endpoint: one thread, `tiny_http`, plain HTTP on the address the
//! operator gave (nothing else is bound). `GET /metrics` answers the scrape; any other
//! path is 404, any other method 405.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::Metrics;

/// OpenMetrics 1.0 text, as Prometheus asks for it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The endpoint could not be started.
#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint {addr}: {reason}")]
pub struct StartError {
    pub addr: SocketAddr,
    pub reason: String,
}

/// A running endpoint; dropping it stops the thread.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0: any free port, see [`MetricsServer::local_addr`]) and serves
    /// scrapes of `metrics` from a thread of its own.
    pub fn start(addr: SocketAddr, metrics: Metrics) -> Result<MetricsServer, StartError> {
        let server = tiny_http::Server::http(addr).map_err(|e| StartError {
            addr,
            reason: e.to_string(),
        })?;
        let bound = server.server_addr().to_ip().ok_or_else(|| StartError {
            addr,
            reason: "not an IP listener".into(),
        })?;
        let server = Arc::new(server);
        let s = server.clone();
        let thread = std::thread::Builder::new()
            .name("espgw-metrics".into())
            .spawn(move || serve(&s, metrics))
            .map_err(|e| StartError {
                addr,
                reason: e.to_string(),
            })?;
        Ok(MetricsServer {
            server,
            addr: bound,
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn serve(server: &tiny_http::Server, mut metrics: Metrics) {
    // One buffer for every scrape (see `Metrics::scrape_into`).
    let mut buf = String::new();
    // `incoming_requests` ends when `unblock` is called.
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("");
        // A scraper that hung up mid-answer is its own problem.
        let _ = if *req.method() != tiny_http::Method::Get {
            req.respond(tiny_http::Response::from_string("only GET\n").with_status_code(405))
        } else if path != "/metrics" {
            req.respond(tiny_http::Response::from_string("see /metrics\n").with_status_code(404))
        } else {
            metrics.scrape_into(&mut buf);
            let headers = header("Content-Type", CONTENT_TYPE).into_iter().collect();
            // The length is known: a Content-Length and the body as it is, also to an
            // HTTP/1.1 scraper (tiny_http chunks anything from 32 KiB up by default).
            req.respond(
                tiny_http::Response::new(
                    tiny_http::StatusCode(200),
                    headers,
                    buf.as_bytes(),
                    Some(buf.len()),
                    None,
                )
                .with_chunked_threshold(usize::MAX),
            )
        };
    }
}
