//! # A device that pushes a reading to every client, every second
//!
//! What it shows: the server speaking first. The program embeds tinyws in broadcast mode,
//! runs it on its own thread (`Server::spawn`), and calls `ServerHandle::broadcast` from
//! its own loop, the way a sensor board would publish a temperature. Clients only listen;
//! nothing they send is echoed. The reading here is the machine's 1-minute load average
//! from /proc/loadavg (a stand-in for a sensor), with a sequence number and a timestamp.
//! Ctrl-C (`shutdown_on_signals`) ends the loop and closes every client with 1001.
//!
//! Run it:     cargo run --example push            (or: cargo run --example push -- 9000)
//! Then open:  http://localhost:8080/ and press Connect
//! Or type:    python3 -m websockets ws://localhost:8080/
//! Look for:   one JSON line per second, e.g. {"seq":12,"unix_ms":1763900000000,"load1":0.42};
//!             every client sees the same seq at the same time; a client that joins late
//!             starts at the current seq (nothing is replayed); Ctrl-C closes them with
//!             1001 and the program prints how the server stopped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tinyws::{Client, Config, Message, Server};

fn read_sensor() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::args().nth(1).unwrap_or("8080".into()).parse()?;
    let config = Config::default().port(port).broadcast(true);
    // Listeners only: whatever a client sends is dropped (the handler returns None).
    // A closure handler needs its parameter types written out: `bind` takes any
    // `impl Handler`, so Rust has no `Fn` signature to give the closure, and without
    // `&Client` it would not accept the borrowed client of every call ("implementation
    // of `Fn` is not general enough"). tinyws::Handler's docs say more.
    let server = Server::bind(config, |_: &Client, _: Message| None)?;
    // Ctrl-C: close 1001 to every client; a second Ctrl-C exits at once.
    server.handle().shutdown_on_signals()?;
    println!("pushing readings on ws://{}/", server.local_addr());
    let running = server.spawn()?;
    let room = running.handle().clone();
    let mut seq = 0u64;
    while !room.is_stopping() {
        std::thread::sleep(Duration::from_secs(1));
        seq += 1;
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
        let reading = format!(
            r#"{{"seq":{seq},"unix_ms":{unix_ms},"load1":{:.2}}}"#,
            read_sensor()
        );
        let clients = room.broadcast(Message::text(reading));
        if clients > 0 {
            println!("reading {seq} sent to {clients} client(s)");
        }
    }
    println!("{}", running.join());
    Ok(())
}
