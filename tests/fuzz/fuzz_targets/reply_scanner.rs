//! Fuzzes the reply scanner and the value decoder: a stream of replies scanned in random pieces
//! must split like the one-shot scan, the decoder must agree with the scanner on every reply it
//! accepts, a decoded value must encode back to a decodable reply, and nothing may panic.
#![no_main]

mod rng;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use meridian::resp::reply::{ReplyScanner, aggregate_elements, scan_reply};
use meridian::resp::value::decode;
use rng::Rng;

fuzz_target!(|data: &[u8]| {
    let [a, input @ ..] = data else {
        return;
    };
    let max_depth = usize::from(*a % 24);
    let mut rng = Rng(u64::from(*a) << 32 | 0x9e37_79b9);
    let mut scanner = ReplyScanner::new(max_depth);
    let mut at = 0;
    while at < input.len() {
        let buf = &input[at..];
        let one = scan_reply(buf, max_depth);
        let mut avail = 0;
        let two = loop {
            avail = (avail + rng.below(9)).min(buf.len());
            let r = scanner.scan(&buf[..avail]);
            if r != Ok(None) || avail == buf.len() {
                break r;
            }
        };
        assert_eq!(one, two, "scan differs at offset {at}");
        let decoded = decode(buf, max_depth);
        if let Ok(Some((value, n))) = &decoded {
            assert_eq!(one, Ok(Some(*n)), "decode and scan disagree at offset {at}");
            for proto in [2, 3] {
                let mut out = BytesMut::new();
                value.encode(&mut out, proto);
                let again = decode(&out, max_depth);
                assert!(
                    matches!(again, Ok(Some((_, m))) if m == out.len()),
                    "re-encoded value does not decode: {again:?}"
                );
            }
        }
        match one {
            Ok(Some(len)) => {
                assert!(len > 0 && len <= buf.len());
                if let Ok(Some(ranges)) = aggregate_elements(&buf[..len], max_depth) {
                    for r in ranges {
                        assert_eq!(scan_reply(&buf[r.clone()], max_depth), Ok(Some(r.len())));
                    }
                }
                at += len;
            }
            _ => break,
        }
    }
});
