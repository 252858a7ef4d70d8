//! One request as the router sees it: the bytes it arrived in and its argument spans.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::resp::{ReqArgs, encode};

/// One request as the router sees it.
pub struct Request<'a> {
    /// The bytes the request arrived in.
    pub frame: &'a Bytes,
    pub args: ReqArgs<'a>,
    /// Arrived as an inline command: must be re-encoded before forwarding.
    pub inline: bool,
}

impl Request<'_> {
    /// The request in multibulk form, as sent to a backend.
    pub fn wire(&self) -> Bytes {
        if !self.inline {
            return self.frame.clone();
        }
        let args: Vec<&[u8]> = self.args.iter().collect();
        let mut out = BytesMut::new();
        encode::command(&mut out, &args);
        out.freeze()
    }
}

/// Lowercases a command name into `buf`; None when it is too long to be a known command.
pub fn lower_name<'b>(name: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let dst = buf.get_mut(..name.len())?;
    for (d, s) in dst.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(dst).ok()
}

/// Spans of a request, for tests and tools that build requests by hand.
pub fn spans_of(args: &[&[u8]]) -> (Bytes, Vec<Range<usize>>) {
    let mut out = BytesMut::new();
    encode::command(&mut out, args);
    let frame = out.freeze();
    let mut spans = Vec::new();
    let _ = crate::resp::parse_request(&frame, &crate::resp::Limits::default(), &mut spans);
    (frame, spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_names() {
        let mut buf = [0u8; 32];
        assert_eq!(lower_name(b"GeT", &mut buf), Some("get"));
        assert_eq!(lower_name(&[b'a'; 40], &mut buf), None);
    }
}
