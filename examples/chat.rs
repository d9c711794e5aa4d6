//! # A chat room with nicknames
//!
//! What it shows: broadcast mode (`Config::broadcast`). Whatever the handler returns goes
//! to every client in the room, the sender included, in one order for everyone. The
//! handler only decides *what* to say; tinyws queues it for each member. A sender faster
//! than the room is slowed to what the members read (nobody who reads is dropped), and a
//! member that reads nothing while the room waits for it is closed with 1008.
//!
//! Run it:     cargo run --example chat            (or: cargo run --example chat -- 9000)
//! Then open:  http://localhost:8080/ in two or three browser tabs, press Connect in each
//! Or type:    python3 -m websockets ws://localhost:8080/
//! Type:       /nick alice        to pick a name; any other line is said to the room
//! Look for:   every tab sees "* guest-2 joined", then each line as "alice: hello", in the
//!             same order everywhere; closing a tab makes the others see "* alice left".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tinyws::{Client, Config, Handler, Message, Server, ServerHandle};

/// The room's one piece of state: who is called what.
struct Chat {
    nicks: Mutex<HashMap<u64, String>>,
    /// To announce joins and leaves, which are not replies to anyone's message.
    room: Arc<OnceLock<ServerHandle>>,
}

impl Chat {
    /// Handlers run on connection threads, which must never panic on a poisoned lock:
    /// the map stays usable even if some other call panicked while holding it.
    fn nicks(&self) -> MutexGuard<'_, HashMap<u64, String>> {
        self.nicks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn nick(&self, client: &Client) -> String {
        self.nicks().get(&client.id()).cloned().unwrap_or_default()
    }

    fn announce(&self, text: String) {
        if let Some(room) = self.room.get() {
            room.broadcast(Message::text(text));
        }
    }
}

impl Handler for Chat {
    fn on_open(&self, client: &Client) {
        let nick = format!("guest-{}", client.id());
        self.nicks().insert(client.id(), nick.clone());
        self.announce(format!("* {nick} joined"));
    }

    fn on_message(&self, client: &Client, message: Message) -> Option<Message> {
        let text = message.into_text().ok()?; // binary messages are ignored
        let old = self.nick(client);
        if let Some(new) = text.strip_prefix("/nick ") {
            let new: String = new.trim().chars().take(20).collect();
            if new.is_empty() {
                return None;
            }
            self.nicks().insert(client.id(), new.clone());
            return Some(Message::text(format!("* {old} is now {new}")));
        }
        // The returned message goes to the whole room (broadcast mode).
        Some(Message::text(format!("{old}: {text}")))
    }

    fn on_close(&self, client: &Client) {
        let nick = self.nicks().remove(&client.id());
        if let Some(nick) = nick {
            self.announce(format!("* {nick} left"));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::args().nth(1).unwrap_or("8080".into()).parse()?;
    let room = Arc::new(OnceLock::new());
    let chat = Chat {
        nicks: Mutex::new(HashMap::new()),
        room: room.clone(),
    };
    let config = Config::default().port(port).broadcast(true);
    let server = Server::bind(config, chat)?;
    let _ = room.set(server.handle());
    println!("chat room on ws://{}/", server.local_addr());
    server.run();
    Ok(())
}
