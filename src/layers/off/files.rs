//! Stand-in for files.rs in a build without the `static` layer: the same names, never
//! reached (`bind` refuses `static_dir` in such a build: layers/mod.rs).

use std::io::{self, Write};
use std::path::Path;

/// Never made: no `static_dir` in this build.
#[derive(Debug)]
pub(crate) enum Files {}

/// As files.rs's; never made in this build.
#[allow(dead_code)]
#[derive(Debug)]
pub(crate) enum Answer {
    /// As files.rs's.
    Reply {
        status: u16,
        head: Vec<u8>,
        body: Option<Body>,
    },
    /// As files.rs's.
    Fallback,
}

/// Never made.
#[derive(Debug)]
pub(crate) enum Body {}

impl Body {
    pub(crate) fn send(self, _out: &mut impl Write) -> io::Result<u64> {
        match self {}
    }
}

impl Files {
    pub(crate) fn new(_dir: &Path) -> io::Result<Files> {
        Err(io::Error::other(
            "this tinyws was built without static files",
        ))
    }

    pub(crate) fn root(&self) -> &Path {
        match *self {}
    }

    pub(crate) fn answer(&self, _method: &str, _path: &str, _since: Option<&str>) -> Answer {
        match *self {}
    }
}
