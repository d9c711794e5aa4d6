//! # The WebSocket protocol by hand, with `std` alone
//!
//! What it shows: everything tinyws (and tungstenite) do for you, written out step by step
//! with nothing but the standard library: reading the HTTP request head, computing
//! `Sec-WebSocket-Accept` (SHA-1 and base64 are written out below too), sending the
//! `101 Switching Protocols`, then reading frames bit by bit, unmasking them, and echoing
//! text back as unmasked server frames. It narrates every step on the terminal.
//!
//! It is a lesson, not a server: one client at a time, no fragmentation, no limits beyond
//! the basic ones. Use `tinyws` itself for anything real.
//!
//! Run it:     cargo run --example handshake_by_hand          (port 8080; or `-- 9000`)
//! Then type:  cargo run --example client -- ws://localhost:8080/   (then type a line)
//!        or:  python3 -m websockets ws://localhost:8080/
//!             (a browser page would need the page on `/`, which only tinyws serves)
//! Look for:   the key, key + GUID, the 20 SHA-1 bytes and the base64 accept value; then
//!             for each message: FIN, opcode, MASK, length, the mask key, and the payload
//!             before and after the XOR.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// RFC 6455 §1.3: every server appends this same string to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn main() -> io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let listener = TcpListener::bind(("0.0.0.0", port))?;
    println!("listening on ws://{}/", listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        // A lesson must not hang on a silent client: every read and write is bounded.
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        println!("\n=== connection from {}", stream.peer_addr()?);
        if let Err(e) = serve(stream) {
            println!("=== connection ended: {e}");
        }
    }
    Ok(())
}

fn serve(stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;

    // Step 1: the request head, line by line, up to the empty line (RFC 6455 §4.1).
    println!("step 1: the request head");
    let mut key = None;
    let mut head_bytes = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::other("closed during the handshake"));
        }
        head_bytes += line.len();
        if head_bytes > 8192 {
            return Err(io::Error::other("request head too large"));
        }
        let line = line.trim_end();
        println!("  <- {line}");
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("sec-websocket-key")
        {
            key = Some(value.trim().to_string());
        }
    }
    // (tinyws also checks the method, Upgrade, Connection, Host, version and Origin here.)
    let Some(key) = key else {
        writer.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
        return Err(io::Error::other(
            "no Sec-WebSocket-Key: not a WebSocket request",
        ));
    };

    // Step 2: the accept value (RFC 6455 §4.2.2 item 5.4).
    println!("step 2: Sec-WebSocket-Accept = base64(SHA-1(key + GUID))");
    let joined = format!("{key}{GUID}");
    let digest = sha1(joined.as_bytes());
    let accept = base64(&digest);
    println!("  key           {key}");
    println!("  key + GUID    {joined}");
    println!("  SHA-1         {}", hex(&digest));
    println!("  base64        {accept}");

    // Step 3: the answer. After the empty line, both sides speak frames.
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    println!("step 3: the answer");
    for line in response.split("\r\n").take(4) {
        println!("  -> {line}");
    }
    writer.write_all(response.as_bytes())?;

    // Step 4: frames (RFC 6455 §5.2).
    println!("step 4: frames");
    loop {
        let mut h = [0u8; 2];
        reader.read_exact(&mut h)?;
        let fin = h[0] >> 7;
        let opcode = h[0] & 0x0f;
        let masked = h[1] >> 7;
        // 0..=125 is the length itself; 126 and 127 say a 16- or 64-bit length follows.
        let len = match h[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                reader.read_exact(&mut n)?;
                u16::from_be_bytes(n) as u64
            }
            127 => {
                let mut n = [0u8; 8];
                reader.read_exact(&mut n)?;
                u64::from_be_bytes(n)
            }
            n => n as u64,
        };
        println!(
            "  <- {:02x} {:02x}: FIN={fin} opcode={opcode:#x} MASK={masked} length={len}",
            h[0], h[1]
        );
        if masked == 0 {
            // §5.1: a server must close the connection on an unmasked client frame.
            return Err(io::Error::other("client frame not masked: protocol error"));
        }
        if len > 64 * 1024 {
            return Err(io::Error::other("frame too large for this lesson"));
        }
        let mut mask = [0u8; 4];
        reader.read_exact(&mut mask)?;
        let mut payload = vec![0u8; len as usize];
        reader.read_exact(&mut payload)?;
        println!("     mask key {}", hex(&mask));
        println!("     masked   {}", hex(&payload[..payload.len().min(16)]));
        // §5.3: byte i is XORed with mask[i % 4]; doing it again gives the original.
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        println!("     unmasked {}", hex(&payload[..payload.len().min(16)]));
        match opcode {
            0x1 | 0x2 => {
                if opcode == 0x1 {
                    println!("     text     {:?}", String::from_utf8_lossy(&payload));
                }
                // The echo: same opcode, FIN set, no mask (servers never mask, §5.1).
                let frame = server_frame(opcode, &payload);
                println!("  -> {} (echo)", hex(&frame[..frame.len().min(18)]));
                writer.write_all(&frame)?;
            }
            0x9 => {
                println!("  -> pong with the same payload (§5.5.3)");
                writer.write_all(&server_frame(0xa, &payload))?;
            }
            0x8 => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                println!("     close code {code:?}; answering with the same code (§5.5.1)");
                writer.write_all(&server_frame(0x8, &payload[..payload.len().min(2)]))?;
                return Ok(());
            }
            _ => println!("     (ignored)"),
        }
    }
}

/// A whole, unmasked server frame.
fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// SHA-1 (FIPS 180-4 §6.1), only because the handshake needs it. Never use SHA-1 to
/// protect anything: here it is a checksum that proves the server read the key.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    // Padding: a 1 bit, zeros, then the length in bits as 64-bit big-endian.
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard base64 with `=` padding (RFC 4648 §4): every 3 bytes become 4 characters.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
