//! The frame lab's wire (layers/teach/wire.rs says how it works): a connection's own
//! `Stream`, reading the lab's bytes from memory instead of the socket. The same type as
//! a connection's, so the lab runs the very code a connection does, and tungstenite's
//! reader is compiled once for both.

use std::sync::Arc;

use tungstenite::protocol::WebSocketConfig;

use crate::client::head::Head;
use crate::client::outbox::Client;
use crate::layers::teach::wire::{self, Memory, Wire};
use crate::ws::stream::Stream;

/// A wire over `bytes` (`wire::Open`): nothing is read from `client` or written to it.
pub(crate) fn open(client: Arc<Client>, bytes: Vec<u8>, limits: WebSocketConfig) -> Box<dyn Wire> {
    let head = Head {
        len: bytes.len(),
        buf: bytes,
    };
    wire::over(Stream::new(client, head, 0, 0, None), limits)
}

impl Memory for Stream {
    fn client(&self) -> &Client {
        Stream::client(self)
    }
}
