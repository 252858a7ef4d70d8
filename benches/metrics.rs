//! Per-request cost of the request metrics: the command count and latency observation, and
//! the reply queue with and without the metrics tag.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use meridian::clock::Clock;
use meridian::reply::queue::{ReplyQueue, Tag};
use meridian::stats::requests::RequestMetrics;

fn metrics(c: &mut Criterion) {
    let m = RequestMetrics::new();
    let ok = Bytes::from_static(b"$1\r\nv\r\n");
    let err = Bytes::from_static(b"-WRONGTYPE Operation against a key holding the wrong kind\r\n");
    c.bench_function("metrics/count+observe GET (300us)", |b| {
        b.iter(|| {
            m.count(black_box(7));
            m.observe(black_box(7), black_box(Duration::from_micros(300)), &ok);
        })
    });
    c.bench_function("metrics/count+observe error reply", |b| {
        b.iter(|| {
            m.count(black_box(7));
            m.observe(black_box(7), black_box(Duration::from_micros(300)), &err);
        })
    });
    c.bench_function("metrics/count_read", |b| {
        b.iter(|| m.count_read(black_box(2)))
    });

    // One request through the reply queue, as the router and session use it.
    let q = ReplyQueue::new();
    let mut out = BytesMut::with_capacity(1024);
    c.bench_function("queue/reserve+fill+drain", |b| {
        b.iter(|| {
            let seq = q.reserve();
            q.fill(seq, ok.clone());
            out.clear();
            black_box(q.drain_ready(&mut out, usize::MAX))
        })
    });
    let clock = Clock::new();
    let at = clock.now_tick();
    std::thread::sleep(Duration::from_micros(300));
    clock.tick();
    let now = clock.now_tick();
    c.bench_function("queue/reserve+fill+drain, tagged and observed", |b| {
        b.iter(|| {
            m.count(7);
            let seq = q.reserve_tagged(Tag { command: 7, at });
            q.fill(seq, ok.clone());
            out.clear();
            black_box(q.drain_ready_with(&mut out, usize::MAX, |tag, reply| {
                m.observe(tag.command, now.since(tag.at), reply)
            }))
        })
    });
}

criterion_group!(benches, metrics);
criterion_main!(benches);
