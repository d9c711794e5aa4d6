//! How a poll of the inspector is answered (`GET /.inspect?inspect_token=T&since=N`, or
//! `?all` for the projector view), every step bounded whatever clients do:
//! - *Admitted or refused at once.* At most [`MAX_POLLS`] polls are under way, waiting or
//!   being written: one per record's token (its page asks one at a time) and
//!   [`PROJECTOR_POLLS`] of the projector view ([`PROJECTOR_POLLS_PER_MACHINE`] per
//!   machine). When the projector view's are all taken, a newcomer from a machine under
//!   its share answers the oldest one that has waited [`TURN`] at once (with no news: its page asks
//!   again) and takes its place, so polls of the view take turns and a few machines
//!   cannot keep everyone else out. Any other is answered `503` with `Retry-After: 1`
//!   and asks again a second later; a poller that never reads holds only its own place, at most the write
//!   timeout, and is cut as soon as its record goes.
//! - *Woken only by its own news*: a poll of a token waits on its record's condition
//!   variable (at most [`POLL_WAIT`]), so a busy connection wakes its own page's poll,
//!   not every page's.
//! - *Paged*: one answer is at most [`ANSWER_BYTES`] of JSON, the blocks after `since` in
//!   the order they happened, as far as they fit; `next` is the last event it holds, and
//!   `"more":true` says the rest is ready at once.
//! - *Copied under the lock, written outside it*: under the lock a poll only takes
//!   reference-counted pointers to at most [`ANSWER_BYTES`] of blocks (which are already
//!   JSON strings); the JSON is put together after the lock is released.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

use super::{
    BLOCK_BYTES, Board, Inspector, MAX_RECORDS, Record, TOKEN_PARAM, machine, not_found, param,
    parse_token, projector_off,
};
use crate::client::response::Response;
use crate::layers::teach::page::js_string;
use crate::util::lock::{lock, wait_until};

/// One poll's answer at most (its JSON); the rest waits for the next poll.
pub(crate) const ANSWER_BYTES: usize = 32 * 1024;
/// The JSON around the records (`{"next":…,"more":…,"records":[…]}`), at most.
const ENVELOPE_BYTES: usize = 64;
/// The JSON of one record's fields but its events, at most (a scoped IPv6 peer is 58
/// characters, each number at most 20 digits).
const RECORD_HEAD_BYTES: usize = 160;
// Every record's fields and one block of the longest fit one answer, so each answer
// takes at least one event: paging always moves forward.
const _: () =
    assert!(ENVELOPE_BYTES + MAX_RECORDS * RECORD_HEAD_BYTES + BLOCK_BYTES < ANSWER_BYTES);
/// Polls of the projector view (`?all`) at once: a projector and a few spare browsers.
pub(crate) const PROJECTOR_POLLS: usize = 4;
/// Of those, what one machine (IP address) may hold: a stuck one cannot take them all.
pub(crate) const PROJECTOR_POLLS_PER_MACHINE: usize = 2;
/// Polls at once, waiting or being written: one per record, and the projector view's.
pub(crate) const MAX_POLLS: usize = MAX_RECORDS + PROJECTOR_POLLS;
/// The longest a poll waits for news before answering with none.
pub(crate) const POLL_WAIT: Duration = Duration::from_secs(15);
/// The least a poll of the projector view keeps its place before a newcomer may take
/// it: without it, five pages asking again at once would answer each other in a loop
/// (measured: the teacher's page asked 880 times a second), burning a slow board's CPU.
const TURN: Duration = Duration::from_secs(1);

impl Inspector {
    /// The answer to `GET /.inspect?…` (`head_only`: `HEAD`, answered at once, without a
    /// body): waits (at most [`POLL_WAIT`]) for events after `since`, then lists them as
    /// JSON, at most [`ANSWER_BYTES`]. The [`PollSlot`] is this poll's place among those
    /// under way: keep it until the answer is written.
    pub(crate) fn poll(
        &self,
        target: &str,
        head_only: bool,
        peer: SocketAddr,
    ) -> (Response, Option<PollSlot<'_>>) {
        let (answer, slot) = self.answer(target, !head_only, machine(peer));
        (if head_only { answer.for_head() } else { answer }, slot)
    }

    fn answer(&self, target: &str, wait: bool, from: IpAddr) -> (Response, Option<PollSlot<'_>>) {
        let (wants, since) = match ask(target, self.projector) {
            Ok(asked) => asked,
            Err(answer) => return (answer, None),
        };
        let mut board = lock(&self.board);
        board.purge(Instant::now());
        let (held, news) = match self.admit(&mut board, wants, from, wait) {
            Ok(admitted) => admitted,
            Err(answer) => return (answer, None),
        };
        if wait {
            let deadline = Instant::now() + POLL_WAIT;
            board = wait_until(&news, board, deadline, |b| {
                b.stopping || b.has_news(wants, since) || b.bumped(&held)
            })
            .0;
            board.purge(Instant::now());
        }
        let page = if board.bumped(&held) {
            // Its place went to a newer poll: no news, and no blocks to write.
            Page::empty(since.min(board.seq))
        } else {
            board.done_waiting(&held);
            board.page(wants, since)
        };
        drop(board);
        // Made once the lock is released: its drop takes the lock.
        let slot = PollSlot {
            inspector: self,
            held,
        };
        let mut response = Response::new(200, page.json())
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store");
        response.body.pop(); // Response::new ends a sentence with a newline
        (response, Some(slot))
    }

    /// A place for a poll of `wants` from machine `from` (counted: the caller makes its
    /// [`PollSlot`]), and what to wait on; or the answer that refuses it. `wait`: the
    /// poll will wait for news (a HEAD does not).
    fn admit(
        &self,
        board: &mut Board,
        wants: Wants,
        from: IpAddr,
        wait: bool,
    ) -> Result<(Held, Arc<Condvar>), Response> {
        let (held, news) = match wants {
            Wants::Token(token) => {
                let Some(r) = board.by_token(&token) else {
                    return Err(not_found(
                        "No connection is recorded with this inspect_token (it ended minutes ago, or was pushed out by newer ones).",
                    ));
                };
                if r.polls > 0 {
                    return Err(busy(
                        "This inspect_token has a poll under way already (a page asks one at a time); ask again when it is answered.",
                    ));
                }
                (Held::Record(r.id), r.news.clone())
            }
            Wants::All => {
                let theirs = board.projector_polls.iter().filter(|p| p.machine == from);
                if theirs.count() >= PROJECTOR_POLLS_PER_MACHINE
                    || (board.projector_polls.len() >= PROJECTOR_POLLS
                        && !self.bump_oldest_projector_poll(board))
                {
                    return Err(busy(&format!(
                        "The projector view is being read by as many pages as it serves at once ({PROJECTOR_POLLS}, {PROJECTOR_POLLS_PER_MACHINE} per machine); ask again in a second."
                    )));
                }
                board.projector_serial += 1;
                (
                    Held::Projector(board.projector_serial),
                    self.changed.clone(),
                )
            }
        };
        if board.polls >= MAX_POLLS {
            return Err(busy(&format!(
                "The inspector is answering as many polls as it takes at once ({MAX_POLLS}); ask again in a second."
            )));
        }
        board.polls += 1;
        match held {
            Held::Record(id) => {
                if let Some(r) = board.find(id) {
                    r.polls += 1;
                }
            }
            Held::Projector(serial) => board.projector_polls.push(ProjectorPoll {
                serial,
                machine: from,
                waiting: wait,
                admitted: Instant::now(),
            }),
        }
        Ok((held, news))
    }

    /// Answers the oldest poll of the projector view that has waited at least [`TURN`]
    /// at once and frees its place; false if none has (the others are being written,
    /// HEADs, or newer).
    fn bump_oldest_projector_poll(&self, board: &mut Board) -> bool {
        let now = Instant::now();
        let turn_over = |p: &ProjectorPoll| p.waiting && now.duration_since(p.admitted) >= TURN;
        let Some(at) = board.projector_polls.iter().position(turn_over) else {
            return false;
        };
        board.projector_polls.remove(at);
        board.polls = board.polls.saturating_sub(1);
        self.changed.notify_all();
        true
    }
}

/// What a poll reads: one token's record, or every record (the projector view).
#[derive(Clone, Copy)]
enum Wants {
    Token([u8; 16]),
    All,
}

impl Wants {
    fn matches(self, r: &Record) -> bool {
        r.shown
            && match self {
                Wants::Token(token) => r.has_token(&token),
                Wants::All => true,
            }
    }
}

/// What a poll's target asks for, and since which event; or the answer that refuses it.
fn ask(target: &str, projector: bool) -> Result<(Wants, u64), Response> {
    let since = param(target, "since")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let token = param(target, TOKEN_PARAM).map(parse_token);
    let all = param(target, "all").is_some();
    match (token, all) {
        (Some(Some(token)), _) => Ok((Wants::Token(token), since)),
        (Some(None), _) => Err(not_found(
            "An inspect_token is 32 hex digits (128 bits), made by the page when it connects.",
        )),
        (None, true) if projector => Ok((Wants::All, since)),
        (None, true) => Err(projector_off()),
        (None, false) => Err(not_found(
            "Ask with ?inspect_token=… (your connection's), or ?all for the projector view.",
        )),
    }
}

/// A poll's place among those under way ([`MAX_POLLS`]); freed when dropped.
pub(crate) struct PollSlot<'i> {
    inspector: &'i Inspector,
    held: Held,
}

/// Whose place a poll holds.
enum Held {
    /// The one of the record whose token it reads.
    Record(u64),
    /// One of the projector view's: the [`ProjectorPoll`] of this serial number.
    Projector(u64),
}

/// A poll of the projector view under way.
pub(super) struct ProjectorPoll {
    serial: u64,
    /// Whose machine it comes from (see `machine`).
    machine: IpAddr,
    /// Still waiting for news: its place may go to a newer poll.
    waiting: bool,
    /// When it was admitted: its place is its own for [`TURN`] at least.
    admitted: Instant,
}

impl PollSlot<'_> {
    /// The answer is being written to `socket`: if the record goes meanwhile, the
    /// socket is cut (a poller that never reads would hold this place for the whole
    /// write timeout, past the record it was for).
    pub(crate) fn writing(&self, socket: &TcpStream) {
        if let Held::Record(id) = self.held
            && let Some(r) = lock(&self.inspector.board).find(id)
        {
            r.writer = socket.try_clone().ok();
        }
    }
}

impl Drop for PollSlot<'_> {
    fn drop(&mut self) {
        let mut board = lock(&self.inspector.board);
        match self.held {
            Held::Record(id) => {
                board.polls = board.polls.saturating_sub(1);
                if let Some(r) = board.find(id) {
                    r.polls = r.polls.saturating_sub(1);
                    r.writer = None;
                }
            }
            Held::Projector(serial) => {
                // A bumped poll's place was freed when it was bumped.
                if let Some(at) = board
                    .projector_polls
                    .iter()
                    .position(|p| p.serial == serial)
                {
                    board.projector_polls.remove(at);
                    board.polls = board.polls.saturating_sub(1);
                }
            }
        }
    }
}

/// One answer's content, copied under the lock (pointers to the blocks), written as JSON
/// after it.
struct Page {
    next: u64,
    more: bool,
    records: Vec<Copied>,
}

struct Copied {
    id: u64,
    peer: SocketAddr,
    ended: bool,
    dropped: u64,
    blocks: Vec<Arc<str>>,
}

impl Board {
    /// Whether `held` is a poll of the projector view whose place went to a newer one.
    fn bumped(&self, held: &Held) -> bool {
        match *held {
            Held::Record(_) => false,
            Held::Projector(serial) => self.projector_polls.iter().all(|p| p.serial != serial),
        }
    }

    /// `held` has stopped waiting (its answer is being made): its place stays its own.
    fn done_waiting(&mut self, held: &Held) {
        if let Held::Projector(serial) = *held
            && let Some(p) = self.projector_polls.iter_mut().find(|p| p.serial == serial)
        {
            p.waiting = false;
        }
    }

    /// The shown record of `token`, if there is one.
    fn by_token(&self, token: &[u8; 16]) -> Option<&Record> {
        self.records.iter().find(|r| r.shown && r.has_token(token))
    }

    /// Whether a poll of `wants` has something to answer after event `since` (for a
    /// token: also when its record is gone).
    fn has_news(&self, wants: Wants, since: u64) -> bool {
        match wants {
            Wants::Token(token) => self.by_token(&token).is_none_or(|r| r.last > since),
            Wants::All => self.records.iter().any(|r| r.shown && r.last > since),
        }
    }

    /// The records `wants` reads that changed after `since`, newest first, with their
    /// blocks after `since` in the order they happened, as far as they fit one answer.
    fn page(&self, wants: Wants, since: u64) -> Page {
        let chosen: Vec<&Record> = (self.records.iter().rev())
            .filter(|r| wants.matches(r) && r.last > since)
            .collect();
        let mut room = ANSWER_BYTES - ENVELOPE_BYTES - chosen.len() * RECORD_HEAD_BYTES;
        let mut cursors: Vec<_> = chosen
            .iter()
            .map(|r| r.blocks_after(since).peekable())
            .collect();
        // The next block of each record, earliest first.
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = (cursors.iter_mut().enumerate())
            .filter_map(|(i, c)| c.peek().map(|(seq, _)| Reverse((*seq, i))))
            .collect();
        let mut taken = vec![Vec::new(); chosen.len()];
        let (mut next, mut more) = (self.seq, false);
        while let Some(Reverse((seq, i))) = heap.pop() {
            let Some((_, block)) = cursors[i].next() else {
                continue;
            };
            if block.len() + 1 > room {
                // Everything before it is in: the page asks again from there.
                (next, more) = (seq - 1, true);
                break;
            }
            room -= block.len() + 1;
            taken[i].push(block.clone());
            if let Some((seq, _)) = cursors[i].peek() {
                heap.push(Reverse((*seq, i)));
            }
        }
        let records = (chosen.into_iter().zip(taken))
            .filter(|(r, blocks)| !blocks.is_empty() || r.last <= next)
            .map(|(r, blocks)| Copied {
                id: r.id,
                peer: r.peer,
                // Said only with its last block: the page stops at the end.
                ended: r.ended.is_some() && r.last <= next,
                dropped: r.dropped,
                blocks,
            })
            .collect();
        Page {
            next,
            more,
            records,
        }
    }
}

impl Page {
    /// No news: the page asks again from `next`.
    fn empty(next: u64) -> Page {
        Page {
            next,
            more: false,
            records: Vec::new(),
        }
    }

    fn json(&self) -> String {
        let blocks = self.records.iter().flat_map(|r| &r.blocks);
        let size = blocks.map(|b| b.len() + 1).sum::<usize>();
        let mut json =
            String::with_capacity(ENVELOPE_BYTES + self.records.len() * RECORD_HEAD_BYTES + size);
        let _ = write!(
            json,
            "{{\"next\":{},\"more\":{},\"records\":[",
            self.next, self.more
        );
        for (i, r) in self.records.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            let _ = write!(
                json,
                "{{\"id\":{},\"peer\":{},\"ended\":{},\"dropped\":{},\"events\":[",
                r.id,
                js_string(&r.peer.to_string()),
                r.ended,
                r.dropped
            );
            for (j, block) in r.blocks.iter().enumerate() {
                if j > 0 {
                    json.push(',');
                }
                json.push_str(block);
            }
            json.push_str("]}");
        }
        json.push_str("]}");
        json
    }
}

/// `503` for a poll past the limits: the page asks again after `Retry-After`.
fn busy(why: &str) -> Response {
    Response::new(503, why)
        .header("Retry-After", "1")
        .header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::super::Recorder;
    use super::super::tests::{field, get, shown};
    use super::*;

    /// Every answer fits [`ANSWER_BYTES`]; following `next` reads every kept block once,
    /// in the order they happened, across records (the projector view).
    #[test]
    fn answers_are_paged_and_each_block_is_read_once() {
        let ins = Arc::new(Inspector::new(true));
        let records: Vec<Recorder> = (0..3)
            .map(|i| shown(&ins, i, &format!("10.0.0.{i}:1"), "/"))
            .collect();
        for (i, r) in records.iter().cycle().take(300).enumerate() {
            r.upgraded();
            r.push(format!("frame {i:03} {}", "<&>".repeat(100)));
        }
        let b = &records[1];
        b.end("-- closed".into());
        let (mut since, mut pages, mut ended) = (0, Vec::<Vec<u32>>::new(), false);
        loop {
            let answer = get(&ins, &format!("/.inspect?all&since={since}"));
            assert!(answer.body.len() <= ANSWER_BYTES, "{}", answer.body.len());
            let frames = answer.body.match_indices("\"frame ");
            let mut page: Vec<u32> = frames
                .map(|(at, _)| answer.body[at + 7..at + 10].parse().unwrap())
                .collect();
            page.sort();
            pages.push(page);
            ended |= answer.body.contains("\"ended\":true");
            since = field(&answer.body, "next");
            if answer.body.contains("\"more\":false") {
                break;
            }
        }
        assert!(pages.len() >= 3, "{} pages", pages.len());
        assert!(ended, "the end is said on the last page");
        // Each page takes up where the one before ended: everything kept, once.
        for pair in pages.windows(2) {
            assert!(pair[0].last() < pair[1].first(), "{pages:?}");
        }
        let seen: Vec<u32> = pages.concat();
        let board = lock(&ins.board);
        let mut kept: Vec<u32> = (board.records.iter())
            .flat_map(|r| r.frames.iter())
            .filter(|(_, b)| b.starts_with("\"frame "))
            .map(|(_, b)| b[7..10].parse().unwrap())
            .collect();
        kept.sort();
        assert_eq!(seen, kept);
    }

    /// A HEAD poll (answered without waiting) from `peer`.
    fn head<'i>(ins: &'i Inspector, target: &str, peer: &str) -> (Response, Option<PollSlot<'i>>) {
        ins.poll(target, true, peer.parse().unwrap())
    }

    /// One poll per token, [`PROJECTOR_POLLS`] of the view (2 per machine),
    /// [`MAX_POLLS`] in all: any other is answered `503` at once, and a freed place can
    /// be taken again.
    #[test]
    fn polls_past_their_limits_are_answered_503_at_once() {
        let ins = Arc::new(Inspector::new(true));
        let tokens: Vec<String> = (0..MAX_RECORDS).map(|i| format!("{i:032x}")).collect();
        let _records: Vec<Recorder> = (tokens.iter().enumerate())
            .map(|(i, t)| {
                shown(
                    &ins,
                    i as u64,
                    "10.0.0.2:1",
                    &format!("/?inspect_token={t}"),
                )
            })
            .collect();
        // HEAD polls answer without waiting: their places are held as long as kept.
        let mut held: Vec<_> = (tokens.iter())
            .map(|t| head(&ins, &format!("/.inspect?inspect_token={t}"), "10.0.0.2:2"))
            .collect();
        assert!((held.iter()).all(|(a, slot)| a.status == 200 && a.head_only && slot.is_some()));
        let started = Instant::now();
        let again = get(
            &ins,
            &format!("/.inspect?inspect_token={}&since=99999", tokens[0]),
        );
        assert_eq!(again.status, 503, "{}", again.body);
        assert!(again.body.contains("has a poll under way already"));
        assert!(again.headers.contains(&("Retry-After", "1".into())));
        assert!(started.elapsed() < POLL_WAIT / 2, "answered at once");
        // The projector view's: two per machine, four in all.
        held.push(head(&ins, "/.inspect?all", "10.0.0.7:1"));
        held.push(head(&ins, "/.inspect?all", "10.0.0.7:2"));
        let third = head(&ins, "/.inspect?all", "10.0.0.7:3").0;
        assert_eq!(third.status, 503);
        assert!(third.head_only, "a HEAD's 503 has no body either");
        held.push(head(&ins, "/.inspect?all", "10.0.0.8:1"));
        held.push(head(&ins, "/.inspect?all", "[::ffff:10.0.0.9]:1"));
        assert!(held.iter().all(|(a, _)| a.status == 200));
        let view = head(&ins, "/.inspect?all", "10.0.0.10:1").0;
        assert_eq!(view.status, 503, "{}", view.body);
        assert!(view.body.contains("(4, 2 per machine)"), "{}", view.body);
        // A record pushed out while its poll is under way: that poll still counts (in
        // the server, until its answer is written or cut).
        let newcomer = "ffffffffffffffffffffffffffffffff";
        let _n = shown(
            &ins,
            99,
            "10.0.0.2:1",
            &format!("/?inspect_token={newcomer}"),
        );
        let full = get(&ins, &format!("/.inspect?inspect_token={newcomer}"));
        assert_eq!(full.status, 503);
        assert!(
            full.body.contains(&format!("at once ({MAX_POLLS})")),
            "{}",
            full.body
        );
        held.truncate(1);
        assert_eq!(lock(&ins.board).polls, 1);
        assert!(lock(&ins.board).projector_polls.is_empty());
        let (answer, _) = head(
            &ins,
            &format!("/.inspect?inspect_token={newcomer}"),
            "10.0.0.2:3",
        );
        assert_eq!(answer.status, 200);
    }

    /// A poller that never reads, whose record goes while its answer is written, is cut
    /// then: it keeps no place past its record.
    #[test]
    fn a_poll_being_written_is_cut_when_its_record_goes() {
        let ins = Arc::new(Inspector::new(false));
        let target = format!("/?inspect_token={}", super::super::tests::TOKEN);
        let r = shown(&ins, 1, "10.0.0.2:1", &target);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut poller = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, _) = listener.accept().unwrap();
        let poll = format!("/.inspect?inspect_token={}", super::super::tests::TOKEN);
        let (answer, slot) = head(&ins, &poll, "10.0.0.2:2");
        assert_eq!(answer.status, 200);
        let slot = slot.expect("a place");
        slot.writing(&socket);
        r.discard();
        // The server's side is shut: the poller reads the end, the writer fails.
        poller
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(std::io::Read::read(&mut poller, &mut [0u8; 16]).unwrap(), 0);
        assert!(std::io::Write::write_all(&mut &socket, &[0u8; 1 << 20]).is_err());
        drop(slot);
        assert_eq!(lock(&ins.board).polls, 0);
    }
}
