//! Stand-in for inspect.rs in a build without the `teach` layer: no inspector, no
//! records; its paths are like any other (`bind` refuses `inspect` in such a build).

/// As inspect.rs's.
pub(crate) const VIEW_PATH: &str = "/inspect";

/// Keeps no records in this build.
pub(crate) struct Inspector {
    _none: (),
}

impl Inspector {
    pub(crate) fn new(_projector: bool) -> Inspector {
        Inspector { _none: () }
    }

    pub(crate) fn stop(&self) {}
}
