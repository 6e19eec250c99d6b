//! Fixtures shared by the engine and crash tests: a service, citizens, messages, and a
//! recording channel (allowed in engine tests only: channels proper are tested against real
//! protocol peers).

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use io_core::{
    Channel, ChannelKind, Clock, DeliveryId, DeliveryJob, EmailAddress, FiscalCode, NewMessage,
    NewMessageContent, OrganizationFiscalCode, Outcome, Profile, Report, SenderCapabilities,
    Service, ServiceId, ServiceMetadata, Store, Submission, Timestamp,
};

/// A fixed starting instant for paused-time tests.
pub const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000); // 2026-01-01T00:00:00Z

pub fn service(id: &str) -> Service {
    Service {
        service_id: ServiceId::parse(id).unwrap(),
        service_name: format!("Service {id}"),
        department_name: "Tributi".into(),
        organization_name: "Comune di Esempio".into(),
        organization_fiscal_code: OrganizationFiscalCode::parse("15376371009").unwrap(),
        authorized_cidrs: vec![],
        authorized_recipients: Default::default(),
        is_visible: true,
        max_allowed_payment_amount: 100_000,
        require_secure_channels: false,
        service_metadata: ServiceMetadata::default(),
        owner_email: Some(EmailAddress::parse("owner@comune.example.it").unwrap()),
        sandboxed: false,
        version: 1,
    }
}

/// The `n`-th generated valid fiscal code (distinct for distinct `n` < 1000).
pub fn citizen(n: u32) -> FiscalCode {
    let digits = format!("{:03}", n % 1000);
    let first15 = format!("RSSMRA{}A01H50{}", &digits[..2], &digits[2..]);
    let check = io_core::fiscal_code::compute_check_character(&first15).unwrap();
    FiscalCode::parse(&format!("{first15}{check}")).unwrap()
}

/// A profile with inbox on and a validated email address of its own (validated addresses are
/// unique across citizens).
pub fn profile_with_email(fiscal_code: &FiscalCode) -> Profile {
    let mut profile = Profile::new(fiscal_code.clone());
    let address = format!("{}@example.it", fiscal_code.as_str().to_ascii_lowercase());
    profile.email = Some(EmailAddress::parse(&address).unwrap());
    profile.is_email_validated = true;
    profile
}

pub fn new_message(fiscal_code: &FiscalCode, subject: &str) -> NewMessage {
    NewMessage {
        fiscal_code: Some(fiscal_code.to_string()),
        time_to_live: Some(3600),
        content: NewMessageContent {
            subject: Some(subject.into()),
            markdown: Some(
                "# Avviso\n\nLa informiamo che è disponibile un nuovo documento. ".repeat(3),
            ),
            ..Default::default()
        },
        feature_level_type: None,
        legal_value: None,
    }
}

pub fn submission(service: &str, fiscal_code: &FiscalCode, subject: &str) -> Submission {
    Submission {
        service_id: ServiceId::parse(service).unwrap(),
        message: new_message(fiscal_code, subject),
        capabilities: SenderCapabilities::default(),
        idempotency_key: None,
    }
}

pub async fn seed(store: &impl Store, services: &[&str], citizens: &[FiscalCode]) {
    for id in services {
        store.put_service(&service(id)).await.unwrap();
    }
    for fiscal_code in citizens {
        store
            .put_profile(&profile_with_email(fiscal_code))
            .await
            .unwrap();
    }
}

/// A channel that records every call and answers from a script (then `Delivered`).
pub struct RecordingChannel {
    kind: ChannelKind,
    clock: Arc<dyn Clock>,
    script: Mutex<VecDeque<Outcome>>,
    calls: Mutex<Vec<Call>>,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub delivery: DeliveryId,
    pub service: ServiceId,
    pub at: Timestamp,
    pub outcome: Outcome,
}

impl RecordingChannel {
    pub fn new(kind: ChannelKind, clock: Arc<dyn Clock>, script: Vec<Outcome>) -> Arc<Self> {
        Arc::new(Self {
            kind,
            clock,
            script: Mutex::new(script.into()),
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls per delivery id.
    pub fn counts(&self) -> BTreeMap<DeliveryId, usize> {
        let mut counts = BTreeMap::new();
        for call in self.calls() {
            *counts.entry(call.delivery).or_insert(0) += 1;
        }
        counts
    }
}

#[async_trait::async_trait]
impl Channel for RecordingChannel {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    async fn send(&self, job: DeliveryJob<'_>) -> Report {
        let outcome = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Outcome::Delivered { provider_ref: None });
        self.calls.lock().unwrap().push(Call {
            delivery: job.delivery.id,
            service: job.delivery.service_id.clone(),
            at: self.clock.now(),
            outcome: outcome.clone(),
        });
        outcome.into()
    }
}
