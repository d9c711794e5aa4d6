//! The teaching layer's own plain requests, each answered from start to finish on its
//! connection's thread: the inspector's (the projector view, a page's polls) and the
//! frame lab's. http/serve.rs hands every request here first; what is not the layer's
//! goes on to the routing step.

use std::sync::Arc;

use log::{debug, info};

use crate::client::response::{self, DRAIN_FOR, Plain, respond_and_close};
use crate::guard::escape;
use crate::layers::teach::inspect::{self, Inspector};
use crate::layers::teach::step::End;
use crate::layers::teach::{framelab, page, trace, wire};

/// Answers `req` if it is one of the layer's, and says whether it was. `host_ok`: the
/// request's Host is valid (and one of `allow_hosts`); asked only for the layer's paths,
/// and without it the request goes on, for the routing step to refuse.
/// `open`: the frame lab's [`Wire`](wire::Wire), which http/serve.rs hands down (it
/// is a connection's type, from ws/).
pub(crate) fn plain(
    req: &Plain<'_>,
    inspector: &Inspector,
    host_ok: impl Fn() -> bool,
    open: wire::Open,
) -> bool {
    if !names_a_path(req.head) {
        return false;
    }
    if let Some(route) = inspect::route(req.head).filter(|_| host_ok()) {
        answer_inspector(req, inspector, route);
        return true;
    }
    if let Some(lab) = framelab::route(req.head).filter(|_| host_ok()) {
        answer_lab(req, &lab, open);
        return true;
    }
    false
}

/// Whether the request line names one of the layer's paths anywhere: every other
/// request (an echo, a file) goes on after this one look, and only these are read
/// further (inspect.rs and framelab.rs `route`).
fn names_a_path(head: &[u8]) -> bool {
    [inspect::VIEW_PATH, inspect::POLL_PATH, framelab::PATH]
        .iter()
        .any(|path| in_request_line(head, path))
}

/// The observers of a connection whose request the routing step checked (`end`: how it
/// ended), which narrate the request and then, if it upgrades, its frames: the trace
/// (`req.traced`) and the inspector's record. A record is asked for (inspect.rs
/// `Inspector::recorder`) only if there can be one: the projector view is on, or the
/// request line has the token's name in it; otherwise this is the layer's one look at
/// the request, and nothing is formatted.
pub(crate) fn observe(
    req: &Plain<'_>,
    inspector: &Arc<Inspector>,
    end: &End<'_>,
) -> trace::Observers {
    let (config, head) = (req.config, req.head);
    let (id, peer) = (req.client.id(), req.client.peer_addr());
    let asked = config.inspect || in_request_line(head, inspect::TOKEN_PARAM);
    let record = asked.then(|| inspector.recorder(id, peer, head)).flatten();
    let Some(sink) = trace::Sink::new(id, req.traced, record) else {
        return trace::Observers::default();
    };
    trace::request(&sink, head, config, end);
    trace::Observers::new(sink)
}

/// Whether `text` is anywhere in the request line of `head`.
fn in_request_line(head: &[u8], text: &str) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    line.windows(text.len()).any(|w| w == text.as_bytes())
}

/// The inspector's routes: the projector view, and the polls of a page.
fn answer_inspector(req: &Plain<'_>, inspector: &Inspector, route: inspect::Route<'_>) {
    let (cfg, client, tag) = (req.config, req.client, req.tag);
    let peer = client.peer_addr();
    // A poll's place among those under way, kept until its answer is written.
    let mut slot = None;
    let answer = match route {
        inspect::Route::View { head_only } => {
            let view = if cfg.inspect {
                page::projector(cfg, req.head)
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
            let (answer, place) = inspector.poll(target, head_only, peer);
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
    if req.traced {
        // Not narrated: a page polls after every burst of frames, which would bury
        // the trace of the connections themselves.
        trace::emit(
            client.id(),
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

/// The frame lab (framelab.rs). The log line says the verdict, never the bytes.
fn answer_lab(req: &Plain<'_>, lab: &framelab::Lab<'_>, open: wire::Open) {
    let client = req.client;
    let (answer, note) = framelab::answer(lab, req.config, client, open);
    let line = format!(
        "{} answered {}: {}",
        framelab::PATH,
        answer.status,
        escape::client(&note)
    );
    info!("{} {}: {line}", req.tag, client.peer_addr());
    if req.traced {
        trace::emit(
            client.id(),
            &format!("-- the frame lab: {line}, then close"),
        );
    }
    respond_and_close(client.transport(), &answer, DRAIN_FOR);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_for_the_layers_paths_are_read_further() {
        for line in [
            "GET /inspect HTTP/1.1",
            "HEAD /.inspect?since=3 HTTP/1.1",
            "GET /.framelab?bytes=81 HTTP/1.1",
        ] {
            let head = format!("{line}\r\nHost: h\r\n\r\n");
            let head = head.as_bytes();
            assert!(names_a_path(head), "{line}");
            assert!(inspect::route(head).is_some() || framelab::route(head).is_some());
        }
        // The token's name, as inspect.rs reads it: in the request line only.
        let token = inspect::TOKEN_PARAM;
        assert!(in_request_line(
            b"GET /?inspect_token=ab HTTP/1.1\r\n",
            token
        ));
        assert!(!in_request_line(
            b"GET / HTTP/1.1\r\nX: inspect_token\r\n",
            token
        ));
        // Only the request line counts.
        for head in [
            "GET / HTTP/1.1",
            "GET /echo HTTP/1.1\r\nReferer: http://h/inspect",
        ] {
            assert!(
                !names_a_path(format!("{head}\r\n\r\n").as_bytes()),
                "{head}"
            );
        }
    }
}
