//! The teaching layer (the `teach` feature): the built-in page (page.rs, with its
//! page.html, page.zh.html, page.js and page.css), `--trace` (trace.rs, and narrate.rs,
//! which narrates the HTTP checks; step.rs is its seam with them), the live inspector
//! with its projector view (inspect.rs, inspect/poll.rs), the frame lab (framelab.rs,
//! framelab.js, and wire.rs, its seam with ws/), and answer.rs, which answers the
//! layer's own paths (the inspector's, the frame lab's) for http/serve.rs.

pub(crate) mod answer;
pub(crate) mod framelab;
pub(crate) mod inspect;
pub(crate) mod narrate;
pub(crate) mod page;
pub(crate) mod step;
pub(crate) mod trace;
pub(crate) mod wire;
