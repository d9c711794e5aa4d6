//! # Frames by hand: the terminal client's raw mode
//!
//! What it shows: after the handshake a WebSocket is bytes on TCP, and a frame is a few
//! bytes of header before the payload (RFC 6455 §5.2). Every line you type is hex, sent
//! exactly as typed: nothing masked, checked or added for you. Every frame the server
//! sends back is decoded: FIN, RSV, opcode, MASK, length, the payload as text or hex, a
//! close code and reason; then the end of TCP. So you can send what a browser never
//! would (an unmasked frame, RSV bits, fragments) and see what the server answers.
//!
//! Run it:     cargo run --example client -- --raw ws://localhost:8080/
//! Then type:  bytes as hex, two digits each, spaces anywhere between bytes, e.g.
//!             81 85 37 fa 21 3d 7f 9f 4d 51 58      "Hello", masked (RFC 6455 §5.7)
//!             A line may hold several frames, or part of one: TCP is a stream of
//!             bytes, and the server waits for the rest. Ctrl-D (Windows: Ctrl-Z, Enter)
//!             closes TCP without a close frame; Ctrl-C quits.
//! Build a frame (RFC 6455 §5.2), byte by byte:
//!   byte 1    FIN (80: last frame of its message) + opcode: 1 text, 2 binary,
//!             0 continuation, 8 close, 9 ping, a (10) pong. 81 = FIN + text,
//!             01 = text with more to come, 80 = FIN + continuation.
//!   byte 2    MASK (80: a client masks every frame, §5.3) + the payload length, 0-125;
//!             or 126 then 2 bytes of length (fe 00 7e = masked, 126 bytes); 127 then 8.
//!   4 bytes   the mask key, e.g. the RFC's 37 fa 21 3d (a real client picks a new
//!             random key for every frame; the server cannot tell).
//!   payload   each byte XOR the key byte under it, the key repeating from the start of
//!             each frame: H 48^37=7f  e 65^fa=9f  l 6c^21=4d  l 6c^3d=51  o 6f^37=58.
//! Look for:   `< frame:` lines, what the server sent; `close code 1002 (protocol error)`
//!             when it refused your bytes; `the server closed TCP`. A ping from the
//!             server is printed with the pong to type: nothing is answered for you.
//!             The exercises: docs/classroom.md, "Frames by hand".

use std::error::Error;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;

/// A frame header may claim up to 2^63 bytes: larger than this is refused, not allocated.
const MAX_FRAME: u64 = 1 << 20;
/// The RFC 6455 §5.7 sample mask key, for the answers this client suggests.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The handshake, then stdin's lines go out on one thread while this one prints what
/// comes back, until the server closes TCP.
pub fn run(mut stream: TcpStream, host: &str, path: &str) -> Result<(), Box<dyn Error>> {
    handshake(&mut stream, host, path)?;
    let writer = stream.try_clone()?;
    std::thread::spawn(move || send_typed_lines(writer));
    print_frames(stream);
    Ok(())
}

/// The opening handshake (RFC 6455 §4.1), written out: a library would read ahead and
/// keep the bytes that follow the 101, and here every byte after it is yours to see.
fn handshake(stream: &mut TcpStream, host: &str, path: &str) -> Result<(), Box<dyn Error>> {
    let key = generate_key();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    show_head("> ", &request);
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = read_head(stream)?;
    stream.set_read_timeout(None)?;
    show_head("< ", &head);
    if !head.starts_with("HTTP/1.1 101 ") {
        return Err("no 101: the server refused the upgrade (its answer is above)".into());
    }
    let accept = derive_accept_key(key.as_bytes());
    if !has_header(&head, "sec-websocket-accept", &accept) {
        let e = format!("no Sec-WebSocket-Accept: {accept} (base64(SHA-1(key + GUID))) in the 101");
        return Err(e.into());
    }
    println!("connected: 101, and Sec-WebSocket-Accept is base64(SHA-1(key + GUID))");
    println!("type frames as hex, e.g. 81 85 37 fa 21 3d 7f 9f 4d 51 58");
    Ok(())
}

/// Whether `head` has the header `name` (any case) with exactly `value`.
fn has_header(head: &str, name: &str, value: &str) -> bool {
    head.lines().any(|line| {
        line.split_once(':')
            .is_some_and(|(n, v)| n.eq_ignore_ascii_case(name) && v.trim() == value)
    })
}

/// The response head up to its blank line, a byte at a time: nothing after it is read.
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= 8192 {
            return Err(io::Error::other("a response head over 8 KiB"));
        }
        stream.read_exact(&mut byte).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::other("the server closed TCP mid-answer"),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                io::Error::other("no answer to the handshake within 10 s")
            }
            _ => e,
        })?;
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Each line of a head, escaped: a server's control bytes never reach the terminal.
fn show_head(mark: &str, head: &str) {
    for line in head.lines().filter(|l| !l.is_empty()) {
        println!("{mark}{}", line.escape_debug());
    }
}

/// Sends each line typed on stdin as the bytes it spells. At the end of input, closes
/// TCP for writing and gives the server 5 s to close its side.
fn send_typed_lines(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match parse_hex(&line) {
            Ok(bytes) if bytes.is_empty() => {}
            Ok(bytes) => match stream.write_all(&bytes) {
                Ok(()) => println!("> {} bytes sent", bytes.len()),
                Err(e) => println!("> not sent: {e}"),
            },
            Err(e) => println!("> not sent: {e}"),
        }
    }
    println!("> end of input: closing TCP for writing");
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.shutdown(Shutdown::Write);
}

/// `81 85 37fa` → the bytes. Anything else → what is wrong, in one line.
fn parse_hex(line: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    for word in line.split_whitespace() {
        // Checked first: from_str_radix would take a sign ("+f"), and slicing needs ASCII.
        if word.len() % 2 != 0 || !word.bytes().all(|b| b.is_ascii_hexdigit()) {
            let shown: String = word.chars().take(16).collect();
            return Err(format!(
                "{shown:?} is not bytes in hex: type two hex digits (0-9, a-f) per byte, e.g. 81 85"
            ));
        }
        for at in (0..word.len()).step_by(2) {
            bytes.push(u8::from_str_radix(&word[at..at + 2], 16).map_err(|e| e.to_string())?);
        }
    }
    Ok(bytes)
}

/// Prints every frame the server sends, until TCP ends.
fn print_frames(mut stream: TcpStream) {
    loop {
        match read_frame(&mut stream) {
            Ok(Some((head, payload))) => print_frame(&head, &payload),
            Ok(None) => return println!("< the server closed TCP"),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return println!("< the server closed TCP in the middle of a frame");
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return println!("< the server did not close TCP within 5 s: giving up");
            }
            Err(e) => return println!("< stopped: {e}"),
        }
    }
}

/// One frame as it came (RFC 6455 §5.2): its header bytes and its payload; None when
/// TCP ends before the frame's first byte.
fn read_frame(r: &mut impl Read) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut head = vec![0; 2];
    match r.read_exact(&mut head[..1]) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    r.read_exact(&mut head[1..])?;
    let extended = match head[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let key = if head[1] & 0x80 != 0 { 4 } else { 0 };
    head.resize(2 + extended + key, 0);
    r.read_exact(&mut head[2..])?;
    let length = payload_length(&head);
    if length > MAX_FRAME {
        let e =
            format!("the server announced a {length}-byte frame; this client reads 1 MiB at most");
        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
    }
    let mut payload = vec![0; length as usize];
    r.read_exact(&mut payload)?;
    Ok(Some((head, payload)))
}

/// 7 bits; or 126 and the next 2 bytes; or 127 and the next 8 (network byte order).
fn payload_length(head: &[u8]) -> u64 {
    let extended = match head[1] & 0x7f {
        126 => &head[2..4],
        127 => &head[2..10],
        n => return u64::from(n),
    };
    extended.iter().fold(0, |n, &b| n << 8 | u64::from(b))
}

fn print_frame(head: &[u8], payload: &[u8]) {
    let (opcode, masked) = (head[0] & 0x0f, head[1] & 0x80 != 0);
    println!(
        "< frame: FIN={} RSV={:03b} opcode={opcode:#x} ({}) MASK={} length={}",
        head[0] >> 7,
        (head[0] >> 4) & 0b111,
        opcode_name(opcode),
        u8::from(masked),
        payload.len()
    );
    println!("<   header   {}", hex(head));
    let payload = if masked {
        // A server never masks (§5.1); shown unmasked all the same.
        println!("<   (a server must not mask its frames: RFC 6455 §5.1)");
        unmask(&head[head.len() - 4..], payload)
    } else {
        payload.to_vec()
    };
    print_payload(opcode, &payload);
}

fn print_payload(opcode: u8, payload: &[u8]) {
    if !payload.is_empty() {
        // The first 16 bytes, as the server's --trace shows them.
        let shown = payload.len().min(16);
        println!(
            "<   payload  {}{}",
            hex(&payload[..shown]),
            more(payload.len() - shown)
        );
    }
    match (opcode, std::str::from_utf8(payload)) {
        (0x8, _) => print_close(payload),
        (0x0 | 0x1, Ok(text)) => print_text(text),
        (0x9 | 0xa, Ok(text)) if !text.is_empty() => print_text(text),
        _ => {}
    }
    if opcode == 0x9 && payload.len() <= 125 {
        println!("<   a ping: the server waits for a pong with the same payload; type:");
        println!("{}", hex(&masked_frame(0x8a, payload)));
    }
}

/// Escaped (a server's control bytes never reach the terminal), 256 characters at most.
fn print_text(text: &str) {
    let shown: String = text.chars().take(256).collect();
    println!("<   text     {shown:?}{}", more(text.len() - shown.len()));
}

fn more(bytes_left: usize) -> String {
    match bytes_left {
        0 => String::new(),
        n => format!(" … (+{n} bytes)"),
    }
}

/// A close payload: a 2-byte code then a UTF-8 reason (RFC 6455 §5.5.1).
fn print_close(payload: &[u8]) {
    match payload {
        [] => println!("<   close    no code (a page reports 1005)"),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let reason = String::from_utf8_lossy(reason);
            println!(
                "<   close    code {code} ({}) reason {reason:?}",
                close_name(code)
            );
        }
        [_] => println!("<   close    1 byte: not a valid close payload"),
    }
}

fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        0x0 => "continuation",
        0x1 => "text",
        0x2 => "binary",
        0x8 => "close",
        0x9 => "ping",
        0xa => "pong",
        _ => "reserved",
    }
}

fn close_name(code: u16) -> &'static str {
    // RFC 6455 §7.4.1.
    match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1007 => "invalid payload data",
        1008 => "policy violation",
        1009 => "message too big",
        1011 => "internal error",
        3000..=4999 => "the application's own",
        _ => "other",
    }
}

/// A frame as a client sends it: `first` byte, MASK + length, the sample key, the
/// payload XOR the key (RFC 6455 §5.3). For control frames: 125 bytes at most.
fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first, 0x80 | payload.len() as u8];
    frame.extend(KEY);
    frame.extend(unmask(&KEY, payload));
    frame
}

/// XOR with the key, repeating: masking and unmasking are the same operation.
fn unmask(key: &[u8], payload: &[u8]) -> Vec<u8> {
    payload
        .iter()
        .zip(key.iter().cycle())
        .map(|(b, k)| b ^ k)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(" ")
}
