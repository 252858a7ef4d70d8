//! The fake node's side of RESP: splitting the multibulk requests meridian sends it.

use crate::common::raw::{line_end, number};

/// Splits one multibulk request off the front of `buf`: its arguments and its length.
/// `None` when it is incomplete (or not multibulk: the fakes only talk to meridian).
pub fn parse_request(buf: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    if buf.first() != Some(&b'*') {
        return None;
    }
    let eol = line_end(buf, 1)?;
    let n = number(buf, 1, eol).ok()?;
    let mut at = eol + 2;
    let mut args = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        if buf.get(at) != Some(&b'$') {
            return None;
        }
        let eol = line_end(buf, at + 1)?;
        let len = usize::try_from(number(buf, at + 1, eol).ok()?).ok()?;
        let start = eol + 2;
        if buf.len() < start + len + 2 {
            return None;
        }
        args.push(buf[start..start + len].to_vec());
        at = start + len + 2;
    }
    Some((args, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::raw::encode;

    #[test]
    fn requests_split() {
        let wire = encode(&["GET", "k"]);
        let (args, len) = parse_request(&wire).unwrap();
        assert_eq!(args, vec![b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(len, wire.len());
        assert!(parse_request(&wire[..wire.len() - 1]).is_none());
    }
}
