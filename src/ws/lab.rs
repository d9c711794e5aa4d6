//! The frame lab's wire (layers/teach/framelab.rs): a connection's own tungstenite
//! `WebSocket<Stream>`, reading the lab's bytes from memory instead of the socket. The
//! same type as a connection's, so the lab runs the very code a connection does, and
//! tungstenite's reader is compiled once for both.
//!
//! The stream is one whose handshake never ends: it serves the bytes as its "head",
//! then says "nothing more yet", and what tungstenite writes waits in the client's
//! outbox, as a `101` does, until [`Wire::written`] takes it back. Nothing reaches the
//! socket, and the stream needs no branch of the lab's.

use std::sync::Arc;

use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::client::head::Head;
use crate::client::outbox::Client;
use crate::layers::teach::wire::Wire;
use crate::ws::stream::Stream;

/// A server-role `WebSocket` over `bytes` (`wire::Open`): nothing is read from
/// `client` or written to it.
pub(crate) fn open(client: Arc<Client>, bytes: Vec<u8>, limits: WebSocketConfig) -> Box<dyn Wire> {
    let head = Head {
        len: bytes.len(),
        buf: bytes,
    };
    let stream = Stream::new(client, head, 0, 0, None);
    Box::new(WebSocket::from_raw_socket(
        stream,
        Role::Server,
        Some(limits),
    ))
}

impl Wire for WebSocket<Stream> {
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
