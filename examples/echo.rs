//! # The smallest tinyws server: echo
//!
//! What it shows: a whole WebSocket echo server is a `Config`, a handler and `run()`.
//! `Echo` sends every message back unchanged; tinyws does the handshake, pings, the close
//! handshake and every limit.
//!
//! Run it:     cargo run --example echo            (or: cargo run --example echo -- 9000)
//! Then open:  http://localhost:8080/              (the built-in page: Connect, type, Send)
//! Or type:    python3 -m websockets ws://localhost:8080/
//! Look for:   each line you send comes back; the page shows the close code when you close.

use tinyws::{Config, Echo, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::args().nth(1).unwrap_or("8080".into()).parse()?;
    let server = Server::bind(Config::default().port(port), Echo)?;
    println!("echo server on ws://{}/", server.local_addr());
    server.run();
    Ok(())
}
