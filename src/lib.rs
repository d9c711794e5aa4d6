//! # tinyws — a tiny, synchronous, thread-per-connection WebSocket server
//!
//! One OS thread per client, blocking reads, no async runtime: easy to read, easy to
//! reason about, and cheap enough for a small board. The WebSocket protocol itself is
//! [`tungstenite`]'s; tinyws adds what a server you can leave running needs: plain-HTTP
//! answers on the same port, origin checks, limits on everything a client can make it
//! allocate or wait for, keepalive, and graceful shutdown.
//!
//! ## Serving from your own program
//!
//! ```no_run
//! use tinyws::{Config, Echo, Server};
//!
//! let config = Config::default().port(9001);
//! let server = Server::bind(config, Echo)?;   // checks the config, opens the port
//! println!("listening on {}", server.local_addr());
//! server.run();                               // serves until shut down
//! # Ok::<(), tinyws::Error>(())
//! ```
//!
//! A [`Handler`] decides what to do with each message; [`Echo`] sends it back, and any
//! `Fn(&Client, Message) -> Option<Message>` closure works too (written
//! `|_: &Client, msg: Message|`: [`Handler`] says why the types are needed). A handler
//! receives only whole text and binary messages and should return only those: [`Handler`]
//! says what the server does with each [`Message`] variant. [`Server::spawn`] runs
//! the server on its own thread and returns a [`Running`] you can [`stop`](Running::stop).
//!
//! ## A chat room, and messages of your own
//!
//! With [`Config::broadcast`](Config#structfield.broadcast) (the `--broadcast` flag) the server is a chat room: the
//! message a handler returns goes to every connected client, the sender included, and
//! every client sees all messages in the same order. [`ServerHandle::broadcast`] sends
//! your program's own messages to the room, e.g. a sensor reading every second:
//!
//! ```no_run
//! use std::time::Duration;
//! use tinyws::{Client, Config, Message, Server};
//!
//! let config = Config::default().broadcast(true);
//! // Clients only listen here: what they send is dropped (return `Some(msg)` to relay it).
//! let server = Server::bind(config, |_: &Client, _: Message| -> Option<Message> { None })?;
//! let room = server.handle();
//! std::thread::spawn(move || {
//!     let mut celsius = 21.0;
//!     while !room.is_stopping() {
//!         room.broadcast(Message::text(format!("{{\"celsius\": {celsius:.1}}}")));
//!         celsius += 0.1;
//!         std::thread::sleep(Duration::from_secs(1));
//!     }
//! });
//! server.run();
//! # Ok::<(), tinyws::Error>(())
//! ```
//!
//! A handler's return value goes to the whole room; [`Client::send`] answers the sender
//! only (a `status`, a `/who`), in either mode, and [`Client::server`] is the server's
//! [`ServerHandle`] inside a handler (count the members, announce a join, shut down).
//! [`ServerHandle::shutdown_on_signals`] makes Ctrl-C (SIGINT, SIGTERM) a graceful
//! shutdown, 1001 to every client, as the `tinyws` binary does; [`Server::run`] and
//! [`Running::stop`] return a [`Stopped`] that says whether every client closed in time.
//! `examples/sensor.rs` is the whole sensor program: a reading every 500 ms, `status` to
//! the asker only, Ctrl-C → 1001, in under 60 lines.
//!
//! With [`Config::rooms`](Config#structfield.rooms) (`--rooms`) there is one such room
//! per request path: `/chat/lobby` and `/chat/42` never see each other's messages;
//! [`ServerHandle::broadcast_to`] sends to one room and [`ServerHandle::rooms`] lists
//! them. With [`Config::protocols`](Config#structfield.protocols) (`--protocol chat`)
//! the server answers a subprotocol the client offers, and [`Client::protocol`] says
//! which.
//!
//! The room is paced by its members: each one has a bounded backlog
//! ([`Config::max_backlog`](Config#structfield.max_backlog)) and its own writer thread, and when a member's backlog is full
//! the broadcast waits for it, so a fast sender is slowed down to what the members read
//! instead of anyone being dropped. A member that reads nothing while the room waits for
//! it is closed with 1008 after [`Config::stall_timeout`](Config#structfield.stall_timeout). [`ServerHandle::broadcast`]
//! therefore blocks under pressure: see there.
//!
//! ## Logging
//!
//! tinyws logs through the [`log`] facade. At `info`: the listen address and settings,
//! and each connection opened and closed with its peer address and close code (and its
//! subprotocol), and once per connection a subprotocol offer this server speaks none
//! of (naming [`Config::protocols`](Config#structfield.protocols)). At `debug`:
//! handshake request and response headers. At `trace`: frames (tungstenite's own log).
//! Warnings are for things an operator may want to act on (refused origins, the
//! connection cap, stuck clients).
//!
//! ## How a connection flows
//!
//! For readers of the source: one echo, one broadcast and one refused request, hop by
//! hop, each naming the file (under `src/`) and the function it runs (tests/layout.rs
//! checks that each one exists). Each file's own comment says why it does what it does;
//! `tune/` holds the optimisations and can be skipped (tune/mod.rs says what each one
//! may be read as), and so can `guard/`, the defences against hostile clients (guard/mod.rs
//! says the same), and the optional layers (layers/mod.rs lists them).
//!
//! **The protocol (RFC 6455), and where each step happens.**
//! - The client asks for an upgrade: an HTTP `GET` with `Upgrade: websocket`,
//!   `Connection: Upgrade`, a random `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`
//!   (§4.1). `http/route.rs` `check` and `http/handshake.rs` `check_upgrade` check it
//!   (§4.2.1).
//! - The server proves it read the key: `Sec-WebSocket-Accept` is the base64 of the SHA-1
//!   of the key followed by a fixed GUID (§4.2.2). tungstenite computes it in its
//!   handshake, which `ws/connection.rs` `handshake` runs; with `--trace`,
//!   `layers/teach/narrate.rs` `accept_steps` shows each step.
//! - `101 Switching Protocols` (`ws/connection.rs` `answer_101` adds the subprotocol):
//!   from here on the bytes on the connection are frames, not HTTP.
//! - Frames (§5.2, drawn in `frame.rs`): the client masks every frame it sends, the
//!   server never does (§5.1; how a client masks: §5.3). tungstenite unmasks as it
//!   reads; with `--trace`, `layers/teach/trace.rs` `unmasked` shows the bytes before
//!   and after.
//! - Ping and pong (§5.5.2, §5.5.3): tungstenite answers a ping itself; a client quiet
//!   for the keepalive interval gets a ping from `ws/connection.rs` `read_loop`.
//! - Close (§5.5.1, §7): whoever receives a close frame echoes it, and the server then
//!   closes TCP first (§7.1.1): hop 9 of the echo below.
//!
//! Words tinyws uses for its own parts: the *request head* is the HTTP request up to its
//! empty line; a *slot* is one of `--max-connections`; a client's *outbox* is the one
//! door every byte bound for it goes through (`client/outbox.rs`); the *stream* is what
//! tungstenite reads and writes: first the head again (*replayed*, as tinyws read it
//! already to check it), then the socket.
//!
//! **One echo.**
//! 1. `server/accept.rs` `Server::run` accepts the TCP connection;
//! 2. `server/admission.rs` `admit` gives it a slot in the registry
//!    (`client/registry.rs`) and a thread.
//! 3. `http/serve.rs` `serve` reads the request head (`client/head.rs` `read_head`, over
//!    `client/transport.rs`), lets the teaching layer answer its own paths
//!    (`layers/teach/answer.rs` `plain`; for an echo it answers nothing: skip it), and
//!    asks the routing step,
//! 4. `http/route.rs` `check`: the HTTP checks every request passes (request line, Host,
//!    method, path), then, for an upgrade,
//! 5. `http/handshake.rs` `check_upgrade`: RFC 6455 §4.2.1, the Origin, the subprotocol.
//!    The `Verdict::Upgrade` comes back from `serve` as a `connection::Upgrade`.
//! 6. The thread `server/admission.rs` `admit` started hands it to `ws/connection.rs`
//!    `run`: `open` calls `handshake`, which runs tungstenite's handshake over a
//!    `ws/stream.rs` `Stream`, which replays the head; the `101` waits in the client's
//!    outbox (`client/outbox.rs`) until `Client::upgrade` sends it.
//! 7. `ws/connection.rs` `read_loop` loops: tungstenite reads a frame through
//!    `Stream::read`; `receive` hands the message to the [`Handler`] (`handler.rs`
//!    `Echo`), and `ws.write` queues the reply in the outbox (`Stream::write`,
//!    `Client::queue`);
//! 8. the stream writes it out (`Client::flush`, `client/transport.rs`
//!    `Transport::write_all_until`) just before it next waits for the client.
//! 9. A close frame from the client: `receive` records it, tungstenite queues its echo
//!    (RFC 6455 §5.5.1) and reports the end, `ended` sends the echo (`Client::flush`),
//!    and `finish` logs how the connection ended (`End`). Dropping the last
//!    `Arc<Client>` (the registry's, in `server/admission.rs` `Registered::drop` as the
//!    thread ends) then closes the TCP connection: the server closes first (§7.1.1).
//!
//! **One broadcast.**
//! 1. In broadcast mode `open` also calls `join`: `room/broadcast.rs` `Place::in_room`
//!    (with `--rooms`, `layers/rooms.rs` `Rooms::join`) makes the client a member, which
//!    starts its writer thread (`room/writer.rs` `Writer::start`).
//! 2. `receive` hands the reply to `room/broadcast.rs` `Room::broadcast`, which encodes
//!    it once (`frame.rs` `encode`) and offers it to every member (`Client::offer`, in
//!    `room/broadcast.rs`):
//! 3. it is queued in each member's bounded backlog (`client/backlog.rs`
//!    `Backlog::push_shared`), or written at once to an idle member's socket
//!    (`tune/nowait.rs`),
//! 4. and each writer thread (`room/writer.rs` `run`) writes its own member's frames. A
//!    full backlog makes the broadcast wait (the room's `Bell`), and a member that stops
//!    reading is cut with 1008 (`Backlog::check_stall`, with what the kernel says in
//!    `guard/tcp.rs`).
//!
//! **One refused request.**
//! 1. `http/serve.rs` `serve` reads the head as for an echo;
//! 2. `http/route.rs` `check` gives a `Verdict::Refuse` with its answer
//!    (`client/response.rs` `Response`);
//! 3. `http/serve.rs` `refuse` logs it and sends it with `respond_and_close`: the
//!    answer, then a half-close and a short drain (`client/response.rs` `shut_and_drain`),
//!    so the client reads the answer instead of a reset. Nothing only a WebSocket needs
//!    is built.
//!
//! The teaching layer's own paths are answered before the routing step:
//! `layers/teach/answer.rs` `plain` answers the inspector's routes (`answer_inspector`,
//! with `layers/teach/inspect.rs`) and the frame lab (`answer_lab`, with
//! `layers/teach/framelab.rs` `run`: frames from the page, read by tungstenite as a
//! connection reads them). After the routing step, `http/serve.rs` answers the teaching
//! page (`answer_page`, with `layers/teach/page.rs`) and, with `--static`, a file
//! (`layers/files.rs` `serve`, streamed to the socket in chunks, never from outside the
//! directory).
//!
//! **Observers.** `--trace` and the inspector see a connection through one value:
//! `layers/teach/answer.rs` `observe` makes it from the request and the routing step's
//! verdict (narrating the checks, `layers/teach/narrate.rs`), the upgrade carries it,
//! and `ws/connection.rs` tells it what happens (`layers/teach/trace.rs` `Observers`).
//! Before the `101`, `Observers::attach` hangs a `Watch` (`client/outbox.rs`) on
//! everything written to the client and a reader on the stream, both `Frames`. A
//! connection nobody watches formats nothing.
//!
//! **Pipes.** `layers/pipes.rs`: with `--stdin` one thread sends each line of standard
//! input to the room (or to every connection in echo mode); with `--stdout` `receive`
//! hands each text message to it before the handler, and it queues the line for stdout
//! (`util/spool.rs`).
//!
//! A handler's [`Client::send`] goes through the same outbox as a reply, but in echo mode
//! it is written at once (a reply waits until the stream next waits for the client); in
//! broadcast mode it goes to the member's backlog (`Client::enqueue`). [`ServerHandle`]
//! (`client/handle.rs`: a struct over the small `Control` trait, and why) reaches the
//! shared state and its shutdown
//! (`server/running.rs`); `server/signals.rs` turns Ctrl-C into its `shutdown`. What
//! every thread shares is in `shared.rs`; `util/lock.rs`, `client/transport.rs` and
//! `util/io.rs` hold the one way to take a lock, to retry a socket call and to classify
//! its failure. The README's "Layout" section counts the core.

// `unsafe` only in guard/tcp.rs and tune/ (a few libc calls, each measured:
// docs/performance.md; tune/heap.rs also mallopt, getrlimit and sysconf,
// docs/embedded.md), in layers/beneath.rs (openat and openat2, which std lacks: static
// files that no rename can lead out of their directory, docs/security.md), and in
// server/signals.rs (the signal handler).
#![deny(unsafe_code)]
#![deny(missing_docs)]

// The parts, from the top of the call graph down: each calls only those below it (each
// folder's mod.rs says what it holds and what it may call).

// The server: binding, the accept loop, a thread per connection, shutdown.
mod server;

// One request: its head, the routing step, the plain answers, the upgrade's checks.
mod http;

// An open WebSocket: tungstenite's handshake, the read → reply loop, the close.
mod ws;

// What every connection thread shares, and the Handler API.
mod shared;

mod handler;

// The optional layers (cargo features), registered in layers/mod.rs: skip them on a
// first reading.
mod layers;

// Broadcast mode: the chat room and its writers.
mod room;

// One client: its outbox, its socket or TLS, the head read from it, the answers to it.
mod client;

// The defences against hostile clients (client text escaped, warnings rationed, the
// write floor), behind what each may be read as: skip them on a first reading.
mod guard;

// The optimisations, behind one small interface: skip them on a first reading.
mod tune;

// Locks, secrets, queues; the settings, the errors, the frame codec,
// Host names.
mod util;

mod config;
mod error;
mod frame;
mod host;

pub use client::handle::ServerHandle;
pub use client::outbox::Client;
pub use config::{Config, format_duration, format_size, parse_duration, parse_size};
pub use error::Error;
pub use handler::{Echo, Handler};
#[doc(hidden)]
pub use layers::built as layers_built;
pub use server::accept::Server;
pub use server::running::{Running, Stopped};
/// The WebSocket implementation underneath (version 0.30), for what tinyws does not
/// re-export, e.g. `tungstenite::protocol::frame::coding::CloseCode`.
pub use tungstenite;
/// The bytes of a [`Message::Binary`], cheap to clone (one message broadcast to a room
/// is shared, not copied).
pub use tungstenite::Bytes;
/// What a handler receives and returns; see [`Handler`] for what tinyws does with each
/// variant. tungstenite's own type, so a tungstenite client in the same program shares it.
pub use tungstenite::Message;
/// The text of a [`Message::Text`]: UTF-8 checked, cheap to clone.
pub use tungstenite::Utf8Bytes;
/// The code and reason of a [`Message::Close`].
pub use tungstenite::protocol::CloseFrame;
pub use util::spool::Stderr;
