//! Stand-in for pipes.rs in a build without the `pipes` layer: the same names, never
//! reached (`bind` refuses `stdin` and `stdout` in such a build: layers.rs).

use std::sync::Arc;
use std::time::Duration;

use tungstenite::Message;

use crate::outbox::Client;
use crate::shared::Shared;

/// No stdin reader thread in this build.
pub(crate) const READER_STACK: usize = 0;

pub(crate) fn record(_shared: &Shared, _client: &Client, _message: &Message) {}

pub(crate) fn finish_stdout(_limit: Duration) {}

pub(crate) fn read_stdin(_shared: &Arc<Shared>) {}
