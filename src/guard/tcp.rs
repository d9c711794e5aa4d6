//! What the kernel can say about a client's TCP connection without blocking anyone.
//!
//! The room needs to know whether a member whose backlog is full is still reading
//! (backlog.rs, room/broadcast.rs): [`progress`] asks the kernel how many bytes the peer has
//! acknowledged, which grows whenever the peer's application has freed about one segment
//! of its receive buffer (its window opens; on loopback a segment is up to 64 KiB, on
//! Ethernet about 1.5 KiB), and stays put while it reads nothing. The writer's own count
//! of bytes written (backlog.rs) is the other signal, and the only one off Linux.
//!
//! Admission (admission.rs) asks whether a connection has sent anything yet:
//! [`has_input`], a `recv` with `MSG_PEEK | MSG_DONTWAIT`.
//!
//! One of the few modules with `unsafe` (with tune/stack.rs, tune/heap.rs and
//! tune/nowait.rs): one `recv(2)` and one `getsockopt(2)` call.

use std::net::TcpStream;

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
    info::progress(socket)
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
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::net::TcpStream;

    pub(super) fn has_input(_: &TcpStream) -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// The kernel's count of acknowledged bytes stays put while the peer reads nothing,
    /// and grows once it reads: the room's sign of a member that still reads.
    #[test]
    fn progress_grows_only_when_the_peer_reads() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut sender = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut receiver, _) = listener.accept().expect("accept");
        assert!(!super::has_input(&receiver), "nothing sent yet");
        sender.write_all(b"x").expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !super::has_input(&receiver) {
            assert!(
                std::time::Instant::now() < deadline,
                "the byte never arrived"
            );
            std::thread::yield_now();
        }
        // Fill the buffers without blocking: nobody reads.
        sender.set_nonblocking(true).expect("nonblocking");
        let chunk = vec![7u8; 64 * 1024];
        let mut total = 0usize;
        while let Ok(n) = sender.write(&chunk) {
            total += n;
            assert!(total < 1 << 30, "the socket never filled");
        }
        let before = super::progress(&sender).expect("TCP_INFO");
        assert!(before.waiting, "bytes wait in the socket");
        assert!(before.acked < total as u64, "{before:?} of {total}");
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = vec![0u8; 1 << 20];
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
