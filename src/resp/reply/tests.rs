//! Unit tests of the reply scanner.

use super::*;

/// Complete replies of every type, each followed by nothing.
pub(crate) const REPLIES: &[&[u8]] = &[
    b"+OK\r\n",
    b"+\r\n",
    b"-ERR wrong\r\n",
    b":-42\r\n",
    b"$3\r\nfoo\r\n",
    b"$0\r\n\r\n",
    b"$-1\r\n",
    b"$4\r\na\r\nb\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"*2\r\n$1\r\na\r\n:1\r\n",
    b"*3\r\n*1\r\n+x\r\n*0\r\n$-1\r\n",
    b"_\r\n",
    b"#t\r\n",
    b",1.5\r\n",
    b",-inf\r\n",
    b"(3492890328409238509324850943850943825024385\r\n",
    b"!21\r\nSYNTAX invalid syntax\r\n",
    b"=15\r\ntxt:Some string\r\n",
    b"%2\r\n+first\r\n:1\r\n+second\r\n*1\r\n:2\r\n",
    b"%0\r\n",
    b"~2\r\n+a\r\n+b\r\n",
    b">3\r\n+message\r\n+chan\r\n$2\r\nhi\r\n",
    b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039123\r\n:9543892\r\n",
    b"*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n",
    b"|0\r\n+OK\r\n",
    b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n",
    b"*?\r\n:1\r\n:2\r\n.\r\n",
    b"%?\r\n+a\r\n:1\r\n+b\r\n*?\r\n.\r\n.\r\n",
    b"~?\r\n.\r\n",
];

fn resumed(buf: &[u8], max_depth: usize, step: usize) -> Result<Option<usize>, ProtocolError> {
    let mut scanner = ReplyScanner::new(max_depth);
    let mut cut = 0;
    loop {
        cut = (cut + step).min(buf.len());
        let r = scanner.scan(&buf[..cut]);
        if r != Ok(None) || cut == buf.len() {
            return r;
        }
    }
}

#[test]
fn every_type_scans_to_its_end() {
    for reply in REPLIES {
        assert_eq!(scan_reply(reply, 128), Ok(Some(reply.len())), "{reply:?}");
        let mut longer = reply.to_vec();
        longer.extend_from_slice(b"+NEXT\r\n");
        assert_eq!(scan_reply(&longer, 128), Ok(Some(reply.len())));
        for cut in 0..reply.len() {
            assert_eq!(
                scan_reply(&reply[..cut], 128),
                Ok(None),
                "{reply:?} cut {cut}"
            );
        }
    }
}

#[test]
fn byte_at_a_time_matches_one_shot() {
    let bad: &[&[u8]] = &[
        b"@x\r\n",
        b"$3\r\nfooXY",
        b"+OK\n",
        b"*1\r\n.\r\n",
        b"$-2\r\n",
    ];
    for reply in REPLIES.iter().chain(bad) {
        for step in [1, 2, 3, 7] {
            assert_eq!(
                resumed(reply, 128, step),
                scan_reply(reply, 128),
                "{reply:?}"
            );
        }
    }
}

#[test]
fn errors() {
    use ProtocolError::*;
    let cases: &[(&[u8], ProtocolError)] = &[
        (b"@x\r\n", InvalidType(b'@')),
        (b".\r\n", InvalidType(b'.')),
        (b"*1\r\n.\r\n", InvalidType(b'.')),
        (b"$-2\r\n", MalformedLine("blob length")),
        (b"!-1\r\n", MalformedLine("blob length")),
        (b"=?\r\n", MalformedLine("blob length")),
        (b"$x\r\n", MalformedLine("blob length")),
        (b"$1\rx", MalformedLine("blob length")),
        (b"$123456789012345678901", MalformedLine("blob length")),
        (b"$01\r\nx\r\n", MalformedLine("blob length")),
        (b"$00\r\n\r\n", MalformedLine("blob length")),
        (b"$+1\r\nx\r\n", MalformedLine("blob length")),
        (b"$-01\r\n", MalformedLine("blob length")),
        (b"$3\r\nfooXY", MissingCrlf),
        (b"+OK\n", MalformedLine("simple")),
        (b"+\n", MalformedLine("simple")),
        (b"%-1\r\n", MalformedLine("aggregate length")),
        (b"*-0\r\n", MalformedLine("aggregate length")),
        (b"*02\r\n:1\r\n:2\r\n", MalformedLine("aggregate length")),
        (b"*+1\r\n:1\r\n", MalformedLine("aggregate length")),
        (b">?\r\n", MalformedLine("aggregate length")),
        (b"|?\r\n", MalformedLine("aggregate length")),
        (b"*?\r\n.\rx", MalformedLine("end")),
        (b"$?\r\n:1\r\n", MalformedLine("chunk")),
        (b"$?\r\n;-1\r\n", MalformedLine("chunk length")),
        (b"$?\r\n;01\r\na\r\n", MalformedLine("chunk length")),
        (b"$?\r\n;1\r\nabc", MissingCrlf),
    ];
    for (buf, want) in cases {
        assert_eq!(scan_reply(buf, 128).as_ref(), Err(want), "{buf:?}");
    }
}

fn nested(depth: usize) -> Vec<u8> {
    let mut buf = b"*1\r\n".repeat(depth);
    buf.extend_from_slice(b":1\r\n");
    buf
}

#[test]
fn depth_limit() {
    for depth in [0, 1, 7, 8, 9, 20] {
        let buf = nested(depth);
        assert_eq!(scan_reply(&buf, depth), Ok(Some(buf.len())));
        assert_eq!(resumed(&buf, depth, 1), Ok(Some(buf.len())));
        if depth > 0 {
            assert_eq!(
                scan_reply(&buf, depth - 1),
                Err(ProtocolError::TooDeep(depth - 1))
            );
        }
    }
    // Empty and null aggregates open nothing; attributes and streams count.
    assert_eq!(scan_reply(b"*0\r\n", 0), Ok(Some(4)));
    assert_eq!(scan_reply(b"*-1\r\n", 0), Ok(Some(5)));
    assert_eq!(
        scan_reply(b"|1\r\n+a\r\n+b\r\n+c\r\n", 0),
        Err(ProtocolError::TooDeep(0))
    );
    assert_eq!(
        scan_reply(b"*?\r\n.\r\n", 0),
        Err(ProtocolError::TooDeep(0))
    );
}

#[test]
fn scanner_reuse_after_deep_reply() {
    let mut scanner = ReplyScanner::new(64);
    let deep = nested(30);
    assert_eq!(scanner.scan(&deep), Ok(Some(deep.len())));
    assert_eq!(scanner.scan(b"+OK\r\n"), Ok(Some(5)));
    assert_eq!(scanner.scan(b"*1\r\n"), Ok(None));
    assert_eq!(scanner.scan(b"*1\r\n:"), Ok(None));
    assert_eq!(scanner.scan(b"*1\r\n:7\r\n"), Ok(Some(8)));
}

/// xorshift64*, seeded: reproducible random numbers without a crate.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize) % n.max(1)
    }
}

#[test]
fn random_splits_of_a_reply_stream() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for round in 0..40 {
        let mut stream = Vec::new();
        let mut lens = Vec::new();
        for _ in 0..200 {
            let r = REPLIES[rng.below(REPLIES.len())];
            stream.extend_from_slice(r);
            lens.push(r.len());
        }
        // Feed the stream in random reads, as a backend connection would see it.
        let mut scanner = ReplyScanner::new(128);
        let (mut start, mut avail, mut found) = (0, 0, Vec::new());
        while start < stream.len() {
            match scanner.scan(&stream[start..avail]).unwrap() {
                Some(len) => {
                    found.push(len);
                    start += len;
                }
                None => {
                    assert!(avail < stream.len(), "round {round}: stuck");
                    avail = (avail + 1 + rng.below(40)).min(stream.len());
                }
            }
        }
        assert_eq!(found, lens, "round {round}");
    }
}

#[test]
fn elements_of_aggregates() {
    let r = b"*3\r\n$1\r\na\r\n*1\r\n:1\r\n$-1\r\n";
    assert_eq!(
        aggregate_elements(r, 8),
        Ok(Some(vec![4..11, 11..19, 19..24]))
    );
    let r = b"~2\r\n+a\r\n+b\r\n";
    assert_eq!(aggregate_elements(r, 8), Ok(Some(vec![4..8, 8..12])));
    let r = b">2\r\n+a\r\n|1\r\n+k\r\n+v\r\n+b\r\n";
    assert_eq!(aggregate_elements(r, 8), Ok(Some(vec![4..8, 8..24])));
    let r = b"|1\r\n+k\r\n+v\r\n*?\r\n:1\r\n.\r\n";
    assert_eq!(
        aggregate_elements(r, 8),
        Ok(Some(std::iter::once(16..20).collect()))
    );
    assert_eq!(aggregate_elements(b"*0\r\n", 8), Ok(Some(vec![])));
    for other in [
        &b"*-1\r\n"[..],
        b"+OK\r\n",
        b"-ERR x\r\n",
        b"%1\r\n+a\r\n+b\r\n",
        b"$1\r\nx\r\n",
    ] {
        assert_eq!(aggregate_elements(other, 8), Ok(None), "{other:?}");
    }
    assert_eq!(
        aggregate_elements(b"*2\r\n:1\r\n", 8),
        Err(ProtocolError::Truncated)
    );
    assert_eq!(
        aggregate_elements(b"*2\r\n:1\r\n:", 8),
        Err(ProtocolError::Truncated)
    );
    assert_eq!(aggregate_elements(b"", 8), Err(ProtocolError::Truncated));
    assert_eq!(
        aggregate_elements(b"*?\r\n:1\r\n", 8),
        Err(ProtocolError::Truncated)
    );
    let deep = b"*1\r\n*1\r\n:1\r\n";
    assert_eq!(
        aggregate_elements(deep, 2),
        Ok(Some(std::iter::once(4..12).collect()))
    );
    assert_eq!(aggregate_elements(deep, 1), Err(ProtocolError::TooDeep(1)));
    assert_eq!(
        aggregate_elements(b"*1\r\n:1\r\n", 0),
        Err(ProtocolError::TooDeep(0))
    );
}

#[test]
fn error_replies() {
    assert!(is_error(b"-ERR x\r\n"));
    assert!(is_error(b"!3\r\nERR\r\n"));
    assert!(!is_error(b"+OK\r\n"));
    assert!(!is_error(b""));
}

#[test]
fn redirections() {
    assert_eq!(
        parse_redirect(b"-MOVED 3999 127.0.0.1:6381\r\n"),
        Some(Redirect::Moved {
            slot: 3999,
            addr: "127.0.0.1:6381"
        })
    );
    assert_eq!(
        parse_redirect(b"-ASK 0 :6381\r\n"),
        Some(Redirect::Ask {
            slot: 0,
            addr: ":6381"
        })
    );
    assert_eq!(
        parse_redirect(b"-MOVED 16383 node-1.example:7000"),
        Some(Redirect::Moved {
            slot: 16383,
            addr: "node-1.example:7000"
        })
    );
    for bad in [
        &b"-MOVED 16384 127.0.0.1:1\r\n"[..],
        b"-MOVED 99999 127.0.0.1:1\r\n",
        b"-MOVED -1 127.0.0.1:1\r\n",
        b"-MOVED 1\r\n",
        b"-MOVED 1 \r\n",
        b"-MOVED  1 a:1\r\n",
        b"-ERR MOVED 1 a:1\r\n",
        b"+MOVED 1 a:1\r\n",
        b"-ASKING\r\n",
    ] {
        assert_eq!(parse_redirect(bad), None, "{bad:?}");
    }
}
