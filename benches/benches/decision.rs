//! The channel decision of io-reference §4 for one message: a pure function on the hot path of
//! processing.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use io_benches::{citizen, new_message, service};
use io_core::{
    DecisionInput, EmailAddress, Profile, SenderCapabilities, SenderLimits, Timestamp, decide,
};
use std::hint::black_box;

/// The allocator io-server ships with (ARCHITECTURE.md, "Memory"), for io and its ceiling alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn decision(c: &mut Criterion) {
    let service = service();
    let fiscal_code = citizen(7);
    let mut profile = Profile::new(fiscal_code.clone());
    profile.email = Some(EmailAddress::parse("cittadino@example.it").expect("valid"));
    profile.is_email_validated = true;
    let message = new_message(&fiscal_code)
        .validate(SenderLimits {
            max_allowed_payment_amount: 0,
            organization_fiscal_code: &service.organization_fiscal_code,
            capabilities: SenderCapabilities::default(),
        })
        .expect("valid");
    let mut group = c.benchmark_group("decision");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decide_all_channels", |b| {
        b.iter(|| {
            decide(black_box(DecisionInput {
                profile: Some(&profile),
                preference: None,
                activation: None,
                service: &service,
                message: &message,
                has_devices: true,
                now: Timestamp::from_millis(1_767_225_600_000),
                activation_grace: Duration::from_secs(86_400),
            }))
            .expect("allowed")
        })
    });
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
