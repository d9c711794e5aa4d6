//! Stand-in for rooms.rs in a build without the `rooms` layer: the same names, never
//! reached (`bind` refuses `rooms` in such a build: layers/mod.rs), so the one room of
//! broadcast mode is all there is.

use std::io;
use std::sync::Arc;

use crate::client::outbox::Client;
use crate::config::Config;
use crate::room::broadcast::{Place, Room};

/// No rooms per path in this build.
#[derive(Default)]
pub(crate) struct Rooms {
    _none: (),
}

impl Rooms {
    pub(crate) fn join<'a>(
        &'a self,
        _path: &str,
        _client: &Arc<Client>,
        _config: &Config,
    ) -> io::Result<Place<'a>> {
        Err(io::Error::other("this tinyws was built without rooms"))
    }

    pub(crate) fn get(&self, _path: &str) -> Option<Arc<Room>> {
        None
    }

    pub(crate) fn list(&self) -> Vec<(String, usize)> {
        Vec::new()
    }

    pub(crate) fn members(&self) -> usize {
        0
    }

    pub(crate) fn broadcast_all(&self, _message: &tungstenite::Message) -> usize {
        0
    }

    pub(crate) fn close_all(&self, _code: u16, _reason: &str) {}
}
