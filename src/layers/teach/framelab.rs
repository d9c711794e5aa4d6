//! The frame lab: bytes a student built on the page, read by the server as if they had
//! come on a WebSocket, and what it would send back. A browser builds and masks every
//! frame itself (RFC 6455 §5.3), so the page cannot send raw frames on its WebSocket:
//! it sends them as hex inside a plain HTTP request, `GET /.framelab?hex=8185…`, and
//! the answer (JSON) says how the connection would go on: still open, closed by the
//! client's close frame, or failed with a close code and the section that decides it;
//! and `reply`, every byte the server would send: the echo of each message, the pongs,
//! the close frame.
//!
//! **The same code as a socket.** A server-role tungstenite `WebSocket` with the limits
//! of every connection (`Config::limits`), of a connection's own type (a [`Wire`] (wire.rs), made
//! by ws/lab.rs), reads the bytes from memory instead of a socket; the end of the bytes
//! is a socket with nothing more to read, and what it writes is kept, not sent. A
//! failure gets the close frame a connection gets (`frame::failure`). The echo is what the
//! default handler (`Echo`) answers: the server's own handler and the room are never
//! reached, and nothing is kept once the answer is sent.
//!
//! **Bounded.** The request line fits in `max_head_size` (else `431` before anything
//! here), and at most [`MAX_BYTES`] of frames are read (else `400`). tungstenite keeps at
//! most the frame it reads and the message it assembles, both under the connection's
//! limits: a header that announces more than `max_frame_size` is refused at once (1009),
//! as on a socket. The reply is never longer than the input and one close frame, since a
//! server's headers are shorter than a client's (no mask). Only the verdict is logged,
//! never a byte of the client's.

use std::io;
use std::sync::Arc;

use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Error, Message};

use crate::client::outbox::Client;
use crate::client::response::Response;
use crate::config::Config;
use crate::frame;
use crate::layers::teach::page::js_string;
use crate::layers::teach::wire::{Open, Wire};
use crate::layers::teach::{inspect, trace};

/// Where the lab answers (a dot name: files.rs never serves one, so no file hides it).
pub(crate) const PATH: &str = "/.framelab";
/// The most bytes of frames one request may carry: a 126-byte frame takes 134, a
/// message in a few fragments a few hundred. 8 KiB of hex, the default `max_head_size`.
pub(crate) const MAX_BYTES: usize = 4096;

/// A plain `GET` (or `HEAD`) of [`PATH`]: its query.
pub(crate) struct Lab<'h> {
    query: &'h str,
    head_only: bool,
}

/// Whether `head` asks for the lab. An upgrade of the same path is not the lab's: it
/// goes the way of every upgrade.
pub(crate) fn route(head: &[u8]) -> Option<Lab<'_>> {
    let (head_only, target) = inspect::get_or_head(head)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    (path == PATH && !inspect::asks_to_upgrade(head)).then_some(Lab { query, head_only })
}

/// The answer to a lab request, and what the log says of it (the verdict alone).
pub(crate) fn answer(
    lab: &Lab<'_>,
    config: &Config,
    client: &Arc<Client>,
    open: Open,
) -> (Response, String) {
    let (answer, note) = match bytes_of(lab.query) {
        Ok(bytes) => {
            // tungstenite's read buffer sized to the bytes there are, not its default
            // 128 KiB (which it fills with zeros on the first read): a lab request holds
            // no more than a connection with `--read-buffer-size` does, whatever that is
            // set to. The wire reads a copy of the bytes (at most MAX_BYTES).
            let limits = config.limits().read_buffer_size(bytes.len());
            let mut ws = open(client.clone(), bytes.clone(), limits);
            let outcome = run(&bytes, ws.as_mut());
            let note = format!("{} bytes, {}", bytes.len(), outcome.end.summary());
            let json =
                Response::new(200, outcome.json()).header("Content-Type", "application/json");
            (json, note)
        }
        Err(why) => (Response::new(400, why), "not bytes in hex".into()),
    };
    // The answer is this request's alone.
    let answer = answer.header("Cache-Control", "no-store");
    (
        if lab.head_only {
            answer.for_head()
        } else {
            answer
        },
        note,
    )
}

/// The bytes of `?hex=`: two hex digits per byte and nothing else, at most [`MAX_BYTES`].
/// Each refusal says what to send instead, and quotes nothing of the client's.
fn bytes_of(query: &str) -> Result<Vec<u8>, String> {
    let example = "e.g. ?hex=818537fa213d7f9f4d5158 (two hex digits per byte, no spaces)";
    let Some(hex) = query.split('&').find_map(|p| p.strip_prefix("hex=")) else {
        return Err(format!("Give the frames' bytes as ?hex=, {example}."));
    };
    if hex.is_empty() {
        return Err(format!("No bytes in ?hex=: {example}."));
    }
    if hex.len() > 2 * MAX_BYTES {
        return Err(format!(
            "Too many bytes: the frame lab reads at most {MAX_BYTES} bytes ({} hex digits) per request.",
            2 * MAX_BYTES
        ));
    }
    if let Some(at) = hex.bytes().position(|b| !b.is_ascii_hexdigit()) {
        return Err(format!(
            "Character {} of ?hex= is not a hex digit (0-9, a-f): {example}.",
            at + 1
        ));
    }
    if hex.len() % 2 != 0 {
        return Err(format!(
            "An odd number of hex digits ({}): each byte is two, {example}.",
            hex.len()
        ));
    }
    let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
    Ok(hex
        .as_bytes()
        .chunks(2)
        .map(|p| digit(p[0]) << 4 | digit(p[1]))
        .collect())
}

/// How the connection would go on after these bytes.
enum End {
    /// Every byte was read and the connection stays open: the server waits for more
    /// (`needs`: the bytes the last, unfinished frame still lacks).
    Open { needs: u64 },
    /// The client's close frame was answered (§5.5.1), with its code, if it had one.
    Closed(Option<(u16, String)>),
    /// The server fails the connection (§7.1.7) with this code, reason and section.
    Failed {
        code: u16,
        why: String,
        section: &'static str,
    },
}

struct Outcome {
    end: End,
    /// What the server would send, in order.
    reply: Vec<u8>,
}

/// The bytes as a connection would read them: tungstenite's read loop over memory.
fn run(bytes: &[u8], ws: &mut dyn Wire) -> Outcome {
    let mut close = None;
    let stop = loop {
        let step = match ws.read() {
            // What the echo handler answers.
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.write(msg),
            // tungstenite queued the answer (§5.5.1): out with the flush.
            Ok(Message::Close(frame)) => {
                close = frame.map(|f| (f.code.into(), f.reason.to_string()));
                ws.flush()
            }
            // A ping's pong (§5.5.2) goes out with the next read, as on a socket.
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = step {
            break e;
        }
    };
    let mut reply = ws.written();
    let end = match stop {
        Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock => End::Open {
            needs: unfinished(bytes),
        },
        Error::ConnectionClosed | Error::AlreadyClosed => match sent_close_code(bytes) {
            // §7.4: 1005, 1006, 1015 and the unassigned codes are never sent in a close
            // frame. tungstenite answers 1002 and hands on that code, not the client's:
            // the client did not close, the server failed the connection.
            Some(sent) if !CloseCode::from(sent).is_allowed() => End::Failed {
                code: 1002,
                why: close.map_or_else(String::new, |(_, why)| why),
                section: "§7.4",
            },
            _ => End::Closed(close),
        },
        e => {
            let (code, why) = frame::failure(&e);
            reply.extend(frame::close(code, &why));
            End::Failed {
                code,
                why,
                section: section(&e),
            }
        }
    };
    Outcome { end, reply }
}

/// The bytes the last frame still lacks, when `bytes` end inside one (its header
/// included); 0 when they end between frames.
fn unfinished(mut bytes: &[u8]) -> u64 {
    while let Some(h) = frame::parse(bytes) {
        let size = (h.size as u64).saturating_add(h.len);
        match usize::try_from(size).ok().and_then(|s| bytes.get(s..)) {
            Some(rest) => bytes = rest,
            None => return size - bytes.len() as u64,
        }
    }
    match bytes {
        [] => 0,
        [_] => 1,
        [_, second, ..] => (frame::header_size(*second) - bytes.len()) as u64,
    }
}

/// The status code in the first close frame of `bytes` as the client sent it (§5.5.1:
/// its first two payload bytes, unmasked), if it has one.
fn sent_close_code(mut bytes: &[u8]) -> Option<u16> {
    while let Some(h) = frame::parse(bytes) {
        let end = usize::try_from(h.len).ok()?.checked_add(h.size)?;
        if h.opcode == 0x8 {
            let [a, b, ..] = *bytes.get(h.size..end)? else {
                return None;
            };
            let [m0, m1, ..] = h.mask.unwrap_or_default();
            return Some(u16::from_be_bytes([a ^ m0, b ^ m1]));
        }
        bytes = bytes.get(end..)?;
    }
    None
}

/// The RFC 6455 section that makes the server fail the connection for `e`.
fn section(e: &Error) -> &'static str {
    match e {
        Error::Protocol(p) => match p {
            // Reserved bits and opcodes: no extension was negotiated.
            ProtocolError::NonZeroReservedBits
            | ProtocolError::UnknownControlFrameType(_)
            | ProtocolError::UnknownDataFrameType(_)
            | ProtocolError::InvalidOpcode(_) => "§5.2",
            ProtocolError::UnmaskedFrameFromClient => "§5.1",
            ProtocolError::UnexpectedContinueFrame | ProtocolError::ExpectedFragment(_) => "§5.4",
            ProtocolError::FragmentedControlFrame | ProtocolError::ControlFrameTooBig => "§5.5",
            ProtocolError::InvalidCloseSequence | ProtocolError::ReceivedAfterClosing => "§5.5.1",
            _ => "§7.1.7",
        },
        Error::Utf8(_) => "§8.1",
        // Limits are the server's to set, and 1009 says one was passed (§7.4.1).
        Error::Capacity(_) => "§10.4",
        _ => "§7.4.1",
    }
}

impl End {
    /// For the log: no byte of the client's (a close reason is left out).
    fn summary(&self) -> String {
        match self {
            End::Open { needs } => format!("open, {needs} bytes short of a frame"),
            End::Closed(Some((code, _))) => format!("closed by the client, code {code}"),
            End::Closed(None) => "closed by the client, no code".into(),
            End::Failed { code, section, .. } => format!("failed, code {code} ({section})"),
        }
    }
}

impl Outcome {
    /// `{"end":…,"code":…,"name":…,"reason":…,"section":…,"needs":…,"reply":"81…"}`.
    fn json(&self) -> String {
        let (end, code, reason, section, needs) = match &self.end {
            End::Open { needs } => ("open", None, "", "", *needs),
            End::Closed(close) => {
                let code = close.as_ref().map(|(c, _)| *c);
                let reason = close.as_ref().map_or("", |(_, r)| r.as_str());
                ("closed", code, reason, "§5.5.1", 0)
            }
            End::Failed { code, why, section } => {
                ("failed", Some(*code), why.as_str(), *section, 0)
            }
        };
        let reply: String = self.reply.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{{\"end\":\"{end}\",\"code\":{},\"name\":{},\"reason\":{},\"section\":\"{section}\",\"needs\":{needs},\"reply\":\"{reply}\"}}",
            code.map_or("null".into(), |c| c.to_string()),
            js_string(code.map_or("", trace::close_code_name)),
            js_string(reason),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_frame_says_how_many_bytes_it_lacks() {
        assert_eq!(unfinished(b""), 0);
        assert_eq!(unfinished(&[0x81]), 1);
        // Masked, 16-bit length: a 8-byte header, 2 of them here.
        assert_eq!(unfinished(&[0x81, 0xfe]), 6);
        // A whole frame, then one announcing 0xffff bytes with 3 of them.
        let mut b = vec![0x81, 0x80, 1, 2, 3, 4, 0x81, 0xfe, 0xff, 0xff, 1, 2, 3, 4];
        b.extend([0; 3]);
        assert_eq!(unfinished(&b), 0xffff - 3);
        // 2^63 announced: no overflow.
        let huge = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert_eq!(unfinished(&huge), 1 << 63);
        let most = [
            0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ];
        assert_eq!(unfinished(&most), u64::MAX - 14);
    }
}
