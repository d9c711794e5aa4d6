//! Failing a connection while the client is still sending (RFC 6455 §7.1.7): the close
//! frame with its code must reach the client, not be lost to a TCP reset. Closing a socket
//! with unread input makes the kernel send RST; a client that is still writing then gets
//! EPIPE/ECONNRESET and, like Autobahn's Twisted client, may drop the connection without
//! ever reading the close frame. So the server half-closes and drains for a bounded time.

mod common;

use std::io::Write;

use common::*;

#[test]
fn a_client_still_sending_an_oversized_frame_is_not_reset_and_gets_the_1009() {
    let server = start(config());
    for _ in 0..3 {
        let mut s = upgraded(server.addr);
        // A 1 MiB binary frame against the 64 KiB cap: the server refuses it at the header.
        let f = frame(true, 0x2, &vec![0x55; 1 << 20]);
        let (first, rest) = f.split_at(16 * 1024);
        s.write_all(first).unwrap();
        // The server has failed the connection once its close frame is here; only then
        // send the rest, which it must drain instead of resetting.
        let (opcode, payload) = read_frame(&mut s);
        assert_eq!(opcode, 0x88, "a close frame");
        assert_eq!(payload[..2], 1009u16.to_be_bytes(), "{payload:?}");
        for chunk in rest.chunks(16 * 1024) {
            s.write_all(chunk)
                .expect("the server reset the connection while we were still sending");
        }
        assert!(
            read_to_end(&mut s).is_empty(),
            "bytes after the close frame"
        );
    }
    assert_eq!(server.wait_connections(0), 0);
}
