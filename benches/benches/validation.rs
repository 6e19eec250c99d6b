//! Validation at the edge: parsing a fiscal code, and decoding plus validating IO's
//! `NewMessage` JSON (~1 KiB). These bound how fast the API can say 400.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use io_benches::{citizen, new_message_json, service};
use io_core::{FiscalCode, NewMessage, SenderCapabilities, SenderLimits};
use std::hint::black_box;

/// The allocator io-server ships with (ARCHITECTURE.md, "Memory"), for io and its ceiling alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("validation");
    group.throughput(Throughput::Elements(1));
    let code = citizen(42).to_string();
    group.bench_function("fiscal_code_parse", |b| {
        b.iter(|| FiscalCode::parse(black_box(&code)).expect("valid"))
    });
    let json = new_message_json(&citizen(42));
    let service = service();
    let limits = SenderLimits {
        max_allowed_payment_amount: service.max_allowed_payment_amount,
        organization_fiscal_code: &service.organization_fiscal_code,
        capabilities: SenderCapabilities::default(),
    };
    group.bench_function("new_message_decode_and_validate", |b| {
        b.iter(|| {
            let message: NewMessage = serde_json::from_slice(black_box(&json)).expect("json");
            message.validate(limits).expect("valid")
        })
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
