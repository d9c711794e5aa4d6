//! Where every connection thread starts ([`serve`]): a plain request is answered here
//! (http/mod.rs says in what order), an upgrade goes back to the thread's closure in
//! server/admission.rs, which hands it to ws/connection.rs `run`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::client::head::{self, Head, HeadError};
use crate::client::outbox::Client;
use crate::client::response::{DRAIN_FOR, Plain, Response, respond_and_close};
use crate::guard::escape;
use crate::guard::warnings;
use crate::http::route::{self, Verdict};
use crate::layers::files;
use crate::layers::teach::{answer, page, trace};
use crate::layers::tls;
use crate::shared::Shared;
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
    let plain = Plain {
        client,
        tag: shared.tag(id),
        config: cfg,
        head: request,
        traced,
    };
    // The teaching layer's own requests (the inspector's, the frame lab's). Only with a
    // valid Host (and one of `allow_hosts`): else `check` refuses them below. For an
    // echo, read it as `false`; `observe` below, as "nobody watches" unless --trace or
    // the inspector asks.
    if answer::plain(
        &plain,
        &shared.layers.inspect,
        || !route::host_refused(request, cfg),
        crate::ws::lab::open,
    ) {
        return None;
    }
    let verdict = route::check(request, cfg);
    // --trace and the inspector: their observers go with an upgrade to connection.rs,
    // which attaches them.
    let observers = answer::observe(&plain, &shared.layers.inspect, &verdict.end());
    match verdict {
        Verdict::Upgrade(up) => {
            if let Some(note) = &up.note {
                info!("{} {peer}: {note}", plain.tag);
            }
            return Some(Upgrade {
                head,
                checked: up,
                observers,
            });
        }
        Verdict::Page { head_only, path } => answer_page(&plain, head_only, path),
        Verdict::File(file) => {
            if !files::serve(shared.layers.files.as_ref(), &plain, &file) {
                answer_page(&plain, file.head_only, &file.path);
            }
        }
        Verdict::Refuse(no) => refuse(shared, client, request, &no.response, no.note),
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
        Ok(_) if !shared.head_received(id) => {
            debug!("{tag} {peer}: pushed out to make room for a new connection; closed");
            None
        }
        Ok(head) => Some(head),
        Err(HeadError::TooLarge) => {
            info!(
                "{tag} {peer}: request head over {} bytes; answered 431",
                cfg.max_head_size
            );
            let max = crate::config::format_size(cfg.max_head_size);
            let body = format!("The request head is larger than this server accepts ({max}).");
            respond_and_close(client.transport(), &Response::new(431, body), DRAIN_FOR);
            None
        }
        Err(HeadError::TimedOut { partial }) => {
            let limit = crate::config::format_duration(cfg.handshake_timeout);
            info!("{tag} {peer}: no complete request head within {limit}; closed");
            if partial {
                let body = format!("The request head did not arrive within {limit}.");
                let answer = Response::new(408, body);
                respond_and_close(client.transport(), &answer, Duration::ZERO);
            }
            None
        }
        Err(HeadError::Closed) => {
            debug!("{tag} {peer}: closed before sending a request");
            None
        }
        // The TLS layer's own failures are its to answer and log.
        Err(HeadError::Io(e)) if tls::read_failed(tag, client, &e) => None,
        Err(HeadError::Io(e)) => {
            debug!("{tag} {peer}: reading the request failed: {e}");
            None
        }
    }
}

/// A refusal: one info line with the request line (credentials hidden), and the
/// operator's note at warn when there is one.
fn refuse(
    shared: &Shared,
    client: &Client,
    request: &[u8],
    response: &Response,
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

/// The teaching page (layers/teach/page.rs) for a plain GET or HEAD of `path` (`/` or
/// `/.tinyws`).
fn answer_page(req: &Plain<'_>, head_only: bool, path: &str) {
    let (tag, peer) = (req.tag, req.client.peer_addr());
    let mut page = page::page(req.config, req.head);
    if head_only {
        info!("{tag} {peer}: HEAD {path} answered 200 with the teaching page's headers");
        page = page.for_head();
    } else {
        info!("{tag} {peer}: GET {path} answered 200 with the teaching page");
    }
    respond_and_close(req.client.transport(), &page, DRAIN_FOR);
}
