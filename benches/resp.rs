//! Criterion benches of the RESP hot path: request parsing and reply scanning.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meridian::resp::reply::ReplyScanner;
use meridian::resp::request::{Limits, ParseOutcome, RequestParser};

/// Parses every request in `buf` with one reused parser and span vector, as a session does.
fn parse_all(
    parser: &mut RequestParser,
    limits: &Limits,
    spans: &mut Vec<std::ops::Range<usize>>,
    buf: &[u8],
) -> usize {
    let mut at = 0;
    let mut args = 0;
    while at < buf.len() {
        spans.clear();
        match parser.parse(&buf[at..], limits, spans) {
            Ok(ParseOutcome::Complete { len, .. }) => {
                at += len;
                args += spans.len();
            }
            _ => break,
        }
    }
    args
}

fn requests(c: &mut Criterion) {
    let limits = Limits::default();
    let get = b"*2\r\n$3\r\nGET\r\n$8\r\nuser:123\r\n".to_vec();
    let mut set = b"*3\r\n$3\r\nSET\r\n$8\r\nuser:123\r\n$64\r\n".to_vec();
    set.extend_from_slice(&[b'v'; 64]);
    set.extend_from_slice(b"\r\n");
    let pipeline: Vec<u8> = (0..16)
        .flat_map(|i| if i % 2 == 0 { get.clone() } else { set.clone() })
        .collect();

    let mut group = c.benchmark_group("request");
    for (name, buf) in [("get", &get), ("set_64b", &set), ("pipeline_16", &pipeline)] {
        let mut parser = RequestParser::new();
        let mut spans = Vec::with_capacity(16);
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_all(&mut parser, &limits, &mut spans, black_box(buf)))
        });
    }
    group.finish();
}

fn replies(c: &mut Criterion) {
    let ok = b"+OK\r\n".to_vec();
    let mut bulk = b"$64\r\n".to_vec();
    bulk.extend_from_slice(&[b'v'; 64]);
    bulk.extend_from_slice(b"\r\n");
    let mut array = b"*100\r\n".to_vec();
    for i in 0..100 {
        let item = format!("value-{i:04}");
        array.extend_from_slice(format!("${}\r\n{item}\r\n", item.len()).as_bytes());
    }

    let mut group = c.benchmark_group("reply");
    for (name, buf) in [("ok", &ok), ("bulk_64b", &bulk), ("array_100", &array)] {
        let mut scanner = ReplyScanner::new(128);
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(name, |b| b.iter(|| scanner.scan(black_box(buf))));
    }
    group.bench_function("array_100_one_shot", |b| {
        b.iter(|| meridian::resp::scan_reply(black_box(&array), 128))
    });
    group.finish();
}

criterion_group!(benches, requests, replies);
criterion_main!(benches);
