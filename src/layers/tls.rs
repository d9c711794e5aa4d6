//! Optional TLS (cargo feature `tls`): `wss://` and HTTPS on the same port, with rustls.
//!
//! A connection's thread blocks in `read()` while other threads (shutdown, broadcast)
//! write to the same client, and a TLS session is one state machine for both directions.
//! So the session sits behind a mutex that is never held across a blocking socket read:
//! ciphertext is read from the socket first, then fed to the session under the lock.
//! Writes encrypt and send under the lock, to a writer the caller gives (the socket under
//! the write floor: guard/floor.rs `Paced`), which bounds how long.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

pub(crate) use rustls::ServerConfig;
use rustls::ServerConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use log::info;

use crate::client::outbox::Client;
use crate::client::response::{DRAIN_FOR, DRAIN_MAX, Response, shut_and_drain};
use crate::client::transport::{Encryption, Transport};
use crate::error::Error;
use crate::util::tag::Tag;

/// The first byte of a TLS handshake record (RFC 8446 §5.1, content type 22).
const HANDSHAKE_RECORD: u8 = 0x16;

/// Reads the PEM certificate chain and private key into a rustls configuration.
/// Errors are one line naming the file and what is wrong with it.
pub(crate) fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, Error> {
    let bad = |path: &Path, what: &str| {
        Error::InvalidConfig(format!("`tls_cert`/`tls_key`: {}: {what}", path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &pem_problem(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, &pem_problem(e)))?;
    if certs.is_empty() {
        return Err(bad(
            cert,
            "no CERTIFICATE block found; expected a PEM certificate chain",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &pem_problem(e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidConfig(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::InvalidConfig(format!(
                "`tls_cert` and `tls_key` do not fit together ({e}); the key must be the certificate's"
            ))
        })?;
    Ok(Arc::new(config))
}

fn pem_problem(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(e) => format!("cannot read it ({e})"),
        E::NoItemsFound => {
            "no PEM block of the expected kind found (a PRIVATE KEY for `tls_key`)".into()
        }
        other => format!("not valid PEM ({other:?})"),
    }
}

/// Returned by [`Tls::read`] when the first bytes are not a TLS handshake: usually a
/// plain `http://` or `ws://` request sent to the TLS port.
#[derive(Debug)]
pub(crate) struct NotTls;

impl std::fmt::Display for NotTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client spoke plain text to the TLS port")
    }
}

impl std::error::Error for NotTls {}

/// A failure to read the request head (http/serve.rs `read_head`) that is TLS's own,
/// answered and logged here: plain text on the TLS port, or a failed handshake. `false`
/// for any other, which the caller logs.
pub(crate) fn read_failed(tag: Tag<'_>, client: &Client, e: &io::Error) -> bool {
    let peer = client.peer_addr();
    if e.get_ref().is_some_and(|inner| inner.is::<NotTls>()) {
        info!("{tag} {peer}: plain text on the TLS port; answered 400");
        answer_plain_text(client.socket());
    } else if client.transport().is_tls() && e.kind() == io::ErrorKind::InvalidData {
        // Worth an operator's eye: often a client that does not trust the
        // certificate (it sends an alert and gives up).
        info!("{tag} {peer}: TLS handshake failed: {e}");
    } else {
        return false;
    }
    true
}

/// Someone typed http:// or ws:// for a wss:// server: say so in plain text, the only
/// language that client understands, then the usual half-close and drain.
fn answer_plain_text(mut socket: &TcpStream) {
    let answer = Response::new(
        400,
        "This port speaks TLS: use https:// or wss:// instead of http:// or ws://.",
    );
    let _ = socket.write_all(&answer.to_bytes());
    shut_and_drain(socket, DRAIN_FOR, DRAIN_MAX);
}

/// One client's TLS session.
#[derive(Debug)]
pub(crate) struct Tls {
    conn: Mutex<Session>,
    /// A byte of the client's has been read from the socket (a handshake under way is
    /// not silence: server/admission.rs `admit` pushes out silent connections first). Not under
    /// the session's lock, which the accept loop must never wait for.
    heard: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Session {
    conn: ServerConnection,
    /// Some bytes arrived already: only the very first ones are checked for plain text.
    started: bool,
    /// Ciphertext read from the socket that rustls has not taken yet (it takes at most
    /// one record's worth beyond what it holds, and nothing after close_notify).
    unread: Vec<u8>,
}

impl Session {
    /// Hands `unread` to rustls until it is all taken, plaintext is ready to be read, or
    /// rustls takes nothing more (after close_notify whatever follows is dropped, as TLS
    /// requires); sends what rustls has to say to `out`. Returns whether anything was
    /// taken.
    fn feed(&mut self, out: &mut impl Write) -> io::Result<bool> {
        let mut progress = false;
        while !self.unread.is_empty() {
            let used = self.conn.read_tls(&mut &self.unread[..])?;
            if used == 0 {
                break;
            }
            progress = true;
            self.unread.drain(..used);
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // Tell the client why (a TLS alert), then give up on the connection.
                    let _ = self.conn.write_tls(out);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            if state.peer_has_closed() {
                self.unread = Vec::new();
            }
            if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
                break;
            }
        }
        if self.unread.is_empty() && self.unread.capacity() > 0 {
            self.unread = Vec::new();
        }
        send_pending(&mut self.conn, out)?;
        Ok(progress)
    }
}

/// The transport of a new connection from `peer`: the socket, in a TLS session of its
/// own when the server speaks TLS (`config`); `None`, said at warn, if the session
/// cannot start.
pub(crate) fn transport(
    config: Option<&Arc<ServerConfig>>,
    socket: TcpStream,
    peer: SocketAddr,
) -> Option<Transport> {
    let transport = Transport::new(socket);
    let Some(config) = config else {
        return Some(transport);
    };
    match Tls::new(config) {
        Ok(tls) => Some(transport.with_tls(Box::new(tls))),
        Err(e) => {
            log::warn!("{peer}: cannot start a TLS session ({e}); closed");
            None
        }
    }
}

impl Tls {
    fn new(config: &Arc<ServerConfig>) -> io::Result<Tls> {
        let conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        Ok(Tls {
            conn: Mutex::new(Session {
                conn,
                started: false,
                unread: Vec::new(),
            }),
            heard: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        crate::util::lock::lock(&self.conn)
    }

    /// Reads decrypted bytes from `socket`, driving the TLS handshake as needed (what it
    /// sends goes to `out`). Blocks in the socket read without holding the session lock.
    /// With a `deadline` (the request head's), no socket read goes past it, so a client
    /// dripping a handshake or a record one byte at a time is still cut off in time
    /// (`TimedOut`).
    fn read_into(
        &self,
        socket: &TcpStream,
        out: &mut impl Write,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        loop {
            {
                let mut session = self.lock();
                match session.conn.reader().read(buf) {
                    Ok(n) => return Ok(n), // 0: the client sent close_notify
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if !session.unread.is_empty() {
                    // Ciphertext rustls could not take yet: feed it before reading more.
                    // No progress and no plaintext would mean a loop without end.
                    if !session.feed(out)? {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the TLS session takes no more data",
                        ));
                    }
                    continue;
                }
            }
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                socket.set_read_timeout(Some(left))?;
            }
            let mut raw = [0u8; 4096];
            let n = match (&*socket).read(&mut raw) {
                // A signal (see transport::retry): read again, after checking the deadline.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                n => n?,
            };
            if n == 0 {
                return Ok(0);
            }
            self.heard.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut session = self.lock();
            if !std::mem::replace(&mut session.started, true) && raw[0] != HANDSHAKE_RECORD {
                // Only the connection's first byte is checked; later records (in TLS 1.3
                // even the client's Finished travels as application data) are rustls's.
                return Err(io::Error::new(io::ErrorKind::InvalidData, NotTls));
            }
            session.unread.extend_from_slice(&raw[..n]);
            session.feed(out)?;
        }
    }

    /// Encrypts `bytes` and sends the records to `out`, which bounds how long (the write
    /// floor). At most 16 KiB is encrypted at a time (one record), so rustls holds little
    /// and each record is sent before the next is made.
    fn write_all_to(&self, out: &mut impl Write, mut bytes: &[u8]) -> io::Result<()> {
        let conn = &mut self.lock().conn;
        while !bytes.is_empty() {
            let piece = &bytes[..bytes.len().min(crate::guard::floor::WRITE_CHUNK)];
            let n = conn.writer().write(piece)?;
            bytes = &bytes[n..];
            if n == 0 && !conn.wants_write() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            send_pending(conn, out)?;
        }
        Ok(())
    }
}

/// The transport's seam (transport.rs): what it asks of a TLS session.
impl Encryption for Tls {
    fn heard(&self) -> bool {
        self.heard.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn read(
        &self,
        socket: &TcpStream,
        mut out: &mut dyn Write,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        self.read_into(socket, &mut out, buf, deadline)
    }

    fn write_all(&self, mut out: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
        self.write_all_to(&mut out, bytes)
    }

    /// Sends close_notify (RFC 8446 §6.1) so the client knows no data was cut off.
    fn close_notify(&self, mut out: &mut dyn Write) {
        let conn = &mut self.lock().conn;
        conn.send_close_notify();
        let _ = send_pending(conn, &mut out);
    }
}

fn send_pending(conn: &mut ServerConnection, out: &mut impl Write) -> io::Result<()> {
    while conn.wants_write() {
        crate::client::transport::retry(|| conn.write_tls(out))?;
    }
    Ok(())
}
