//! One client's life, on its own thread: request head → checks → handshake → read/reply
//! loop → close. Nothing here may panic the server; every blocking call is bounded.

use std::fmt;
use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use tungstenite::error::ProtocolError;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::escape;
use crate::files::Answer;
use crate::head::{self, HeadError};
use crate::outbox::Client;
use crate::response::{self, respond_and_close};
use crate::room::{Place, Room};

use crate::route::{self, Verdict};
use crate::shared::Shared;
use crate::socket::{DRAIN_FOR, is_stalled, is_timeout, shut_and_drain};
use crate::stream::Stream;
use crate::{inspect, page, trace, tune};

/// Whether a request tinyws accepted was refused by tungstenite's handshake (see `open`).
static DISAGREED: AtomicBool = AtomicBool::new(false);

pub(crate) fn run(shared: &Arc<Shared>, client: Arc<Client>, accepted: Instant) {
    let Some((mut ws, member)) = open(shared, &client, accepted) else {
        // An upgrade that failed after its checks: its record says so (inspect.rs).
        if let Some(record) = client.recorder() {
            record.end("-- ended before the WebSocket opened".into());
        }
        return;
    };
    let end = match catch_unwind(AssertUnwindSafe(|| {
        shared.handler.on_open(&client);
        serve(&mut ws, shared, member.as_ref().map(Place::room))
    })) {
        Ok(end) => end,
        Err(_) => {
            // RFC 6455 §7.4.1: 1011, the server hit an unexpected condition.
            let sent = client.close(1011, "internal error");
            End::Failed {
                code: 1011,
                sent,
                why: "the message handler panicked".into(),
            }
        }
    };
    finish(shared, &client, member, end);
}

/// Everything up to an open WebSocket: the request head, the checks, the handshake, a
/// place in the room. Answers and logs every way this can end early (then `None`).
/// Not inlined: its frame is large, and the idle read loop must not sit below it (the
/// stack pages it touched are given back while idle: tune/stack.rs).
#[inline(never)]
fn open<'s>(
    shared: &'s Arc<Shared>,
    client: &Arc<Client>,
    accepted: Instant,
) -> Option<(WebSocket<Stream>, Option<Place<'s>>)> {
    let cfg = &shared.config;
    let peer = client.peer_addr();
    let id = client.id();
    let tag = shared.tag(id);
    // Latency: replies are batched by the stream, so Nagle's delay only hurts.
    let _ = client.socket().set_nodelay(true);
    client.transport().set_write_timeout(cfg.write_timeout);
    // --trace-only: the other connections are not traced at all.
    let traced = trace::follows(cfg, id, peer);
    if traced && let Some(sink) = trace::Sink::new(id, true, None) {
        client.trace_writes(sink, trace::Detail::of(cfg));
        trace::emit(id, &format!("-- connection from {peer}"));
    }

    let deadline = accepted + cfg.handshake_timeout;
    let head = match head::read_head(client.transport(), cfg.max_head_size, deadline) {
        Ok(head) if !shared.head_received(id) => {
            debug!("{tag} {peer}: pushed out to make room for a new connection; closed");
            drop(head);
            return None;
        }
        Ok(head) => head,
        Err(HeadError::TooLarge) => {
            info!(
                "{tag} {peer}: request head over {} bytes; answered 431",
                cfg.max_head_size
            );
            let answer = response::too_large(cfg.max_head_size);
            respond_and_close(client.transport(), &answer, DRAIN_FOR);
            return None;
        }
        Err(HeadError::TimedOut { partial }) => {
            info!(
                "{tag} {peer}: no complete request head within {}; closed",
                crate::config::format_duration(cfg.handshake_timeout)
            );
            if partial {
                let answer = response::timed_out(cfg.handshake_timeout);
                respond_and_close(client.transport(), &answer, Duration::ZERO);
            }
            return None;
        }
        Err(HeadError::Closed) => {
            debug!("{tag} {peer}: closed before sending a request");
            return None;
        }
        Err(HeadError::Io(e)) => {
            #[cfg(feature = "tls")]
            if crate::tls::is_not_tls(&e) {
                // Someone typed http:// or ws:// for a wss:// server: say so in plain text,
                // the only language that client understands.
                info!("{tag} {peer}: plain text on the TLS port; answered 400");
                let _ = io::Write::write_all(&mut client.socket(), &response::not_tls().to_bytes());
                shut_and_drain(client.socket(), DRAIN_FOR, crate::socket::DRAIN_MAX);
                return None;
            }
            if client.transport().is_tls() && e.kind() == io::ErrorKind::InvalidData {
                // Worth an operator's eye: often a client that does not trust the
                // certificate (it sends an alert and gives up).
                info!("{tag} {peer}: TLS handshake failed: {e}");
            } else {
                debug!("{tag} {peer}: reading the request failed: {e}");
            }
            return None;
        }
    };

    // The inspector's own plain requests: the projector view and the page's polls.
    // Only with a valid Host (and one of `allow_hosts`): else `check` refuses it below.
    if let Some(route) = inspect::route(&head.buf[..head.len])
        .filter(|_| !route::host_refused(&head.buf[..head.len], cfg))
    {
        // A poll's place among those under way, kept until its answer is written.
        let mut slot = None;
        let answer = match route {
            inspect::Route::View { head_only } => {
                let view = if cfg.inspect {
                    page::projector(cfg, &head.buf[..head.len])
                } else {
                    inspect::projector_off()
                };
                info!(
                    "{tag} {peer}: {} answered {}",
                    inspect::VIEW_PATH,
                    view.status
                );
                if head_only { view.for_head() } else { view }
            }
            inspect::Route::Poll { target, head_only } => {
                let (answer, place) = shared.inspect.poll(target, head_only, peer);
                if let Some(place) = &place {
                    place.writing(client.socket());
                }
                slot = place;
                // Debug only: the page asks again after every burst of frames.
                debug!(
                    "{tag} {peer}: inspector poll {} answered {}",
                    escape::client(&crate::secrets::redact_target(target)),
                    answer.status
                );
                answer
            }
        };
        if traced {
            // Not narrated: a page polls after every burst of frames, which would bury
            // the trace of the connections themselves.
            trace::emit(
                id,
                &format!(
                    "-- the inspector's (a page's poll, or the projector view): answered {}, not traced",
                    answer.status
                ),
            );
        }
        // The answer and the poll's place are freed once it is written, before the
        // lingering close: the page's next poll may come at once.
        response::respond(client.transport(), &answer);
        drop((answer, slot));
        response::close(client.transport(), DRAIN_FOR);
        return None;
    }
    // The inspector: a record only for a connection that brought a token (or every one,
    // for the projector view); otherwise `None`, and nothing below allocates for it.
    let record = shared.inspect.recorder(id, peer, &head.buf[..head.len]);
    let sink = trace::Sink::new(id, traced, record.clone());
    if let Some(sink) = &sink
        && record.is_some()
    {
        client.trace_writes(sink.clone(), trace::Detail::of(cfg));
    }
    let verdict = match &sink {
        Some(sink) => trace::check(sink, &head.buf[..head.len], cfg),
        None => route::check(&head.buf[..head.len], cfg),
    };
    if let Some(record) = &record {
        // Only upgrades are kept: not page loads, not refusals.
        match &verdict {
            Verdict::Upgrade { .. } => record.show(),
            _ => {
                record.discard();
                // What is written now (the page, a refusal) goes to the trace alone.
                client.untrace_writes();
                if let Some(sink) = trace::Sink::new(id, traced, None) {
                    client.trace_writes(sink, trace::Detail::of(cfg));
                }
            }
        }
    }
    let (path, rewritten, protocol) = match verdict {
        Verdict::Upgrade {
            path,
            rewritten,
            protocol,
            note,
        } => {
            if let Some(note) = note {
                info!("{tag} {peer}: {note}");
            }
            (path, rewritten, protocol)
        }
        Verdict::Page { head_only, path } => {
            answer_page(shared, client, &head.buf[..head.len], head_only, path);
            return None;
        }
        Verdict::File {
            head_only,
            path,
            if_modified_since,
            not_found,
        } => {
            let request = FileRequest {
                head_only,
                path: &path,
                if_modified_since: if_modified_since.as_deref(),
                not_found,
            };
            answer_file(shared, client, &head.buf[..head.len], request);
            return None;
        }
        Verdict::Refuse { response, note } => {
            let line = head.buf[..head.len]
                .split(|&b| b == b'\n')
                .next()
                .unwrap_or(b"");
            // The request line as sent, but for credentials in its query.
            let (line, _) = crate::secrets::redact(line);
            // The answer's text quotes the client too (its path, its Origin).
            info!(
                "{tag} {peer}: \"{}\" answered {}: {}",
                escape::client(line.trim_ascii_end()),
                response.status,
                escape::client(response.body.trim_end())
            );
            if let Some(note) = note {
                warn!("{tag} {peer}: {note}");
            }
            respond_and_close(client.transport(), &response, DRAIN_FOR);
            return None;
        }
    };

    let ws_config = WebSocketConfig::default()
        // tungstenite's own buffer stays small: an idle connection keeps it. The stream
        // reads up to read_buffer_size at once when data streams in (tune/reads.rs).
        .read_buffer_size(tune::IDLE_READ.min(cfg.read_buffer_size))
        // tungstenite hands every frame straight to the stream, which batches (stream.rs).
        .write_buffer_size(0)
        .max_message_size(Some(cfg.max_message_size))
        .max_frame_size(Some(cfg.max_frame_size));
    // tungstenite replays the head to parse it again; give it the copy it accepts.
    let head = match rewritten {
        Some(mut copy) => {
            let len = copy.len();
            copy.extend_from_slice(&head.buf[head.len..]); // early frames stay behind it
            head::Head { buf: copy, len }
        }
        None => head,
    };
    let stream = Stream::new(
        client.clone(),
        head,
        cfg.read_buffer_size,
        cfg.write_buffer_size,
        sink.map(|sink| (sink, trace::Detail::of(cfg))),
    );
    #[allow(clippy::result_large_err)] // the signature is tungstenite's Callback
    let log_headers = |req: &Request, mut resp: Response| {
        // tungstenite leaves subprotocols to the server: the one handshake.rs chose, a
        // token the client sent (so a valid header value), on one line (RFC 6455 §11.3.4).
        if let Some(value) = protocol
            .as_deref()
            .and_then(|p| tungstenite::http::HeaderValue::from_str(p).ok())
        {
            resp.headers_mut().insert("Sec-WebSocket-Protocol", value);
        }
        if log::log_enabled!(log::Level::Debug) {
            // Credentials hidden, as on the trace and the page (secrets.rs); the rest as
            // sent, escaped.
            let headers: Vec<String> = req
                .headers()
                .iter()
                .map(|(name, value)| {
                    if crate::secrets::is_secret_name(name.as_str()) {
                        format!("{name}: <hidden>")
                    } else {
                        format!("{name}: \"{}\"", escape::client(value.as_bytes()))
                    }
                })
                .collect();
            debug!(
                "{tag} {peer}: handshake request {} [{}]",
                escape::client(&crate::secrets::redact_target(&req.uri().to_string())),
                headers.join(", ")
            );
            debug!(
                "{tag} {peer}: handshake response {} {:?}",
                resp.status(),
                resp.headers()
            );
        }
        Ok(resp)
    };
    let mut ws = match tungstenite::accept_hdr_with_config(stream, log_headers, Some(ws_config)) {
        Ok(ws) => ws,
        Err(tungstenite::HandshakeError::Failure(e)) if !matches!(e, tungstenite::Error::Io(_)) => {
            // Our checks passed but tungstenite's did not: they disagree on a corner
            // (for_tungstenite in handshake.rs covers the known ones). Never a silent close.
            let response =
                response::Response::new(400, format!("This request cannot be upgraded ({e})."));
            // Worth a report, but once: a client that found such a corner must not be able
            // to fill the log at warn level with it.
            if DISAGREED.swap(true, Ordering::Relaxed) {
                debug!(
                    "{tag} {peer}: tinyws accepted the request but tungstenite refused it ({e}); answered 400"
                );
            } else {
                warn!(
                    "{tag} {peer}: tinyws accepted the request but tungstenite refused it ({e}); answered 400. Please report the request head (--trace shows it); further ones are logged at debug only."
                );
            }
            respond_and_close(client.transport(), &response, DRAIN_FOR);
            return None;
        }
        Err(e) => {
            // Our own checks passed, so this is a write failure (client gone).
            info!("{tag} {peer}: handshake failed: {e}");
            return None;
        }
    };
    ws.get_mut().end_handshake();
    if let Err(e) = client.upgrade(path, protocol) {
        info!("{tag} {peer}: handshake failed: sending the 101: {e}");
        return None;
    }
    if let Some(record) = &record {
        record.upgraded();
    }
    // Broadcast mode: a writer thread and a place in the room (room.rs, writer.rs), or
    // in the room of its path (rooms.rs).
    let member = if cfg.broadcast {
        let place = if cfg.rooms {
            shared.rooms.join(client.path(), client, cfg)
        } else {
            Place::in_room(&shared.room, client, cfg)
        };
        match place {
            Ok(member) => Some(member),
            Err(e) => {
                warn!("{tag} {peer}: cannot start its writer thread ({e}); closed with 1013");
                client.close(1013, "try again later");
                client.end_tls();
                return None;
            }
        }
    } else {
        None
    };
    let subprotocol = client
        .protocol()
        .map_or(String::new(), |p| format!(", subprotocol {p}"));
    if let Some(place) = &member {
        let n = place.room().len();
        info!(
            "{tag} {peer}: opened {}{subprotocol}, {n} in the room",
            escape::client(client.path())
        );
    } else {
        info!(
            "{tag} {peer}: opened {}{subprotocol}",
            escape::client(client.path())
        );
    }
    if shared.is_stopping() {
        client.close(1001, crate::outbox::GOING_AWAY);
        client.end_tls();
        info!("{tag} {peer}: closed, code 1001 (server shutting down)");
        return None;
    }
    Some((ws, member))
}

/// The teaching page (page.rs) for a plain GET or HEAD of `path` (`/` or `/.tinyws`).
fn answer_page(shared: &Shared, client: &Client, head: &[u8], head_only: bool, path: &str) {
    let (id, peer) = (client.id(), client.peer_addr());
    let tag = shared.tag(id);
    let mut page = page::page(&shared.config, head);
    if head_only {
        info!("{tag} {peer}: HEAD {path} answered 200 with the teaching page's headers");
        page = page.for_head();
    } else {
        info!("{tag} {peer}: GET {path} answered 200 with the teaching page");
    }
    respond_and_close(client.transport(), &page, DRAIN_FOR);
}

/// A plain GET or HEAD with `static_dir` set (handshake.rs `Verdict::File`).
struct FileRequest<'a> {
    head_only: bool,
    path: &'a str,
    if_modified_since: Option<&'a str>,
    not_found: Option<response::Response>,
}

/// `static_dir`: answers from the directory (files.rs), on this connection's thread, so
/// it holds its slot of `max_connections` like any connection. The file goes out in
/// chunks of `files::CHUNK` straight to the socket (or TLS), under the write floor set
/// in `open`: a client that reads less than 16 KiB per write timeout is cut. Then the
/// usual close: close_notify, half-close, a short drain. One info line per answer.
fn answer_file(shared: &Shared, client: &Client, head: &[u8], request: FileRequest<'_>) {
    let (id, peer) = (client.id(), client.peer_addr());
    let tag = shared.tag(id);
    let Some(files) = &shared.files else {
        return; // never: the verdict is only given with `static_dir`, and bind opened it
    };
    let method = if request.head_only { "HEAD" } else { "GET" };
    let path = request.path;
    let (status, answer, body) = match files.answer(method, path, request.if_modified_since) {
        Answer::Fallback => {
            answer_page(shared, client, head, request.head_only, path);
            return;
        }
        Answer::Reply { status: 404, .. } if request.not_found.is_some() => {
            let Some(mut endpoint) = request.not_found else {
                return;
            };
            if request.head_only {
                endpoint = endpoint.for_head();
            }
            info!(
                "{tag} {peer}: {method} \"{}\" answered 426: no file there, and it is the WebSocket endpoint",
                escape::client(path)
            );
            respond_and_close(client.transport(), &endpoint, DRAIN_FOR);
            return;
        }
        Answer::Reply { status, head, body } => (status, head, body),
    };
    // --trace: the answer's head, as for every other HTTP answer (not the file's bytes).
    if trace::follows(&shared.config, id, peer) {
        trace::emit(id, &trace::http_lines("->", "answer head", &answer));
    }
    let mut out = ToClient {
        transport: client.transport(),
        sent: 0,
    };
    let result = out
        .write_all(&answer)
        .and_then(|()| body.map_or(Ok(0), |body| body.send(&mut out)));
    match result {
        Ok(_) => {
            info!(
                "{tag} {peer}: {method} \"{}\" answered {status} from static_dir ({} bytes)",
                escape::client(path),
                out.sent
            );
            client.end_tls();
        }
        // The head, or part of the file, is out: the client sees a body shorter than
        // its Content-Length, which it must treat as incomplete (RFC 9112 §8).
        Err(e) => info!(
            "{tag} {peer}: {method} \"{}\" answered {status} from static_dir, cut after {} bytes: {}",
            escape::client(path),
            out.sent,
            crate::socket::write_failure(e)
        ),
    }
    shut_and_drain(client.socket(), DRAIN_FOR, crate::socket::DRAIN_MAX);
}

/// The socket (or TLS) as an `io::Write` for `files::Body::send`, counting what went out.
struct ToClient<'a> {
    transport: &'a crate::transport::Transport,
    sent: u64,
}

impl io::Write for ToClient<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.transport.write_all(buf)?;
        self.sent += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// After the read loop: the handler's `on_close`, leaving the room, the drain after a
/// failure, and the log line that says how the connection ended. Not inlined, like
/// `open`.
#[inline(never)]
fn finish(shared: &Shared, client: &Client, member: Option<Place<'_>>, end: End) {
    let cfg = &shared.config;
    let peer = client.peer_addr();
    let id = client.id();
    let tag = shared.tag(id);
    // Always, also after a panic: the handler may keep state per client. Still a member
    // here, so a broadcast from on_close ("alice left") reaches the rest of the room.
    if catch_unwind(AssertUnwindSafe(|| shared.handler.on_close(client))).is_err() {
        warn!("{tag} {peer}: the handler's on_close panicked");
    }
    // Leave the room and let the writer send what ends with a close frame, before saying
    // why the connection ended: the writer may have been the one to end it.
    drop(member);
    // After the last frame (the writer is joined), before TCP closes or half-closes.
    client.end_tls();
    if let End::Failed { sent: true, .. } = end {
        // The close frame is out (written inline in echo mode; in broadcast mode the
        // writer thread, joined above, wrote it). The client is often still sending (an
        // oversized message, say), and closing with its bytes unread makes the kernel send
        // RST, so the client may lose our close frame before reading it: Autobahn saw that
        // as an unclean close in section 9 with the default caps. So half-close and drain
        // for a bounded time first, as for HTTP answers.
        shut_and_drain(client.socket(), DRAIN_FOR, 1 << 20);
    }
    let end = client.dropped_reason().map_or(end, End::Stalled);
    if trace::follows(cfg, id, peer) {
        trace::emit(id, &format!("-- {end}"));
    }
    if let Some(record) = client.recorder() {
        record.end(format!("-- {end}"));
    }
    match &end {
        End::Failed { .. } | End::Stalled(_) => warn!("{tag} {peer}: {end}"),
        _ => info!("{tag} {peer}: {end}"),
    }
}

/// How a connection ended, for the log line.
enum End {
    /// The close handshake completed; `code` is the client's (or ours, on shutdown), and
    /// so is `reason`: shown escaped (escape.rs), on the log line and the trace's.
    Closed { code: Option<u16>, reason: String },
    /// We failed the connection with a close frame (RFC 6455 §7.1.7).
    Failed { code: u16, sent: bool, why: String },
    /// The TCP connection went away without a close frame (the 1006 case).
    Vanished(String),
    /// A write or the keepalive timed out.
    Stalled(String),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Closed {
                code: Some(c),
                reason,
            } if reason.is_empty() => write!(f, "closed, code {c}"),
            End::Closed {
                code: Some(c),
                reason,
            } => write!(f, "closed, code {c} ({})", escape::client(reason)),
            End::Closed { code: None, .. } => write!(f, "closed, no code"),
            End::Failed {
                code,
                sent: true,
                why,
            } => write!(f, "closed, code {code}: {why}"),
            End::Failed {
                code,
                sent: false,
                why,
            } => {
                write!(f, "dropped ({why}); close {code} could not be sent")
            }
            End::Vanished(why) => write!(f, "gone without a close frame ({why})"),
            End::Stalled(why) => write!(f, "dropped: {why}"),
        }
    }
}

/// The read → reply loop. Returns when the connection is over.
/// `room`: broadcast mode, the client's room.
fn serve(ws: &mut WebSocket<Stream>, shared: &Shared, room: Option<&Room>) -> End {
    let cfg = &shared.config;
    let client = ws.get_ref().client().clone();
    let keepalive = (!cfg.ping_interval.is_zero()).then_some(cfg.ping_interval);
    // The read timeout is the keepalive timer: no other wake-up happens while idle
    // (but for giving back memory after a burst: tune/quiet.rs).
    let mut quiet = tune::Quiet::start(ws, keepalive);
    let mut awaiting_pong = false;
    let mut close: Option<(u16, String)> = None;
    loop {
        let result = match ws.read() {
            Ok(msg) => {
                if awaiting_pong {
                    // Any frame proves the peer is alive, not only the pong.
                    awaiting_pong = false;
                    let _ = client.socket().set_read_timeout(keepalive);
                }
                quiet.message_read(ws);
                match msg {
                    Message::Text(_) | Message::Binary(_) => {
                        if cfg.stdout {
                            // Before the handler, which takes the message (pipes.rs).
                            crate::pipes::record(shared, &client, &msg);
                        }
                        match (shared.handler.on_message(&client, msg), room) {
                            // Control frames are the server's to send, in both modes
                            // (RFC 6455 §5.5; handler.rs): dropped, with one warning.
                            (
                                Some(
                                    other @ (Message::Ping(_)
                                    | Message::Pong(_)
                                    | Message::Close(_)
                                    | Message::Frame(_)),
                                ),
                                _,
                            ) => {
                                client.unsendable(&other);
                                Ok(())
                            }
                            // Broadcast mode: the reply goes to the room (room.rs).
                            (Some(reply), Some(room)) => {
                                room.broadcast(&reply, Some(&client));
                                Ok(())
                            }
                            // Queued in the outbox; the stream writes it before it next
                            // waits for the client (stream.rs).
                            (Some(reply), None) => ws.write(reply),
                            (None, _) => Ok(()),
                        }
                    }
                    Message::Close(frame) => {
                        close = Some(frame.map_or((1005, String::new()), |f| {
                            (f.code.into(), f.reason.to_string())
                        }));
                        // tungstenite queued the echo of the close (§5.5.1); send it now.
                        ws.flush()
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
                }
            }
            Err(e) => Err(e),
        };
        let Err(e) = result else { continue };
        match e {
            tungstenite::Error::Io(ref io) if is_timeout(io) => {
                if quiet.timed_out(ws) {
                    continue;
                }
                // The keepalive interval passed in silence (RFC 6455 §5.5.2).
                if awaiting_pong {
                    return End::Stalled(format!(
                        "no answer to the keepalive ping within {}",
                        crate::config::format_duration(cfg.ping_timeout)
                    ));
                }
                awaiting_pong = true;
                let _ = client.socket().set_read_timeout(Some(cfg.ping_timeout));
                if let Err(e) = ws
                    .write(Message::Ping(b"tinyws".as_slice().into()))
                    .and_then(|_| ws.flush())
                {
                    return End::Stalled(format!("sending the keepalive ping failed: {e}"));
                }
            }
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                // tungstenite reports the end from inside the flush that queued the close
                // reply, before flushing the stream: the reply is still in the outbox.
                let _ = client.flush();
                let (code, reason) = close.unwrap_or((1005, String::new()));
                return End::Closed {
                    code: (code != 1005).then_some(code),
                    reason,
                };
            }
            tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                return End::Vanished("connection closed".into());
            }
            tungstenite::Error::Io(io) => {
                return if is_stalled(&io) {
                    End::Stalled(io.to_string())
                } else {
                    End::Vanished(io.to_string())
                };
            }
            // RFC 6455 §7.4.1: which code tells the client what it did wrong.
            tungstenite::Error::Protocol(p) => return fail(&client, 1002, &p.to_string()),
            tungstenite::Error::Utf8(_) => {
                return fail(&client, 1007, "invalid UTF-8 in a text message");
            }
            tungstenite::Error::Capacity(c) => return fail(&client, 1009, &c.to_string()),
            other => return fail(&client, 1011, &other.to_string()),
        }
    }
}

/// Fails the connection (RFC 6455 §7.1.7): a close frame with `code`, then the TCP
/// connection is closed, without waiting for the client's close reply (only draining its
/// input for at most `DRAIN_FOR`).
fn fail(client: &Client, code: u16, why: &str) -> End {
    let sent = client.close(code, why);
    End::Failed {
        code,
        sent,
        why: why.to_string(),
    }
}
