//! Stand-in for framelab.rs in a build without the `teach` layer: no frame lab; its path
//! is like any other.

use crate::client::response::Response;
use crate::config::Config;

/// As framelab.rs's.
pub(crate) const PATH: &str = "/.framelab";

/// Never made: no lab in this build.
pub(crate) enum Lab {}

/// No request is the lab's in this build.
pub(crate) fn route(_head: &[u8]) -> Option<Lab> {
    None
}

pub(crate) fn answer(lab: &Lab, _config: &Config) -> (Response, String) {
    match *lab {}
}
