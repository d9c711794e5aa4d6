//! The seam between the frame lab (framelab.rs) and the WebSocket core: the lab reads
//! through a connection's own `WebSocket<Stream>`, which ws/lab.rs makes, and which this
//! layer may not name. Compiled in every build (the stand-in mounts this same file), since
//! ws/lab.rs makes a wire whether or not the layer is there to ask for one.

use std::sync::Arc;

use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;

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
