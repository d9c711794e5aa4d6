//! The teaching layer's own plain requests, each answered from start to finish on its
//! connection's thread: the inspector's (the projector view, a page's polls) and the
//! frame lab's. http/serve.rs hands every request here first; what is not the layer's
//! goes on to the routing step.

use log::{debug, info};

use crate::client::response::{self, DRAIN_FOR, Plain, respond_and_close};
use crate::guard::escape;
use crate::layers::teach::inspect::{self, Inspector};
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
