//! The inbox channel against the real store: SENT only when the recipient's app can list the
//! message.

use std::sync::Arc;
use std::time::Duration;

use io_channels::InboxChannel;
use io_core::{
    Channel, ChannelKind, Clock, DeliveryId, DeliveryState, Engine, EngineConfig, FiscalCode,
    NewMessage, NewMessageContent, OrganizationFiscalCode, Outcome, Profile, SenderCapabilities,
    Service, ServiceId, ServiceMetadata, Store, Submission, Timestamp, TokioClock,
};
use io_store::SledStore;

fn service() -> Service {
    Service {
        service_id: ServiceId::parse("anagrafe").unwrap(),
        service_name: "Anagrafe".into(),
        department_name: "Servizi demografici".into(),
        organization_name: "Comune di Esempio".into(),
        organization_fiscal_code: OrganizationFiscalCode::parse("15376371009").unwrap(),
        authorized_cidrs: vec![],
        authorized_recipients: Default::default(),
        is_visible: true,
        max_allowed_payment_amount: 0,
        require_secure_channels: false,
        service_metadata: ServiceMetadata::default(),
        owner_email: None,
        version: 1,
    }
}

fn submission(fiscal_code: &FiscalCode) -> Submission {
    Submission {
        service_id: service().service_id,
        message: NewMessage {
            fiscal_code: Some(fiscal_code.to_string()),
            time_to_live: None,
            content: NewMessageContent {
                subject: Some("Carta d'identità pronta".into()),
                markdown: Some(
                    "La sua carta d'identità elettronica è pronta per il ritiro. ".repeat(3),
                ),
                ..Default::default()
            },
            feature_level_type: None,
        },
        capabilities: SenderCapabilities::default(),
        idempotency_key: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_processed_message_is_sent_to_the_inbox_and_listed() {
    let store = Arc::new(SledStore::temporary().unwrap());
    let citizen = FiscalCode::parse("RSSMRA85T10A562S").unwrap();
    store.put_service(&service()).await.unwrap();
    store
        .put_profile(&Profile::new(citizen.clone()))
        .await
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(Timestamp::from_millis(
        1_767_225_600_000,
    )));
    let inbox: Arc<dyn Channel> = Arc::new(InboxChannel::new(store.clone()));
    let engine = Engine::new(store.clone(), vec![inbox], clock, EngineConfig::default()).unwrap();

    let id = engine.submit(submission(&citizen)).await.unwrap().id;
    engine.run_until_idle().await.unwrap();

    let delivery = store
        .delivery(&DeliveryId::new(id, ChannelKind::Inbox))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.state, DeliveryState::Sent);
    assert_eq!(store.inbox(&citizen, None, 10).await.unwrap(), vec![id]);
}

#[tokio::test(start_paused = true)]
async fn a_message_missing_from_the_inbox_is_a_permanent_failure_not_a_success() {
    // A message to a citizen without a profile is REJECTED and never indexed in an inbox:
    // asking the inbox channel to deliver it anyway must not report success.
    let store = Arc::new(SledStore::temporary().unwrap());
    let stranger = FiscalCode::parse("MRTMTT25D09F205Z").unwrap();
    store.put_service(&service()).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(Timestamp::from_millis(
        1_767_225_600_000,
    )));
    let engine = Engine::new(store.clone(), vec![], clock, EngineConfig::default()).unwrap();
    let id = engine.submit(submission(&stranger)).await.unwrap().id;
    engine.run_until_idle().await.unwrap();
    let stored = store.message(&id).await.unwrap().unwrap();

    let channel = InboxChannel::new(store.clone());
    let delivery = io_core::Delivery {
        id: DeliveryId::new(id, ChannelKind::Inbox),
        service_id: service().service_id,
        fiscal_code: stranger,
        target: io_core::DeliveryTarget::Inbox,
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt_at: stored.message.created_at,
        expires_at: stored.message.created_at.plus(Duration::from_secs(3600)),
        last_outcome: None,
        updated_at: stored.message.created_at,
    };
    let outcome = channel
        .send(io_core::DeliveryJob {
            delivery: &delivery,
            message: &stored.message,
            service: &service(),
            profile: None,
        })
        .await;
    assert!(matches!(outcome, Outcome::Permanent(reason) if reason.code == "not_in_inbox"));
}
