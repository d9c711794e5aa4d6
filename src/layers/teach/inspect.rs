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
//! [`poll::POLL_WAIT`] later: then with none), and closes, like every plain HTTP answer of
//! tinyws; the page asks again at once. Chosen over a second WebSocket because it needs
//! nothing new from a connection thread: the poll is an ordinary request that waits on a
//! condition variable and writes one bounded answer, so it never has to read and write
//! at once (a blocked WebSocket thread cannot be woken to write), and a page of another
//! site cannot read the answer (the same-origin policy of `fetch`; a WebSocket would
//! need its own Origin check). Cost: one short TCP connection per burst of events.
//!
//! **Bounded, whatever clients do.** Everything here is sized by constants, so that one
//! client cannot take the memory or the time that the others share:
//! - *One record per token.* A second connection that brings a token already in use is
//!   not recorded under it (the first keeps it; with the projector view on, the second
//!   gets a record of its own that only the view shows): sharing a token multiplies
//!   nothing.
//! - *Per record at most [`RECORD_BYTES`]*: the handshake's first [`HANDSHAKE_BYTES`]
//!   (a block of text at most [`BLOCK_BYTES`], cut with a note past that), then at most
//!   [`FRAME_BYTES`] of frames (and of a handshake too large for its part), older ones
//!   dropped first and counted. Blocks are kept as the JSON strings they are sent as, so
//!   what is counted is what is stored and sent.
//! - *At most [`MAX_RECORDS`] records*: past that, one that ended goes first, else the
//!   oldest of the machine (IP address) that holds the most, so a student who opens a
//!   hundred sockets pushes out only their own. A record is freed [`KEEP_ENDED`] after its
//!   connection ended (so the page can still fetch the end), or when pushed out. Worst
//!   case: 64 × 48 KiB = 3 MiB.
//! - *Polls* (inspect/poll.rs): an answer is at most [`poll::ANSWER_BYTES`] of JSON
//!   (paged with `since`), put together outside the lock; at most [`poll::MAX_POLLS`]
//!   are under way, and any other is answered `503` at once. Worst case: 68 answers of
//!   32 KiB (and their copy on the way to the socket) ≈ 4.3 MiB.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::client::response::Response;
use crate::layers::teach::page::push_js_char;
use crate::util::lock::lock;

mod poll;

/// Where the page polls.
pub(crate) const POLL_PATH: &str = "/.inspect";
/// The projector view.
pub(crate) const VIEW_PATH: &str = "/inspect";
/// The query parameter that carries a connection's token.
pub(crate) const TOKEN_PARAM: &str = "inspect_token";
/// Per record, the handshake's part: the connection line, the request head, the checks,
/// the accept computation and the 101 (about 1.5 KiB for a browser's handshake, 9 KiB for
/// an 8 KiB head). Past it, the rest of the handshake goes with the frames.
pub(crate) const HANDSHAKE_BYTES: usize = 16 * 1024;
/// Per record, the frames' part (about 40 fully decoded frames): older ones go first.
pub(crate) const FRAME_BYTES: usize = 32 * 1024;
/// What one record holds at most, its blocks and their bookkeeping counted.
const RECORD_BYTES: usize = HANDSHAKE_BYTES + FRAME_BYTES;
/// One block (a request head, a frame) at most, as JSON; longer ones are cut with a note.
/// Frames take under 2 KiB; only a request head or its checks can reach this.
pub(crate) const BLOCK_BYTES: usize = 8 * 1024;
/// What a kept block costs besides its text: its sequence number and pointer in the
/// queue (24 bytes), the reference counts (16) and the allocator's own (about 24).
const BLOCK_OVERHEAD: usize = 64;
/// Records kept at once.
pub(crate) const MAX_RECORDS: usize = 64;
// The documented worst case of the records: 64 × 48 KiB = 3 MiB.
const _: () = assert!(MAX_RECORDS * RECORD_BYTES <= 3 << 20);
/// How long a record outlives its connection.
const KEEP_ENDED: Duration = Duration::from_secs(120);

/// Every record of one server.
pub(crate) struct Inspector {
    /// `Config::inspect`: every upgrade is recorded, and `?all` may read them all.
    projector: bool,
    board: Mutex<Board>,
    /// Something was recorded in a shown record, or the server is stopping: for the
    /// projector view's polls.
    changed: Arc<Condvar>,
}

#[derive(Default)]
struct Board {
    /// The number of the last event recorded, in any record.
    seq: u64,
    /// Oldest first.
    records: VecDeque<Record>,
    stopping: bool,
    /// Polls under way, of any kind; and those of the projector view, oldest first.
    polls: usize,
    projector_polls: Vec<poll::ProjectorPoll>,
    /// The number of the last projector poll admitted.
    projector_serial: u64,
}

/// A block of a record: its event number, and its text as a JSON string.
type Block = (u64, Arc<str>);

struct Record {
    id: u64,
    peer: SocketAddr,
    /// Whose machine: the peer's IP address in one form for new and kept records (an
    /// IPv4-mapped IPv6 address is the IPv4 one).
    machine: IpAddr,
    token: Option<[u8; 16]>,
    /// Readable: the request turned out to be an upgrade (until then it may still be a
    /// page load or a refusal, which are not kept).
    shown: bool,
    /// The request, the checks, the accept computation and the 101: the first
    /// [`HANDSHAKE_BYTES`] of them.
    handshake: Vec<Block>,
    handshake_bytes: usize,
    upgraded: bool,
    frames: VecDeque<Block>,
    frame_bytes: usize,
    dropped: u64,
    ended: Option<Instant>,
    last: u64,
    /// Polls of this record's token under way (at most one), and what wakes them.
    polls: usize,
    news: Arc<Condvar>,
    /// The socket of the poll while its answer is written: cut if the record goes
    /// meanwhile, so that a poller that never reads keeps no place past its record.
    writer: Option<TcpStream>,
}

impl Record {
    fn new(id: u64, peer: SocketAddr, token: Option<[u8; 16]>, seq: u64) -> Record {
        let mut r = Record {
            id,
            peer,
            machine: machine(peer),
            token,
            shown: false,
            handshake: Vec::new(),
            handshake_bytes: 0,
            upgraded: false,
            frames: VecDeque::new(),
            frame_bytes: 0,
            dropped: 0,
            ended: None,
            last: seq,
            polls: 0,
            news: Arc::new(Condvar::new()),
            writer: None,
        };
        r.add(seq, json_block(&format!("-- connection from {peer}")));
        r
    }

    /// Keeps `block`: with the handshake while it has room, else with the frames, whose
    /// oldest go first (the newest always stays: a block is smaller than the frames' part).
    fn add(&mut self, seq: u64, block: Arc<str>) {
        let cost = block.len() + BLOCK_OVERHEAD;
        if !self.upgraded
            && self.frames.is_empty()
            && self.handshake_bytes + cost <= HANDSHAKE_BYTES
        {
            self.handshake_bytes += cost;
            self.handshake.push((seq, block));
            return;
        }
        self.frame_bytes += cost;
        self.frames.push_back((seq, block));
        while self.frame_bytes > FRAME_BYTES && self.frames.len() > 1 {
            if let Some((_, old)) = self.frames.pop_front() {
                self.frame_bytes -= old.len() + BLOCK_OVERHEAD;
                self.dropped += 1;
            }
        }
    }

    /// The blocks after event `since`, oldest first.
    fn blocks_after(&self, since: u64) -> impl Iterator<Item = &Block> {
        let from = self.frames.partition_point(|(seq, _)| *seq <= since);
        self.handshake
            .iter()
            .filter(move |(seq, _)| *seq > since)
            .chain(self.frames.range(from..))
    }

    /// The record is going: its poll, if one is waiting, answers at once; if one is
    /// being written, it is cut.
    fn let_go(&self) {
        if self.polls > 0 {
            self.news.notify_all();
        }
        if let Some(socket) = &self.writer {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    fn has_token(&self, token: &[u8; 16]) -> bool {
        self.token.is_some_and(|t| same(&t, token))
    }
}

/// The machine of a peer, as the log's warnings count it (warnings.rs): IPv4 whether it
/// came over IPv4 or IPv6, for IPv6 its /64 network.
fn machine(peer: SocketAddr) -> IpAddr {
    crate::guard::warnings::machine(peer.ip())
}

/// `text` as a JSON string of at most [`BLOCK_BYTES`]: past that, cut, and a note says
/// how much was left out. Made in the connection's thread, before the lock.
fn json_block(text: &str) -> Arc<str> {
    /// Room kept for the note and the closing quote.
    const NOTE_ROOM: usize = 128;
    let mut out = String::with_capacity(text.len().min(BLOCK_BYTES) + 2);
    out.push('"');
    for (at, c) in text.char_indices() {
        let before = out.len();
        push_js_char(&mut out, c);
        if out.len() > BLOCK_BYTES - NOTE_ROOM {
            out.truncate(before);
            let _ = write!(
                out,
                "\\n-- {} more bytes of this step left out (the inspector keeps {} KiB of one)",
                text.len() - at,
                BLOCK_BYTES / 1024
            );
            break;
        }
    }
    out.push('"');
    out.into()
}

impl Board {
    /// The index of the oldest record of the machine that holds the most records,
    /// counting the newcomer from `newcomer` as one more of its machine's (if that machine
    /// has no record yet, the oldest record of the busiest other one).
    ///
    /// Counted by scanning: at most [`MAX_RECORDS`] records, so a few thousand
    /// comparisons, once per newcomer on a full board; no map to build and hash.
    fn oldest_of_the_busiest(&self, newcomer: IpAddr) -> usize {
        let count = |machine: IpAddr| {
            let kept = self.records.iter().filter(|r| r.machine == machine).count();
            kept + usize::from(machine == newcomer)
        };
        let most = self
            .records
            .iter()
            .map(|r| count(r.machine))
            .chain([count(newcomer)])
            .max()
            .unwrap_or(0);
        // The oldest record of a machine with that many: on a tie (a class of one
        // socket each), simply the oldest.
        self.records
            .iter()
            .position(|r| count(r.machine) == most)
            .unwrap_or(0)
    }

    /// Makes room for one more record: the oldest that ended; else the oldest of the
    /// machine that holds the most records, so that one student opening a hundred
    /// sockets pushes out their own records, not the rest of the class's (the newcomer
    /// may be that one).
    fn make_room(&mut self, newcomer: IpAddr) {
        if self.records.len() < MAX_RECORDS {
            return;
        }
        let at = self
            .records
            .iter()
            .position(|r| r.ended.is_some())
            .unwrap_or_else(|| self.oldest_of_the_busiest(newcomer));
        if let Some(gone) = self.records.remove(at) {
            gone.let_go();
        }
    }

    /// Frees the records whose connection ended more than [`KEEP_ENDED`] ago.
    fn purge(&mut self, now: Instant) {
        self.forget(|r| {
            r.ended
                .is_some_and(|at| now.duration_since(at) >= KEEP_ENDED)
        });
    }

    /// Removes the records `gone` picks.
    fn forget(&mut self, mut gone: impl FnMut(&Record) -> bool) {
        self.records.retain(|r| {
            let keep = !gone(r);
            if !keep {
                r.let_go();
            }
            keep
        });
    }

    fn find(&mut self, id: u64) -> Option<&mut Record> {
        self.records.iter_mut().rev().find(|r| r.id == id)
    }
}

impl Inspector {
    pub(crate) fn new(projector: bool) -> Inspector {
        Inspector {
            projector,
            board: Mutex::new(Board::default()),
            changed: Arc::new(Condvar::new()),
        }
    }

    /// A recorder for connection `id`, if its request head carries a token or the
    /// projector view is on; `None` (and nothing allocated) otherwise.
    pub(crate) fn recorder(
        self: &Arc<Self>,
        id: u64,
        peer: SocketAddr,
        head: &[u8],
    ) -> Option<Recorder> {
        let mut token = request_line(head)
            .and_then(|(_, target)| param(target, TOKEN_PARAM))
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
        // One record per token: a token already in use is the first connection's.
        if let Some(t) = token
            && board.records.iter().any(|r| r.has_token(&t))
        {
            if !self.projector {
                return None;
            }
            token = None;
        }
        board.make_room(machine(peer));
        board.seq += 1;
        let seq = board.seq;
        board.records.push_back(Record::new(id, peer, token, seq));
        Some(Recorder {
            inspector: self.clone(),
            id,
        })
    }

    /// Wakes every waiting poll: the server is stopping.
    pub(crate) fn stop(&self) {
        let mut board = lock(&self.board);
        board.stopping = true;
        for r in &board.records {
            r.news.notify_all();
        }
        self.changed.notify_all();
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
    /// Appends one block (made JSON first, then a short lock and a notification: never
    /// waits for a reader).
    pub(crate) fn push(&self, block: String) {
        let block = json_block(&block);
        self.update(|r, seq| r.add(seq, block));
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
        lock(&self.inspector.board).forget(|r| r.id == self.id);
    }

    /// Applies `f` under the lock, then wakes the polls it concerns: this record's, and
    /// the projector view's.
    fn update(&self, f: impl FnOnce(&mut Record, u64)) {
        let mut board = lock(&self.inspector.board);
        board.seq += 1;
        let seq = board.seq;
        let projector_polls = !board.projector_polls.is_empty();
        let Some(r) = board.find(self.id) else {
            return; // pushed out by newer records
        };
        f(r, seq);
        r.last = seq;
        if !r.shown {
            return;
        }
        if r.polls > 0 {
            r.news.notify_all();
        }
        drop(board);
        if projector_polls {
            self.inspector.changed.notify_all();
        }
    }
}

/// What a plain request for the inspector's paths is, if it is one: `GET`/`HEAD` of
/// [`VIEW_PATH`] or [`POLL_PATH`] without an `Upgrade` header (a WebSocket client asking
/// for `/inspect` is served like on any other path).
pub(crate) enum Route<'h> {
    View { head_only: bool },
    Poll { target: &'h str, head_only: bool },
}

pub(crate) fn route(head: &[u8]) -> Option<Route<'_>> {
    let (head_only, target) = get_or_head(head)?;
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
        Route::Poll { target, head_only }
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

/// The method and target of a head's request line (`GET /echo?inspect_token=…`).
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let mut parts = std::str::from_utf8(line).ok()?.split(' ');
    Some((parts.next()?, parts.next()?))
}

/// The target of a `GET` or `HEAD` (the layer's own routes answer no other method), and
/// whether it is a `HEAD`.
pub(crate) fn get_or_head(head: &[u8]) -> Option<(bool, &str)> {
    match request_line(head)? {
        ("GET", target) => Some((false, target)),
        ("HEAD", target) => Some((true, target)),
        _ => None,
    }
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
pub(crate) fn asks_to_upgrade(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"upgrade:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const TOKEN: &str = "00112233445566778899aabbccddeeff";

    /// An upgrade request's head (its checks come later: only `Upgrade` is looked at).
    pub(super) fn head(target: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n").into_bytes()
    }

    /// A `GET` poll's answer.
    pub(super) fn get(ins: &Inspector, target: &str) -> Response {
        ins.poll(target, false, "10.0.0.1:1".parse().unwrap()).0
    }

    /// A shown record of connection `id` from `peer` on `target`.
    pub(super) fn shown(ins: &Arc<Inspector>, id: u64, peer: &str, target: &str) -> Recorder {
        let r = ins
            .recorder(id, peer.parse().unwrap(), &head(target))
            .expect("a record");
        r.show();
        r
    }

    /// A number field of an answer.
    pub(super) fn field(body: &str, name: &str) -> u64 {
        let at = body.find(&format!("\"{name}\":")).expect(name) + name.len() + 3;
        body[at..]
            .split([',', '}'])
            .next()
            .unwrap()
            .parse()
            .unwrap()
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
        let a = get(&off, &format!("/.inspect?inspect_token={TOKEN}"));
        assert_eq!(a.status, 200);
        assert!(
            a.body.contains("-- connection from 127.0.0.1:1"),
            "{}",
            a.body
        );
        // Another token, a malformed one, and the projector (off) read nothing.
        let other = "ffeeddccbbaa99887766554433221100";
        assert_eq!(
            get(&off, &format!("/.inspect?inspect_token={other}")).status,
            404
        );
        assert_eq!(get(&off, "/.inspect?inspect_token=00").status, 404);
        assert_eq!(get(&off, "/.inspect?all").status, 404);
        let on = Arc::new(Inspector::new(true));
        assert!(on.recorder(4, peer, &head("/echo")).is_some());
        // A plain request (a page, a file) never takes a record's place.
        let plain = b"GET /app.js HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(on.recorder(5, peer, plain).is_none());
        let token_page = format!("GET /?inspect_token={TOKEN} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(off.recorder(6, peer, token_page.as_bytes()).is_none());
    }

    #[test]
    fn a_token_already_in_use_makes_no_second_record() {
        let target = format!("/?inspect_token={TOKEN}");
        let off = Arc::new(Inspector::new(false));
        let _first = shown(&off, 1, "10.0.0.2:1", &target);
        let peer = "10.0.0.9:1".parse().unwrap();
        assert!(off.recorder(2, peer, &head(&target)).is_none());
        // The projector view records the second connection, but not under the token.
        let on = Arc::new(Inspector::new(true));
        let _first = shown(&on, 1, "10.0.0.2:1", &target);
        let _second = shown(&on, 2, "10.0.0.9:1", &target);
        let mine = get(&on, &format!("/.inspect?inspect_token={TOKEN}"));
        assert_eq!(mine.body.matches("\"id\":").count(), 1, "{}", mine.body);
        assert_eq!(field(&mine.body, "id"), 1);
        assert_eq!(get(&on, "/.inspect?all").body.matches("\"id\":").count(), 2);
    }

    /// The teacher's scene: one student opens a hundred sockets; the other students'
    /// records stay, live or not, and the flooder's own oldest ones make the room.
    #[test]
    fn a_hundred_sockets_from_one_machine_push_out_only_its_own_records() {
        let ins = Arc::new(Inspector::new(true));
        let _r = shown(
            &ins,
            1,
            "10.0.0.2:50000",
            &format!("/?inspect_token={TOKEN}"),
        );
        let mut flood = Vec::new();
        for i in 0..100u16 {
            flood.push(shown(
                &ins,
                2 + u64::from(i),
                &format!("10.0.0.3:{}", 40000 + i),
                "/",
            ));
        }
        let a = get(&ins, &format!("/.inspect?inspect_token={TOKEN}"));
        assert_eq!(
            a.status, 200,
            "the student's record was pushed out: {}",
            a.body
        );
        let board = lock(&ins.board);
        assert_eq!(board.records.len(), MAX_RECORDS);
        let flooder: IpAddr = "10.0.0.3".parse().unwrap();
        let theirs = board.records.iter().filter(|r| r.machine == flooder);
        assert_eq!(theirs.count(), MAX_RECORDS - 1);
    }

    /// IPv6 peers are counted as one machine per /64 network, kept records and newcomers alike: a
    /// machine that comes to hold the most records with its newcomer loses its own
    /// oldest, not another machine's (which is older).
    #[test]
    fn the_fairness_rule_charges_an_ipv6_machine_for_its_own_newcomer() {
        let ins = Arc::new(Inspector::new(true));
        // Machine b's 32 records first, then machine a's 32.
        let mut open: Vec<Recorder> = (0..64u16)
            .map(|i| {
                let machine = if i < 32 { 'b' } else { 'a' };
                let peer = format!("[2001:db8:0:{machine}::{i}]:1000");
                shown(&ins, u64::from(i), &peer, "/")
            })
            .collect();
        open.push(shown(&ins, 64, "[2001:db8:0:a::99]:2000", "/"));
        let board = lock(&ins.board);
        let ids: Vec<u64> = board.records.iter().map(|r| r.id).collect();
        assert!(
            ids.contains(&0),
            "a's newcomer pushed out b's oldest: {ids:?}"
        );
        assert!(!ids.contains(&32), "a's oldest stays: {ids:?}");
        let a: IpAddr = "2001:db8:0:a::".parse().unwrap();
        assert_eq!(board.records.iter().filter(|r| r.machine == a).count(), 32);
        // Addresses of one /64 are one machine.
        let other: SocketAddr = "[2001:db8:0:a:1:2:3:4]:1".parse().unwrap();
        assert_eq!(machine(other), a);
        // An IPv4 machine reached over IPv6 (IPv4-mapped) is that IPv4 machine.
        let mapped: SocketAddr = "[::ffff:10.0.0.3]:1".parse().unwrap();
        assert_eq!(machine(mapped), "10.0.0.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn frames_are_capped_oldest_first_and_the_handshake_is_kept() {
        let ins = Arc::new(Inspector::new(true));
        let r = ins
            .recorder(1, "127.0.0.1:1".parse().unwrap(), &head("/"))
            .unwrap();
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
        assert!(rec.frames.back().unwrap().1.starts_with("\"frame 1999"));
        assert_eq!(rec.dropped as usize + rec.frames.len(), 2000);
        drop(board);
        for id in 2..(MAX_RECORDS as u64 + 10) {
            ins.recorder(id, "127.0.0.1:1".parse().unwrap(), &head("/"))
                .unwrap();
        }
        assert_eq!(lock(&ins.board).records.len(), MAX_RECORDS);
    }

    /// An attacker's 8 KiB head of characters JSON escapes six times over, and its
    /// checks, cost at most the handshake's part; the 101 after them is still kept.
    #[test]
    fn the_handshake_is_bounded_and_its_end_kept() {
        let ins = Arc::new(Inspector::new(true));
        let r = shown(&ins, 1, "127.0.0.1:1", "/");
        let huge = "<".repeat(8000);
        r.push(format!("<- request head:\n{huge}"));
        r.push(format!("ok  Origin: {huge}"));
        r.push(format!("ok  X: {huge}"));
        r.push("->   HTTP/1.1 101 Switching Protocols".into());
        r.upgraded();
        let board = lock(&ins.board);
        let rec = &board.records[0];
        assert!(
            rec.handshake_bytes <= HANDSHAKE_BYTES,
            "{}",
            rec.handshake_bytes
        );
        assert!(rec.handshake_bytes + rec.frame_bytes <= RECORD_BYTES);
        let blocks: Vec<&str> = rec.blocks_after(0).map(|(_, b)| &**b).collect();
        assert!(blocks.iter().all(|b| b.len() <= BLOCK_BYTES));
        assert!(
            blocks[1].contains("more bytes of this step left out"),
            "{}",
            blocks[1]
        );
        assert!(blocks.last().unwrap().contains("101 Switching Protocols"));
    }

    #[test]
    fn a_long_block_is_cut_between_escapes_with_a_note() {
        let block = json_block(&"<".repeat(20_000));
        assert!(block.len() <= BLOCK_BYTES);
        let (kept, note) = block.split_once("\\n-- ").expect("a note");
        assert_eq!(kept.len() % 6, 1, "whole \\u003c escapes after the quote");
        assert!(note.starts_with(&format!("{} more bytes", 20_000 - kept.len() / 6)));
        assert!(note.ends_with("keeps 8 KiB of one)\""), "{note}");
        assert_eq!(&*json_block("a\"b"), "\"a\\\"b\"");
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
            Some(Route::Poll {
                head_only: false,
                ..
            })
        ));
        assert!(matches!(
            route(b"HEAD /.inspect?all HTTP/1.1\r\n\r\n"),
            Some(Route::Poll {
                head_only: true,
                ..
            })
        ));
        assert!(route(b"GET /inspect HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").is_none());
        assert!(route(b"GET /echo HTTP/1.1\r\n\r\n").is_none());
        assert_eq!(
            crate::layers::teach::page::js_string("a\"\n</script>"),
            "\"a\\\"\\n\\u003c/script\\u003e\""
        );
    }
}
