//! Cases of sender-callback outboxes and registrations.

use super::*;

fn target(url: &str) -> CallbackTarget {
    CallbackTarget {
        url: url.into(),
        secret: "ab".repeat(32),
    }
}

/// Accepts a message of "svc" with its outbox open; returns it.
async fn accepted_with_outbox(store: &impl Store, at: Timestamp, n: u128) -> Message {
    let message = message("svc", &citizen(), at, n);
    let mut record = accept_record(&message, None);
    record.open_callbacks = true;
    assert_eq!(
        store.commit_accept(record).await.unwrap(),
        AcceptOutcome::Created
    );
    message
}

fn callback_record(
    task: &Task,
    acknowledged: u64,
    retry_at: Option<Timestamp>,
    close: bool,
    at: Timestamp,
) -> CallbackRecord {
    CallbackRecord {
        task: task.clone(),
        cursor: CallbackCursor {
            acknowledged,
            attempts: 0,
        },
        retry_at,
        close,
        at,
    }
}

pub(crate) async fn callback_registrations_are_kept_per_service(store: impl Store) {
    assert_eq!(store.callback(&sid("svc")).await.unwrap(), None);
    store
        .put_callback(&sid("svc"), Some(&target("https://a.example/cb")))
        .await
        .unwrap();
    store
        .put_callback(&sid("svc2"), Some(&target("https://b.example/cb")))
        .await
        .unwrap();
    assert_eq!(
        store.callback(&sid("svc")).await.unwrap(),
        Some(target("https://a.example/cb"))
    );
    store.put_callback(&sid("svc"), None).await.unwrap();
    assert_eq!(store.callback(&sid("svc")).await.unwrap(), None);
    assert_eq!(
        store.callback(&sid("svc2")).await.unwrap(),
        Some(target("https://b.example/cb"))
    );
}

pub(crate) async fn an_outbox_opened_at_accept_is_due_and_follows_the_journal(store: impl Store) {
    let message = accepted_with_outbox(&store, T0, 1).await;
    assert_eq!(
        store.callback_cursor(&message.id).await.unwrap(),
        Some(CallbackCursor::default())
    );
    // Process task and callback task, the message's tasks side by side.
    let tasks = claim(&store, "svc", T0).await;
    assert_eq!(
        kinds(&tasks),
        vec![
            TaskKind::Process(message.id),
            TaskKind::Callback(message.id)
        ]
    );
    let callback = tasks[1].clone();
    // The receiver acknowledged the one entry: the outbox waits, its task leaves the queue.
    store
        .commit_callback(callback_record(&callback, 1, None, false, t(10)))
        .await
        .unwrap();
    assert_eq!(
        store.callback_cursor(&message.id).await.unwrap(),
        Some(CallbackCursor {
            acknowledged: 1,
            attempts: 0
        })
    );
    assert_eq!(store.backlog().await.unwrap(), 1);
    // The decision appends to the journal: the waiting outbox is due again at once.
    let email = delivery(&message, ChannelKind::Email, t(5_000));
    store
        .commit_process(processed(&tasks[0], &message, vec![email], t(20)))
        .await
        .unwrap();
    let again = claim_one(&store, "svc", t(20)).await;
    assert_eq!(again.kind, TaskKind::Callback(message.id));
    assert!(again.lease.token > callback.lease.token);
    // The stale claim cannot commit.
    assert_lease_lost(
        store
            .commit_callback(callback_record(&callback, 2, None, false, t(30)))
            .await,
    );
    // A failure waits for its retry time.
    store
        .commit_callback(callback_record(&again, 1, Some(t(1_000)), false, t(30)))
        .await
        .unwrap();
    assert_eq!(kinds(&claim(&store, "svc", t(999)).await), vec![]);
    let retry = claim_one(&store, "svc", t(1_000)).await;
    assert_eq!(retry.kind, TaskKind::Callback(message.id));
    // Caught up and asked to close while the message is not final: closing is the engine's
    // call, so the outbox goes.
    store
        .commit_callback(callback_record(&retry, 2, None, true, t(1_000)))
        .await
        .unwrap();
    assert_eq!(store.callback_cursor(&message.id).await.unwrap(), None);
    assert_eq!(
        kinds(&claim(&store, "svc", t(5_000)).await),
        vec![TaskKind::Deliver(DeliveryId::new(
            message.id,
            ChannelKind::Email
        ))]
    );
}

pub(crate) async fn an_outbox_behind_its_journal_is_not_left_waiting_or_closed(store: impl Store) {
    let message = accepted_with_outbox(&store, T0, 1).await;
    let tasks = claim(&store, "svc", T0).await;
    let (process_task, callback) = (tasks[0].clone(), tasks[1].clone());
    // The decision lands while the callback task runs (it read one entry).
    store
        .commit_process(processed(&process_task, &message, vec![], t(5)))
        .await
        .unwrap();
    store
        .commit_callback(callback_record(&callback, 1, None, true, t(10)))
        .await
        .unwrap();
    assert_eq!(
        store.callback_cursor(&message.id).await.unwrap(),
        Some(CallbackCursor {
            acknowledged: 1,
            attempts: 0
        })
    );
    let again = claim_one(&store, "svc", t(10)).await;
    assert_eq!(again.kind, TaskKind::Callback(message.id));
    store
        .commit_callback(callback_record(&again, 2, None, true, t(20)))
        .await
        .unwrap();
    assert_eq!(store.callback_cursor(&message.id).await.unwrap(), None);
    assert_eq!(store.backlog().await.unwrap(), 0);
}

/// Two outcomes of one message committed together, its outbox open: the callback task queued by
/// the first is not queued twice by the second, and one the sender's worker holds keeps its
/// lease (the outcomes only append to the journal it follows).
pub(crate) async fn outcomes_committed_together_queue_one_callback_and_keep_a_held_one(
    store: impl Store,
) {
    let message = accepted_with_outbox(&store, T0, 1).await;
    let tasks = claim(&store, "svc", T0).await;
    store
        .commit_callback(callback_record(&tasks[1], 1, None, false, t(10)))
        .await
        .unwrap();
    let email = delivery(&message, ChannelKind::Email, t(20));
    let push = delivery(&message, ChannelKind::Push, t(20));
    store
        .commit_process(processed(
            &tasks[0],
            &message,
            vec![email.clone(), push.clone()],
            t(20),
        ))
        .await
        .unwrap();
    // The decision appended: the callback is queued again, beside the two deliveries.
    let claimed = claim(&store, "svc", t(20)).await;
    assert_eq!(
        kinds(&claimed),
        vec![
            TaskKind::Deliver(email.id),
            TaskKind::Deliver(push.id),
            TaskKind::Callback(message.id),
        ]
    );
    let outcome = |task: &Task, delivery: &Delivery| {
        let (after, event) = attempted(delivery, DeliveryState::Sent, delivered(), t(30), t(30));
        DeliveryRecord {
            task: task.clone(),
            delivery: after,
            events: vec![event],
            effects: vec![],
            at: t(30),
        }
    };
    let results = store
        .commit_deliveries(vec![
            outcome(&claimed[0], &email),
            outcome(&claimed[1], &push),
        ])
        .await;
    assert_eq!(results, vec![Ok(()), Ok(())]);
    // One callback task, still held: nothing to claim before its lease ends, and its holder
    // commits.
    assert_eq!(store.backlog().await.unwrap(), 1);
    assert_eq!(kinds(&claim(&store, "svc", t(40)).await), vec![]);
    store
        .commit_callback(callback_record(&claimed[2], 4, None, false, t(40)))
        .await
        .unwrap();
    assert_eq!(store.backlog().await.unwrap(), 0);
    assert_eq!(verified_journal(&store, &message.id).await.len(), 4);
}
