//! Frame edges in a byte stream that arrives in pieces, for tune/reads.rs (and the
//! trace, which prints the frames it finds). To the core this is nothing: it only
//! watches bytes go by, using the frame codec's [`parse`].

use crate::frame::{Header, parse};

/// The longest frame header (RFC 6455 §5.2): 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

/// What [`Scanner::next`] found in the bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// A whole header.
    Header(Header),
    /// Payload bytes of the frame whose header came last; `end`: its last ones. A frame
    /// with an empty payload gets one `Payload` with no bytes and `end`.
    Payload { bytes: &'a [u8], end: bool },
}

/// Follows frames through a byte stream that arrives in pieces (a header split across
/// reads, several frames in one read), keeping at most one header. What it reports is
/// up to the caller: the trace prints frames, the stream finds message edges.
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    head: [u8; MAX_HEADER],
    have: usize,
    /// Payload bytes of the current frame still to come, once its header is complete.
    left: Option<u64>,
}

impl Scanner {
    /// The next piece from the front of `bytes`, which it advances; `None` once `bytes`
    /// is used up (a header still incomplete is kept for the next call).
    pub(crate) fn next<'a>(&mut self, bytes: &mut &'a [u8]) -> Option<Piece<'a>> {
        loop {
            if let Some(left) = self.left {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                if n == 0 && left > 0 {
                    return None;
                }
                let (taken, rest) = bytes.split_at(n);
                *bytes = rest;
                let left = left - n as u64;
                self.left = (left > 0).then_some(left);
                return Some(Piece::Payload {
                    bytes: taken,
                    end: left == 0,
                });
            }
            let (&b, rest) = bytes.split_first()?;
            *bytes = rest;
            self.head[self.have] = b;
            self.have += 1;
            if let Some(h) = parse(&self.head[..self.have]) {
                self.have = 0;
                self.left = Some(h.len);
                return Some(Piece::Header(h));
            }
        }
    }

    /// The bytes of the header `next` reported last, as they were on the wire (valid
    /// until the next header starts).
    // Only the `teach` layer uses it: a build without that layer leaves it unused.
    #[allow(dead_code)]
    pub(crate) fn header_bytes(&self, h: &Header) -> &[u8] {
        &self.head[..h.size]
    }

    /// Whether the bytes so far end exactly at a frame's end.
    pub(crate) fn between_frames(&self) -> bool {
        self.have == 0 && self.left.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BINARY, encode};

    /// The scanner reports the same pieces whatever the split of the bytes.
    #[test]
    fn the_scanner_is_indifferent_to_how_bytes_are_split() {
        let mut bytes = vec![
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        bytes.extend_from_slice(&[0x8a, 0x00]); // an empty pong
        bytes.extend_from_slice(&encode(BINARY, &[9; 300]));
        let collect = |chunks: &[&[u8]]| {
            let mut s = Scanner::default();
            let (mut headers, mut payload, mut ends) = (Vec::new(), Vec::new(), 0);
            for chunk in chunks {
                let mut rest = *chunk;
                while let Some(p) = s.next(&mut rest) {
                    match p {
                        Piece::Header(h) => headers.push(h),
                        Piece::Payload { bytes, end } => {
                            payload.extend_from_slice(bytes);
                            ends += usize::from(end);
                        }
                    }
                }
            }
            assert!(s.between_frames());
            (headers, payload, ends)
        };
        let whole = collect(&[&bytes]);
        assert_eq!(whole.0.len(), 3);
        assert_eq!(whole.2, 3, "one end per frame, the empty one included");
        assert_eq!(whole.1.len(), 5 + 300);
        for split in 0..bytes.len() {
            assert_eq!(
                collect(&[&bytes[..split], &bytes[split..]]),
                whole,
                "split at {split}"
            );
        }
        let ones: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(collect(&ones), whole, "one byte at a time");
    }
}
