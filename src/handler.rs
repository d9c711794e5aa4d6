//! What the server does with messages: the [`Handler`] trait and the [`Echo`] handler.

use tungstenite::Message;

use crate::client::outbox::Client;

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
///   ([`Config::broadcast`](crate::Config#structfield.broadcast)); to the sender only in
///   both modes with [`Client::send`].
/// - **Returned `Ping`, `Pong`, `Close` or `Frame`**: dropped, in both modes, and the
///   first time on a connection a warning names the variant. Control frames are the
///   server's to send (RFC 6455 §5.5: it answers pings itself, and a close code must be
///   one §7.4.1 allows on the wire, which 1005 and 1006 are not), and a raw `Frame` could
///   break the framing. [`Client::send`] drops them the same way (and returns `false`);
///   [`ServerHandle::broadcast`](crate::ServerHandle::broadcast) sends nothing (0).
///   To end a connection, let the client close it, or [shut the server
///   down](crate::ServerHandle::shutdown) (1001 to everyone).
///
/// # Replying to the sender only, and reaching the server
///
/// [`Client::send`] answers the sender only, in both modes; [`Client::server`] reaches
/// the server's [`ServerHandle`](crate::ServerHandle):
///
/// ```no_run
/// use tinyws::{Client, Config, Message, Server};
///
/// let config = Config::default().broadcast(true);
/// let server = Server::bind(config, |client: &Client, msg: Message| {
///     if msg.to_text().is_ok_and(|t| t == "/count") {
///         let n = client.server().members();
///         client.send(Message::text(format!("{n} here"))); // to the asker only
///         return None;
///     }
///     Some(msg) // to the whole room
/// })?;
/// server.run();
/// # Ok::<(), tinyws::Error>(())
/// ```
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
