//! Interop with a client that shares no code with tungstenite: Python `websockets`.
//! `.ci/run` installs it; locally the test is skipped, loudly, when it is missing,
//! and fails when `CI` is set.

mod common;

use common::*;

#[test]
fn python_websockets_client_echoes_pings_and_closes_cleanly() {
    let server = start(config());
    let Some(stdout) = python_client(
        "tests/interop_client.py",
        &format!("ws://{}/interop", server.addr),
    ) else {
        return;
    };
    assert_eq!(stdout, "interop ok\n");
}
