//! A write that never blocks, on a socket other threads use blocking.
//!
//! Broadcast mode hands every frame to each member's writer thread (backlog.rs), so a
//! member that stops reading can never stall the sender. But waking a writer thread for
//! each delivery (a context switch there and back) cost more than echoing a message.
//! When a member's writer has nothing queued, the broadcasting thread can instead put
//! the frame straight into the member's socket buffer, if it fits now: `send` with
//! `MSG_DONTWAIT` does exactly that for this one call, without making the socket
//! non-blocking for its reader and writer threads (`TcpStream::set_nonblocking` would,
//! for every thread, since the flag belongs to the open file). Whatever does not fit
//! goes to the writer thread as before. Measured in docs/performance.md.
//!
//! The room also needs to know whether a member whose backlog is full is still reading
//! (backlog.rs, hub.rs): [`progress`] asks the kernel how many bytes the peer has
//! acknowledged, which grows whenever the peer's application has freed about one segment
//! of its receive buffer (its window opens; on loopback a segment is up to 64 KiB, on
//! Ethernet about 1.5 KiB), and stays put while it reads nothing. The writer's own count
//! of bytes written (backlog.rs) is the other signal, and the only one off Linux.
//!
//! Admission (server.rs) asks whether a connection has sent anything yet: [`has_input`],
//! a `recv` with `MSG_PEEK | MSG_DONTWAIT`.
//!
//! With stack.rs and heap.rs, the only `unsafe` in tinyws: one `send(2)`, one
//! `recv(2)` and one `getsockopt(2)` call.

use std::io;
use std::net::TcpStream;

/// Frames up to this size go straight to an idle member's socket. The broadcasting thread
/// does that while it holds the room's lock, so the kernel's copy of every frame is made
/// under it; larger frames are left to the writer threads, which copy in parallel and
/// share one buffer of the frame (a cut frame's rest is a copy per member). Small frames
/// are where the wake-up cost dominated anyway.
pub(crate) const DIRECT_MAX: usize = 4096;

/// Writes as much of `bytes` as the socket's send buffer takes right now; never blocks.
/// `Err(WouldBlock)` when it takes nothing.
pub(crate) fn send(socket: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    imp::send(socket, bytes)
}

/// Whether bytes from the peer wait in `socket` (or it has closed): a peek that never
/// blocks. Elsewhere than Linux: `false`.
pub(crate) fn has_input(socket: &TcpStream) -> bool {
    imp::has_input(socket)
}

/// What the kernel says about a socket's sending side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes the peer has acknowledged so far (only grows).
    pub(crate) acked: u64,
    /// Segments the peer has acknowledged, selectively acknowledged ones included
    /// (`tcpi_delivered`; 0 on kernels older than 4.18, then only `acked` counts).
    pub(crate) delivered: u32,
    /// Bytes written to the socket and not yet acknowledged: sent or waiting to be sent.
    pub(crate) waiting: bool,
    /// The connection's retransmission timeout before any backoff (RFC 6298 §2.3: the
    /// smoothed round-trip time plus four times its variation, at least 200 ms as Linux
    /// has it): on a link slower than loopback an ack can take this long, so the room
    /// never calls a member stuck sooner than twice it. Not `tcpi_rto`, which includes
    /// the backoff of zero-window probes: for a member that reads nothing it grows to
    /// seconds, exactly when the room must cut it.
    pub(crate) rto: std::time::Duration,
}

/// The peer's progress on `socket`, or `None` where the kernel does not say (not Linux,
/// or a kernel older than 4.6): then only the writer thread's own progress counts.
pub(crate) fn progress(socket: &TcpStream) -> Option<Progress> {
    imp::progress(socket)
}

#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
#[allow(unsafe_code)]
mod info {
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

    pub(super) fn progress(socket: &TcpStream) -> Option<super::Progress> {
        // SAFETY: tcp_info is plain integers, for which all zeroes is a valid value.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: the pointer and length describe `info`, which outlives the call and
        // which the kernel fills up to `len` bytes; the descriptor belongs to `socket`,
        // borrowed for the call.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &mut len,
            )
        };
        // An older kernel fills less: without the fields used here, say nothing.
        let needed =
            std::mem::offset_of!(libc::tcp_info, tcpi_notsent_bytes) + std::mem::size_of::<u32>();
        if rc != 0 || (len as usize) < needed {
            return None;
        }
        let has_delivered =
            std::mem::offset_of!(libc::tcp_info, tcpi_delivered) + std::mem::size_of::<u32>();
        Some(super::Progress {
            acked: info.tcpi_bytes_acked,
            delivered: if (len as usize) >= has_delivered {
                info.tcpi_delivered
            } else {
                0
            },
            waiting: info.tcpi_unacked > 0 || info.tcpi_notsent_bytes > 0,
            rto: std::time::Duration::from_micros(
                u64::from(info.tcpi_rtt) + 4 * u64::from(info.tcpi_rttvar),
            )
            .clamp(
                std::time::Duration::from_millis(200),
                std::time::Duration::from_secs(60),
            ),
        })
    }
}

#[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
mod info {
    pub(super) fn progress(_: &std::net::TcpStream) -> Option<super::Progress> {
        None
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod imp {
    pub(super) use super::info::progress;
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

    pub(super) fn has_input(socket: &TcpStream) -> bool {
        let mut byte = 0u8;
        // SAFETY: the pointer and length describe `byte`, which outlives the call and
        // which `recv` may write; the descriptor belongs to `socket`, borrowed for the
        // call. MSG_PEEK leaves the byte in the socket for its reader.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n >= 0 // a byte, or 0 at the end: not silent; -1 (EAGAIN): nothing yet
    }

    pub(super) fn send(socket: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
        // SAFETY: the pointer and length describe `bytes`, which outlives the call, and
        // `send` only reads them; the descriptor belongs to `socket`, borrowed for the
        // call, so it cannot be closed (and reused) meanwhile.
        let n = unsafe {
            libc::send(
                socket.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::net::TcpStream;

    pub(super) use super::info::progress;

    pub(super) fn has_input(_: &TcpStream) -> bool {
        false
    }

    /// Elsewhere every frame goes through the writer thread.
    pub(super) fn send(_: &TcpStream, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn sends_what_fits_and_then_would_block_instead_of_blocking() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let sender = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut receiver, _) = listener.accept().expect("accept");
        // Blocking socket, long timeout: only MSG_DONTWAIT can make this return early.
        sender
            .set_write_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        assert_eq!(super::send(&sender, b"hello").expect("send"), 5);
        let mut got = [0u8; 5];
        receiver.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hello");

        // Nobody reads now: the buffers fill, then a send takes nothing and says so.
        let chunk = vec![7u8; 64 * 1024];
        let mut total = 0usize;
        let err = loop {
            match super::send(&sender, &chunk) {
                Ok(n) => total += n,
                Err(e) => break e,
            }
            assert!(total < 1 << 30, "the socket never filled");
        };
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        assert!(total > 0);

        // The receiver has read nothing: the sender's bytes wait, and the peer has
        // acknowledged at most what its receive buffer holds (it may still take a little,
        // as zero-window probes find room). Once it reads, the count grows.
        let before = super::progress(&sender).expect("TCP_INFO");
        assert!(before.waiting, "bytes wait in the socket");
        assert!(before.acked < total as u64, "{before:?} of {total}");
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = vec![0u8; 1 << 20];
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while super::progress(&sender).expect("TCP_INFO").acked == before.acked {
            assert!(
                std::time::Instant::now() < deadline,
                "no progress after reads"
            );
            let n = receiver.read(&mut buf).expect("read");
            assert!(n > 0, "the sender closed");
        }
    }
}
