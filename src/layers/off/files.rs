//! Stand-in for files.rs in a build without the `static` layer: the same names, never
//! reached (`bind` refuses `static_dir` in such a build: layers/mod.rs).

use std::io;
use std::path::Path;

/// Never made: no `static_dir` in this build.
#[derive(Debug)]
pub(crate) enum Files {}

impl Files {
    pub(crate) fn new(_dir: &Path) -> io::Result<Files> {
        Err(io::Error::other(
            "this tinyws was built without static files",
        ))
    }

    pub(crate) fn root(&self) -> &Path {
        match *self {}
    }
}

/// As files.rs's; never made in this build.
#[allow(dead_code)]
pub(crate) struct FileRequest<'a> {
    pub(crate) head_only: bool,
    pub(crate) path: &'a str,
    pub(crate) if_modified_since: Option<&'a str>,
    pub(crate) not_found: Option<crate::client::response::Response>,
}

pub(crate) fn serve(
    files: &Files,
    _req: &crate::client::response::Plain<'_>,
    _request: FileRequest<'_>,
) -> bool {
    match *files {}
}
