//! Stand-in for pipes.rs in a build without the `pipes` layer: the same names, never
//! reached (`bind` refuses `stdin` and `stdout` in such a build: layers/mod.rs).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tungstenite::Message;

use crate::client::handle::ServerHandle;
use crate::client::outbox::Client;
use crate::client::registry::Registry;
use crate::config::Config;

/// No stdin reader thread in this build.
pub(crate) const READER_STACK: usize = 0;

pub(crate) fn record(_client: &Client, _message: &Message) {}

pub(crate) fn finish_stdout(_limit: Duration) {}

pub(crate) fn read_stdin(
    _server: &ServerHandle,
    _registry: &Arc<Mutex<Registry>>,
    _config: &Config,
) {
}
