//! The seam between the frame lab (framelab.rs) and the WebSocket core: the lab reads
//! through a connection's own `WebSocket<Stream>`, over a stream that ws/lab.rs makes,
//! and which this layer may not name: it asks only for a [`Memory`]. Compiled in every
//! build (the stand-in mounts this same file), since ws/lab.rs makes a wire whether or
//! not the layer is there to ask for one.
//!
//! The stream is one whose handshake never ends: it serves the bytes as its "head",
//! then says "nothing more yet", and what tungstenite writes waits in the client's
//! outbox, as a `101` does, until [`Wire::written`] takes it back. Nothing reaches the
//! socket, and the stream needs no branch of the lab's.

use std::io::{Read, Write};
use std::sync::Arc;

use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::client::outbox::Client;

/// A server-role tungstenite `WebSocket` of the type a connection reads with, over
/// bytes in memory: they are read, then "nothing more yet" (`WouldBlock`, as a
/// non-blocking socket says), and what it writes is kept. The same type, so the same
/// compiled code: a stream type of the lab's own was a second copy of tungstenite's
/// reader in the binary.
// Without the layer, ws/lab.rs still makes wires but nothing reads from one.
#[cfg_attr(not(feature = "teach"), allow(dead_code))]
pub(crate) trait Wire {
    fn read(&mut self) -> tungstenite::Result<Message>;
    fn write(&mut self, message: Message) -> tungstenite::Result<()>;
    fn flush(&mut self) -> tungstenite::Result<()>;
    /// Everything written so far, taken.
    fn written(&mut self) -> Vec<u8>;
}

/// Makes a [`Wire`] over `bytes` with these limits; `client` is the request's: nothing
/// is read from it, and what the wire writes waits in its outbox until
/// [`Wire::written`] takes it back (ws/lab.rs).
pub(crate) type Open = fn(client: Arc<Client>, bytes: Vec<u8>, WebSocketConfig) -> Box<dyn Wire>;

/// What a wire's stream offers besides reading and writing: the client whose outbox
/// keeps what is written (ws/lab.rs: a connection's `Stream`).
pub(crate) trait Memory: Read + Write {
    fn client(&self) -> &Client;
}

/// A server-role `WebSocket` over `stream`, with `limits`.
pub(crate) fn over<S: Memory + 'static>(stream: S, limits: WebSocketConfig) -> Box<dyn Wire> {
    Box::new(WebSocket::from_raw_socket(
        stream,
        Role::Server,
        Some(limits),
    ))
}

impl<S: Memory> Wire for WebSocket<S> {
    fn read(&mut self) -> tungstenite::Result<Message> {
        WebSocket::read(self)
    }

    fn write(&mut self, message: Message) -> tungstenite::Result<()> {
        WebSocket::write(self, message)
    }

    fn flush(&mut self) -> tungstenite::Result<()> {
        WebSocket::flush(self)
    }

    fn written(&mut self) -> Vec<u8> {
        // The client is the lab's request's: nothing else queues for it before its
        // answer, which is written straight to the socket (client/response.rs).
        std::mem::take(&mut self.get_ref().client().outbox().pending)
    }
}
