//! # A chat room with nicknames and commands
//!
//! What it shows: broadcast mode (`Config::broadcast`). Whatever the handler returns goes
//! to every client in the room, the sender included, in one order for everyone. The
//! handler only decides *what* to say; tinyws queues it for each member. A sender faster
//! than the room is slowed to what the members read (nobody who reads is dropped), and a
//! member that reads nothing while the room waits for it is closed with 1008. Answers
//! meant for one person (`/who`, `/help`, "that nickname is taken") go to the asker only,
//! with `Client::send`; joins and leaves are announced through `client.server()`, the
//! server's handle. Ctrl-C closes every client with 1001 ("going away").
//!
//! Run it:     cargo run --example chat            (or: cargo run --example chat -- 9000)
//! Then open:  http://localhost:8080/ in two or three browser tabs, press Connect in each
//! Or type:    python3 -m websockets ws://localhost:8080/
//! Type:       /nick alice        to pick a name; any other line is said to the room
//!             /who               who is here (only you see the answer)
//!             /help              the commands (only you see it)
//! Look for:   every tab sees "* guest-2 joined", then each line as "alice: hello", in the
//!             same order everywhere; closing a tab makes the others see "* alice left";
//!             /who, /help and a mistyped /command are answered in your tab only;
//!             Ctrl-C in the terminal closes every tab with 1001.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tinyws::{Client, Config, Handler, Message, Server};

const HELP: &str = "commands: /nick NAME (pick a name), /who (who is here), /help (this); \
                    any other line is said to the room";

/// The room's one piece of state: who is called what.
#[derive(Default)]
struct Chat {
    nicks: Mutex<HashMap<u64, String>>,
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

    /// A command: the answer, if any, goes to the room (`Some`) or to the asker only.
    fn command(&self, client: &Client, line: &str) -> Option<Message> {
        let old = self.nick(client);
        let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
        let to_asker = |text: String| {
            client.send(Message::text(text));
            None
        };
        match cmd {
            "/nick" => {
                let new: String = arg.trim().chars().take(20).collect();
                if new.is_empty() {
                    return to_asker("usage: /nick NAME".into());
                }
                let mut nicks = self.nicks();
                if nicks.iter().any(|(&id, n)| *n == new && id != client.id()) {
                    return to_asker(format!("the nickname {new} is taken"));
                }
                nicks.insert(client.id(), new.clone());
                Some(Message::text(format!("* {old} is now {new}")))
            }
            "/who" => {
                let mut names: Vec<String> = self.nicks().values().cloned().collect();
                names.sort();
                to_asker(format!("here: {}", names.join(", ")))
            }
            "/help" => to_asker(HELP.into()),
            _ => to_asker(format!("unknown command {cmd}; {HELP}")),
        }
    }
}

impl Handler for Chat {
    fn on_open(&self, client: &Client) {
        let nick = format!("guest-{}", client.id());
        self.nicks().insert(client.id(), nick.clone());
        // Not a reply to anyone's message: the server's handle says it to the room.
        client
            .server()
            .broadcast(Message::text(format!("* {nick} joined")));
    }

    fn on_message(&self, client: &Client, message: Message) -> Option<Message> {
        let text = message.into_text().ok()?; // binary messages are ignored
        if text.starts_with('/') {
            return self.command(client, &text);
        }
        // The returned message goes to the whole room (broadcast mode).
        Some(Message::text(format!("{}: {text}", self.nick(client))))
    }

    fn on_close(&self, client: &Client) {
        let nick = self.nicks().remove(&client.id());
        if let Some(nick) = nick {
            client
                .server()
                .broadcast(Message::text(format!("* {nick} left")));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::args().nth(1).unwrap_or("8080".into()).parse()?;
    let config = Config::default().port(port).broadcast(true);
    let server = Server::bind(config, Chat::default())?;
    // Ctrl-C: close 1001 to every member; a second Ctrl-C exits at once.
    server.handle().shutdown_on_signals()?;
    println!("chat room on ws://{}/", server.local_addr());
    let stopped = server.run();
    println!("{stopped}");
    Ok(())
}
