//! A WebSocket's life on its client's thread (ws/mod.rs). Nothing here may panic the
//! server; every blocking call is bounded.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use log::{debug, info, warn};
use tungstenite::error::ProtocolError;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::{Message, WebSocket};

use crate::client::head::{self, Head};
use crate::client::outbox::Client;
use crate::client::response::{self, DRAIN_FOR, respond_and_close, shut_and_drain};
use crate::frame;
use crate::guard::escape;
use crate::guard::floor::is_stalled;
use crate::room::broadcast::{Place, Room};
use crate::shared::Shared;
use crate::util::io::is_timeout;
use crate::ws::stream::Stream;
use crate::{guard::warnings, layers::teach::trace, tune, util::secrets};

/// Whether a request tinyws accepted was refused by tungstenite's handshake (see
/// `handshake`).
static DISAGREED: AtomicBool = AtomicBool::new(false);

/// An upgrade the routing step accepted (http/serve.rs): the request head (and what came
/// behind it), the checks' results, and its observers, if any.
pub(crate) struct Upgrade {
    pub(crate) head: Head,
    pub(crate) checked: Checked,
    /// `--trace` or the inspector: where the frames are narrated.
    pub(crate) observers: trace::Observers,
}

/// A valid WebSocket upgrade of `path` (http/handshake.rs): hand the head to tungstenite's
/// handshake.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) path: String,
    /// The head to hand tungstenite instead of the client's, when tinyws accepts what
    /// tungstenite would refuse (handshake.rs `for_tungstenite`).
    pub(crate) rewritten: Option<Vec<u8>>,
    /// The subprotocol chosen for the `101` (RFC 6455 §4.2.2 /subprotocol/), if any.
    pub(crate) protocol: Option<String>,
    /// For the log at info: the client offered subprotocols and none was chosen.
    pub(crate) note: Option<String>,
}

/// A WebSocket's life after the routing step: `open`, `read_loop`, `finish`.
pub(crate) fn run(shared: &Arc<Shared>, client: Arc<Client>, mut upgrade: Upgrade) {
    let observers = std::mem::take(&mut upgrade.observers);
    let Some((mut ws, member)) = open(shared, &client, upgrade, &observers) else {
        observers.not_opened();
        return;
    };
    let end = match catch_unwind(AssertUnwindSafe(|| {
        shared.handler.on_open(&client);
        read_loop(&mut ws, shared, member.as_ref().map(Place::room))
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
    finish(shared, &client, member, end, &observers);
}

/// Everything from an accepted upgrade to an open WebSocket: tungstenite's handshake
/// over the stream that replays the head, the `101`, a place in the room. Logs every way
/// this can end early (then `None`). Not inlined: its frame is large, and the idle read
/// loop must not sit below it (the stack pages it touched are given back while idle:
/// tune/stack.rs).
#[inline(never)]
fn open<'s>(
    shared: &'s Arc<Shared>,
    client: &Arc<Client>,
    upgrade: Upgrade,
    observers: &trace::Observers,
) -> Option<(WebSocket<Stream>, Option<Place<'s>>)> {
    let tag = shared.tag(client.id());
    let peer = client.peer_addr();
    let path = upgrade.checked.path.clone();
    let protocol = upgrade.checked.protocol.clone();
    let ws = handshake(shared, client, upgrade, observers)?;
    if let Err(e) = client.upgrade(path, protocol) {
        info!("{tag} {peer}: handshake failed: sending the 101: {e}");
        return None;
    }
    observers.upgraded();
    let member = join(shared, client)?;
    // Read before the "opened" line: whoever sees that line and then starts a shutdown
    // (a test, a script) finds this connection among those the shutdown closes.
    let stopping = shared.is_stopping();
    let subprotocol = client
        .protocol()
        .map_or(String::new(), |p| format!(", subprotocol {p}"));
    let room = member.as_ref().map_or(String::new(), |place| {
        format!(", {} in the room", place.room().len())
    });
    info!(
        "{tag} {peer}: opened {}{subprotocol}{room}",
        escape::client(client.path())
    );
    if stopping {
        client.close(1001, crate::client::outbox::GOING_AWAY);
        client.end_tls();
        info!("{tag} {peer}: closed, code 1001 (server shutting down)");
        return None;
    }
    Some((ws, member))
}

/// tungstenite's handshake over the stream that replays the head; its `101` waits in the
/// outbox until `Client::upgrade` sends it.
fn handshake(
    shared: &Shared,
    client: &Arc<Client>,
    upgrade: Upgrade,
    observers: &trace::Observers,
) -> Option<WebSocket<Stream>> {
    let cfg = &shared.config;
    let tag = shared.tag(client.id());
    let peer = client.peer_addr();
    let Upgrade { head, checked, .. } = upgrade;
    // Every connection's limits (`Config::limits`, which the frame lab shares), but
    // tungstenite's own buffer stays small: an idle connection keeps it. The stream
    // reads up to read_buffer_size at once when data streams in (tune/reads.rs).
    let ws_config = cfg
        .limits()
        .read_buffer_size(tune::IDLE_READ.min(cfg.read_buffer_size));
    // tungstenite replays the head to parse it again; give it the copy it accepts.
    let head = match checked.rewritten {
        Some(mut copy) => {
            let len = copy.len();
            copy.extend_from_slice(&head.buf[head.len..]); // early frames stay behind it
            head::Head { buf: copy, len }
        }
        None => head,
    };
    // The observers (`--trace`, the inspector) attach here, before the first byte of
    // the `101`: one for what is written to the client, one for what it sends.
    let watch_reads = observers.attach(client, cfg);
    let stream = Stream::new(
        client.clone(),
        head,
        cfg.read_buffer_size,
        cfg.write_buffer_size,
        watch_reads,
    );
    #[allow(clippy::result_large_err)] // the signature is tungstenite's Callback
    let callback = |req: &Request, resp: Response| {
        answer_101(shared, client, checked.protocol.as_deref(), req, resp)
    };
    let mut ws = match tungstenite::accept_hdr_with_config(stream, callback, Some(ws_config)) {
        Ok(ws) => ws,
        Err(tungstenite::HandshakeError::Failure(e)) if !matches!(e, tungstenite::Error::Io(_)) => {
            // Our checks passed but tungstenite's did not: they disagree on a corner
            // (for_tungstenite in handshake.rs covers the known ones). Never a silent close.
            let response =
                response::Response::new(400, format!("This request cannot be upgraded ({e})."));
            // Worth a report, but once: a client that found such a corner must not be able
            // to fill the log at warn level with it.
            let (level, ask) = match DISAGREED.swap(true, Ordering::Relaxed) {
                true => (log::Level::Debug, ""),
                false => (
                    log::Level::Warn,
                    ". Please report the request head (--trace shows it); further ones are logged at debug only.",
                ),
            };
            log::log!(
                level,
                "{tag} {peer}: tinyws accepted the request but tungstenite refused it ({e}); answered 400{ask}"
            );
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
    Some(ws)
}

/// tungstenite's callback with the `101`: the subprotocol handshake.rs chose, and the
/// request and answer at debug.
#[allow(clippy::result_large_err)] // the signature is tungstenite's Callback
fn answer_101(
    shared: &Shared,
    client: &Client,
    protocol: Option<&str>,
    req: &Request,
    mut resp: Response,
) -> Result<Response, tungstenite::handshake::server::ErrorResponse> {
    let tag = shared.tag(client.id());
    let peer = client.peer_addr();
    // tungstenite leaves subprotocols to the server: the one handshake.rs chose, a
    // token the client sent (so a valid header value), on one line (RFC 6455 §11.3.4).
    if let Some(value) = protocol.and_then(|p| tungstenite::http::HeaderValue::from_str(p).ok()) {
        resp.headers_mut().insert("Sec-WebSocket-Protocol", value);
    }
    debug!(
        "{tag} {peer}: handshake request {} [{}]",
        escape::client(&secrets::redact_target(&req.uri().to_string())),
        escape::shown_headers(req.headers())
    );
    debug!(
        "{tag} {peer}: handshake response {} [{}]",
        resp.status(),
        escape::shown_headers(resp.headers())
    );
    Ok(resp)
}

/// Broadcast mode: a writer thread and a place in the room (room/broadcast.rs, writer.rs), or in
/// the room of its path (rooms.rs). `Some(None)` in echo mode; `None` when the writer
/// thread cannot start (the client is then closed with 1013).
fn join<'s>(shared: &'s Shared, client: &Arc<Client>) -> Option<Option<Place<'s>>> {
    let cfg = &shared.config;
    if !cfg.broadcast {
        return Some(None);
    }
    let place = if cfg.rooms {
        shared.layers.rooms.join(client.path(), client, cfg)
    } else {
        Place::in_room(&shared.room, client, cfg)
    };
    match place {
        Ok(member) => Some(Some(member)),
        Err(e) => {
            warn!(
                "{} {}: cannot start its writer thread ({e}); closed with 1013",
                shared.tag(client.id()),
                client.peer_addr()
            );
            client.close(1013, "try again later");
            client.end_tls();
            None
        }
    }
}

/// After the read loop: the handler's `on_close`, leaving the room, the drain after a
/// failure, and the log line that says how the connection ended. The TCP connection
/// closes when the last `Arc<Client>` is dropped, right after: the server closes first
/// (RFC 6455 §7.1.1). Not inlined, like `open`.
#[inline(never)]
fn finish(
    shared: &Shared,
    client: &Client,
    member: Option<Place<'_>>,
    end: End,
    observers: &trace::Observers,
) {
    let peer = client.peer_addr();
    let tag = shared.tag(client.id());
    // Always, also after a panic: the handler may keep state per client. Still a member
    // here, so a broadcast from on_close ("alice left") reaches the rest of the room.
    if catch_unwind(AssertUnwindSafe(|| shared.handler.on_close(client))).is_err() {
        warn!("{tag} {peer}: the handler's on_close panicked");
    }
    // Leave the room and let the writer send what ends with a close frame, before saying
    // why the connection ended: the writer may have been the one to end it.
    let in_room = member.is_some();
    drop(member);
    // After the last frame (the writer is joined), before TCP closes or half-closes.
    client.end_tls();
    if let End::Failed { sent: true, .. } = end {
        // The close frame is out (inline in echo mode; in broadcast mode by the writer,
        // joined above). The client is often still sending (an oversized message, say):
        // drain before closing, as for HTTP answers, or a reset may lose the close frame.
        // Up to 1 MiB, more than after an HTTP answer: the rest of a message over the size
        // limit.
        shut_and_drain(client.socket(), DRAIN_FOR, 1 << 20);
    }
    // Only the room drops a member (stuck, a flood of pings, its writer's timeout).
    let end = in_room
        .then(|| client.dropped_reason())
        .flatten()
        .map_or(end, End::Stalled);
    observers.ended(&end);
    match &end {
        End::Failed { .. } => match warnings::from(peer.ip()) {
            Some(tail) => warn!("{tag} {peer}: {end}{tail}"),
            None => info!("{tag} {peer}: {end}"),
        },
        End::Stalled(_) => warn!("{tag} {peer}: {end}"),
        _ => info!("{tag} {peer}: {end}"),
    }
}

/// How a connection ended, for the log line.
enum End {
    /// The close handshake completed: the code and reason of the client's close frame
    /// (on shutdown, its answer to our 1001), if it had a code; the reason shown escaped
    /// (escape.rs), on the log line and the trace's.
    Closed(Option<(u16, String)>),
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
            End::Closed(None) => write!(f, "closed, no code"),
            End::Closed(Some((c, reason))) if reason.is_empty() => write!(f, "closed, code {c}"),
            End::Closed(Some((c, reason))) => {
                write!(f, "closed, code {c} ({})", escape::client(reason))
            }
            End::Failed { code, sent, why } if *sent => write!(f, "closed, code {code}: {why}"),
            End::Failed { code, why, .. } => {
                write!(f, "dropped ({why}); close {code} could not be sent")
            }
            End::Vanished(why) => write!(f, "gone without a close frame ({why})"),
            End::Stalled(why) => write!(f, "dropped: {why}"),
        }
    }
}

/// The read → reply loop. Returns when the connection is over.
/// `room`: broadcast mode, the client's room.
fn read_loop(ws: &mut WebSocket<Stream>, shared: &Shared, room: Option<&Room>) -> End {
    let cfg = &shared.config;
    let client = ws.get_ref().client().clone();
    let keepalive = (!cfg.ping_interval.is_zero()).then_some(cfg.ping_interval);
    // The read timeout is the keepalive timer: no other wake-up happens while idle
    // (but for giving back memory after a burst: tune/quiet.rs).
    let mut quiet = tune::Quiet::start(ws, keepalive);
    let mut awaiting_pong = false;
    let mut close: Option<(u16, String)> = None;
    loop {
        let result = ws.read().and_then(|msg| {
            if awaiting_pong {
                // Any frame proves the peer is alive, not only the pong.
                awaiting_pong = false;
                let _ = client.socket().set_read_timeout(keepalive);
            }
            quiet.message_read(ws);
            receive(ws, shared, &client, room, msg, &mut close)
        });
        let Err(e) = result else { continue };
        if let tungstenite::Error::Io(io) = &e
            && is_timeout(io)
        {
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
            continue;
        }
        return ended(e, &client, close);
    }
}

/// One message read: a text or binary one goes to the handler, and its reply to the
/// client (echo) or the room (broadcast); a close is recorded, and its echo (which
/// tungstenite queued) is sent by `ended`. Pings are answered by tungstenite itself.
fn receive(
    ws: &mut WebSocket<Stream>,
    shared: &Shared,
    client: &Arc<Client>,
    room: Option<&Room>,
    msg: Message,
    close: &mut Option<(u16, String)>,
) -> tungstenite::Result<()> {
    match msg {
        Message::Text(_) | Message::Binary(_) => {
            if shared.config.stdout {
                // Before the handler, which takes the message (pipes.rs).
                crate::layers::pipes::record(client, &msg);
            }
            match (shared.handler.on_message(client, msg), room) {
                (None, _) => Ok(()),
                // Control frames are the server's to send, in both modes
                // (RFC 6455 §5.5; handler.rs): dropped, with one warning.
                (Some(other), _) if !other.is_text() && !other.is_binary() => {
                    client.unsendable(&other);
                    Ok(())
                }
                // Broadcast mode: the reply goes to the room (room/broadcast.rs).
                (Some(reply), Some(room)) => {
                    room.broadcast(&reply, Some(client));
                    Ok(())
                }
                // Queued in the outbox; the stream writes it before it next
                // waits for the client (stream.rs).
                (Some(reply), None) => ws.write(reply),
            }
        }
        Message::Close(frame) => {
            *close = frame.map(|f| (f.code.into(), f.reason.to_string()));
            // tungstenite queued the echo of the close (§5.5.1). This flush hands it to
            // the outbox and reports the end (`ConnectionClosed`) without flushing the
            // stream: `ended` sends it.
            ws.flush()
        }
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
    }
}

/// How the read loop's error `e` ends the connection (a read timeout is the loop's own).
/// `close`: the client's close frame, if it sent one.
fn ended(e: tungstenite::Error, client: &Client, close: Option<(u16, String)>) -> End {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            // tungstenite reports the end from inside the flush that queued the close
            // reply, before flushing the stream: the reply is still in the outbox.
            let _ = client.flush();
            End::Closed(close)
        }
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            End::Vanished("connection closed".into())
        }
        tungstenite::Error::Io(io) if is_stalled(&io) => End::Stalled(io.to_string()),
        tungstenite::Error::Io(io) => End::Vanished(io.to_string()),
        other => {
            // Failing the connection (RFC 6455 §7.1.7): `finish` drains what the client
            // still sends for at most `DRAIN_FOR`, and does not wait for its close reply.
            let (code, why) = frame::failure(&other);
            let sent = client.close(code, &why);
            End::Failed { code, sent, why }
        }
    }
}
