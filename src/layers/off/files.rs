//! Stand-in for files.rs in a build without the `static` layer: the same names, never
//! reached (`bind` refuses `static_dir` in such a build: layers/mod.rs).

use std::io;
use std::path::Path;

use crate::client::response::{Plain, Response};

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

/// As files.rs's; made, never served, in this build.
#[allow(dead_code)]
#[derive(Debug)]
pub(crate) struct FileRequest {
    pub(crate) head_only: bool,
    pub(crate) path: String,
    pub(crate) not_found: Option<Response>,
}

impl FileRequest {
    pub(crate) fn new(
        _headers: &[httparse::Header<'_>],
        head_only: bool,
        path: &str,
        not_found: Option<Response>,
    ) -> FileRequest {
        FileRequest {
            head_only,
            path: path.to_string(),
            not_found,
        }
    }
}

pub(crate) fn serve(_files: Option<&Files>, _req: &Plain<'_>, _request: &FileRequest) -> bool {
    false
}
