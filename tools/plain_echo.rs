//! The plain baseline for the benchmark: the smallest tungstenite thread-per-connection
//! echo server, with tungstenite's upstream `WebSocketConfig` defaults (128 KiB read
//! buffer, 64 MiB messages) and Rust's default 2 MiB thread stacks. It is what most
//! people write first; `tools/bench.rs` compares tinyws with it.
//!
//! The one change from the textbook version is `TCP_NODELAY`, which tinyws also sets, so
//! that Nagle's algorithm does not decide the latency figures.
//!
//! `cargo run --release --example plain_echo -- 127.0.0.1:9002`

use std::net::TcpListener;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("plain_echo: cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    };
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let Ok(mut ws) = tungstenite::accept(stream) else {
                return;
            };
            loop {
                match ws.read() {
                    Ok(msg) if msg.is_text() || msg.is_binary() => {
                        if ws.send(msg).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {} // pings are answered and the close is echoed by tungstenite
                    Err(_) => break,
                }
            }
        });
    }
}
