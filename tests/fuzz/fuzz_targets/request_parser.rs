//! Fuzzes the request parser: a pipeline parsed request by request must give the same outcomes
//! and spans whether each request arrives at once or in random pieces, and nothing may panic.
#![no_main]

mod rng;

use std::ops::Range;

use libfuzzer_sys::fuzz_target;
use meridian::resp::ProtocolError;
use meridian::resp::request::{Limits, ParseOutcome, RequestParser, parse_request};
use rng::Rng;

type Outcome = (Result<ParseOutcome, ProtocolError>, Vec<Range<usize>>);

/// Feeds `buf` in random pieces to one parser until it decides.
fn resumed(parser: &mut RequestParser, buf: &[u8], limits: &Limits, rng: &mut Rng) -> Outcome {
    let mut spans = Vec::new();
    let mut avail = 0;
    loop {
        avail = (avail + rng.below(9)).min(buf.len());
        let r = parser.parse(&buf[..avail], limits, &mut spans);
        if r != Ok(ParseOutcome::Incomplete) || avail == buf.len() {
            return (r, spans);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, input @ ..] = data else {
        return;
    };
    // Small limits so that every limit error is reachable.
    let limits = Limits {
        max_bulk: usize::from(*a) * 4,
        max_args: usize::from(*b % 64),
        max_inline: usize::from(*c),
        max_depth: 16,
    };
    let mut rng = Rng(u64::from_le_bytes([*a, *b, *c, 1, 2, 3, 4, 5]) | 1);
    let mut parser = RequestParser::new();
    let mut at = 0;
    // Each round consumes at least one byte, so the loop is bounded by the input length.
    while at < input.len() {
        let buf = &input[at..];
        let mut spans = Vec::new();
        let one = parse_request(buf, &limits, &mut spans);
        let (two, spans_two) = resumed(&mut parser, buf, &limits, &mut rng);
        assert_eq!(one, two, "outcome differs at offset {at}");
        match one {
            Ok(ParseOutcome::Complete { len, .. }) => {
                assert_eq!(spans, spans_two, "spans differ at offset {at}");
                assert!(len > 0 && len <= buf.len());
                assert!(spans.len() <= limits.max_args.max(len));
                assert!(spans.iter().all(|r| r.start <= r.end && r.end <= len));
                at += len;
            }
            _ => break,
        }
    }
});
