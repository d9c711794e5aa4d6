//! The floor for the benchmark: a raw TCP echo server, one thread per connection, that
//! sends back every byte it reads. No framing, no masking, no handshake: no WebSocket
//! server can beat it, so `examples/bench.rs` quotes tinyws as a ratio of it.
//!
//! `cargo run --release --example raw_echo -- 127.0.0.1:9003`

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("raw_echo: cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    };
    for stream in listener.incoming().flatten() {
        // Same thread stack as tinyws, so the comparison is about the protocol, not
        // stacks; a 64 KiB buffer so that large messages take few syscalls.
        let _ = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buf = vec![0u8; 64 * 1024];
                let mut s = &stream;
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
    }
}
