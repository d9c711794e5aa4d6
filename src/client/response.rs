//! The plain HTTP answers tinyws gives on its WebSocket port, and how it sends them:
//! every one closes the connection after it, without resetting it (`shut_and_drain`,
//! which a WebSocket the server fails uses too, after its close frame).

use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::outbox::Client;
use crate::client::transport::{Transport, retry};
use crate::config::Config;
use crate::util::tag::Tag;

/// A plain request on its connection's thread, for whoever answers it: http/serve.rs, or
/// the optional layer whose path it is. What the answer needs of the connection: the
/// client, how the log names it, the settings, the request head, and whether `--trace`
/// follows it.
pub(crate) struct Plain<'a> {
    /// An `Arc`: the frame lab reads through a stream of the connection's type, which
    /// holds one (ws/stream.rs).
    pub(crate) client: &'a Arc<Client>,
    pub(crate) tag: Tag<'a>,
    pub(crate) config: &'a Config,
    pub(crate) head: &'a [u8],
    // Read by the optional layers' answers: unused in a build without them.
    #[allow(dead_code)]
    pub(crate) traced: bool,
}

/// A plain HTTP answer. Every one closes the connection after it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// One sentence for a human, `text/plain` (unless a `Content-Type` header is set).
    pub body: String,
    /// The answer to a HEAD request: the same header fields, `Content-Length` included,
    /// but no content (RFC 9110 §9.3.2).
    pub head_only: bool,
}

impl Response {
    pub fn new(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into();
        body.push('\n');
        Response {
            status,
            headers: Vec::new(),
            body,
            head_only: false,
        }
    }

    /// The same answer for a HEAD request: headers only.
    pub fn for_head(mut self) -> Response {
        self.head_only = true;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        let mut connection = "close".to_string();
        let mut content_type = "text/plain; charset=utf-8";
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("Connection") {
                connection = format!("{value}, close");
            } else if name.eq_ignore_ascii_case("Content-Type") {
                content_type = value;
            } else {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
            self.body.len()
        ));
        if !self.head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// `503` for a client admission turns away (admission.rs): `why`, and when to retry.
pub(crate) fn unavailable(why: &str) -> Response {
    Response::new(503, format!("{why}; try again shortly.")).header("Retry-After", "1")
}

/// Sends `response` and closes without resetting the connection ([`shut_and_drain`]).
pub(crate) fn respond_and_close(transport: &Transport, response: &Response, linger: Duration) {
    respond(transport, response);
    close(transport, linger);
}

/// The first half of [`respond_and_close`]: sends `response` (a failed write is the
/// client's loss; nothing else is waiting for it).
pub(crate) fn respond(transport: &Transport, response: &Response) {
    let _ = transport.write_all(&response.to_bytes());
}

/// The second half of [`respond_and_close`], for a caller that frees something between
/// the two (the inspector's place for a poll).
pub(crate) fn close(transport: &Transport, linger: Duration) {
    transport.close_notify();
    shut_and_drain(transport.socket(), linger, DRAIN_MAX);
}

/// How long to keep reading after a final answer (an HTTP error, a failing close), so
/// that closing does not reset it.
pub(crate) const DRAIN_FOR: Duration = Duration::from_secs(1);

/// At most this much is read and dropped after an HTTP answer.
pub(crate) const DRAIN_MAX: usize = 64 * 1024;

/// Shuts the write side (the peer sees FIN after what was sent), then reads and drops
/// input until the peer closes, `linger` passes or `max` bytes were read. Closing a
/// socket with unread input makes the kernel send RST instead of FIN, and the peer may
/// then lose what was sent last before it reads it.
pub(crate) fn shut_and_drain(mut stream: &TcpStream, linger: Duration, max: usize) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + linger;
    let mut sink = [0u8; 1024];
    let mut drained = 0usize;
    while drained < max {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match retry(|| stream.read(&mut sink)) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}
