//! The bytes of one connection, in and out: a TCP socket, with a TLS session around it
//! when the server speaks `wss://`; below it, retrying a socket call after a signal.
//! Every write to a client passes the write floor (guard/floor.rs [`Paced`]: read it as
//! the socket with a write timeout). Nothing here knows about HTTP or frames.

use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::guard::floor::{Pace, Paced};

/// An encrypted session around the socket: the `tls` layer's (tls.rs) is the only one.
/// The transport calls it through this seam and never names it, so a build without
/// that layer has no TLS code at all.
pub(crate) trait Encryption: Send + Sync + Debug {
    /// Whether any byte of the client's was read, even one only of the TLS handshake.
    fn heard(&self) -> bool;
    /// Decrypted bytes from `socket`; what the session must send meanwhile goes to
    /// `out`. No socket read passes `deadline`, if given.
    fn read(
        &self,
        socket: &TcpStream,
        out: &mut dyn Write,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<usize>;
    /// Encrypts `bytes` and writes the records to `out`.
    fn write_all(&self, out: &mut dyn Write, bytes: &[u8]) -> io::Result<()>;
    /// Tells the client nothing was cut off (close_notify).
    fn close_notify(&self, out: &mut dyn Write);
}

#[derive(Debug)]
pub(crate) struct Transport {
    socket: TcpStream,
    /// `wss://`: the TLS session every byte to and from this client passes through.
    tls: Option<Box<dyn Encryption>>,
    /// The client has sent at least one byte (the registry pushes out those that have
    /// not first: registry.rs).
    spoke: AtomicBool,
    /// The write floor: how long writes to this client may still wait ([`Pace`]).
    pace: Pace,
}

impl Transport {
    pub(crate) fn new(socket: TcpStream) -> Transport {
        Transport {
            socket,
            tls: None,
            spoke: AtomicBool::new(false),
            pace: Pace::default(),
        }
    }

    /// Serve this connection over TLS (`wss://`, HTTPS).
    // Only the `tls` layer calls it: unused without it.
    #[allow(dead_code)]
    pub(crate) fn with_tls(mut self, tls: Box<dyn Encryption>) -> Transport {
        self.tls = Some(tls);
        self
    }

    /// The TCP socket: its read timeout, `shutdown`, and the plain-text answers written
    /// around TLS.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Sets the write timeout: the write floor's ([`Pace`]), and the socket's own
    /// `SO_SNDTIMEO` for the few plain-text bytes written to it directly.
    pub(crate) fn set_write_timeout(&self, timeout: Duration) {
        self.pace.set_timeout(timeout);
        let _ = self.socket.set_write_timeout(Some(timeout));
    }

    /// The socket as a writer under the write floor, for one new write: a client that
    /// took everything sent before owes nothing from then.
    pub(crate) fn paced(&self) -> Paced<'_> {
        self.pace.start(&self.socket);
        Paced::new(&self.socket, &self.pace)
    }

    /// Reads what the client sent, decrypted if the connection uses TLS. Blocks at most
    /// the socket's read timeout.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.decrypt(buf, None)
            .unwrap_or_else(|| retry(|| (&self.socket).read(buf)))
    }

    /// Like [`read`](Self::read), for the request head: a TLS read may need many socket
    /// reads (handshake, a record in pieces), and none of them may pass `deadline`. (A
    /// plain read is one socket read; the caller has set its timeout.)
    pub(crate) fn read_head(&self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let read = self
            .decrypt(buf, Some(deadline))
            .unwrap_or_else(|| (&self.socket).read(buf));
        if matches!(read, Ok(n) if n > 0) {
            self.spoke.store(true, Ordering::Relaxed);
        }
        read
    }

    /// A TLS read (`None` without TLS), which may write too (handshake messages, alerts):
    /// under the floor.
    fn decrypt(&self, buf: &mut [u8], deadline: Option<Instant>) -> Option<io::Result<usize>> {
        let tls = self.tls.as_ref()?;
        let mut out = Paced::new(&self.socket, &self.pace);
        Some(tls.read(&self.socket, &mut out, buf, deadline))
    }

    /// Whether the client has sent nothing yet: no byte read from the socket (a TLS
    /// handshake's included, though it yields no plaintext yet), none waiting in it.
    pub(crate) fn is_silent(&self) -> bool {
        if self.spoke.load(Ordering::Relaxed) {
            return false;
        }
        if self.tls.as_ref().is_some_and(|tls| tls.heard()) {
            self.spoke.store(true, Ordering::Relaxed);
            return false;
        }
        !crate::guard::tcp::has_input(&self.socket)
    }

    /// Writes all of `bytes`, encrypted if the connection uses TLS, under the write floor
    /// ([`Pace`]): a client that takes too little makes it fail with a timeout.
    pub(crate) fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.write_all_until(bytes, None)
    }

    /// Like [`write_all`](Self::write_all), but no write waits past `until`, if given
    /// (`--stdin` in echo mode: pipes.rs `deliver` says why).
    pub(crate) fn write_all_until(&self, bytes: &[u8], until: Option<Instant>) -> io::Result<()> {
        let mut out = self.paced();
        out.until = until;
        match &self.tls {
            Some(tls) => tls.write_all(&mut out, bytes),
            None => out.write_all(bytes),
        }
    }

    /// Whether the connection uses TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Before closing a TLS connection: tell the client no data was cut off (RFC 8446
    /// §6.1: close_notify before closing the write side; a strict client reports a
    /// truncation attack otherwise). Sending it twice is harmless (rustls sends it once).
    /// Bounded: a client that stopped reading holds it up at most a second (or the
    /// shorter write timeout). Nothing to do without TLS.
    pub(crate) fn close_notify(&self) {
        if let Some(tls) = &self.tls {
            let cap = Duration::from_secs(1);
            let pace = Pace::default();
            pace.set_timeout(self.pace.timeout().map_or(cap, |t| t.min(cap)));
            tls.close_notify(&mut Paced::new(&self.socket, &pace));
        }
    }
}

/// Runs a blocking socket call again when a signal interrupted it. A socket with a
/// timeout (`SO_RCVTIMEO`, `SO_SNDTIMEO`: every client socket here) is never restarted
/// by the kernel after an interruption (signal(7)), whatever `SA_RESTART` says, and
/// attaching `strace -p` or a debugger interrupts every blocked call: without this, that
/// dropped every open connection ("Interrupted system call"). std retries `accept` and
/// `write_all` itself, but not a single `read` or `write`. Each retry waits the socket's
/// whole timeout again, so signals arriving faster than the timeout (nothing in tinyws
/// sends any) would postpone a keepalive ping until they stop.
pub(crate) fn retry<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            done => return done,
        }
    }
}

// Signals and pthread_kill: Unix only.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    /// A signal (or `strace -p`) interrupting a blocked read must not end the connection.
    /// The socket has a read timeout, so the kernel returns EINTR instead of restarting.
    #[test]
    #[allow(unsafe_code)]
    fn a_signal_during_a_blocked_read_is_not_an_error() {
        use std::os::unix::thread::JoinHandleExt;
        use std::sync::atomic::AtomicUsize;
        use std::time::Duration;

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (socket, _) = listener.accept().expect("accept");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let transport = Arc::new(Transport::new(socket));
        // A handler that does nothing: the signal only interrupts the read.
        let caught = Arc::new(AtomicBool::new(false));
        let registered = signal_hook::flag::register(signal_hook::consts::SIGUSR2, caught.clone())
            .expect("register SIGUSR2");
        let entered = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (transport, entered) = (transport.clone(), entered.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16];
                entered.store(1, Ordering::SeqCst);
                transport.read(&mut buf).map(|n| buf[..n].to_vec())
            })
        };
        while entered.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // Several signals some time apart, so at least one lands while it waits in recv.
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(40));
            // SAFETY: the thread has not been joined, so its pthread_t is valid; SIGUSR2
            // has a handler (registered above), so the signal cannot end the process.
            let rc = unsafe { libc::pthread_kill(reader.as_pthread_t(), libc::SIGUSR2) };
            assert_eq!(rc, 0, "pthread_kill");
        }
        peer.write_all(b"still here").expect("write");
        let got = reader.join().expect("the reader thread");
        signal_hook::low_level::unregister(registered);
        assert!(caught.load(Ordering::SeqCst), "the signal was delivered");
        assert_eq!(got.expect("read failed").as_slice(), b"still here");
    }
}
