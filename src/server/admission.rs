//! Admission: who gets a slot when a connection arrives (room is made by pushing out a
//! socket that sends nothing: client/registry.rs), and the `503` for the rest. Runs on the
//! accept loop, so nothing here waits for a client.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::warn;

use crate::client::head::read_head;
use crate::client::response::{self, Response, respond_and_close};
use crate::http;
use crate::shared::Shared;
use crate::ws::connection;

/// At most this many extra threads answer `503` to clients over the cap at once, each for
/// about a second. Past that, the `503` is written without reading the request.
pub(crate) const MAX_REJECTERS: usize = 8;
pub(crate) const REJECTER_STACK: usize = crate::config::HELPER_STACK;

/// Removes a connection from the registry when its thread ends, even by a panic.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut reg = self.shared.registry();
        reg.remove(self.id);
        drop(reg);
        // Only shutdown waits for this (a syscall saved per connection otherwise). It
        // sets `stopping` before it looks at the registry, under the lock we just used.
        if self.shared.is_stopping() {
            self.shared.changed.notify_all();
        }
    }
}

/// Admission. A connection holds a slot of `--max-connections` from its accept, and
/// waits for its request head (one that sends nothing may be pushed out to make room:
/// client/registry.rs). `503` when every slot holds a connection past its request head,
/// or when the memory budget has no room for one more thread: there every connection
/// counts, the pushed-out ones still ending included (their threads are still there).
pub(crate) fn admit(shared: &Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    let mut reg = shared.registry();
    let max = shared.config.max_connections;
    // The slots: --max-connections, or fewer when that many would not fit the memory
    // limit (budget.rs; the startup warning said which flag to lower).
    let cap = max.min(shared.fit);
    let now = Instant::now();
    let live = reg.live();
    // Read it as nothing while slots are free and fewer than half wait for a request
    // head; else the oldest still waiting (one that sent nothing first) is pushed out to
    // make room for this one (client/registry.rs says when and why).
    reg.waiting.make_room(live, cap, max, peer, now);
    if let Some((why, response)) = reg.refusal(max, shared.fit) {
        let spare = reg.rejecters < MAX_REJECTERS;
        if spare {
            reg.rejecters += 1;
        }
        drop(reg);
        warn!("{peer}: {why}");
        reject_busy(shared, socket, peer, spare, response);
        return;
    }
    reg.next_id += 1;
    let id = reg.next_id;
    let Some(client) = shared.new_client(id, peer, socket) else {
        return;
    };
    let client = Arc::new(client);
    reg.add(now, &client);
    drop(reg);

    let guard = Registered {
        shared: shared.clone(),
        id,
    };
    let ctx = shared.clone();
    let accepted = Instant::now();
    let fallback = client.clone();
    let spawned = shared.threads.run(move || {
        let _guard = guard;
        // The routing step: a plain request is answered there, an upgrade comes back.
        if let Some(upgrade) = http::serve::serve(&ctx, &client, accepted) {
            connection::run(&ctx, client, upgrade);
        }
    });
    if let Err(e) = spawned {
        // The closure, and with it the guard, was dropped: the client is unregistered.
        // Out of threads or memory: answer without reading, as past the rejecter slots.
        warn!(
            "{peer}: cannot start a thread ({e}); answered 503. Lower `max_connections` or `stack_size`"
        );
        let why = "The server cannot start a thread for another connection right now";
        busy_without_reading(shared, fallback.socket(), &response::unavailable(why));
    }
}

/// Answers `503` to a client over the cap without letting threads grow without bound:
/// with a spare slot, a small thread reads the request first (so closing does not reset
/// the connection and lose the answer); without one, the answer is written blindly
/// (over TLS there is no answer without a handshake: the connection is just closed).
fn reject_busy(
    shared: &Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    spare: bool,
    response: Response,
) {
    if !spare {
        busy_without_reading(shared, &socket, &response);
        return;
    }
    let ctx = shared.clone();
    let linger = shared.config.handshake_timeout.min(Duration::from_secs(1));
    let spawned = thread::Builder::new()
        .stack_size(REJECTER_STACK)
        .spawn(move || {
            if let Some(client) = ctx.new_client(0, peer, socket) {
                client.transport().set_write_timeout(linger);
                let deadline = Instant::now() + linger;
                let _ = read_head(client.transport(), ctx.config.max_head_size, deadline);
                respond_and_close(client.transport(), &response, linger);
            }
            ctx.registry().rejecters -= 1;
        });
    if spawned.is_err() {
        shared.registry().rejecters -= 1;
    }
}

/// Answers `503` without reading the request and without blocking the caller (the
/// accept loop): the answer fits in the socket's send buffer. Over TLS there is no
/// answer without a handshake, so the connection is just closed.
fn busy_without_reading(shared: &Shared, socket: &TcpStream, response: &Response) {
    if shared.is_tls() {
        return;
    }
    let _ = socket.set_nonblocking(true);
    let _ = (&*socket).write_all(&response.to_bytes());
    let _ = socket.shutdown(Shutdown::Write);
}
