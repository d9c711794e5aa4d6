//! Interop with a client that shares no code with tungstenite: Python `websockets`.
//! `.ci/run` installs it; locally the test is skipped, loudly, when it is missing,
//! and fails when `CI` is set.

mod common;

use std::process::Command;

use common::*;

#[test]
fn python_websockets_client_echoes_pings_and_closes_cleanly() {
    let have = runs("python3", &["-c", "import websockets.asyncio.client"]);
    if !required("python3 with `websockets` (pip install websockets)", have) {
        return;
    }
    let server = start(config());
    let out = output_within(
        Command::new("python3")
            .arg("tests/interop_client.py")
            .arg(format!("ws://{}/interop", server.addr)),
        std::time::Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout, "interop ok\n");
}
