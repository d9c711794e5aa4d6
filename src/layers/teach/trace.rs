//! `--trace`: the server narrates what it reads, decides and writes, for people learning
//! the protocol. Everything goes to **stdout** (the log stays on stderr), one block per
//! event written under the stdout lock, so blocks from different connections never mix.
//! Each line starts with the connection's `#id` and a direction mark:
//!
//! - `<-` bytes from the client, `->` bytes to the client,
//! - `ok` a check of the request that passed, `!!` one that failed,
//! - `==` a value the server computed (the `Sec-WebSocket-Accept` steps), `--` an event.
//!
//! Nothing here runs unless [`Config::trace`](crate::Config::trace) is set: the call sites
//! test one bool (or an `Option`) first.
//!
//! Two things the network must not be able to do through the trace:
//!
//! - **Drive the terminal, or forge a line.** What the client sent (the request head, a
//!   text payload, a close reason) is printed through escape.rs, the escaping of the log:
//!   control characters, bidirectional-text controls and line separators as Rust writes
//!   them (`\u{1b}`, `\r`, `\0`), a backslash as `\\`. The request head is printed
//!   before it is checked, and a raw ESC in a header would otherwise clear the
//!   projector's screen or retitle the window, a bare CR overwrite a line with a fake
//!   "ok", and a LF in a close reason start a line of its own. Every line is then
//!   guarded once more as a whole (`escape::guard`), for client values quoted inside
//!   the checks' own lines.
//! - **Stall the server.** Blocks go to a bounded queue (spool.rs) that one writer thread
//!   drains to stdout, so a stdout that stops draining (Ctrl-S on the terminal, a paused
//!   pager) blocks only that thread. When the queue is full, blocks are left out,
//!   counted, and the trace says where and how many; connections and shutdown go on.

use std::fmt::Write as _;
use std::time::Duration;

use crate::client::outbox::{Client, Watch};
use crate::config::Config;
use crate::frame::{self, Header};
use crate::guard::escape;
use crate::layers::teach::inspect::Recorder;
use crate::layers::teach::narrate;
use crate::layers::teach::step::End;
use crate::tune::{Piece, Scanner};

/// How much of each connection the trace shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// `--trace`: every frame decoded, byte by byte.
    Full,
    /// `--trace-quiet`, for a full room: handshakes and closes in full, each data frame
    /// on one line, pings and pongs left out.
    Brief,
}

impl Detail {
    pub(crate) fn of(config: &Config) -> Detail {
        if config.trace_quiet {
            Detail::Brief
        } else {
            Detail::Full
        }
    }
}

/// Whether `--trace-only` (if given) selects this connection: `#7` or `7` (the id the
/// trace and the log print), an IP address (every connection from that machine), or an
/// `ip:port` (one connection).
pub(crate) fn follows(config: &Config, id: u64, peer: std::net::SocketAddr) -> bool {
    config.trace
        && config
            .trace_only
            .as_deref()
            .is_none_or(|only| matches_only(only, id, peer))
}

fn matches_only(only: &str, id: u64, peer: std::net::SocketAddr) -> bool {
    let only = only.trim();
    if let Ok(n) = only.trim_start_matches('#').parse::<u64>() {
        return n == id;
    }
    if let Ok(addr) = only.parse::<std::net::SocketAddr>() {
        return addr == peer;
    }
    // An IPv4 client of a dual-stack socket is seen as ::ffff:a.b.c.d.
    only.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip == peer.ip() || Some(ip) == ipv4_of(peer.ip()).map(Into::into))
}

fn ipv4_of(ip: std::net::IpAddr) -> Option<std::net::Ipv4Addr> {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        std::net::IpAddr::V4(v4) => Some(v4),
    }
}

/// Payload bytes shown in hex per frame; the rest is counted, not shown.
const HEX_BYTES: usize = 16;
/// Payload bytes of a text frame shown as text.
const TEXT_BYTES: usize = 48;
/// Payload bytes kept per frame: enough for a whole control frame (§5.5: at most 125), so
/// close codes and reasons are always decoded.
const KEEP_BYTES: usize = 125;

/// Queues one block of lines, each prefixed with `#id` and with its control characters
/// escaped. Never blocks on stdout (see the module documentation).
pub(crate) fn emit(id: u64, block: &str) {
    let mut out = String::with_capacity(block.len() + 16);
    for line in block.lines() {
        let _ = write!(out, "#{id} ");
        push_visible(&mut out, line);
        out.push('\n');
    }
    if crate::util::spool::STDOUT.push(out.into_bytes()) {
        log::warn!(
            "`trace`: stdout is not being read (a paused terminal?); trace blocks are left out from now on while it is full, and the trace says where"
        );
    }
}

/// Where one connection's narration goes: stdout (`--trace`, when it follows this
/// connection) and/or the connection's inspector record (inspect.rs). The same blocks
/// for both, but that the record always hides credentials (it goes to a browser, whatever
/// `--trace-secrets` says) and always decodes frames in full.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    id: u64,
    stdout: bool,
    record: Option<Recorder>,
}

impl Sink {
    /// `None` when there is nowhere to narrate to: then nothing is formatted at all.
    pub(crate) fn new(id: u64, stdout: bool, record: Option<Recorder>) -> Option<Sink> {
        (stdout || record.is_some()).then_some(Sink { id, stdout, record })
    }

    /// One block to every destination.
    pub(crate) fn emit(&self, block: &str) {
        if self.stdout {
            emit(self.id, block);
        }
        self.to_record(block);
    }

    fn to_record(&self, block: &str) {
        if let Some(record) = &self.record {
            record.push(visible(block));
        }
    }
}

/// A block as the inspector keeps it: like the trace's lines, without the `#id`.
fn visible(block: &str) -> String {
    let mut out = String::with_capacity(block.len());
    for (i, line) in block.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        push_visible(&mut out, line);
    }
    out
}

/// A connection's observers from its upgrade to its end (`--trace`, the inspector's
/// record, both reached through the sink), as the routing step made them
/// (http/serve.rs): connection.rs tells them what happens, and a connection nobody
/// watches formats nothing.
#[derive(Default)]
pub(crate) struct Observers {
    sink: Option<Sink>,
}

impl Observers {
    pub(crate) fn new(sink: Sink) -> Observers {
        Observers { sink: Some(sink) }
    }

    fn record(&self) -> Option<&Recorder> {
        self.sink.as_ref()?.record.as_ref()
    }

    /// Before the first byte of the `101`: attaches to `client` the observer of what is
    /// written to it, and returns the one of what it sends, for the stream.
    pub(crate) fn attach(&self, client: &Client, config: &Config) -> Option<Frames> {
        let sink = self.sink.as_ref()?;
        let detail = Detail::of(config);
        client.outbox().watch = Some(Box::new(Frames::new(sink.clone(), "->", detail)));
        Some(Frames::new(sink.clone(), "<-", detail))
    }

    /// The `101` is out.
    pub(crate) fn upgraded(&self) {
        if let Some(record) = self.record() {
            record.upgraded();
        }
    }

    /// The upgrade failed after its checks: the record says so.
    pub(crate) fn not_opened(&self) {
        if let Some(record) = self.record() {
            record.end("-- ended before the WebSocket opened".into());
        }
    }

    /// The connection is over: `end` says how, as its log line does.
    pub(crate) fn ended(&self, end: &dyn std::fmt::Display) {
        let Some(sink) = &self.sink else {
            return;
        };
        let line = format!("-- {end}");
        if sink.stdout {
            emit(sink.id, &line);
        }
        if let Some(record) = &sink.record {
            record.end(line);
        }
    }
}

/// `line` with every character that could act on a terminal written as an escape.
fn push_visible(out: &mut String, line: &str) {
    let _ = write!(out, "{}", escape::guard(line));
}

/// Waits, at most `limit`, until everything traced so far is on stdout (at shutdown, so
/// the trace ends with the last connection's end). Returns whether it is.
pub(crate) fn drain(limit: Duration) -> bool {
    crate::util::spool::STDOUT.drain(limit)
}

/// Text lines shown one per trace line, with CR and LF made visible so the exact bytes
/// can be read off (`␍␊` is the CRLF that ends every HTTP line).
pub(crate) fn http_lines(mark: &str, title: &str, bytes: &[u8]) -> String {
    let mut s = format!("{mark} {title} ({} bytes):\n", bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let ending = line
            .iter()
            .rev()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let (body, end) = line.split_at(line.len() - ending);
        let end: String = end
            .iter()
            .map(|&b| if b == b'\r' { '␍' } else { '␊' })
            .collect();
        let _ = writeln!(s, "{mark}   {}{end}", escape::client(body));
    }
    s
}

/// The start of a text payload, at most [`TEXT_BYTES`], not cutting a character in
/// two, and whether the payload goes on after it.
fn text_prefix(payload: &[u8], len: u64) -> (&[u8], bool) {
    let mut shown = &payload[..payload.len().min(TEXT_BYTES)];
    if let Err(e) = std::str::from_utf8(shown)
        && e.error_len().is_none()
        && (shown.len() as u64) < len
    {
        shown = &shown[..e.valid_up_to()];
    }
    (shown, len > shown.len() as u64)
}

/// The routing step narrated: the request head as received, then each check that
/// passed and how it ended (narrate.rs), and a refusal's answer as sent. The inspector
/// keeps the record of an upgrade only, not of a page load or a refusal.
pub(crate) fn request(sink: &Sink, head: &[u8], config: &Config, end: &End<'_>) {
    // Credentials hidden on stdout unless `--trace-secrets`, and always in the record,
    // which goes to a browser, maybe a projector's: redacted once for both.
    let hide = sink.record.is_some() || (sink.stdout && !config.trace_secrets);
    let redacted = hide.then(|| crate::util::secrets::redact(head));
    let hidden_head = |tail: &str| {
        let (shown, hidden) = redacted.as_ref().map_or((head, 0), |(s, n)| (&s[..], *n));
        let mut block = http_lines("<-", "request head", shown);
        if hidden > 0 {
            let _ = writeln!(
                block,
                "-- {hidden} credential value(s) hidden (cookies, authorization, tokens{tail}"
            );
        }
        block
    };
    if sink.stdout && config.trace_secrets {
        emit(sink.id, &http_lines("<-", "request head", head));
    } else if sink.stdout {
        emit(sink.id, &hidden_head("); --trace-secrets shows them"));
    }
    if sink.record.is_some() {
        sink.to_record(&hidden_head(": your inspect_token too)"));
    }
    let mut steps = narrate::steps(head, config, end);
    if let End::Refused { response, .. } = end {
        steps.push_str(&http_lines("->", "answer", &response.to_bytes()));
    }
    sink.emit(&steps);
    if let Some(record) = &sink.record {
        match end {
            End::Upgrade { .. } => record.show(),
            _ => record.discard(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hex of the first [`HEX_BYTES`] bytes, then how many were left out of `total`.
fn hex_prefix(bytes: &[u8], total: u64) -> String {
    let shown = &bytes[..bytes.len().min(HEX_BYTES)];
    let mut s = hex(shown);
    if total > shown.len() as u64 {
        let _ = write!(s, " … (+{} bytes)", total - shown.len() as u64);
    }
    s
}

/// The 7-bit length field said 126 (a 16-bit length follows) or 127 (64-bit), or held
/// the length itself: 7, 16 or 64.
fn length_bits(h: &Header) -> u8 {
    match h.size - if h.mask.is_some() { 4 } else { 0 } {
        2 => 7,
        4 => 16,
        _ => 64,
    }
}

fn opcode_name(op: u8) -> &'static str {
    // RFC 6455 §5.2 (data frames) and §5.5 (control frames).
    match op {
        0x0 => "continuation",
        frame::TEXT => "text",
        frame::BINARY => "binary",
        frame::CLOSE => "close",
        frame::PING => "ping",
        frame::PONG => "pong",
        _ => "reserved",
    }
}

pub(crate) fn close_code_name(code: u16) -> &'static str {
    // RFC 6455 §7.4.1.
    match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1007 => "invalid payload data",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "mandatory extension",
        1011 => "internal error",
        3000..=3999 => "registered by libraries/frameworks",
        4000..=4999 => "private use",
        _ => "not a code a peer may send",
    }
}

/// Decodes frames from a byte stream that may arrive in pieces (a frame split across
/// reads, several frames in one read), printing each frame once it is complete. Keeps
/// at most a header and [`KEEP_BYTES`] of payload, whatever the frame size.
#[derive(Debug)]
pub(crate) struct Frames {
    sink: Sink,
    mark: &'static str,
    detail: Detail,
    scanner: Scanner,
    /// The current frame's header, and its bytes as they were on the wire.
    header: Option<Header>,
    raw: Vec<u8>,
    /// The first payload bytes as they were on the wire (still masked for client frames).
    kept: Vec<u8>,
}

/// The outbox's observer (outbox.rs `Watch`): what is written to the client.
impl Watch for Frames {
    fn wrote(&mut self, bytes: &[u8], upgraded: bool) {
        if upgraded {
            self.feed(bytes);
        } else {
            self.sink.emit(&http_lines("->", "response", bytes));
        }
    }
}

impl Frames {
    /// `mark` is `<-` for what the client sends, `->` for what the server sends;
    /// `detail` is the trace's on stdout (the record always gets [`Detail::Full`]).
    pub(crate) fn new(sink: Sink, mark: &'static str, detail: Detail) -> Frames {
        Frames {
            sink,
            mark,
            detail,
            scanner: Scanner::default(),
            header: None,
            raw: Vec::new(),
            kept: Vec::new(),
        }
    }

    /// Prints every frame that `bytes` completes.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for block in self.decode(bytes) {
            emit(self.sink.id, &block);
        }
    }

    /// One stdout block per frame that `bytes` completes (the record gets its own).
    fn decode(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut blocks = Vec::new();
        while let Some(piece) = self.scanner.next(&mut bytes) {
            match piece {
                Piece::Header(h) => {
                    self.raw = self.scanner.header_bytes(&h).to_vec();
                    self.header = Some(h);
                }
                Piece::Payload { bytes, end } => {
                    let room = KEEP_BYTES.saturating_sub(self.kept.len()).min(bytes.len());
                    self.kept.extend_from_slice(&bytes[..room]);
                    if end {
                        blocks.extend(self.finish());
                    }
                }
            }
        }
        blocks
    }

    /// The frame's block; `None` for what [`Detail::Brief`] leaves out.
    fn finish(&mut self) -> Option<String> {
        let h = self.header.take()?;
        let block = match (self.sink.stdout, self.detail) {
            (false, _) => None,
            (true, Detail::Full) => Some(self.describe(&h)),
            (true, Detail::Brief) => self.one_line(&h),
        };
        if self.sink.record.is_some() {
            let mut full = match (&block, self.detail) {
                (Some(b), Detail::Full) => b.clone(),
                _ => self.describe(&h),
            };
            // The page has room for what a terminal line does not: the XOR byte by byte.
            if let Some(xor) = self.xor_line(&h) {
                let at = full
                    .find(&format!("{}   unmasked ", self.mark))
                    .unwrap_or(full.len());
                full.insert_str(at, &xor);
            }
            self.sink.to_record(&full);
        }
        self.kept = Vec::new();
        block
    }

    /// [`Detail::Brief`]: a data frame on one line, a close in full, pings and pongs
    /// (keepalive, every `--ping-interval` per client) not at all.
    fn one_line(&mut self, h: &Header) -> Option<String> {
        let (fin, op) = (u8::from(h.fin), h.opcode);
        match op {
            frame::PING | frame::PONG => None,
            frame::CLOSE => Some(self.describe(h)),
            _ => {
                let m = self.mark;
                let payload = self.unmasked(h);
                let mut s = format!(
                    "{m} {} FIN={fin} {} {} bytes",
                    opcode_name(op),
                    if h.mask.is_some() {
                        "masked"
                    } else {
                        "unmasked"
                    },
                    h.len
                );
                if matches!(op, 0x0 | 0x1) && !payload.is_empty() {
                    let (shown, more) = text_prefix(&payload, h.len);
                    let more = if more { "…" } else { "" };
                    let _ = write!(s, " \"{}\"{more}", escape::client(shown));
                }
                Some(s)
            }
        }
    }

    /// The kept payload bytes with the mask removed (§5.3: byte `i` is XORed with byte
    /// `i` mod 4 of the key).
    fn unmasked(&self, h: &Header) -> Vec<u8> {
        let mut payload = self.kept.clone();
        if let Some(key) = h.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        payload
    }

    /// For the inspector: the unmasking of the first [`HEX_BYTES`] bytes, one XOR each
    /// (§5.3: byte i of the payload is XORed with byte i mod 4 of the key).
    fn xor_line(&self, h: &Header) -> Option<String> {
        let key = h.mask?;
        if self.kept.is_empty() {
            return None;
        }
        let shown = &self.kept[..self.kept.len().min(HEX_BYTES)];
        let mut s = format!("{}   XOR     ", self.mark);
        for (i, b) in shown.iter().enumerate() {
            let k = key[i % 4];
            let _ = write!(s, " {b:02x}^{k:02x}={:02x}", b ^ k);
        }
        if h.len > shown.len() as u64 {
            s.push_str(" …");
        }
        s.push_str("  (byte i XOR key byte i mod 4, RFC 6455 §5.3)\n");
        Some(s)
    }

    fn describe(&mut self, h: &Header) -> String {
        let (fin, rsv, op) = (u8::from(h.fin), h.rsv, h.opcode);
        let m = self.mark;
        let mut s = format!(
            "{m} frame: FIN={fin} RSV={rsv:03b} opcode={op:#x} ({}) MASK={} length={}",
            opcode_name(op),
            u8::from(h.mask.is_some()),
            h.len,
        );
        match length_bits(h) {
            16 => s.push_str(" (7-bit length 126: a 16-bit length follows)"),
            64 => s.push_str(" (7-bit length 127: a 64-bit length follows)"),
            _ => {}
        }
        if let Some(k) = h.mask {
            let _ = write!(s, " mask key={}", hex(&k));
        }
        let _ = write!(s, "\n{m}   header   {}\n", hex(&self.raw));
        if h.mask.is_some() {
            let _ = writeln!(s, "{m}   masked   {}", hex_prefix(&self.kept, h.len));
        }
        // §5.3: byte i of the payload is XORed with byte i mod 4 of the key.
        let payload = self.unmasked(h);
        if h.len > 0 {
            let label = if h.mask.is_some() {
                "unmasked"
            } else {
                "payload "
            };
            let _ = writeln!(s, "{m}   {label} {}", hex_prefix(&payload, h.len));
        }
        match op {
            0x1 | 0x0 if !payload.is_empty() => {
                let (shown, more) = text_prefix(&payload, h.len);
                let more = if more { "…" } else { "" };
                let _ = writeln!(s, "{m}   text     \"{}\"{more}", escape::client(shown));
            }
            0x8 if payload.len() >= 2 => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                let _ = writeln!(
                    s,
                    "{m}   close    code {code} ({}) reason \"{}\"",
                    close_code_name(code),
                    escape::client(&payload[2..])
                );
            }
            0x8 => {
                let _ = writeln!(s, "{m}   close    no code (the peer sees 1005)");
            }
            _ => {}
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdout_sink() -> Sink {
        Sink::new(0, true, None).unwrap()
    }

    #[test]
    fn frames_split_anywhere_are_decoded_once_each() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d, then a server pong.
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, 0x8a, 0x00,
        ];
        let whole = Frames::new(stdout_sink(), "<-", Detail::Full).decode(&bytes);
        assert_eq!(whole.len(), 2);
        assert!(whole[0].contains("opcode=0x1 (text) MASK=1 length=5 mask key=37 fa 21 3d"));
        assert!(whole[0].contains("masked   7f 9f 4d 51 58\n"));
        assert!(whole[0].contains("unmasked 48 65 6c 6c 6f\n"));
        assert!(whole[0].contains("text     \"Hello\""));
        assert!(whole[1].contains("opcode=0xa (pong) MASK=0 length=0"));
        let parse = |b: &[u8]| frame::parse(b).expect("complete");
        assert_eq!(length_bits(&parse(&bytes)), 7);
        let big = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        assert_eq!(length_bits(&parse(&big)), 64);
        assert_eq!(length_bits(&parse(&[0x82, 126, 1, 0])), 16);
        for split in 0..bytes.len() {
            let mut f = Frames::new(stdout_sink(), "<-", Detail::Full);
            let mut blocks = f.decode(&bytes[..split]);
            blocks.extend(f.decode(&bytes[split..]));
            assert_eq!(blocks, whole, "split at {split}");
        }
    }

    #[test]
    fn a_text_preview_does_not_cut_a_character_in_two() {
        let text = format!("a{}", "温".repeat(20)); // 61 bytes
        let (shown, more) = text_prefix(text.as_bytes(), 61);
        assert_eq!(
            (shown, more),
            (format!("a{}", "温".repeat(15)).as_bytes(), true)
        );
        // A whole payload is shown whole, broken or not.
        assert_eq!(text_prefix(b"ab\xe6", 3), (&b"ab\xe6"[..], false));
        assert_eq!(
            text_prefix("温度".as_bytes(), 6),
            ("温度".as_bytes(), false)
        );
    }

    #[test]
    fn trace_only_matches_ids_machines_and_connections() {
        let peer: std::net::SocketAddr = "192.168.1.23:50412".parse().unwrap();
        let mapped: std::net::SocketAddr = "[::ffff:192.168.1.23]:50412".parse().unwrap();
        assert!(matches_only("#7", 7, peer) && matches_only("7", 7, peer));
        assert!(!matches_only("#8", 7, peer));
        assert!(matches_only("192.168.1.23", 7, peer) && matches_only("192.168.1.23", 7, mapped));
        assert!(matches_only("192.168.1.23:50412", 7, peer));
        assert!(!matches_only("192.168.1.23:50413", 7, peer));
    }
}
