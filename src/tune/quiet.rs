//! A connection that goes quiet gives back what its last burst used.
//!
//! To the connection's read loop (connection.rs) a [`Quiet`] is "the read timeout is the
//! keepalive timer": [`Quiet::timed_out`] returning `false` means the keepalive interval
//! passed. What it adds: one more wake-up, [`SHRINK_AFTER`] into a quiet spell that
//! follows the handshake or a burst of messages over half a KiB, to give back the deep
//! stack pages (stack.rs), the stream's bulk read buffer (reads.rs), the outbox's buffer
//! and tungstenite's buffers, which otherwise keep the size of the largest message for
//! the connection's life (docs/performance.md: 194 KiB per idle connection after one
//! 60 KB echo, not 14); and the freed bytes are counted towards a heap trim (heap.rs).
//! Not at once: giving back stack costs about 25 µs of CPU (the kernel flushes the page
//! mappings on every core), which short-lived connections should not pay, and messages
//! in quick succession reuse the buffers instead of zero-filling new ones each time. The
//! first keepalive ping after a burst comes this much later.

use std::time::Duration;

use tungstenite::WebSocket;
use tungstenite::protocol::{Role, WebSocketConfig};

use super::Reads;

/// What [`Quiet`] needs of the stream under a connection's `WebSocket` (stream.rs
/// implements it): declared here so that tune/ calls nothing outside itself.
pub(crate) trait Quiets: Sized {
    /// The read path's buffers ([`Reads`]).
    fn reads(&mut self) -> &mut Reads;
    /// Sets the socket's read timeout.
    fn set_read_timeout(&self, timeout: Option<Duration>);
    /// Gives back the outbox's idle buffer; returns the bytes freed.
    fn release_idle(&self) -> usize;
    /// A stream over the same connection that allocates nothing, to hold a `WebSocket`'s
    /// place while it is renewed.
    fn stand_in(&self) -> Self;
}

/// How long a connection must be quiet before it gives back what it used.
pub(crate) const SHRINK_AFTER: Duration = Duration::from_secs(1);

/// The largest outbox buffer kept between bursts (it is freed once the connection is
/// quiet: [`release_idle`]); a larger reply's buffer is freed at once.
const KEEP_MAX: usize = 64 * 1024;

/// After the outbox wrote out its buffer `buf`: puts it back, emptied, in its place
/// `slot` for the next burst of replies, unless it is larger than [`KEEP_MAX`] (the
/// plain way: drop it, and allocate again for the next burst).
pub(crate) fn keep(slot: &mut Vec<u8>, mut buf: Vec<u8>) {
    buf.clear();
    if buf.capacity() <= KEEP_MAX {
        *slot = buf; // but do not keep a large reply's buffer while idle
    }
}

/// Frees the outbox's buffer `buf` if nothing waits in it (the connection has gone
/// quiet): it keeps the size of the largest burst of replies, up to [`KEEP_MAX`].
/// Returns the bytes freed.
pub(crate) fn release_idle(buf: &mut Vec<u8>) -> usize {
    if !buf.is_empty() {
        return 0;
    }
    std::mem::take(buf).capacity()
}

/// The read timeout of a connection's socket: the keepalive interval, or the shorter
/// [`SHRINK_AFTER`] while giving back memory is due.
pub(crate) struct Quiet {
    keepalive: Option<Duration>,
    /// Whether the short timer can ever come before the keepalive.
    helps: bool,
    /// The read timeout is [`SHRINK_AFTER`] now.
    armed: bool,
}

impl Quiet {
    /// Sets the read timeout of a connection that has just completed its handshake.
    pub(crate) fn start<S: Quiets>(ws: &WebSocket<S>, keepalive: Option<Duration>) -> Quiet {
        let helps = keepalive.is_none_or(|k| k > SHRINK_AFTER);
        let quiet = Quiet {
            keepalive,
            helps,
            armed: helps,
        };
        quiet.set_timeout(ws);
        quiet
    }

    fn set_timeout<S: Quiets>(&self, ws: &WebSocket<S>) {
        let timeout = if self.armed {
            Some(SHRINK_AFTER)
        } else {
            self.keepalive
        };
        ws.get_ref().set_read_timeout(timeout);
    }

    /// After each message read: a large one grew the buffers, so shrink a second after
    /// this burst ends (one more wake-up per burst; the timer stays set meanwhile). Small
    /// messages and pongs leave nothing worth a wake-up: the next keepalive timeout gives
    /// back what they touched.
    pub(crate) fn message_read<S: Quiets>(&mut self, ws: &mut WebSocket<S>) {
        let reads = ws.get_mut().reads();
        if self.helps && !self.armed && (reads.holds_bulk() || reads.has_grown()) {
            self.armed = true;
            self.set_timeout(ws);
        }
    }

    /// The read timed out: gives back what the connection no longer needs, and returns
    /// whether that was all this timeout was for (then the read loop just reads again);
    /// `false` when the keepalive interval passed.
    pub(crate) fn timed_out<S: Quiets>(&mut self, ws: &mut WebSocket<S>) -> bool {
        let _ = shrink(ws);
        // And the stack pages below this frame (stack.rs), shrink's included.
        super::stack::release_unused();
        if !self.armed {
            return false;
        }
        self.armed = false;
        self.set_timeout(ws);
        true
    }
}

/// Gives back what the handshake or the last burst of messages used; returns whether
/// tungstenite got fresh buffers. Not inlined: its frame is large (two `WebSocket`s), and
/// lies below the read loop's, so it is given back too instead of pushing the idle read
/// loop one stack page deeper.
#[inline(never)]
fn shrink<S: Quiets>(ws: &mut WebSocket<S>) -> bool {
    let idle = ws.get_ref().release_idle();
    let reads = ws.get_mut().reads();
    let mut freed = reads.release_bulk() + idle;
    let renew = reads.has_grown() && reads.at_message_edge();
    if renew {
        // tungstenite holds no part of a frame or message (it has just asked the stream
        // for more, and its pong replies go out before every read), so a fresh WebSocket
        // over the same stream loses nothing, and has buffers of the idle size again. The
        // stand-in that holds the place meanwhile allocates nothing (no read buffer).
        freed += reads.take_largest();
        let config = *ws.get_config();
        let stand_in = WebSocket::from_raw_socket(
            ws.get_ref().stand_in(),
            Role::Server,
            Some(WebSocketConfig::default().read_buffer_size(0)),
        );
        let old = std::mem::replace(ws, stand_in);
        *ws = WebSocket::from_raw_socket(old.into_inner(), Role::Server, Some(config));
    }
    super::heap::freed(freed);
    renew
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::head::Head;
    use crate::client::outbox::Client;
    use crate::util::io::is_timeout;
    use crate::ws::stream::Stream;
    use std::io::Write;
    use std::sync::Arc;
    use tungstenite::Message;

    /// A masked client frame (FIN set) with a 16-bit length.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let key = [9, 8, 7, 6];
        let mut f = vec![0x82, 0xfe];
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    /// shrink gives tungstenite fresh buffers after a large message, but not after a
    /// small one (nothing grew) and never in the middle of a frame.
    #[test]
    fn shrink_renews_only_after_large_messages_and_only_between_frames() {
        let (client, mut peer) = Client::over_loopback(Some(Duration::from_millis(300)));
        let client = Arc::new(client);
        client.set_upgraded("/".into());
        let mut stream = Stream::new(client, Head::default(), 16 * 1024, 4096, None);
        stream.end_handshake();
        let config = WebSocketConfig::default().read_buffer_size(super::super::IDLE_READ);
        let mut ws = WebSocket::from_raw_socket(stream, Role::Server, Some(config));
        let large: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let read = |ws: &mut WebSocket<Stream>| match ws.read() {
            Ok(Message::Binary(data)) => Some(data.to_vec()),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => None,
            Err(e) => panic!("{e}"),
        };

        peer.write_all(&frame(&large)).expect("write");
        assert_eq!(read(&mut ws).as_deref(), Some(&large[..]));
        assert!(shrink(&mut ws), "renewed after a 3000-byte message");

        peer.write_all(&frame(b"small")).expect("write");
        assert_eq!(read(&mut ws).as_deref(), Some(&b"small"[..]));
        assert!(!shrink(&mut ws), "nothing grew: no new context");

        let cut = frame(&large);
        peer.write_all(&cut[..1000]).expect("write");
        assert_eq!(read(&mut ws), None, "the read times out mid-frame");
        assert!(!shrink(&mut ws), "never in the middle of a frame");
        peer.write_all(&cut[1000..]).expect("write");
        assert_eq!(
            read(&mut ws).as_deref(),
            Some(&large[..]),
            "came back whole"
        );
        assert!(shrink(&mut ws));
    }
}
