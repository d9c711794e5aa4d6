//! What the server does with messages: the [`Handler`] trait and the [`Echo`] handler.

use tungstenite::Message;

use crate::outbox::Client;

/// Decides what happens to each message. The server calls it from the connection's own
/// thread, so a handler may block briefly, but every client is served by its own call:
/// one slow call delays only its own client.
///
/// A thread serves one client at a time, but after its client leaves it may serve the
/// next one (threads wait 2 s for more work instead of exiting). So keep per-client state
/// keyed by [`Client::id`], not in a `thread_local!`, and do not take
/// `thread::current().id()` for a client's identity.
///
/// Only data messages (text and binary, reassembled from fragments) reach
/// [`on_message`](Handler::on_message); pings, pongs and the close handshake are handled
/// by the server.
///
/// Any `Fn(&Client, Message) -> Option<Message>` closure is a handler:
///
/// ```no_run
/// let server = tinyws::Server::bind(tinyws::Config::default(), |_: &tinyws::Client, msg| {
///     Some(msg) // echo
/// })?;
/// server.run();
/// # Ok::<(), tinyws::Error>(())
/// ```
pub trait Handler: Send + Sync + 'static {
    /// A client completed the WebSocket handshake.
    fn on_open(&self, _client: &Client) {}

    /// A message arrived; the returned message, if any, is sent back to the same client,
    /// or in broadcast mode ([`Config::broadcast`](crate::Config::broadcast)) to every
    /// client in the room, this one included.
    fn on_message(&self, client: &Client, message: Message) -> Option<Message>;

    /// The client is gone (closed, failed or timed out); nothing more can be sent to it.
    fn on_close(&self, _client: &Client) {}
}

impl<F> Handler for F
where
    F: Fn(&Client, Message) -> Option<Message> + Send + Sync + 'static,
{
    fn on_message(&self, client: &Client, message: Message) -> Option<Message> {
        self(client, message)
    }
}

/// Sends every message back to its sender, unchanged: text stays text, binary stays binary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    fn on_message(&self, _client: &Client, message: Message) -> Option<Message> {
        Some(message)
    }
}
