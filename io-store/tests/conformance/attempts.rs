//! Cases of the decision at accept, attempt starts, outcomes committed together, and the
//! channels' effects.

use super::*;

/// An accept that carries its decision: PROCESSED into the inbox, the inbox delivery SENT and
/// an email delivery pending.
fn decided(message: &Message) -> (AcceptRecord, Delivery, Delivery) {
    let mut inbox = delivery(message, ChannelKind::Inbox, message.created_at);
    inbox.state = DeliveryState::Sent;
    inbox.attempts = 1;
    inbox.last_outcome = Some(delivered());
    let email = delivery(message, ChannelKind::Email, message.created_at);
    let mut record = accept_record(message, None);
    record.status = MessageStatus::Processed;
    record.deliveries = vec![inbox.clone(), email.clone()];
    record.into_inbox = true;
    record.events.push(JournalEvent::Processed {
        channels: vec![ChannelKind::Inbox, ChannelKind::Email],
    });
    (record, inbox, email)
}

pub(crate) async fn accept_with_a_decision_writes_it_in_the_same_write(store: impl Store) {
    let message = message("svc", &citizen(), T0, 1);
    let (record, inbox, email) = decided(&message);
    assert_eq!(
        store.commit_accept(record).await.unwrap(),
        AcceptOutcome::Created
    );
    let stored = store.message(&message.id).await.unwrap().unwrap();
    assert_eq!(stored.status, MessageStatus::Processed);
    assert!(store.inbox_contains(&citizen(), &message.id).await.unwrap());
    assert_eq!(
        store.deliveries(&message.id).await.unwrap(),
        vec![inbox, email.clone()]
    );
    // Only the email delivery is work: no process task, no task for the SENT inbox.
    assert_eq!(store.backlog().await.unwrap(), 1);
    assert_eq!(
        kinds(&claim(&store, "svc", T0).await),
        vec![TaskKind::Deliver(email.id)]
    );
    assert_eq!(verified_journal(&store, &message.id).await.len(), 2);
}

pub(crate) async fn an_attempt_start_keeps_the_lease_and_records_an_unknown_outcome(
    store: impl Store,
) {
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let email = delivery(&message, ChannelKind::Email, t(1_000));
    process(&store, &message, vec![email.clone()], t(1_000)).await;
    let task = claim_one(&store, "svc", t(1_000)).await;
    let mut started = email.clone();
    started.attempts = 1;
    started.outcome_pending = true;
    let start = |delivery: Delivery, event| AttemptStart {
        task: task.clone(),
        delivery,
        event,
        at: t(1_500),
    };
    let results = store
        .start_attempts(vec![start(started.clone(), None)])
        .await;
    assert_eq!(results, vec![Ok(())]);
    assert_eq!(
        store.delivery(&email.id).await.unwrap(),
        Some(started.clone())
    );
    assert_eq!(verified_journal(&store, &message.id).await.len(), 2);
    // The lease is kept: the outcome commits with it.
    let (after, event) = attempted(
        &started,
        DeliveryState::Sent,
        delivered(),
        t(2_000),
        t(2_000),
    );
    let mut after = after;
    after.attempts = 1;
    after.outcome_pending = false;
    store
        .commit_delivery(DeliveryRecord {
            task: task.clone(),
            delivery: after.clone(),
            events: vec![event],
            effects: vec![],
            at: t(2_000),
        })
        .await
        .unwrap();
    assert_eq!(store.delivery(&email.id).await.unwrap(), Some(after));
    assert_eq!(store.backlog().await.unwrap(), 0);

    // A start under a superseded lease changes nothing; one with an `OutcomeUnknown` journals it.
    let second = accepted(&store, "svc", &citizen(), t(3_000), 2).await;
    let push = delivery(&second, ChannelKind::Push, t(4_000));
    process(&store, &second, vec![push.clone()], t(4_000)).await;
    let stale = claim_one(&store, "svc", t(4_000)).await;
    let fresh = claim_one(&store, "svc", lease_from(t(4_000))).await;
    assert!(fresh.lease.token > stale.lease.token);
    let mut counted = push.clone();
    counted.attempts = 2;
    counted.outcome_pending = true;
    let unknown = JournalEvent::OutcomeUnknown {
        channel: ChannelKind::Push,
        attempt: 1,
    };
    let results = store
        .start_attempts(vec![
            AttemptStart {
                task: stale,
                delivery: counted.clone(),
                event: None,
                at: t(40_000),
            },
            AttemptStart {
                task: fresh,
                delivery: counted.clone(),
                event: Some(unknown.clone()),
                at: t(40_000),
            },
        ])
        .await;
    assert_lease_lost(results[0].clone());
    assert_eq!(results[1], Ok(()));
    assert_eq!(store.delivery(&push.id).await.unwrap(), Some(counted));
    let entries = verified_journal(&store, &second.id).await;
    assert_eq!(entries.last().unwrap().event, unknown);
}

pub(crate) async fn outcomes_committed_together_succeed_or_fail_one_by_one(store: impl Store) {
    let mut messages = Vec::new();
    for n in 0..3 {
        messages.push(accepted(&store, "svc", &citizen(), T0, n).await);
    }
    let mut deliveries = Vec::new();
    for task in claim(&store, "svc", T0).await {
        let message = messages
            .iter()
            .find(|m| task.kind == TaskKind::Process(m.id))
            .unwrap();
        let email = delivery(message, ChannelKind::Email, t(1_000));
        let push = delivery(message, ChannelKind::Push, t(1_000));
        store
            .commit_process(processed(
                &task,
                message,
                vec![email.clone(), push.clone()],
                t(500),
            ))
            .await
            .unwrap();
        deliveries.push((message.id, email, push));
    }
    deliveries.sort_by_key(|(id, _, _)| *id);
    let tasks = claim(&store, "svc", t(1_000)).await;
    // A message's deliveries are claimed next to each other.
    assert_eq!(
        kinds(&tasks),
        deliveries
            .iter()
            .flat_map(|(_, e, p)| [TaskKind::Deliver(e.id), TaskKind::Deliver(p.id)])
            .collect::<Vec<_>>()
    );
    let mut records = Vec::new();
    for (task, delivery) in tasks
        .iter()
        .zip(deliveries.iter().flat_map(|(_, e, p)| [e, p]))
    {
        let (after, event) = attempted(
            delivery,
            DeliveryState::Sent,
            delivered(),
            t(2_000),
            t(2_000),
        );
        let mut task = task.clone();
        if delivery.id == deliveries[1].2.id {
            task.lease.token += 1_000_000; // superseded
        }
        records.push(DeliveryRecord {
            task,
            delivery: after,
            events: vec![event],
            effects: vec![],
            at: t(2_000),
        });
    }
    let results = store.commit_deliveries(records).await;
    assert_eq!(results.len(), 6);
    for (index, result) in results.into_iter().enumerate() {
        if index == 3 {
            assert_lease_lost(result);
        } else {
            assert_eq!(result, Ok(()), "record {index}");
        }
    }
    for (message, email, push) in &deliveries {
        let entries = verified_journal(&store, message).await;
        let lost = *push == deliveries[1].2;
        assert_eq!(entries.len(), if lost { 3 } else { 4 });
        assert_eq!(
            store.delivery(&email.id).await.unwrap().unwrap().state,
            DeliveryState::Sent
        );
        let push_state = store.delivery(&push.id).await.unwrap().unwrap().state;
        assert_eq!(push_state.is_final(), !lost);
    }
    assert_eq!(store.backlog().await.unwrap(), 1);
}

pub(crate) async fn effects_commit_with_the_outcome(store: impl Store) {
    let mut profile = Profile::new(citizen());
    profile.email = Some(EmailAddress::parse("cittadino@example.it").unwrap());
    store.put_profile(&profile).await.unwrap();
    let mut kept = installation("dev-kept", "token-kept");
    kept.updated_at = t(9_000); // registered again after the channel's send
    store.put_installation(&citizen(), &kept).await.unwrap();
    store
        .put_installation(&citizen(), &installation("dev-gone", "token-gone"))
        .await
        .unwrap();
    let message = accepted(&store, "svc", &citizen(), T0, 1).await;
    let email = delivery(&message, ChannelKind::Email, t(1_000));
    process(&store, &message, vec![email.clone()], t(1_000)).await;
    let task = claim_one(&store, "svc", t(1_000)).await;
    let mut after = email.clone();
    after.attempts = 1;
    after.state = DeliveryState::Failed {
        reason: FailureReason::InvalidRecipient,
    };
    store
        .commit_delivery(DeliveryRecord {
            task,
            delivery: after,
            events: vec![],
            effects: vec![
                Effect::EmailBounced(EmailAddress::parse("cittadino@example.it").unwrap()),
                Effect::PruneDevice {
                    installation_id: InstallationId::parse("dev-gone").unwrap(),
                    registered_at: T0,
                },
                Effect::PruneDevice {
                    installation_id: InstallationId::parse("dev-kept").unwrap(),
                    registered_at: T0,
                },
            ],
            at: t(2_000),
        })
        .await
        .unwrap();
    let bounced = store.profile(&citizen()).await.unwrap().unwrap();
    assert!(bounced.is_email_bounced);
    assert_eq!(bounced.version, profile.version + 1);
    assert_eq!(store.installations(&citizen()).await.unwrap(), vec![kept]);
    // A bounce of an address the citizen no longer has changes nothing.
    let message = accepted(&store, "svc", &citizen(), t(3_000), 2).await;
    process(
        &store,
        &message,
        vec![delivery(&message, ChannelKind::Email, t(4_000))],
        t(4_000),
    )
    .await;
    let task = claim_one(&store, "svc", t(4_000)).await;
    let TaskKind::Deliver(id) = task.kind else {
        panic!("unexpected {task:?}")
    };
    let mut after = store.delivery(&id).await.unwrap().unwrap();
    after.state = DeliveryState::Sent;
    store
        .commit_delivery(DeliveryRecord {
            task,
            delivery: after,
            events: vec![],
            effects: vec![Effect::EmailBounced(
                EmailAddress::parse("old@example.it").unwrap(),
            )],
            at: t(5_000),
        })
        .await
        .unwrap();
    assert_eq!(store.profile(&citizen()).await.unwrap().unwrap(), bounced);
}
