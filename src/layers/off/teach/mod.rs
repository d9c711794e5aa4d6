//! Stand-in for the teaching layer (layers/teach/) in a build without the `teach`
//! feature: the same names, never reached.

pub(crate) mod answer;
pub(crate) mod framelab;
pub(crate) mod inspect;
pub(crate) mod page;
pub(crate) mod trace;
