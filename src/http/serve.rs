//! Plain HTTP on the WebSocket port. Every connection thread starts here ([`serve`]): it
//! reads the request head, asks the routing step (route.rs) what it is, and answers each
//! plain request from start to finish: the refusals (response.rs), the teaching page
//! (page.rs), the inspector's routes (inspect.rs), files (`static_dir`, files.rs). An
//! upgrade comes back as a [`connection::Upgrade`] for the WebSocket side (connection.rs),
//! so a refused request builds nothing that only a WebSocket needs. Every answer ends
//! with `respond_and_close`: the answer, a half-close and a short drain (socket.rs).

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::client::head::{self, Head, HeadError};
use crate::client::outbox::Client;
use crate::client::response::{self, respond_and_close};
use crate::client::socket::{DRAIN_FOR, shut_and_drain};
use crate::http::route::{self, Verdict};
use crate::layers::files::Answer;
use crate::layers::teach::inspect::{self, Recorder};
use crate::layers::teach::{framelab, page, trace};
use crate::shared::Shared;
use crate::util::escape;
use crate::util::warnings;
use crate::ws::connection::Upgrade;

/// One connection's request: answered here, or `Some` upgrade for connection.rs. Not
/// inlined: its frame is gone before the WebSocket's read loop starts, so the idle loop
/// sits no deeper on the stack (tune/stack.rs gives back the pages below it).
#[inline(never)]
pub(crate) fn serve(shared: &Shared, client: &Arc<Client>, accepted: Instant) -> Option<Upgrade> {
    let cfg = &shared.config;
    let (id, peer) = (client.id(), client.peer_addr());
    // Latency: replies are batched by the stream, so Nagle's delay only hurts.
    let _ = client.socket().set_nodelay(true);
    client.transport().set_write_timeout(cfg.write_timeout);
    // --trace-only: the other connections are not traced at all.
    let traced = trace::follows(cfg, id, peer);
    if traced {
        trace::emit(id, &format!("-- connection from {peer}"));
    }
    let head = read_head(shared, client, accepted)?;
    let request = &head.buf[..head.len];
    // The inspector's own plain requests: the projector view and the page's polls.
    // Only with a valid Host (and one of `allow_hosts`): else `check` refuses it below.
    if let Some(route) = inspect::route(request).filter(|_| !route::host_refused(request, cfg)) {
        answer_inspector(shared, client, request, route, traced);
        return None;
    }
    if answer_lab(shared, client, request, traced) {
        return None;
    }
    let (verdict, sink, record) = check(shared, client, request, traced);
    match verdict {
        Verdict::Upgrade {
            path,
            rewritten,
            protocol,
            note,
        } => {
            if let Some(note) = note {
                info!("{} {peer}: {note}", shared.tag(id));
            }
            return Some(Upgrade {
                head,
                path,
                rewritten,
                protocol,
                sink,
                record,
            });
        }
        Verdict::Page { head_only, path } => answer_page(shared, client, request, head_only, path),
        Verdict::File {
            head_only,
            path,
            if_modified_since,
            not_found,
        } => {
            let file = FileRequest {
                head_only,
                path: &path,
                if_modified_since: if_modified_since.as_deref(),
                not_found,
            };
            answer_file(shared, client, request, file);
        }
        Verdict::Refuse { response, note } => refuse(shared, client, request, &response, note),
    }
    None
}

/// The request head, within `max_head_size` and `handshake_timeout`; every way that
/// fails is answered (or not, when there is nobody to answer) and logged here.
fn read_head(shared: &Shared, client: &Client, accepted: Instant) -> Option<Head> {
    let cfg = &shared.config;
    let (id, peer) = (client.id(), client.peer_addr());
    let tag = shared.tag(id);
    let deadline = accepted + cfg.handshake_timeout;
    match head::read_head(client.transport(), cfg.max_head_size, deadline) {
        Ok(head) if !shared.head_received(id) => {
            debug!("{tag} {peer}: pushed out to make room for a new connection; closed");
            drop(head);
            None
        }
        Ok(head) => Some(head),
        Err(HeadError::TooLarge) => {
            info!(
                "{tag} {peer}: request head over {} bytes; answered 431",
                cfg.max_head_size
            );
            let answer = response::too_large(cfg.max_head_size);
            respond_and_close(client.transport(), &answer, DRAIN_FOR);
            None
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
            None
        }
        Err(HeadError::Closed) => {
            debug!("{tag} {peer}: closed before sending a request");
            None
        }
        Err(HeadError::Io(e)) => {
            if crate::layers::tls::is_not_tls(&e) {
                // Someone typed http:// or ws:// for a wss:// server: say so in plain text,
                // the only language that client understands.
                info!("{tag} {peer}: plain text on the TLS port; answered 400");
                let _ = io::Write::write_all(&mut client.socket(), &response::not_tls().to_bytes());
                shut_and_drain(client.socket(), DRAIN_FOR, crate::client::socket::DRAIN_MAX);
                return None;
            }
            if client.transport().is_tls() && e.kind() == io::ErrorKind::InvalidData {
                // Worth an operator's eye: often a client that does not trust the
                // certificate (it sends an alert and gives up).
                info!("{tag} {peer}: TLS handshake failed: {e}");
            } else {
                debug!("{tag} {peer}: reading the request failed: {e}");
            }
            None
        }
    }
}

/// The inspector's routes: the projector view, and the polls of a page.
fn answer_inspector(
    shared: &Shared,
    client: &Client,
    request: &[u8],
    route: inspect::Route<'_>,
    traced: bool,
) {
    let cfg = &shared.config;
    let (id, peer) = (client.id(), client.peer_addr());
    let tag = shared.tag(id);
    // A poll's place among those under way, kept until its answer is written.
    let mut slot = None;
    let answer = match route {
        inspect::Route::View { head_only } => {
            let view = if cfg.inspect {
                page::projector(cfg, request)
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
                escape::client(&crate::util::secrets::redact_target(target)),
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
}

/// The frame lab's plain requests (framelab.rs), answered here when `request` is one
/// (with a valid Host, as the inspector's). The log line says the verdict, never the bytes.
fn answer_lab(shared: &Shared, client: &Client, request: &[u8], traced: bool) -> bool {
    let cfg = &shared.config;
    let Some(lab) = framelab::route(request).filter(|_| !route::host_refused(request, cfg)) else {
        return false;
    };
    let (answer, note) = framelab::answer(&lab, cfg);
    let line = format!(
        "{} answered {}: {}",
        framelab::PATH,
        answer.status,
        escape::client(&note)
    );
    info!("{} {}: {line}", shared.tag(client.id()), client.peer_addr());
    if traced {
        trace::emit(
            client.id(),
            &format!("-- the frame lab: {line}, then close"),
        );
    }
    respond_and_close(client.transport(), &answer, DRAIN_FOR);
    true
}

/// The routing step (route.rs), narrated when traced, and the inspector's record of an
/// upgrade: only upgrades are kept, not page loads or refusals. The connection's
/// observers (`trace::Sink`) go with an upgrade to connection.rs, which attaches them.
fn check(
    shared: &Shared,
    client: &Client,
    request: &[u8],
    traced: bool,
) -> (Verdict, Option<trace::Sink>, Option<Recorder>) {
    let cfg = &shared.config;
    let (id, peer) = (client.id(), client.peer_addr());
    // The inspector: a record only for a connection that brought a token (or every one,
    // for the projector view); otherwise `None`, and nothing below allocates for it.
    let record = shared.inspect.recorder(id, peer, request);
    let Some(sink) = trace::Sink::new(id, traced, record.clone()) else {
        return (route::check(request, cfg), None, None);
    };
    let (verdict, steps) = route::check_narrated(request, cfg);
    trace::request(&sink, request, cfg, &steps);
    if let Some(record) = &record {
        // Only upgrades are kept: not page loads, not refusals.
        match &verdict {
            Verdict::Upgrade { .. } => record.show(),
            _ => record.discard(),
        }
    }
    (verdict, Some(sink), record)
}

/// A refusal: one info line with the request line (credentials hidden), and the
/// operator's note at warn when there is one.
fn refuse(
    shared: &Shared,
    client: &Client,
    request: &[u8],
    response: &response::Response,
    note: Option<String>,
) {
    let (id, peer) = (client.id(), client.peer_addr());
    let tag = shared.tag(id);
    let line = request.split(|&b| b == b'\n').next().unwrap_or(b"");
    // The request line as sent, but for credentials in its query.
    let (line, _) = crate::util::secrets::redact(line);
    // The answer's text quotes the client too (its path, its Origin).
    info!(
        "{tag} {peer}: \"{}\" answered {}: {}",
        escape::client(line.trim_ascii_end()),
        response.status,
        escape::client(response.body.trim_end())
    );
    if let Some(note) = note
        && let Some(tail) = warnings::from(peer.ip())
    {
        warn!("{tag} {peer}: {note}{tail}");
    }
    respond_and_close(client.transport(), response, DRAIN_FOR);
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
            crate::client::socket::write_failure(e)
        ),
    }
    shut_and_drain(client.socket(), DRAIN_FOR, crate::client::socket::DRAIN_MAX);
}

/// The socket (or TLS) as an `io::Write` for `files::Body::send`, counting what went out.
struct ToClient<'a> {
    transport: &'a crate::client::transport::Transport,
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
