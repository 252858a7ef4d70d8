//! Per-request cost of the command table: name lookup, resolution and key positions.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use meridian::command::CommandTable;
use meridian::resp::ReqArgs;

fn lookups(c: &mut Criterion) {
    let table = CommandTable::builtin();
    c.bench_function("command/get GET", |b| {
        b.iter(|| table.get(black_box(b"GET")))
    });
    c.bench_function("command/get zunionstore", |b| {
        b.iter(|| table.get(black_box(b"zunionstore")))
    });
    c.bench_function("command/get unknown", |b| {
        b.iter(|| table.get(black_box(b"NOSUCHCMD")))
    });

    let buf = b"MSETk1v1k2v2";
    let spans = [0..4, 4..6, 6..8, 8..10, 10..12];
    let args = ReqArgs {
        buf: buf.as_slice(),
        spans: &spans,
    };
    let mut out = Vec::with_capacity(8);
    c.bench_function("command/resolve+key_positions MSET k1 v1 k2 v2", |b| {
        b.iter(|| {
            out.clear();
            let spec = table.resolve(black_box(&args)).unwrap();
            spec.key_positions(&args, &mut out).unwrap();
            black_box(out.len())
        })
    });

    let buf = b"OBJECTENCODINGk1";
    let spans = [0..6, 6..14, 14..16];
    let args = ReqArgs {
        buf: buf.as_slice(),
        spans: &spans,
    };
    c.bench_function("command/resolve+key_positions OBJECT ENCODING k1", |b| {
        b.iter(|| {
            out.clear();
            let spec = table.resolve(black_box(&args)).unwrap();
            spec.key_positions(&args, &mut out).unwrap();
            black_box(out.len())
        })
    });

    c.bench_function("command/builtin() parse", |b| b.iter(CommandTable::builtin));
}

criterion_group!(benches, lookups);
criterion_main!(benches);
