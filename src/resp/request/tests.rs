//! Unit tests of the request parser.

use super::*;

type Spans = Vec<Range<usize>>;

fn one_shot(buf: &[u8], limits: &Limits) -> (Result<ParseOutcome, ProtocolError>, Spans) {
    let mut spans = Vec::new();
    let r = parse_request(buf, limits, &mut spans);
    (r, spans)
}

/// Feeds growing prefixes of `buf` split at `cuts` to one parser; stops at the first
/// outcome that is not Incomplete.
fn resumed(
    buf: &[u8],
    limits: &Limits,
    cuts: impl Iterator<Item = usize>,
) -> (Result<ParseOutcome, ProtocolError>, Spans) {
    let mut parser = RequestParser::new();
    let mut spans = Vec::new();
    for cut in cuts.chain(std::iter::once(buf.len())) {
        let r = parser.parse(&buf[..cut.min(buf.len())], limits, &mut spans);
        if r != Ok(ParseOutcome::Incomplete) {
            return (r, spans);
        }
    }
    (Ok(ParseOutcome::Incomplete), spans)
}

fn args(buf: &[u8]) -> Vec<Vec<u8>> {
    let (r, spans) = one_shot(buf, &Limits::default());
    assert!(matches!(r, Ok(ParseOutcome::Complete { .. })), "{r:?}");
    ReqArgs::new(buf, &spans)
        .iter()
        .map(<[u8]>::to_vec)
        .collect()
}

fn err(buf: &[u8], limits: &Limits) -> ProtocolError {
    one_shot(buf, limits).0.unwrap_err()
}

fn v(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.as_bytes().to_vec()).collect()
}

const SAMPLES: &[&[u8]] = &[
    b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n",
    b"*0\r\n",
    b"*-1\r\n",
    b"*1\r\n$4\r\nPING\r\nextra",
    b"*x\r\n",
    b"*01\r\n",
    b"*2\r\n:1\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$3\r\nfooXY",
    b"*1\r\n$3\r\nfoo\rX",
    b"*1\r\n$123456789012345678901",
    b"*1\r",
    b"*1\rx",
    b"PING\r\n",
    b"set k 'a b' \"c d\"\n",
    b"GET \"a\\nb\"\r\n",
    b"GET \"ab\r\n",
    b"\r\n",
    b"\n",
    b"x\x00y z\r\n",
];

#[test]
fn get_request_spans() {
    let buf = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n*1";
    let (r, spans) = one_shot(buf, &Limits::default());
    let len = buf.len() - 2;
    assert_eq!(r, Ok(ParseOutcome::Complete { len, inline: false }));
    assert_eq!(spans, vec![8..11, 17..20]);
    let args = ReqArgs::new(buf, &spans);
    assert_eq!((args.len(), args.is_empty()), (2, false));
    assert_eq!(args.get(0), Some(&b"GET"[..]));
    assert_eq!(args.get(1), Some(&b"foo"[..]));
    assert_eq!(args.get(2), None);
}

#[test]
fn binary_and_empty_arguments() {
    assert_eq!(
        args(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n\r\n\0\xff\r\n"),
        vec![b"SET".to_vec(), vec![], b"\r\n\0\xff".to_vec()]
    );
}

#[test]
fn empty_multibulk_is_complete_without_spans() {
    for buf in [&b"*0\r\n"[..], b"*-1\r\n", b"*-100\r\n"] {
        let (r, spans) = one_shot(buf, &Limits::default());
        let len = buf.len();
        assert_eq!(r, Ok(ParseOutcome::Complete { len, inline: false }));
        assert!(spans.is_empty());
    }
}

#[test]
fn multibulk_errors() {
    let d = Limits::default();
    use ProtocolError::*;
    for buf in [
        &b"*x\r\n"[..],
        b"*\r\n",
        b"*01\r\n",
        b"*-0\r\n",
        b"*+1\r\n",
        b"*1 \r\n",
    ] {
        assert_eq!(err(buf, &d), InvalidMultibulkLength, "{buf:?}");
    }
    assert_eq!(err(b"*2147483648\r\n", &d), InvalidMultibulkLength);
    assert_eq!(err(b"*1\rx", &d), InvalidMultibulkLength);
    assert_eq!(err(b"*123456789012345678901", &d), InvalidMultibulkLength);
    assert_eq!(err(b"*1048577\r\n", &d), TooManyArgs(1_048_576));
    let few = Limits { max_args: 2, ..d };
    assert_eq!(err(b"*3\r\n", &few), TooManyArgs(2));
    assert_eq!(err(b"*2\r\n:1\r\n", &d), ExpectedBulk(':'));
    assert_eq!(err(b"*2\r\n$1\r\na\r\n*", &d), ExpectedBulk('*'));
    for buf in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$x\r\n",
        b"*1\r\n$01\r\n",
        b"*1\r\n$\r\n",
    ] {
        assert_eq!(err(buf, &d), InvalidBulkLength, "{buf:?}");
    }
    let small = Limits { max_bulk: 3, ..d };
    assert_eq!(err(b"*1\r\n$4\r\n", &small), BulkTooLarge(4, 3));
    assert!(one_shot(b"*1\r\n$3\r\nabc\r\n", &small).0.is_ok());
    assert_eq!(err(b"*1\r\n$3\r\nabcde", &d), MissingCrlf);
    assert_eq!(err(b"*1\r\n$3\r\nabc\n\r", &d), MissingCrlf);
    assert_eq!(
        err(b"*1\r\n$99999999999999999999\r\n", &d),
        InvalidBulkLength
    );
}

#[test]
fn incomplete_until_the_last_byte() {
    let buf = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
    for cut in 0..buf.len() {
        assert_eq!(
            one_shot(&buf[..cut], &Limits::default()).0,
            Ok(ParseOutcome::Incomplete)
        );
    }
}

#[test]
fn inline_requests() {
    assert_eq!(args(b"PING\r\n"), v(&["PING"]));
    assert_eq!(args(b"GET foo\n"), v(&["GET", "foo"]));
    assert_eq!(args(b" \t set  a\t b \r\n"), v(&["set", "a", "b"]));
    assert_eq!(
        args(b"SET \"a b\" 'c d' \"\"\r\n"),
        v(&["SET", "a b", "c d", ""])
    );
    assert_eq!(args(b"a\rb\n"), v(&["a", "b"]));
    assert_eq!(args(b"a\x0bb \x0cc\n"), v(&["a\x0bb", "c"]));
    assert_eq!(args(b"a\"\" b\n"), v(&["a", "b"]));
    assert_eq!(args(b"'it\"s' \"x'y\"\n"), v(&["it\"s", "x'y"]));
    // The C string ends at NUL, so Redis ignores the rest of the line.
    assert_eq!(args(b"GET a\0b c\n"), v(&["GET", "a"]));
    let (r, spans) = one_shot(b"GET k\r\nPING\r\n", &Limits::default());
    assert_eq!(
        r,
        Ok(ParseOutcome::Complete {
            len: 7,
            inline: true
        })
    );
    assert_eq!(spans, vec![0..3, 4..5]);
}

#[test]
fn empty_inline_lines() {
    for buf in [&b"\r\n"[..], b"\n", b"   \t\r\n"] {
        let (r, spans) = one_shot(buf, &Limits::default());
        let len = buf.len();
        assert_eq!(r, Ok(ParseOutcome::Complete { len, inline: true }));
        assert!(spans.is_empty());
    }
}

#[test]
fn inline_quote_errors() {
    let d = Limits::default();
    use ProtocolError::*;
    for buf in [
        &b"GET \"ab\n"[..],
        b"GET 'ab\n",
        b"GET \"a\"b\n",
        b"GET 'a'b\n",
        b"\"a\\\"\n",
    ] {
        assert_eq!(err(buf, &d), UnbalancedQuotes, "{buf:?}");
    }
    assert_eq!(err(b"GET \"a\0\"\n", &d), UnbalancedQuotes);
    for buf in [
        &b"GET \"a\\nb\"\n"[..],
        b"GET \"\\x41\"\n",
        b"GET 'a\\'b'\n",
        b"GET a\"b c\"\n",
    ] {
        assert_eq!(err(buf, &d), UnsupportedEscape, "{buf:?}");
    }
    // Redis refuses the whole line for the unbalanced quote, so that error wins.
    assert_eq!(err(b"SET \"\\n\" \"x\n", &d), UnbalancedQuotes);
}

#[test]
fn inline_length_limit() {
    let limits = Limits {
        max_inline: 8,
        ..Limits::default()
    };
    assert!(one_shot(b"12345678\n", &limits).0.is_ok());
    assert_eq!(
        one_shot(b"12345678", &limits).0,
        Ok(ParseOutcome::Incomplete)
    );
    assert_eq!(err(b"123456789", &limits), ProtocolError::InlineTooLarge);
    assert_eq!(err(b"123456789\n", &limits), ProtocolError::InlineTooLarge);
}

#[test]
fn byte_at_a_time_matches_one_shot() {
    let d = Limits::default();
    for buf in SAMPLES {
        assert_eq!(resumed(buf, &d, 0..buf.len()), one_shot(buf, &d), "{buf:?}");
    }
}

#[test]
fn random_splits_match_one_shot() {
    let d = Limits::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for buf in SAMPLES {
        for _ in 0..50 {
            let mut cuts: Vec<usize> = (0..4).map(|_| next(&mut rng) % (buf.len() + 1)).collect();
            cuts.sort_unstable();
            assert_eq!(resumed(buf, &d, cuts.into_iter()), one_shot(buf, &d));
        }
    }
}

fn next(state: &mut u64) -> usize {
    // xorshift64*: enough randomness for split points.
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize
}

#[test]
fn huge_request_in_16k_reads() {
    let n = 200_000;
    let mut buf = format!("*{}\r\n$4\r\nMSET\r\n", n + 1).into_bytes();
    for i in 0..n {
        let arg = format!("k{i}");
        buf.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    let d = Limits::default();
    let (r, spans) = resumed(
        &buf,
        &d,
        (1..).map(|i| i * 16 * 1024).take_while(|&c| c < buf.len()),
    );
    let len = buf.len();
    assert_eq!(r, Ok(ParseOutcome::Complete { len, inline: false }));
    assert_eq!(spans.len(), n + 1);
    assert_eq!(&buf[spans[n].clone()], format!("k{}", n - 1).as_bytes());
    let big = format!("*1\r\n${}\r\n", 1 << 20).into_bytes();
    let mut big = big;
    big.resize(big.len() + (1 << 20), b'x');
    big.extend_from_slice(b"\r\n");
    let (r, _) = resumed(
        &big,
        &d,
        (1..).map(|i| i * 1000).take_while(|&c| c < big.len()),
    );
    assert_eq!(
        r,
        Ok(ParseOutcome::Complete {
            len: big.len(),
            inline: false
        })
    );
}

#[test]
fn pipeline_with_one_parser() {
    let buf = b"*1\r\n$4\r\nPING\r\nECHO hi\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    let mut parser = RequestParser::new();
    let mut spans = Vec::new();
    let mut at = 0;
    let mut seen = Vec::new();
    while at < buf.len() {
        spans.clear();
        match parser.parse(&buf[at..], &Limits::default(), &mut spans) {
            Ok(ParseOutcome::Complete { len, inline }) => {
                let args: Vec<_> = ReqArgs::new(&buf[at..], &spans).iter().collect();
                seen.push((args.concat(), inline));
                at += len;
            }
            other => panic!("{other:?}"),
        }
    }
    let want: Vec<(Vec<u8>, bool)> = vec![
        (b"PING".to_vec(), false),
        (b"ECHOhi".to_vec(), true),
        (vec![], false),
        (b"GETk".to_vec(), false),
    ];
    assert_eq!(seen, want);
}

#[test]
fn parser_resets_after_an_error() {
    let mut parser = RequestParser::new();
    let mut spans = Vec::new();
    let d = Limits::default();
    assert!(parser.parse(b"*1\r\n:", &d, &mut spans).is_err());
    spans.clear();
    assert!(matches!(
        parser.parse(b"PING\n", &d, &mut spans),
        Ok(ParseOutcome::Complete { .. })
    ));
}
