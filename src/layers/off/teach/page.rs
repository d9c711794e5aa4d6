//! Stand-in for page.rs in a build without the `teach` layer: `GET /` gets one line that
//! says where the WebSocket endpoint is, instead of the teaching page.

use crate::client::response::Response;
use crate::config::Config;

pub(crate) fn page(config: &Config, _head: &[u8]) -> Response {
    let path = config.path.as_deref().unwrap_or("any path");
    Response::new(
        200,
        format!("tinyws: a WebSocket server; connect with a WebSocket client (ws://) to {path}."),
    )
}
