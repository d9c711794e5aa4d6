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
/// # What a handler receives and returns
///
/// [`Message`] is tungstenite's type (re-exported as [`tinyws::Message`](crate::Message),
/// with [`Utf8Bytes`](crate::Utf8Bytes), [`Bytes`](crate::Bytes) and
/// [`CloseFrame`](crate::CloseFrame) to build one). Its page lists six variants; in tinyws:
///
/// - **Received**: only [`Message::Text`] (valid UTF-8, checked) and [`Message::Binary`],
///   each one whole message, reassembled from its fragments and at most
///   [`Config::max_message_size`](crate::Config#structfield.max_message_size) bytes. Pings,
///   pongs and the close handshake are answered by the server (RFC 6455 §5.5) and never
///   reach [`on_message`](Handler::on_message); neither does `Message::Frame`, which
///   tungstenite only produces for writing.
/// - **Returned `None`**: nothing is sent.
/// - **Returned `Text` or `Binary`**: sent as one unfragmented frame to the sender (echo
///   mode) or to every member of the room, the sender included
///   ([`Config::broadcast`](crate::Config#structfield.broadcast)).
/// - **Returned `Ping`, `Pong`, `Close` or `Frame`**: not meant for handlers, and what
///   happens differs by mode. In broadcast mode they are dropped without a word (control
///   frames belong to one connection, RFC 6455 §5.5; the same for
///   [`ServerHandle::broadcast`](crate::ServerHandle::broadcast)). In echo mode they are
///   passed to tungstenite as they are: a `Ping` or `Pong` is written to the sender as
///   that control frame (its payload unchecked against §5.5's 125 bytes); a `Close`
///   starts the close handshake with that code and reason, unchecked (a code like 1005
///   that §7.4.1 forbids on the wire goes out too), and the connection ends when the
///   client answers; a `Frame` is written raw, so a wrong one breaks the connection.
///   Return `Text` or `Binary`; to end a connection, let the client close it.
///
/// # A closure is a handler
///
/// Any `Fn(&Client, Message) -> Option<Message>` closure is a handler, but it needs its
/// parameter types written out, `|_: &Client, msg: Message|`: [`Server::bind`](crate::Server::bind)
/// takes any `impl Handler`, not an `Fn(..)` bound, so Rust has no signature to give the
/// closure, and a closure takes a reference of any lifetime (as `&Client` must be: each
/// call lends its own) only when its parameter is written as a reference type. Without
/// `&Client` the error is "implementation of `Fn` is not general enough". `msg: Message`
/// could be inferred; it is written for the reader.
///
/// ```no_run
/// use tinyws::{Client, Config, Message, Server};
///
/// let server = Server::bind(Config::default(), |_: &Client, msg: Message| {
///     Some(msg) // echo
/// })?;
/// server.run();
/// # Ok::<(), tinyws::Error>(())
/// ```
pub trait Handler: Send + Sync + 'static {
    /// A client completed the WebSocket handshake.
    fn on_open(&self, _client: &Client) {}

    /// A message arrived; the returned message, if any, is sent back to the same client,
    /// or in broadcast mode ([`Config::broadcast`](crate::Config#structfield.broadcast)) to every
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
