//! The floor for the benchmark: a raw TCP echo server, one thread per connection, that
//! sends back every byte it reads. No framing, no masking, no handshake: no WebSocket
//! server can beat it, so `tools/bench.rs` quotes tinyws as a ratio of it.
//!
//! With `broadcast` after the address it is the floor for `tinyws --broadcast` instead:
//! every byte any connection sends goes to every connection (the sender included, as in
//! tinyws's room), one blocking `write` per member while holding the room's lock. One
//! system call per delivery is the least any server can do with TCP sockets.
//!
//! `cargo run --release --example raw_echo -- 127.0.0.1:9003 [broadcast]`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9003".into());
    let broadcast = args.next().is_some_and(|a| a == "broadcast");
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("raw_echo: cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    };
    let room: Arc<Mutex<Vec<(u64, TcpStream)>>> = Arc::default();
    for (id, stream) in (0u64..).zip(listener.incoming().flatten()) {
        let _ = stream.set_nodelay(true);
        if broadcast {
            let Ok(copy) = stream.try_clone() else {
                continue;
            };
            lock(&room).push((id, copy));
        }
        let room = room.clone();
        // Same thread stack as tinyws, so the comparison is about the protocol, not
        // stacks; a 64 KiB buffer so that large messages take few syscalls.
        let _ = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                let mut s = &stream;
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if !broadcast {
                        if s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        continue;
                    }
                    // A member whose write fails is dropped from the room.
                    lock(&room).retain(|(_, member)| {
                        let mut member: &TcpStream = member;
                        member.write_all(&buf[..n]).is_ok()
                    });
                }
                lock(&room).retain(|(member, _)| *member != id);
            });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
