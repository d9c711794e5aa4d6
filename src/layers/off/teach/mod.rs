//! Stand-in for the teaching layer (layers/teach/) in a build without the `teach`
//! feature: the same names, never reached.

pub(crate) mod answer;
pub(crate) mod inspect;
pub(crate) mod page;
pub(crate) mod trace;

// The seam of the HTTP checks with their narration: the layer's own file, the same in
// every build.
#[path = "../../teach/step.rs"]
pub(crate) mod step;

// The frame lab's seam with ws/lab.rs: the layer's own file, the same in every build.
#[path = "../../teach/wire.rs"]
pub(crate) mod wire;
