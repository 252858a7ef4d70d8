//! Slot hashing: CRC16 of a short key, of a key with a hash tag, and of a long key.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use meridian::slot::key_slot;

fn slot_hash(c: &mut Criterion) {
    c.bench_function("slot/short_key", |b| {
        b.iter(|| key_slot(black_box(b"user:1000")))
    });
    c.bench_function("slot/hash_tag", |b| {
        b.iter(|| key_slot(black_box(b"{user1000}.followers")))
    });
    let long = vec![b'k'; 256];
    c.bench_function("slot/key_256b", |b| b.iter(|| key_slot(black_box(&long))));
}

criterion_group!(benches, slot_hash);
criterion_main!(benches);
