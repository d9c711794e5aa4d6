//! Stand-in for framelab.rs in a build without the `teach` layer: the frame lab's
//! wire, which ws/lab.rs makes, and which nothing asks for.

use std::sync::Arc;

use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;

use crate::client::outbox::Client;

// Made by ws/lab.rs in every build; never read from without the layer.
#[allow(dead_code)]
pub(crate) trait Wire {
    fn read(&mut self) -> tungstenite::Result<Message>;
    fn write(&mut self, message: Message) -> tungstenite::Result<()>;
    fn flush(&mut self) -> tungstenite::Result<()>;
    fn written(&mut self) -> Vec<u8>;
}

pub(crate) type Open = fn(client: Arc<Client>, bytes: Vec<u8>, WebSocketConfig) -> Box<dyn Wire>;
