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
//! let config = Config { port: 9001, ..Config::default() };
//! let server = Server::bind(config, Echo)?;   // checks the config, opens the port
//! println!("listening on {}", server.local_addr());
//! server.run();                               // serves until shut down
//! # Ok::<(), tinyws::Error>(())
//! ```
//!
//! A [`Handler`] decides what to do with each message; [`Echo`] sends it back, and any
//! `Fn(&Client, Message) -> Option<Message>` closure works too. [`Server::spawn`] runs
//! the server on its own thread and returns a [`Running`] you can [`stop`](Running::stop).
//!
//! ## A chat room, and messages of your own
//!
//! With [`Config::broadcast`] (the `--broadcast` flag) the server is a chat room: the
//! message a handler returns goes to every connected client, the sender included, and
//! every client sees all messages in the same order. [`ServerHandle::broadcast`] sends
//! your program's own messages to the room, e.g. a sensor reading every second:
//!
//! ```no_run
//! use std::time::Duration;
//! use tinyws::{Client, Config, Message, Server};
//!
//! let config = Config { broadcast: true, ..Config::default() };
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
//! The room is paced by its members: each one has a bounded backlog
//! ([`Config::max_backlog`]) and its own writer thread, and when a member's backlog is full
//! the broadcast waits for it, so a fast sender is slowed down to what the members read
//! instead of anyone being dropped. A member that reads nothing while the room waits for
//! it is closed with 1008 after [`Config::stall_timeout`]. [`ServerHandle::broadcast`]
//! therefore blocks under pressure: see there.
//!
//! ## Logging
//!
//! tinyws logs through the [`log`] facade. At `info`: the listen address and settings,
//! and each connection opened and closed with its peer address and close code. At `debug`:
//! handshake request and response headers. At `trace`: frames (tungstenite's own log).
//! Warnings are for things an operator may want to act on (refused origins, the
//! connection cap, stuck clients).

// `unsafe` only in stack.rs, nowait.rs and heap.rs (a few libc calls, each measured:
// docs/performance.md; heap.rs also mallopt and getrlimit, docs/embedded.md).
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod backlog;
mod budget;
mod client;
mod config;
mod conn;
mod error;
mod handler;
mod heap;
mod http;
mod hub;
mod nowait;
mod page;
mod secrets;
mod server;
mod spool;
mod stack;
mod threads;
#[cfg(feature = "tls")]
mod tls;
mod trace;
mod wire;

// Property tests of the parsers above that are not reachable from outside the crate.
#[cfg(test)]
mod fuzz;

pub use client::Client;
pub use config::{Config, format_duration, format_size, parse_duration, parse_size};
pub use error::Error;
pub use handler::{Echo, Handler};
pub use server::{Running, Server, ServerHandle};
pub use spool::Stderr;
pub use tungstenite::Message;
