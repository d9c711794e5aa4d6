//! The live protocol inspector: what `--trace` would say about a connection, kept for the
//! browser that opened it (the page on `/`), and for the projector view (`/inspect`,
//! with [`Config::inspect`](crate::Config::inspect)).
//!
//! **Whose record.** The page opens its WebSocket with a random token it makes itself
//! (`?inspect_token=` and 32 hex digits, 128 bits from `crypto.getRandomValues`; the
//! query is ignored when paths are matched). Only a connection that brought a token, or
//! every upgrade while the projector view is on, gets a record: the others cost nothing
//! here, not even an allocation. The token's name contains "token", so secrets.rs hides
//! its value wherever a request head is shown (trace, log, the records themselves): a
//! record can be read only by who made the token.
//!
//! **How the page reads it: long polling.** `GET /.inspect?inspect_token=T&since=N`
//! answers with the record's events after `N` as soon as there are any (at most
//! [`POLL_WAIT`] later: then with none), and closes, like every plain HTTP answer of
//! tinyws; the page asks again at once. Chosen over a second WebSocket because it needs
//! nothing new from a connection thread: the poll is an ordinary request that waits on a
//! condition variable and writes one bounded answer, so it never has to read and write
//! at once (a blocked WebSocket thread cannot be woken to write), and a page of another
//! site cannot read the answer (the same-origin policy of `fetch`; a WebSocket would
//! need its own Origin check). Cost: one short TCP connection per burst of events.
//!
//! **Bounded, and never in the way.** A watched connection only appends a block of text
//! under one short lock and notifies; a slow or stuck poller holds only its own thread and
//! socket (its answer is written with the write timeout, like any other). Per record the
//! handshake is always kept, and at most [`FRAME_BYTES`] of decoded frames: older frames
//! are dropped first, and counted. At most [`MAX_RECORDS`] records: past that one that
//! ended goes first, else the oldest of the machine (IP address) that holds the most, so
//! a student who opens a hundred sockets pushes out only their own. A record is freed [`KEEP_ENDED`] after its
//! connection ended (so the page can still fetch the end), or when pushed out. Worst
//! case: 64 × (32 KiB + the handshake, a few KiB) ≈ 3 MiB.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::lock::{lock, wait_until};
use crate::page::js_string;
use crate::response::Response;

/// Where the page polls.
pub(crate) const POLL_PATH: &str = "/.inspect";
/// The projector view.
pub(crate) const VIEW_PATH: &str = "/inspect";
/// The query parameter that carries a connection's token.
pub(crate) const TOKEN_PARAM: &str = "inspect_token";
/// Decoded frames kept per record (about 40 fully decoded frames); the handshake is
/// kept besides.
pub(crate) const FRAME_BYTES: usize = 32 * 1024;
/// Records kept at once.
pub(crate) const MAX_RECORDS: usize = 64;
/// How long a record outlives its connection.
const KEEP_ENDED: Duration = Duration::from_secs(120);
/// The longest a poll waits for news before answering with none.
pub(crate) const POLL_WAIT: Duration = Duration::from_secs(15);

/// Every record of one server.
pub(crate) struct Inspector {
    /// `Config::inspect`: every upgrade is recorded, and `?all` may read them all.
    projector: bool,
    board: Mutex<Board>,
    /// Something was recorded (or the server is stopping).
    changed: Condvar,
}

#[derive(Default)]
struct Board {
    /// The number of the last event recorded, in any record.
    seq: u64,
    /// Oldest first.
    records: VecDeque<Record>,
    stopping: bool,
}

struct Record {
    id: u64,
    peer: String,
    token: Option<[u8; 16]>,
    /// Readable: the request turned out to be an upgrade (until then it may still be a
    /// page load or a refusal, which are not kept).
    shown: bool,
    /// The request, the checks, the accept computation and the 101: always kept.
    handshake: Vec<(u64, String)>,
    upgraded: bool,
    frames: VecDeque<(u64, String)>,
    frame_bytes: usize,
    dropped: u64,
    ended: Option<Instant>,
    last: u64,
}

/// The machine of a record (its peer address without the port).
fn machine(peer: &str) -> &str {
    peer.rsplit_once(':').map_or(peer, |(ip, _)| ip)
}

impl Board {
    /// The index of the oldest record of the machine that holds the most records,
    /// counting the newcomer from `peer` as one more of its machine's (if that machine
    /// has no record yet, the oldest record of the busiest other one).
    fn oldest_of_the_busiest(&self, peer: std::net::SocketAddr) -> usize {
        let newcomer = peer.ip().to_string();
        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for r in &self.records {
            *counts.entry(machine(&r.peer)).or_default() += 1;
        }
        *counts.entry(newcomer.as_str()).or_default() += 1;
        let most = counts.values().copied().max().unwrap_or(0);
        // The oldest record of a machine with that many: on a tie (a class of one
        // socket each), simply the oldest.
        self.records
            .iter()
            .position(|r| counts.get(machine(&r.peer)) == Some(&most))
            .unwrap_or(0)
    }
}

impl Inspector {
    pub(crate) fn new(projector: bool) -> Inspector {
        Inspector {
            projector,
            board: Mutex::new(Board::default()),
            changed: Condvar::new(),
        }
    }

    /// A recorder for connection `id`, if its request head carries a token or the
    /// projector view is on; `None` (and nothing allocated) otherwise.
    pub(crate) fn recorder(
        self: &Arc<Self>,
        id: u64,
        peer: std::net::SocketAddr,
        head: &[u8],
    ) -> Option<Recorder> {
        let token = target_of(head)
            .and_then(|t| param(t, TOKEN_PARAM))
            .and_then(parse_token);
        if token.is_none() && !self.projector {
            return None;
        }
        // Only upgrades are ever shown: a page load or a file (a lesson page with forty
        // assets) must not push recorded connections out of the projector view.
        if !asks_to_upgrade(head) {
            return None;
        }
        let mut board = lock(&self.board);
        board.purge(Instant::now());
        if board.records.len() >= MAX_RECORDS {
            // The oldest that ended; else the oldest of the machine that holds the most
            // records, so that one student opening a hundred sockets pushes out their
            // own records, not the rest of the class's (the newcomer may be that one).
            let at = board
                .records
                .iter()
                .position(|r| r.ended.is_some())
                .unwrap_or_else(|| board.oldest_of_the_busiest(peer));
            board.records.remove(at);
        }
        board.seq += 1;
        let seq = board.seq;
        board.records.push_back(Record {
            id,
            peer: peer.to_string(),
            token,
            shown: false,
            handshake: vec![(seq, format!("-- connection from {peer}"))],
            upgraded: false,
            frames: VecDeque::new(),
            frame_bytes: 0,
            dropped: 0,
            ended: None,
            last: seq,
        });
        Some(Recorder {
            inspector: self.clone(),
            id,
        })
    }

    /// Wakes every waiting poll: the server is stopping.
    pub(crate) fn stop(&self) {
        lock(&self.board).stopping = true;
        self.changed.notify_all();
    }

    /// The answer to `GET /.inspect?…`: waits (at most [`POLL_WAIT`]) for events after
    /// `since`, then lists them as JSON.
    pub(crate) fn poll(&self, target: &str) -> Response {
        let since = param(target, "since")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let token = param(target, TOKEN_PARAM).map(parse_token);
        let all = param(target, "all").is_some();
        let wants = match (token, all) {
            (Some(Some(token)), _) => Some(token),
            (Some(None), _) => {
                return not_found(
                    "An inspect_token is 32 hex digits (128 bits), made by the page when it connects.",
                );
            }
            (None, true) if self.projector => None,
            (None, true) => return projector_off(),
            (None, false) => {
                return not_found(
                    "Ask with ?inspect_token=… (your connection's), or ?all for the projector view.",
                );
            }
        };
        let matches = move |r: &Record| {
            r.shown && wants.is_none_or(|t| r.token.is_some_and(|o| same(&o, &t)))
        };
        let deadline = Instant::now() + POLL_WAIT;
        let board = lock(&self.board);
        if wants.is_some() && !board.records.iter().any(matches) {
            return not_found(
                "No connection is recorded with this inspect_token (it ended minutes ago, or was pushed out by newer ones).",
            );
        }
        let (mut board, _) = wait_until(&self.changed, board, deadline, |b| {
            b.stopping
                || b.records.iter().any(|r| matches(r) && r.last > since)
                || (wants.is_some() && !b.records.iter().any(matches))
        });
        board.purge(Instant::now());
        let mut json = format!("{{\"next\":{},\"records\":[", board.seq);
        let mut first = true;
        for r in board
            .records
            .iter()
            .rev()
            .filter(|r| matches(r) && r.last > since)
        {
            if !first {
                json.push(',');
            }
            first = false;
            let _ = write!(
                json,
                "{{\"id\":{},\"peer\":{},\"ended\":{},\"dropped\":{},\"events\":[",
                r.id,
                js_string(&r.peer),
                r.ended.is_some(),
                r.dropped
            );
            let events = r.handshake.iter().chain(r.frames.iter());
            let mut first_event = true;
            for (_, text) in events.filter(|(seq, _)| *seq > since) {
                if !first_event {
                    json.push(',');
                }
                first_event = false;
                json.push_str(&js_string(text));
            }
            json.push_str("]}");
        }
        json.push_str("]}");
        drop(board);
        let mut response = Response::new(200, json)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store");
        response.body.pop(); // Response::new ends a sentence with a newline
        response
    }
}

impl Board {
    /// Frees the records whose connection ended more than [`KEEP_ENDED`] ago.
    fn purge(&mut self, now: Instant) {
        self.records
            .retain(|r| r.ended.is_none_or(|at| now.duration_since(at) < KEEP_ENDED));
    }

    fn find(&mut self, id: u64) -> Option<&mut Record> {
        self.records.iter_mut().rev().find(|r| r.id == id)
    }
}

/// What a connection's trace sinks (trace.rs) add to its record.
#[derive(Clone)]
pub(crate) struct Recorder {
    inspector: Arc<Inspector>,
    id: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recorder(#{})", self.id)
    }
}

impl Recorder {
    /// Appends one block (a short lock, then a notification: never waits for a reader).
    pub(crate) fn push(&self, block: String) {
        self.update(|r, seq| {
            if !r.upgraded {
                r.handshake.push((seq, block));
                return;
            }
            r.frame_bytes += block.len();
            r.frames.push_back((seq, block));
            // Oldest frames first; the newest always stays.
            while r.frame_bytes > FRAME_BYTES && r.frames.len() > 1 {
                if let Some((_, old)) = r.frames.pop_front() {
                    r.frame_bytes -= old.len();
                    r.dropped += 1;
                }
            }
        });
    }

    /// The request is an upgrade: readers may see the record.
    pub(crate) fn show(&self) {
        self.update(|r, _| r.shown = true);
    }

    /// The 101 is out: what follows is frames, kept within [`FRAME_BYTES`].
    pub(crate) fn upgraded(&self) {
        self.update(|r, _| r.upgraded = true);
    }

    /// The connection ended; `line` says how. Kept for [`KEEP_ENDED`].
    pub(crate) fn end(&self, line: String) {
        self.push(line);
        self.update(|r, _| r.ended = Some(Instant::now()));
    }

    /// Not an upgrade after all (a page load, a refused request): forget it.
    pub(crate) fn discard(&self) {
        let mut board = lock(&self.inspector.board);
        board.records.retain(|r| r.id != self.id);
    }

    fn update(&self, f: impl FnOnce(&mut Record, u64)) {
        let mut board = lock(&self.inspector.board);
        board.seq += 1;
        let seq = board.seq;
        let Some(r) = board.find(self.id) else {
            return; // pushed out by newer records
        };
        f(r, seq);
        r.last = seq;
        let shown = r.shown;
        drop(board);
        if shown {
            self.inspector.changed.notify_all();
        }
    }
}

/// What a plain request for the inspector's paths is, if it is one: `GET`/`HEAD` of
/// [`VIEW_PATH`] or [`POLL_PATH`] without an `Upgrade` header (a WebSocket client asking
/// for `/inspect` is served like on any other path).
pub(crate) enum Route<'h> {
    View { head_only: bool },
    Poll { target: &'h str },
}

pub(crate) fn route(head: &[u8]) -> Option<Route<'_>> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?.trim_end();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return None,
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path != VIEW_PATH && path != POLL_PATH {
        return None;
    }
    if asks_to_upgrade(head) {
        return None;
    }
    Some(if path == VIEW_PATH {
        Route::View { head_only }
    } else {
        Route::Poll { target }
    })
}

/// The answer to `/inspect` when the projector view is off.
pub(crate) fn projector_off() -> Response {
    not_found(
        "The projector view is off: start tinyws with --inspect (Config::inspect) to show every connection here.",
    )
}

fn not_found(why: &str) -> Response {
    Response::new(404, why).header("Cache-Control", "no-store")
}

/// The request target of a head (`/echo?inspect_token=…`).
fn target_of(head: &[u8]) -> Option<&str> {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    line.split(' ').nth(1)
}

/// The value of query parameter `name` in `target` (`""` for `?all`).
fn param<'t>(target: &'t str, name: &str) -> Option<&'t str> {
    let query = target.split_once('?')?.1.split('#').next()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// 32 hex digits: 16 bytes.
fn parse_token(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Compares tokens in a time that does not depend on where they differ.
fn same(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request head has an `Upgrade` header at all (the checks come later; this
/// only keeps plain requests from taking a record's place).
fn asks_to_upgrade(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"upgrade:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "00112233445566778899aabbccddeeff";

    /// An upgrade request's head (its checks come later: only `Upgrade` is looked at).
    fn head(target: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n").into_bytes()
    }

    #[test]
    fn only_a_token_or_the_projector_makes_a_record() {
        let peer = "127.0.0.1:1".parse().unwrap();
        let off = Arc::new(Inspector::new(false));
        assert!(off.recorder(1, peer, &head("/echo")).is_none());
        assert!(
            off.recorder(2, peer, &head("/echo?inspect_token=abc"))
                .is_none()
        );
        let r = off
            .recorder(3, peer, &head(&format!("/echo?x=1&inspect_token={TOKEN}")))
            .expect("a token");
        r.show();
        let a = off.poll(&format!("/.inspect?inspect_token={TOKEN}"));
        assert_eq!(a.status, 200);
        assert!(
            a.body.contains("-- connection from 127.0.0.1:1"),
            "{}",
            a.body
        );
        // Another token, a malformed one, and the projector (off) read nothing.
        let other = "ffeeddccbbaa99887766554433221100";
        assert_eq!(
            off.poll(&format!("/.inspect?inspect_token={other}")).status,
            404
        );
        assert_eq!(off.poll("/.inspect?inspect_token=00").status, 404);
        assert_eq!(off.poll("/.inspect?all").status, 404);
        let on = Arc::new(Inspector::new(true));
        assert!(on.recorder(4, peer, &head("/echo")).is_some());
        // A plain request (a page, a file) never takes a record's place.
        let plain = b"GET /app.js HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(on.recorder(5, peer, plain).is_none());
        let token_page = format!("GET /?inspect_token={TOKEN} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(off.recorder(6, peer, token_page.as_bytes()).is_none());
    }

    /// The teacher's scene: one student opens a hundred sockets; the other students'
    /// records stay, live or not, and the flooder's own oldest ones make the room.
    #[test]
    fn a_hundred_sockets_from_one_machine_push_out_only_its_own_records() {
        let ins = Arc::new(Inspector::new(true));
        let student = "10.0.0.2:50000".parse().unwrap();
        let r = ins
            .recorder(1, student, &head(&format!("/?inspect_token={TOKEN}")))
            .expect("a record");
        r.show();
        let mut flood = Vec::new();
        for i in 0..100u16 {
            let peer = std::net::SocketAddr::from(([10, 0, 0, 3], 40000 + i));
            let f = ins
                .recorder(2 + u64::from(i), peer, &head("/"))
                .expect("recorded");
            f.show();
            flood.push(f); // all still open
        }
        let a = ins.poll(&format!("/.inspect?inspect_token={TOKEN}"));
        assert_eq!(
            a.status, 200,
            "the student's record was pushed out: {}",
            a.body
        );
        let board = lock(&ins.board);
        assert_eq!(board.records.len(), MAX_RECORDS);
        assert_eq!(
            board
                .records
                .iter()
                .filter(|r| machine(&r.peer) == "10.0.0.3")
                .count(),
            MAX_RECORDS - 1
        );
    }

    #[test]
    fn frames_are_capped_oldest_first_and_the_handshake_is_kept() {
        let peer = "127.0.0.1:1".parse().unwrap();
        let ins = Arc::new(Inspector::new(true));
        let r = ins.recorder(1, peer, &head("/")).unwrap();
        r.push("handshake block".into());
        r.show();
        r.upgraded();
        for i in 0..2000 {
            r.push(format!("frame {i:04} {}", "x".repeat(100)));
        }
        let board = lock(&ins.board);
        let rec = &board.records[0];
        assert!(rec.frame_bytes <= FRAME_BYTES);
        assert_eq!(rec.handshake.len(), 2);
        assert!(rec.frames.back().unwrap().1.starts_with("frame 1999"));
        assert_eq!(rec.dropped as usize + rec.frames.len(), 2000);
        drop(board);
        for id in 2..(MAX_RECORDS as u64 + 10) {
            ins.recorder(id, peer, &head("/")).unwrap();
        }
        assert_eq!(lock(&ins.board).records.len(), MAX_RECORDS);
    }

    #[test]
    fn params_routes_and_json() {
        assert_eq!(param("/a?b=1&all&c=2", "all"), Some(""));
        assert_eq!(param("/a?b=1", "c"), None);
        assert!(matches!(
            route(b"GET /inspect HTTP/1.1\r\n\r\n"),
            Some(Route::View { head_only: false })
        ));
        assert!(matches!(
            route(b"GET /.inspect?all HTTP/1.1\r\n\r\n"),
            Some(Route::Poll { .. })
        ));
        assert!(route(b"GET /inspect HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").is_none());
        assert!(route(b"GET /echo HTTP/1.1\r\n\r\n").is_none());
        assert_eq!(
            js_string("a\"\n</script>"),
            "\"a\\\"\\n\\u003c/script\\u003e\""
        );
    }
}
