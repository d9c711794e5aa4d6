//! # A sensor program: a reading every 500 ms to everyone, `status` to the asker only
//!
//! Run it:   cargo run --example sensor   (or: -- 9000);  python3 -m websockets ws://localhost:8080/
//! Type:     status   (only you get the answer); Ctrl-C closes every client with 1001.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tinyws::{Client, Config, Message, Server};

fn main() -> Result<(), tinyws::Error> {
    env_logger::init(); // tinyws logs through `log`: without a logger its lines are lost
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let (started, readings) = (Instant::now(), Arc::new(AtomicU64::new(0)));
    let counted = readings.clone();
    let config = Config::default().port(port).broadcast(true);
    // `&Client` written out: a closure handler needs it (see tinyws::Handler).
    let server = Server::bind(config, move |client: &Client, msg: Message| {
        if msg.to_text().is_ok_and(|t| t.trim() == "status") {
            let status = format!(
                "status: up {}s, {} readings, {} listening",
                started.elapsed().as_secs(),
                counted.load(Relaxed),
                client.server().members()
            );
            client.send(Message::text(status)); // to the asker only
        }
        None // what a client says never goes to the room
    })?;
    server.handle().shutdown_on_signals()?; // Ctrl-C: 1001 to every client
    println!("sensor on ws://{}/", server.local_addr());
    let running = server.spawn()?;
    let room = running.handle().clone();
    let mut celsius = 21.0;
    while !room.is_stopping() {
        let n = readings.fetch_add(1, Relaxed) + 1;
        room.broadcast(Message::text(format!(
            r#"{{"reading":{n},"celsius":{celsius:.1}}}"#
        )));
        celsius += 0.1;
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("{}", running.join());
    Ok(())
}
