//! The frame codec: everything in tinyws that reads or writes a WebSocket frame header
//! (RFC 6455 §5.2) goes through here: the stream's frame edges (tune/), the trace, the
//! close path and the room.
//!
//! tungstenite parses and builds the frames of each connection's own `WebSocket`. tinyws
//! needs frames in three more places: the room encodes a broadcast once for every member
//! ([`encode`]), the close paths write close frames outside tungstenite ([`close`],
//! [`contains_close`]), and the trace and tune/scan.rs decode what goes by ([`parse`]).
//! Encoding uses tungstenite's own [`FrameHeader`]. Decoding does not use its
//! `FrameHeader::parse`, because that refuses reserved opcodes, which the trace must
//! still show (tungstenite fails the connection on them itself).
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use std::sync::Arc;

use tungstenite::Message;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::OpCode;

/// Opcodes (§5.2); data frames are below 0x8, control frames from it on (§5.5).
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
// Only the `teach` layer names these: a build without that layer leaves them unused.
#[allow(dead_code)]
pub(crate) const PING: u8 = 0x9;
#[allow(dead_code)]
pub(crate) const PONG: u8 = 0xa;

/// A frame header as it was on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) fin: bool,
    /// RSV1..3 as three bits (extensions only; none is negotiated here).
    pub(crate) rsv: u8,
    pub(crate) opcode: u8,
    /// The masking key: every frame from a client has one, none from a server (§5.3).
    pub(crate) mask: Option<[u8; 4]>,
    /// The payload length.
    pub(crate) len: u64,
    /// The header's own length in bytes (2 to 14).
    pub(crate) size: usize,
}

/// The full header length, known from its second byte.
pub(crate) fn header_size(second: u8) -> usize {
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// The header at the start of `bytes`, or `None` if it is not all there yet.
pub(crate) fn parse(bytes: &[u8]) -> Option<Header> {
    let (&b0, &b1) = (bytes.first()?, bytes.get(1)?);
    let size = header_size(b1);
    if bytes.len() < size {
        return None;
    }
    let (len, at) = match b1 & 0x7f {
        126 => (u64::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&bytes[2..10]);
            (u64::from_be_bytes(n), 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = (b1 & 0x80 != 0).then(|| [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Some(Header {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: b0 & 0x0f,
        mask,
        len,
        size,
    })
}

/// The opcode and payload of a text or binary message, the only ones tinyws sends
/// outside tungstenite: control frames belong to one connection (RFC 6455 §5.5).
pub(crate) fn data(message: &Message) -> Option<(u8, &[u8])> {
    match message {
        Message::Text(t) => Some((TEXT, t.as_bytes())),
        Message::Binary(b) => Some((BINARY, b)),
        _ => None,
    }
}

/// One unmasked, unfragmented server frame (§5.2; servers never mask, §5.1), built once
/// and shared by every member of the room. `opcode` is [`TEXT`], [`BINARY`] or a
/// control opcode.
pub(crate) fn encode(opcode: u8, payload: &[u8]) -> Arc<[u8]> {
    let header = FrameHeader {
        opcode: OpCode::from(opcode),
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut frame = Vec::with_capacity(header.len(len) + payload.len());
    // Writing to a Vec cannot fail.
    let _ = header.format(len, &mut frame);
    frame.extend_from_slice(payload);
    frame.into()
}

/// A close frame as a server sends it (§5.5.1): the code in network byte order, then
/// the UTF-8 reason, cut at a character boundary to fit the 125-byte limit of control
/// frames (§5.5).
pub(crate) fn close(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Vec::with_capacity(2 + cut);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    encode(CLOSE, &payload).to_vec()
}

/// Whether a run of whole frames contains a close frame.
pub(crate) fn contains_close(mut bytes: &[u8]) -> bool {
    while let Some(h) = parse(bytes) {
        if h.opcode == CLOSE {
            return true;
        }
        let skip = (h.size as u64).saturating_add(h.len);
        if skip >= bytes.len() as u64 {
            return false;
        }
        bytes = &bytes[skip as usize..];
    }
    false
}

/// The close code and reason a connection is failed with for a read error that is the
/// client's doing (the frame lab, layers/teach/framelab.rs, answers the same). RFC 6455
/// §7.4.1: which code tells the client what it did wrong.
pub(crate) fn failure(e: &tungstenite::Error) -> (u16, String) {
    match e {
        tungstenite::Error::Protocol(p) => (1002, p.to_string()),
        // tungstenite's error does not say which of the two it was.
        tungstenite::Error::Utf8(_) => (
            1007,
            "invalid UTF-8 in a text message or close reason".into(),
        ),
        tungstenite::Error::Capacity(c) => (1009, c.to_string()),
        other => (1011, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The examples of RFC 6455 §5.7, byte for byte.
    #[test]
    fn encodes_the_rfc_6455_section_5_7_examples() {
        assert_eq!(
            &encode(TEXT, b"Hello")[..],
            [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        assert_eq!(
            &encode(PING, b"Hello")[..],
            [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        let f = encode(BINARY, &[7; 256]);
        assert_eq!(&f[..4], [0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(f.len(), 4 + 256);
        let f = encode(BINARY, &[7; 65536]);
        assert_eq!(
            &f[..10],
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(f.len(), 10 + 65536);
        assert!(f[10..].iter().all(|&b| b == 7));
        // The boundaries of the 7- and 16-bit lengths.
        assert_eq!(&encode(BINARY, &[0; 125])[..2], [0x82, 125]);
        assert_eq!(&encode(BINARY, &[0; 126])[..4], [0x82, 126, 0, 126]);
        assert_eq!(&encode(BINARY, &[0; 65535])[..4], [0x82, 126, 0xff, 0xff]);
        assert_eq!(&encode(TEXT, b"")[..], [0x81, 0]);
    }

    #[test]
    fn parses_the_masked_rfc_example() {
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = parse(&hello).expect("complete");
        assert_eq!(
            h,
            Header {
                fin: true,
                rsv: 0,
                opcode: TEXT,
                mask: Some([0x37, 0xfa, 0x21, 0x3d]),
                len: 5,
                size: 6,
            }
        );
        assert_eq!(parse(&hello[..5]), None, "the mask key is incomplete");
        let big = parse(&[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]).expect("64-bit");
        assert_eq!((big.len, big.size), (65536, 14));
        assert_eq!(header_size(0xfe), 8);
        assert_eq!(header_size(0x7e), 4);
    }

    #[test]
    fn close_frame_layout() {
        assert_eq!(close(1001, "bye"), [0x88, 5, 0x03, 0xe9, b'b', b'y', b'e']);
        let long = "é".repeat(100); // 200 bytes: cut to 122, a char boundary
        let f = close(1000, &long);
        assert_eq!(f[1] as usize, f.len() - 2);
        assert!(f.len() - 2 <= 125);
        assert!(std::str::from_utf8(&f[4..]).is_ok());
    }

    #[test]
    fn finds_close_frames_among_others() {
        let mut run = [0x81, 2, b'h', b'i'].to_vec();
        assert!(!contains_close(&run));
        run.extend_from_slice(&close(1000, ""));
        assert!(contains_close(&run));
        let mut big = vec![0x82, 126, 0x01, 0x00];
        big.extend(std::iter::repeat_n(0x88, 256)); // payload bytes that look like close
        assert!(!contains_close(&big));
        big.extend_from_slice(&close(1001, "x"));
        assert!(contains_close(&big));
    }

    proptest! {
        #[test]
        fn close_frames_are_valid_control_frames(code in any::<u16>(), reason in ".{0,80}") {
            let f = close(code, &reason);
            // §5.5: control payloads are at most 125 bytes; §5.5.1: code first, then UTF-8.
            prop_assert_eq!(f[0], 0x88);
            prop_assert_eq!(f[1] as usize, f.len() - 2);
            prop_assert!(f.len() - 2 <= 125);
            prop_assert_eq!(u16::from_be_bytes([f[2], f[3]]), code);
            let text = std::str::from_utf8(&f[4..]);
            prop_assert!(text.is_ok_and(|t| reason.starts_with(t)));
            prop_assert!(contains_close(&f));
        }

        #[test]
        fn close_is_found_only_where_a_close_frame_starts(
            frames in proptest::collection::vec(
                (prop_oneof![Just(0x0u8), Just(0x1), Just(0x2), Just(0x9), Just(0xA)],
                 prop_oneof![0usize..126, 126usize..70_000]),
                0..6),
            with_close in any::<bool>(),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut run = Vec::new();
            for (op, len) in frames {
                run.push(0x80 | op);
                match len {
                    n if n < 126 => run.push(n as u8),
                    n if n < 65536 => { run.push(126); run.extend_from_slice(&(n as u16).to_be_bytes()); }
                    n => { run.push(127); run.extend_from_slice(&(n as u64).to_be_bytes()); }
                }
                // payload bytes that look like close frames must be skipped, not parsed
                run.extend(std::iter::repeat_n(0x88, len));
            }
            if with_close {
                run.extend_from_slice(&close(1000, ""));
            }
            prop_assert_eq!(contains_close(&run), with_close);
            // arbitrary bytes: any answer, but no panic and no read past the end
            contains_close(&junk);
        }
    }
}
