//! Broadcast mode (`--broadcast`), over real sockets: one order for every member, slow and
//! stuck receivers, members coming and going during a storm, and shutdown.

// Some tests need Unix signals or Linux /proc and are gated; elsewhere their helpers
// are unused.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::process::Proc;
use common::*;
use tinyws::{Config, Message};

const BIN: &str = env!("CARGO_BIN_EXE_tinyws");

fn room(config: Config) -> TestServer {
    start(config.broadcast(true))
}

/// Waits (bounded) until the room has `n` members.
fn wait_members(server: &TestServer, n: usize) {
    let deadline = Instant::now() + TIMEOUT;
    while server.handle().members() != n && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.handle().members(), n, "members in the room");
}

/// Message `k` of sender `n`: text for even `k`, binary for odd, sizes across the 7-,
/// 16-bit length boundaries, with non-ASCII text.
fn message(n: usize, k: usize) -> (u8, Vec<u8>) {
    let size = [0, 5, 125, 126, 1000, 4000, 65535 - 16][k % 7];
    if k.is_multiple_of(2) {
        let mut text = format!("{n}:{k}:é世");
        while text.len() < size {
            text.push(['a', 'é', '世', '🌍'][text.len() % 4]);
        }
        (0x1, text.into_bytes())
    } else {
        let mut bin = vec![n as u8, (k >> 8) as u8, k as u8];
        bin.extend((0..size).map(|i| (i * 31 + n + k) as u8));
        (0x2, bin)
    }
}

#[test]
fn every_member_gets_every_message_in_one_order_even_from_concurrent_senders() {
    const CLIENTS: usize = 4;
    const SENDERS: usize = 3;
    const PER_SENDER: usize = 140;
    const FROM_SERVER: usize = 40;
    // A large backlog: this test is about order, not about slow readers.
    let server = room(config().max_backlog(64 << 20));
    let sockets: Vec<TcpStream> = (0..CLIENTS).map(|_| upgraded(server.addr)).collect();
    wait_members(&server, CLIENTS);

    // Every message anyone sends, to identify what arrives: (first byte, payload) → who, k.
    let mut expected: HashMap<(u8, Vec<u8>), (usize, usize)> = HashMap::new();
    for n in 0..SENDERS {
        for k in 0..PER_SENDER {
            let (opcode, payload) = message(n, k);
            expected.insert((0x80 | opcode, payload), (n, k));
        }
    }
    let server_message = |k: usize| {
        if k == FROM_SERVER / 2 {
            // Past the 16-bit length: only the server may send one this large here.
            Message::binary(vec![k as u8; 70_000])
        } else {
            Message::text(format!("from the server {k}"))
        }
    };
    for k in 0..FROM_SERVER {
        let m = server_message(k);
        let first = if m.is_text() { 0x81 } else { 0x82 };
        expected.insert((first, m.into_data().to_vec()), (SENDERS, k));
    }
    let total = expected.len();
    assert_eq!(total, SENDERS * PER_SENDER + FROM_SERVER);

    let readers: Vec<_> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut s = s.try_clone().unwrap();
            // Client 0 pings after each of its messages; its last pong may come last.
            let want_pongs = if i == 0 { PER_SENDER } else { 0 };
            thread::spawn(move || {
                let (mut data, mut pongs) = (Vec::new(), Vec::new());
                while data.len() < total || pongs.len() < want_pongs {
                    let (first, payload) = read_frame(&mut s);
                    match first {
                        0x81 | 0x82 => data.push((first, payload)),
                        0x8a => pongs.push(payload),
                        other => panic!("unexpected frame {other:#x}"),
                    }
                }
                (data, pongs)
            })
        })
        .collect();
    let senders: Vec<_> = sockets
        .iter()
        .take(SENDERS)
        .enumerate()
        .map(|(n, s)| {
            let mut s = s.try_clone().unwrap();
            thread::spawn(move || {
                for k in 0..PER_SENDER {
                    let (opcode, payload) = message(n, k);
                    s.write_all(&frame(true, opcode, &payload)).unwrap();
                    if n == 0 {
                        // Pongs come from this client's own thread, broadcasts from the
                        // others': they must still arrive as whole frames.
                        s.write_all(&frame(true, 0x9, format!("p{k}").as_bytes()))
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for k in 0..FROM_SERVER {
        assert_eq!(server.handle().broadcast(server_message(k)), CLIENTS);
    }
    for s in senders {
        s.join().unwrap();
    }

    let results: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let (first_order, _) = &results[0];
    for (i, (data, pongs)) in results.iter().enumerate() {
        assert_eq!(data.len(), total);
        assert!(data == first_order, "client {i} saw another order");
        let want: Vec<Vec<u8>> = match i {
            0 => (0..PER_SENDER)
                .map(|k| format!("p{k}").into_bytes())
                .collect(),
            _ => Vec::new(),
        };
        assert_eq!(
            pongs, &want,
            "client {i}: pongs only to the pinger, in order"
        );
    }
    // Kind and bytes intact (the lookup needs both), each sender's messages in its order.
    let mut next = [0usize; SENDERS + 1];
    for m in first_order {
        let &(n, k) = expected
            .get(m)
            .unwrap_or_else(|| panic!("a message nobody sent: {:#x}, {} bytes", m.0, m.1.len()));
        assert_eq!(k, next[n], "sender {n} out of order");
        next[n] += 1;
    }
    assert_eq!(next, [PER_SENDER, PER_SENDER, PER_SENDER, FROM_SERVER]);
}

#[test]
fn a_lone_member_gets_its_own_messages_back() {
    let server = room(config());
    let mut ws = ws(server.addr, "/");
    wait_members(&server, 1);
    for m in [
        Message::text("hello, room"),
        Message::binary(vec![0, 255, 7]),
    ] {
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), m);
    }
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    wait_members(&server, 0);
}

#[test]
fn echo_mode_has_no_room() {
    let server = start(config());
    let mut ws = ws(server.addr, "/");
    ws.send(Message::text("mine")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("mine"));
    assert_eq!(server.handle().members(), 0);
    assert_eq!(server.handle().broadcast(Message::text("to nobody")), 0);
    ws.send(Message::text("still mine")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("still mine"));
}

#[test]
fn keepalive_pings_reach_a_member_between_broadcast_frames() {
    let server = room(
        config()
            .ping_interval(Duration::from_millis(100))
            .ping_timeout(Duration::from_secs(2)),
    );
    let mut ws = ws(server.addr, "/");
    wait_members(&server, 1);
    let handle = server.handle().clone();
    let pusher = thread::spawn(move || {
        for k in 0..100 {
            handle.broadcast(Message::text(format!("tick {k}")));
            thread::sleep(Duration::from_millis(5));
        }
    });
    // The client never sends a data message: the server's pings are due all along.
    let (mut ticks, mut pings) = (0, 0);
    while ticks < 100 {
        match ws.read().unwrap() {
            Message::Text(t) => {
                assert_eq!(t.as_str(), format!("tick {ticks}"));
                ticks += 1;
            }
            Message::Ping(p) => {
                assert_eq!(&p[..], b"tinyws");
                pings += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    pusher.join().unwrap();
    assert!(pings >= 1, "no keepalive ping arrived in {ticks} ticks");
    // tungstenite answered every ping, so the member is still in the room.
    assert_eq!(server.handle().broadcast(Message::text("still here")), 1);
    loop {
        match ws.read().unwrap() {
            Message::Ping(_) => continue,
            m => break assert_eq!(m, Message::text("still here")),
        }
    }
}

#[test]
fn shutdown_sends_1001_to_every_member_after_the_frames_already_queued() {
    const MESSAGES: usize = 300;
    let server = room(config().max_backlog(16 << 20));
    let clients: Vec<TcpStream> = (0..3).map(|_| upgraded(server.addr)).collect();
    wait_members(&server, 3);
    // Members that do not read yet: 300 × 16 KiB are more than the socket buffers hold, so
    // frames are still waiting in the backlogs when the server shuts down.
    let payload = |k: usize| {
        let mut p = (k as u32).to_be_bytes().to_vec();
        p.resize(16 * 1024, k as u8);
        p
    };
    for k in 0..MESSAGES {
        assert_eq!(server.handle().broadcast(Message::binary(payload(k))), 3);
    }
    let stopper = thread::spawn(move || server.stop());
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                for k in 0..MESSAGES {
                    assert_eq!(read_frame(&mut c), (0x82, payload(k)), "message {k}");
                }
                let (first, close) = read_frame(&mut c);
                assert_eq!(first, 0x88);
                assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1001);
                c.write_all(&frame(true, 0x8, &close[..2])).unwrap();
                assert!(read_to_end(&mut c).is_empty(), "bytes after the close");
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stopper.join().unwrap();
}

#[test]
fn help_lists_the_broadcast_flags() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("--broadcast"), "{help}");
    let default = tinyws::format_size(Config::default().max_backlog);
    assert!(
        help.contains("--max-backlog") && help.contains(&format!("(default {default})")),
        "{help}"
    );
}

/// Progress of the receivers that keep up, so a sender can stay a few messages ahead
/// of the slowest one (a room has no flow control: that is what the backlog bounds).
struct Progress {
    done: Mutex<Vec<usize>>,
    moved: Condvar,
}

impl Progress {
    fn new(receivers: usize) -> Arc<Progress> {
        Arc::new(Progress {
            done: Mutex::new(vec![0; receivers]),
            moved: Condvar::new(),
        })
    }

    fn set(&self, receiver: usize, n: usize) {
        self.done.lock().unwrap()[receiver] = n;
        self.moved.notify_all();
    }

    /// Waits (bounded) until every receiver has at least `n` messages.
    fn wait(&self, n: usize) {
        let deadline = Instant::now() + TIMEOUT;
        let mut done = self.done.lock().unwrap();
        while done.iter().min().copied().unwrap_or(0) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "receivers stalled at {done:?}, waiting for {n}"
            );
            done = self.moved.wait_timeout(done, left).unwrap().0;
        }
    }
}

/// One thread per receiver, each reading messages 0..n of `size` bytes with
/// [`read_numbered`]; each returns its longest gap between two messages.
fn spawn_readers(
    receivers: Vec<TcpStream>,
    n: usize,
    size: usize,
    progress: &Arc<Progress>,
) -> Vec<thread::JoinHandle<Duration>> {
    receivers
        .into_iter()
        .enumerate()
        .map(|(me, mut r)| {
            let progress = progress.clone();
            thread::spawn(move || read_numbered(&mut r, 0, n, size, &progress, me))
        })
        .collect()
}

/// Reads `count` binary messages numbered `from..from + count` (first 4 bytes) of `size`
/// bytes; returns the longest time between two of them.
fn read_numbered(
    s: &mut TcpStream,
    from: usize,
    count: usize,
    size: usize,
    progress: &Progress,
    me: usize,
) -> Duration {
    let mut gap = Duration::ZERO;
    let mut last = Instant::now();
    for i in from..from + count {
        let (first, payload) = read_frame(s);
        let head = String::from_utf8_lossy(&payload[..payload.len().min(40)]).into_owned();
        assert_eq!(first, 0x82, "message {i}: frame {first:#x} {head:?}");
        assert_eq!(payload.len(), size);
        assert_eq!(&payload[..4], (i as u32).to_be_bytes(), "out of order");
        assert!(
            payload[4..].iter().all(|&b| b == i as u8),
            "message {i} corrupted"
        );
        if i > from {
            gap = gap.max(last.elapsed());
        }
        last = Instant::now();
        progress.set(me, i + 1 - from);
    }
    gap
}

fn numbered(i: usize, size: usize) -> Vec<u8> {
    let mut p = (i as u32).to_be_bytes().to_vec();
    p.resize(size, i as u8);
    p
}

/// Splits `bytes` into whole server frames; a last, incomplete one is returned apart.
fn frames(mut bytes: &[u8]) -> (Vec<(u8, Vec<u8>)>, usize) {
    let mut out = Vec::new();
    loop {
        if bytes.len() < 2 {
            return (out, bytes.len());
        }
        let (header, len) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (4, u16::from_be_bytes([bytes[2], bytes[3]]) as usize),
            127 if bytes.len() >= 10 => (
                10,
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
            ),
            126 | 127 => return (out, bytes.len()),
            n => (2, n as usize),
        };
        if bytes.len() < header + len {
            return (out, bytes.len());
        }
        out.push((bytes[0], bytes[header..header + len].to_vec()));
        bytes = &bytes[header + len..];
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_receiver_that_never_reads_is_dropped_and_the_others_get_everything() {
    const N: usize = 2000;
    const SIZE: usize = 16 * 1024;
    const BACKLOG: usize = 256 * 1024;
    const WINDOW: usize = 8; // 128 KiB ahead of the slowest reader: within its backlog
    // Long enough that "a stall on the stuck client" stands out from a busy machine's
    // scheduling delays (with eight test binaries running at once).
    let write_timeout = Duration::from_secs(6);
    let mut p = Proc::start(
        BIN,
        &[
            "--broadcast",
            "--max-backlog",
            "256KiB",
            "--write-timeout",
            "6s",
        ],
    );
    let sender = upgraded(p.addr);
    let watchers: Vec<TcpStream> = (0..2).map(|_| upgraded(p.addr)).collect();
    let mut stuck = upgraded(p.addr);
    for _ in 0..4 {
        p.wait_log("opened"); // logged once the client is in the room
    }
    let mut s = sender.try_clone().unwrap();
    s.write_all(&frame(true, 0x1, b"warm-up")).unwrap();
    let mut receivers = vec![sender.try_clone().unwrap()];
    receivers.extend(watchers);
    for r in receivers.iter_mut().chain([&mut stuck]) {
        assert_eq!(read_frame(r), (0x81, b"warm-up".to_vec()));
    }
    // From here on `stuck` never reads. The peak resident size starts from now.
    p.reset_peak_memory();
    let before = p.status_bytes("VmRSS");

    let progress = Progress::new(receivers.len());
    let readers = spawn_readers(receivers, N, SIZE, &progress);
    for i in 0..N {
        progress.wait(i.saturating_sub(WINDOW));
        s.write_all(&frame(true, 0x2, &numbered(i, SIZE))).unwrap();
    }
    let gaps: Vec<Duration> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let peak = p.status_bytes("VmHWM");
    let growth = peak.saturating_sub(before);
    let max_gap = gaps.iter().max().copied().unwrap();
    eprintln!(
        "{N} x {SIZE} B broadcast: server resident memory {} KiB before, peak {} KiB \
         (+{} KiB); longest gap at a reader that keeps up: {max_gap:?}",
        before / 1024,
        peak / 1024,
        growth / 1024
    );

    // A stall on the stuck client would have stopped everyone for the write timeout.
    assert!(
        max_gap < write_timeout / 2,
        "readers that keep up waited {max_gap:?}"
    );
    // Memory: at most the backlogs of four members plus allocator slack (generous, for
    // glibc's arenas), not the 32 MiB the stuck one was sent (an unbounded queue
    // measures about +28 MiB here).
    let bound = 4 * BACKLOG + (7 << 20);
    assert!(
        growth < bound,
        "resident memory grew by {growth} bytes (bound {bound})"
    );

    // The stuck client was dropped, and logged once, for reading nothing while the room
    // waited for it (its backlog full: --stall-timeout). Its writer may be
    // blocked on the full socket until the write timeout runs out, then the close
    // handshake gets its own second: allow for that on a loaded machine, still bounded.
    let line = p.wait_log_for("dropped:", 5 * write_timeout);
    eprintln!("{line}");
    assert!(
        line.contains("its backlog was full and it read nothing for 1s (stall_timeout (--stall-timeout), or twice"),
        "{line}"
    );
    let later: Vec<String> = p.drain_log();
    assert!(
        !later.iter().any(|l| l.contains("--stall-timeout")),
        "{later:?}"
    );
    // What it got: whole frames, a prefix of the messages in order, then at most its
    // close 1008, then the end; a frame cut short only if the close could not be written.
    stuck.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (got, cut) = frames(&read_to_end(&mut stuck));
    let mut i = 0;
    for (n, (first, payload)) in got.iter().enumerate() {
        if *first == 0x88 {
            assert_eq!(&payload[..2], 1008u16.to_be_bytes());
            assert_eq!(n, got.len() - 1, "frames after the close");
            assert_eq!(cut, 0, "bytes after the close");
            break;
        }
        assert_eq!((*first, payload), (0x82, &numbered(i, SIZE)));
        i += 1;
    }
    assert!(i < N, "the stuck client was sent everything ({i})");
    eprintln!("the stuck client got {i} messages before it was dropped");

    // The room goes on without it.
    s.write_all(&frame(true, 0x1, b"after")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"after".to_vec()));
}

#[cfg(target_os = "linux")]
#[test]
fn members_joining_and_leaving_during_a_storm_leave_nothing_behind() {
    const N: usize = 3000;
    const SIZE: usize = 512;
    const WINDOW: usize = 64;
    let mut p = Proc::start(BIN, &["--broadcast", "--write-timeout", "1s"]);
    let sender = upgraded(p.addr);
    let mut watcher = upgraded(p.addr);
    p.wait_log("opened");
    p.wait_log("opened");
    let baseline = p.resources();

    let progress = Progress::new(2);
    let readers = spawn_readers(
        vec![sender.try_clone().unwrap(), watcher.try_clone().unwrap()],
        N,
        SIZE,
        &progress,
    );
    // Halfway through, the storm waits (bounded) until members have come and gone
    // during it, so the scenario happens however fast the machine is.
    let cleaned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let storm = {
        let mut s = sender.try_clone().unwrap();
        let progress = progress.clone();
        let cleaned = cleaned.clone();
        thread::spawn(move || {
            for i in 0..N {
                progress.wait(i.saturating_sub(WINDOW));
                s.write_all(&frame(true, 0x2, &numbered(i, SIZE))).unwrap();
                if i == N / 2 {
                    let deadline = Instant::now() + 2 * TIMEOUT;
                    while cleaned.load(std::sync::atomic::Ordering::Acquire) < 3 {
                        assert!(Instant::now() < deadline, "no member came and went");
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        })
    };

    let (mut clean, mut reset) = (0, 0);
    while !storm.is_finished() && clean < 25 {
        // Clean close: after its close frame, frames already queued, the server's close
        // reply, then nothing (RFC 6455 §5.5.1), and the server closes TCP.
        let mut c = upgraded(p.addr);
        c.write_all(&frame(true, 0x8, &close_payload(1000, "bye")))
            .unwrap();
        loop {
            let (first, payload) = read_frame(&mut c);
            if first == 0x88 {
                assert_eq!(payload, close_payload(1000, "bye"));
                break;
            }
            assert_eq!(first, 0x82);
        }
        assert!(read_to_end(&mut c).is_empty(), "bytes after the close");
        clean += 1;
        cleaned.store(clean, std::sync::atomic::Ordering::Release);

        // Reset: a pong (and maybe frames) left unread, so closing the socket sends RST.
        let mut c = upgraded(p.addr);
        c.write_all(&frame(true, 0x9, b"p")).unwrap();
        c.peek(&mut [0u8; 1]).expect("something to leave unread");
        drop(c);
        // Gone mid-frame.
        let mut c = upgraded(p.addr);
        let half = frame(true, 0x1, &[b'x'; 100]);
        c.write_all(&half[..50]).unwrap();
        drop(c);
        reset += 2;
    }
    storm.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert!(clean >= 3, "the storm ended before members came and went");
    eprintln!("{clean} clean closes and {reset} resets or vanishings during the storm");

    assert_eq!(
        p.settle(baseline),
        baseline,
        "(threads, fds) back to baseline"
    );
    let log = p.drain_log();
    assert!(!log.iter().any(|l| l.contains("panicked")), "{log:?}");

    // Shutdown reaches the remaining members with 1001, and the process exits 0.
    p.signal("-TERM");
    let mut sender = sender;
    for c in [&mut sender, &mut watcher] {
        let (first, payload) = read_frame(c);
        assert_eq!((first, &payload[..2]), (0x88, &1001u16.to_be_bytes()[..]));
        c.write_all(&frame(true, 0x8, &payload[..2])).unwrap();
        assert!(read_to_end(c).is_empty());
    }
    assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(0));
}

/// The broadcasting thread writes a small frame straight into a member's socket when
/// nothing is queued for it, and hands what does not fit to the member's writer thread
/// (src/tune/nowait.rs). Here each burst of broadcasts starts with the member's backlog empty
/// and its reader paused, so the socket fills by direct sends and the rest of the burst
/// goes through the writer: the member must get every frame whole and in order across
/// that switch, four times. (Whether the kernel cuts a frame at the switch varies; the
/// unit test in src/client/backlog.rs forces that case.)
#[test]
fn a_slow_reader_gets_every_frame_whole_when_its_socket_fills_mid_frame() {
    const BURSTS: usize = 4;
    const PER_BURST: usize = 2000; // 6 MB: more than loopback socket buffers hold
    const SIZE: usize = 3001; // under the direct-send limit; divides no buffer size
    let server = room(config().max_backlog(64 << 20));
    let mut slow = upgraded(server.addr);
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    wait_members(&server, 1);
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let read = progress.clone();
    // The reader starts on a burst only once all of it was broadcast: the socket filled
    // meanwhile (6 MB), so the burst went partly direct, partly through the writer.
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let broadcast = sent.clone();
    let reader = thread::spawn(move || {
        for i in 0..BURSTS * PER_BURST {
            if i % PER_BURST == 0 {
                let deadline = Instant::now() + TIMEOUT;
                while broadcast.load(std::sync::atomic::Ordering::Acquire) < i + PER_BURST {
                    assert!(
                        Instant::now() < deadline,
                        "burst {} was not sent",
                        i / PER_BURST
                    );
                    thread::sleep(Duration::from_millis(1));
                }
            }
            let (opcode, payload) = read_frame(&mut slow);
            assert_eq!(opcode, 0x82, "frame {i}: a whole binary frame");
            assert_eq!(
                payload,
                numbered(i, SIZE),
                "frame {i}: every byte, in order"
            );
            read.store(i + 1, std::sync::atomic::Ordering::Release);
        }
    });
    for burst in 0..BURSTS {
        // Start each burst with nothing queued: wait until the last one was read.
        let deadline = Instant::now() + TIMEOUT;
        while progress.load(std::sync::atomic::Ordering::Acquire) < burst * PER_BURST {
            assert!(
                Instant::now() < deadline,
                "burst {burst} was not read in time"
            );
            assert!(!reader.is_finished(), "the reader stopped early");
            thread::sleep(Duration::from_millis(1));
        }
        for i in burst * PER_BURST..(burst + 1) * PER_BURST {
            assert_eq!(
                server
                    .handle()
                    .broadcast(Message::binary(numbered(i, SIZE))),
                1
            );
        }
        sent.store(
            (burst + 1) * PER_BURST,
            std::sync::atomic::Ordering::Release,
        );
    }
    reader
        .join()
        .expect("the slow reader got every frame whole");
}

/// A member that stops reading is closed with 1008 once the room has waited
/// `--stall-timeout` for its full backlog (the broadcast waits meanwhile, then returns 0:
/// nobody else is in the room), and that close frame really goes out (RFC 6455 §7.4.1):
/// when the member reads again, it gets a prefix of the messages in order, then close
/// 1008 "not reading", then the end. (It used to be closed the moment its backlog
/// overflowed, without the room waiting.)
#[test]
fn a_member_that_stops_reading_gets_a_close_1008_when_it_reads_again() {
    const SIZE: usize = 16 * 1024;
    let server = room(config()); // max_backlog 256 KiB, stall 1 s, write timeout 10 s
    let mut stuck = upgraded(server.addr);
    wait_members(&server, 1);
    let mut sent = 0;
    while server
        .handle()
        .broadcast(Message::binary(numbered(sent, SIZE)))
        == 1
    {
        sent += 1;
        assert!(sent < 4000, "64 MB queued and the member was never closed");
    }
    assert_eq!(server.handle().members(), 0, "closed and out of the room");
    // Read now, within the write timeout: the writer can then send the close frame.
    let mut i = 0;
    loop {
        match read_frame(&mut stuck) {
            (0x88, payload) => {
                assert_eq!(payload, close_payload(1008, "not reading"));
                break;
            }
            f => assert_eq!(f, (0x82, numbered(i, SIZE)), "frame {i}, in order"),
        }
        i += 1;
        assert!(i <= sent, "more frames than were sent");
    }
    // The member answers the close at once (§5.5.1): the server waits for that answer,
    // then ends the connection cleanly (FIN, not a reset of an answer it never read).
    stuck
        .write_all(&frame(true, 0x8, &close_payload(1008, "")))
        .unwrap();
    let mut rest = [0u8; 16];
    match std::io::Read::read(&mut stuck, &mut rest) {
        Ok(0) => {}
        other => panic!("expected a clean end after the close handshake, got {other:?}"),
    }
    assert_eq!(server.wait_connections(0), 0);
}

/// The writer's drain deadline applies only once the connection is ending: a member
/// connected for longer than the write timeout still gets its keepalive ping and the
/// next broadcast.
#[test]
fn a_member_connected_longer_than_the_write_timeout_still_gets_frames() {
    let server = room(
        config()
            .write_timeout(Duration::from_millis(300))
            .ping_interval(Duration::from_secs(1)),
    );
    let mut member = upgraded(server.addr);
    wait_members(&server, 1);
    // Over the 4 KiB of a direct send (tune/nowait.rs): these go through the writer thread.
    let big = |i| Message::binary(numbered(i, 8 * 1024));
    assert_eq!(server.handle().broadcast(big(0)), 1);
    assert_eq!(read_frame(&mut member), (0x82, numbered(0, 8 * 1024)));
    // The ping comes a second or more after the broadcast: past the write timeout.
    assert_eq!(read_frame(&mut member), (0x89, b"tinyws".to_vec()));
    member.write_all(&frame(true, 0xa, b"tinyws")).unwrap();
    assert_eq!(server.handle().broadcast(big(1)), 1);
    assert_eq!(read_frame(&mut member), (0x82, numbered(1, 8 * 1024)));
}

/// `--max-backlog` also bounds one message: a broadcast whose frame plus the 16 bytes of
/// bookkeeping (docs/reference.md) is larger is not sent to anyone (0), one that fits exactly is.
#[test]
fn a_broadcast_larger_than_max_backlog_is_not_sent_and_one_that_fits_exactly_is() {
    const BACKLOG: usize = 8192;
    let server = room(
        config()
            .max_message_size(4096)
            .max_frame_size(4096)
            .max_backlog(BACKLOG),
    );
    let mut member = upgraded(server.addr);
    wait_members(&server, 1);
    // A frame of n > 125 payload bytes has a 4-byte header: it costs n + 4 + 16.
    let fits = BACKLOG - 4 - 16;
    let handle = server.handle();
    assert_eq!(handle.broadcast(Message::binary(vec![1; fits + 1])), 0);
    assert_eq!(handle.broadcast(Message::binary(vec![2; fits])), 1);
    // Read it before the next one: it fills the backlog until the writer takes it.
    assert_eq!(read_frame(&mut member), (0x82, vec![2; fits]));
    assert_eq!(handle.broadcast(Message::text("after")), 1);
    assert_eq!(read_frame(&mut member), (0x81, b"after".to_vec()));
    assert_eq!(handle.members(), 1, "nobody was closed for it");
}

/// A member whose socket stays full for `--write-timeout` is dropped, logged with the
/// flag, and the sender (which reads its own copies) gets everything.
#[test]
fn a_member_that_blocks_a_write_for_the_write_timeout_is_dropped() {
    const N: usize = 40;
    const SIZE: usize = 1 << 20;
    let mut p = Proc::start(
        BIN,
        &[
            "--broadcast",
            "--write-timeout",
            "500ms",
            // Never full: this test is about the write timeout, not the backlog.
            "--max-backlog",
            "64MiB",
            "--max-message-size",
            "1MiB",
            "--max-frame-size",
            "1MiB",
        ],
    );
    let _stuck = upgraded(p.addr);
    p.wait_log("opened");
    let mut sender = upgraded(p.addr);
    p.wait_log("opened");
    let mut reader = sender.try_clone().unwrap();
    let copies = thread::spawn(move || {
        (0..N)
            .map(|i| {
                let (first, payload) = read_frame(&mut reader);
                (first, payload == numbered(i, SIZE))
            })
            .filter(|&(first, same)| first == 0x82 && same)
            .count()
    });
    for i in 0..N {
        sender
            .write_all(&frame(true, 0x2, &numbered(i, SIZE)))
            .unwrap();
    }
    let line = p.wait_log_for("dropped:", Duration::from_secs(20));
    assert!(
        line.contains("#1 ")
            && line.contains(
                "dropped: it took less than 16 KiB in 500ms of waiting (the write_timeout (--write-timeout)): it reads too slowly, or not at all"
            ),
        "{line}"
    );
    assert_eq!(copies.join().unwrap(), N, "the sender got all its copies");
}
