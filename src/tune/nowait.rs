//! A write that never blocks, on a socket other threads use blocking.
//!
//! Broadcast mode hands every frame to each member's writer thread (writer.rs), so a
//! member that stops reading can never stall the sender. But waking a writer thread for
//! each delivery (a context switch there and back) cost more than echoing a message.
//! When a member's writer has nothing queued, the broadcasting thread can instead put
//! the frame straight into the member's socket buffer, if it fits now: `send` with
//! `MSG_DONTWAIT` does exactly that for this one call, without making the socket
//! non-blocking for its reader and writer threads (`TcpStream::set_nonblocking` would,
//! for every thread, since the flag belongs to the open file). Whatever does not fit
//! goes to the writer thread as before (`Client::offer`, outbox.rs). Measured in
//! docs/performance.md. Elsewhere than Linux every frame goes through the writer.
//!
//! The write floor (guard/floor.rs `Pace`) uses the same to try every write first: what fits
//! goes without the system calls that bound a write that must wait (setting
//! `SO_SNDTIMEO`, asking the kernel how much the client took).

use std::io::{self, IoSlice};
use std::net::TcpStream;

/// Frames up to this size go straight to an idle member's socket. The broadcasting thread
/// does that while it holds the room's lock, so the kernel's copy of every frame is made
/// under it; larger frames are left to the writer threads, which copy in parallel and
/// share one buffer of the frame (a cut frame's rest is a copy per member). Small frames
/// are where the wake-up cost dominated anyway.
pub(crate) const DIRECT_MAX: usize = 4096;

/// Writes as much of `bytes` as the socket's send buffer takes right now; never blocks.
/// `Err(WouldBlock)` when it takes nothing (always, elsewhere than Linux).
pub(crate) fn send_now(socket: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    imp::send(socket, bytes)
}

/// [`send_now`] for several buffers in one call (`sendmsg`, like `writev`).
pub(crate) fn send_now_vectored(socket: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    imp::send_vectored(socket, bufs)
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod imp {
    use std::io::{self, IoSlice};
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

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
        sent(n)
    }

    pub(super) fn send_vectored(socket: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: all zeroes is a valid msghdr (no address, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is ABI-compatible with iovec on Unix (its documentation says so), and
        // `sendmsg` only reads the buffers it points to.
        msg.msg_iov = bufs.as_ptr().cast_mut().cast();
        msg.msg_iovlen = bufs.len() as _;
        // SAFETY: `msg` points to `bufs`, which outlive the call; the descriptor belongs
        // to `socket`, borrowed for the call, so it cannot be closed (and reused)
        // meanwhile.
        let n = unsafe {
            libc::sendmsg(
                socket.as_raw_fd(),
                &msg,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        sent(n)
    }

    fn sent(n: isize) -> io::Result<usize> {
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io::{self, IoSlice};
    use std::net::TcpStream;

    pub(super) fn send(_: &TcpStream, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }

    pub(super) fn send_vectored(_: &TcpStream, _: &[IoSlice<'_>]) -> io::Result<usize> {
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
        assert_eq!(super::send_now(&sender, b"hello").expect("send"), 5);
        let mut got = [0u8; 5];
        receiver.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hello");
        let parts = [std::io::IoSlice::new(b"wor"), std::io::IoSlice::new(b"ld")];
        assert_eq!(
            super::send_now_vectored(&sender, &parts).expect("sendmsg"),
            5
        );
        receiver.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"world");

        // Nobody reads now: the buffers fill, then a send takes nothing and says so.
        let chunk = vec![7u8; 64 * 1024];
        let mut total = 0usize;
        let err = loop {
            match super::send_now(&sender, &chunk) {
                Ok(n) => total += n,
                Err(e) => break e,
            }
            assert!(total < 1 << 30, "the socket never filled");
        };
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        assert!(total > 0);
        let parts = [std::io::IoSlice::new(&chunk)];
        let err = super::send_now_vectored(&sender, &parts).expect_err("full");
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    }
}
