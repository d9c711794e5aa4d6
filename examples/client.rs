//! # An interactive terminal WebSocket client
//!
//! What it shows: the client side of the protocol (tungstenite's client, the same library
//! tinyws uses): the handshake from the client's end, sending text, and what arrives:
//! messages, pings, and the close code and reason when either side closes.
//! Works against any `ws://` server, not only tinyws.
//!
//! Run it:     cargo run --example client -- ws://localhost:8080/
//! Then type:  a line of text and Enter: it is sent as one text message.
//!             /ping hi          sends a ping (the server answers with a pong)
//!             /close 4000 bye   starts the close handshake with that code and reason
//!             /quit (or Ctrl-D) closes with 1000
//! Look for:   `< ` lines are what the server sent: the echo of your line, or other
//!             people's messages on a chat server; `closed` shows the code (1000 normal,
//!             1001 server shutting down, 1009 message too big, ...).
//! Raw mode:   cargo run --example client -- --raw ws://localhost:8080/ sends the
//!             bytes you type in hex and decodes the frames that come back: your own
//!             frames, built by hand (examples/client/raw.rs says how).

use std::io::{self, BufRead};
use std::net::TcpStream;
use std::sync::mpsc::{self, TryRecvError};
use std::time::Duration;

use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

#[path = "client/raw.rs"]
mod raw;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let raw = args.first().is_some_and(|a| a == "--raw");
    if raw {
        args.remove(0);
    }
    let url = args.pop().unwrap_or("ws://localhost:8080/".into());
    let done = connect(&url).and_then(|(stream, host, path)| {
        if raw {
            raw::run(stream, &host, &path)
        } else {
            run(&url, stream)
        }
    });
    if let Err(e) = done {
        eprintln!("client: {e}");
        std::process::exit(1);
    }
}

/// The TCP connection for `ws://host[:port]/path` (port 80 when none is given), with
/// the URL's host and path, which the handshake's request names.
fn connect(url: &str) -> Result<(TcpStream, String, String), Box<dyn std::error::Error>> {
    let Some(rest) = url.strip_prefix("ws://") else {
        return Err("only ws:// URLs (this example has no TLS)".into());
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let stream = TcpStream::connect(&addr)?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok((stream, authority.to_string(), format!("/{path}")))
}

fn run(url: &str, stream: TcpStream) -> Result<(), Box<dyn std::error::Error>> {
    let (mut ws, response) = tungstenite::client(url, stream)?;
    println!("connected: {} {:?}", response.status(), response.headers());

    // stdin is read on its own thread; lines arrive over a channel. The socket gets a
    // short read timeout so this thread can look at both: tungstenite has one owner per
    // connection, so reading and writing happen here, in turns.
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))?;
    let (lines, input) = mpsc::channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
        // End of input (Ctrl-D): like /quit.
        let _ = lines.send("/quit".into());
    });

    let mut closing = false;
    loop {
        match input.try_recv() {
            Ok(line) if !closing => {
                closing = command(&mut ws, &line)?;
            }
            Ok(_) | Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {}
        }
        match ws.read() {
            Ok(Message::Text(t)) => println!("< {t}"),
            Ok(Message::Binary(b)) => println!("< binary message, {} bytes", b.len()),
            Ok(Message::Ping(p)) => println!("< ping {:?} (pong sent automatically)", p),
            Ok(Message::Pong(p)) => println!("< pong {:?}", String::from_utf8_lossy(&p)),
            Ok(Message::Close(Some(f))) => {
                println!("< close {} {:?}", u16::from(f.code), f.reason.as_str())
            }
            Ok(Message::Close(None)) => println!("< close (no code: 1005)"),
            Ok(Message::Frame(_)) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(tungstenite::Error::ConnectionClosed) => {
                println!("closed");
                return Ok(());
            }
            Err(e) => {
                println!("connection lost: {e} (a browser would report 1006)");
                return Ok(());
            }
        }
    }
}

/// Handles one input line; returns whether the close handshake has started.
fn command(ws: &mut WebSocket<TcpStream>, line: &str) -> tungstenite::Result<bool> {
    let close = |code: u16, reason: &str| {
        Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_string().into(),
        })
    };
    if line == "/quit" {
        println!("> close 1000");
        ws.close(close(1000, ""))?;
        return Ok(true);
    }
    if let Some(rest) = line.strip_prefix("/close") {
        let mut parts = rest.trim().splitn(2, ' ');
        let code = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1000);
        let reason = parts.next().unwrap_or("");
        println!("> close {code} {reason:?}");
        ws.close(close(code, reason))?;
        return Ok(true);
    }
    if let Some(rest) = line.strip_prefix("/ping") {
        ws.send(Message::Ping(rest.trim().as_bytes().to_vec().into()))?;
        return Ok(false);
    }
    ws.send(Message::text(line))?;
    Ok(false)
}
