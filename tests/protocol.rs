//! Protocol violations from raw frames get the close code RFC 6455 §7.4.1 assigns, then
//! the server closes TCP: 1002 protocol error, 1007 invalid UTF-8, 1009 too big.

mod common;

use std::io::Write;

use common::*;

/// Sends `bytes` on a fresh upgraded connection and returns the server's close code.
fn close_code_for(server: &TestServer, bytes: &[u8]) -> u16 {
    let mut s = upgraded(server.addr);
    s.write_all(bytes).unwrap();
    expect_close(&mut s)
}

#[test]
fn framing_violations_are_1002() {
    let server = start(config());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "unmasked client frame (§5.1)",
            frame_with(0x81, b"hi", None),
        ),
        (
            "RSV1 set without an extension (§5.2)",
            frame_with(0xc1, b"hi", Some([1, 2, 3, 4])),
        ),
        ("RSV3 set", frame_with(0x91, b"hi", Some([1, 2, 3, 4]))),
        ("reserved data opcode 0x3", frame(true, 0x3, b"hi")),
        ("reserved control opcode 0xB", frame(true, 0xb, b"hi")),
        ("fragmented ping (§5.5)", frame(false, 0x9, b"hi")),
        (
            "control frame over 125 bytes (§5.5)",
            frame(true, 0x9, &[0; 126]),
        ),
        (
            "continuation with nothing to continue",
            frame(true, 0x0, b"hi"),
        ),
        ("new message inside a fragmented one", {
            let mut b = frame(false, 0x1, b"a");
            b.extend(frame(true, 0x1, b"b"));
            b
        }),
        ("close with a 1-byte payload", frame(true, 0x8, &[0x03])),
    ];
    for (what, bytes) in cases {
        assert_eq!(close_code_for(&server, &bytes), 1002, "{what}");
    }
}

#[test]
fn close_codes_that_may_not_be_sent_are_answered_with_1002() {
    let server = start(config());
    // 1005, 1006 and 1015 are for reporting only; 0–999 and 1016–2999 are not assigned;
    // 1004 is reserved, and 1014 came after tungstenite's table (docs/reference.md).
    for code in [
        0u16, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, 65535,
    ] {
        let got = close_code_for(&server, &frame(true, 0x8, &close_payload(code, "")));
        assert_eq!(got, 1002, "client close code {code}");
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 3000, 4999,
    ] {
        let got = close_code_for(&server, &frame(true, 0x8, &close_payload(code, "")));
        assert_eq!(got, code, "valid code {code} is echoed");
    }
}

#[test]
fn invalid_utf8_is_1007() {
    let server = start(config());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("lone continuation byte", frame(true, 0x1, &[b'a', 0x80])),
        ("overlong encoding", frame(true, 0x1, &[0xc0, 0xaf])),
        ("surrogate half", frame(true, 0x1, &[0xed, 0xa0, 0x80])),
        ("split across fragments, never completed", {
            let mut b = frame(false, 0x1, &[0xe4, 0xb8]);
            b.extend(frame(true, 0x0, b"x"));
            b
        }),
        ("close reason", frame(true, 0x8, &[0x03, 0xe8, 0xff, 0xfe])),
    ];
    for (what, bytes) in cases {
        assert_eq!(close_code_for(&server, &bytes), 1007, "{what}");
    }
}

/// The 1007's reason names both places invalid UTF-8 can be (RFC 6455 §5.5.1, §8.1): it
/// is sent for a close reason too, where "a text message" alone would send a student
/// looking in the wrong frame.
#[test]
fn the_1007_reason_names_the_close_reason_too() {
    let server = start(config());
    for bytes in [
        frame(true, 0x8, &[0x03, 0xe8, 0xff, 0xfe]),
        frame(true, 0x1, &[b'a', 0x80]),
    ] {
        let mut s = upgraded(server.addr);
        s.write_all(&bytes).unwrap();
        assert_eq!(
            read_frame(&mut s),
            (
                0x88,
                close_payload(1007, "invalid UTF-8 in a text message or close reason")
            )
        );
    }
}

#[test]
fn valid_utf8_split_inside_a_character_across_fragments_is_fine() {
    let server = start(config());
    let mut s = upgraded(server.addr);
    let mut b = frame(false, 0x1, &[0xe4, 0xb8]); // "中" is e4 b8 ad
    b.extend(frame(true, 0x0, &[0xad]));
    s.write_all(&b).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, "中".as_bytes().to_vec()));
}

#[test]
fn a_frame_header_announcing_2_pow_63_minus_1_bytes_is_1009_at_once() {
    let server = start(config());
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]); // mask key; no payload follows
    assert_eq!(close_code_for(&server, &header), 1009);
}

#[test]
fn frames_and_messages_over_the_caps_are_1009() {
    let server = start(config().max_message_size(1000).max_frame_size(600));
    assert_eq!(
        close_code_for(&server, &frame(true, 0x2, &[0; 601])),
        1009,
        "one big frame"
    );
    let mut b = frame(false, 0x2, &[0; 500]);
    b.extend(frame(true, 0x0, &[0; 501]));
    assert_eq!(
        close_code_for(&server, &b),
        1009,
        "fragments adding up past the message cap"
    );
    // Exactly at the caps is fine.
    let mut s = upgraded(server.addr);
    let mut b = frame(false, 0x2, &[7; 600]);
    b.extend(frame(true, 0x0, &[7; 400]));
    s.write_all(&b).unwrap();
    assert_eq!(read_frame(&mut s), (0x82, vec![7; 1000]));
}

/// Lowering only the message limit (below the 64 KiB default frame limit) binds: the frame
/// limit is clamped to it (config.rs `effective`) instead of `bind` refusing the pair, and
/// a message over it is refused with 1009 "message too big" (RFC 6455 §7.4.1).
#[test]
fn a_message_limit_alone_binds_and_a_larger_message_is_1009() {
    let server = start(config().max_message_size(4096));
    assert_eq!(
        close_code_for(&server, &frame(true, 0x2, &[0; 5000])),
        1009,
        "one 5000-byte frame"
    );
    let mut b = frame(false, 0x2, &[0; 2500]);
    b.extend(frame(true, 0x0, &[0; 2500]));
    assert_eq!(close_code_for(&server, &b), 1009, "two fragments of 2500");
    let mut s = upgraded(server.addr);
    s.write_all(&frame(true, 0x2, &[7; 4096])).unwrap();
    assert_eq!(
        read_frame(&mut s),
        (0x82, vec![7; 4096]),
        "exactly at the limit"
    );
}

#[test]
fn other_clients_are_served_while_one_misbehaves() {
    let server = start(config());
    let mut good = ws(server.addr, "/");
    for bad in [frame_with(0x81, b"x", None), frame(true, 0x1, &[0xff])] {
        close_code_for(&server, &bad);
        good.send(tinyws::Message::text("ok")).unwrap();
        assert_eq!(good.read().unwrap(), tinyws::Message::text("ok"));
    }
}

#[test]
fn broadcast_mode_sends_the_same_close_codes() {
    // In broadcast mode the close frame goes through the member's writer thread; it must
    // still reach the client before the server half-closes TCP.
    let server = start(
        config()
            .broadcast(true)
            .max_message_size(1000)
            .max_frame_size(1000),
    );
    let cases: Vec<(u16, Vec<u8>)> = vec![
        (1002, frame_with(0x81, b"hi", None)),
        (1002, frame(true, 0x8, &[0x03])),
        (1007, frame(true, 0x1, &[0xff])),
        (1009, frame(true, 0x2, &[0; 1001])),
    ];
    for (code, bytes) in cases {
        assert_eq!(close_code_for(&server, &bytes), code, "{bytes:02x?}");
    }
}
