//! Stand-in for trace.rs in a build without the `teach` layer: the same names, never
//! narrating (`bind` refuses `trace` and its kin in such a build: layers/mod.rs).

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::outbox::Client;
use crate::config::Config;
use crate::layers::teach::inspect::Recorder;
use crate::layers::teach::step::Step;

/// No connection is traced in this build.
pub(crate) fn follows(_config: &Config, _id: u64, _peer: SocketAddr) -> bool {
    false
}

pub(crate) fn emit(_id: u64, _block: &str) {}

/// Never made (`new` gives `None`): there is nowhere to narrate to.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    _none: (),
}

impl Sink {
    pub(crate) fn new(_id: u64, _stdout: bool, _record: Option<Recorder>) -> Option<Sink> {
        None
    }
}

/// As trace.rs's: nobody observes a connection in this build.
pub(crate) struct Observers;

impl Observers {
    pub(crate) fn new(_sink: Option<Sink>, _record: Option<Recorder>) -> Observers {
        Observers
    }

    pub(crate) fn attach(&self, _client: &Client, _config: &Config) -> Option<Frames> {
        None
    }

    pub(crate) fn upgraded(&self) {}

    pub(crate) fn not_opened(&self) {}

    pub(crate) fn ended(&self, _end: &dyn std::fmt::Display) {}
}

pub(crate) fn drain(_limit: Duration) -> bool {
    true
}

// Only layers/files.rs calls it: a build without that layer leaves it unused.
#[allow(dead_code)]
pub(crate) fn http_lines(_mark: &str, _title: &str, _bytes: &[u8]) -> String {
    String::new()
}

/// No step is written in this build (no connection is traced).
impl std::fmt::Display for Step<'_> {
    fn fmt(&self, _f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

pub(crate) fn request(_sink: &Sink, _head: &[u8], _config: &Config, _steps: &str) {}

/// Never made, like [`Sink`].
#[derive(Debug)]
pub(crate) enum Frames {}

impl Frames {
    pub(crate) fn feed(&mut self, _bytes: &[u8]) {
        match *self {}
    }
}
