//! Cases of what the server keeps beside the engine: API access, validated emails, message
//! flags, the subscriptions feed, GDPR requests.

use super::*;

/// An access whose version is the count of key generations since the first (1, 1).
fn access(groups: &[Group], primary: u64, secondary: u64) -> ServiceAccess {
    ServiceAccess {
        groups: Groups(groups.iter().copied().collect()),
        primary,
        secondary,
        primary_hash: [primary as u8; 32],
        secondary_hash: [100 + secondary as u8; 32],
        version: primary + secondary - 1,
    }
}

pub(crate) async fn service_access_and_its_key_index_change_together(store: impl Store) {
    let first = access(&[Group::ApiMessageWrite], 1, 1);
    store
        .put_service_with_access(&service("svc", 1), &first)
        .await
        .unwrap();
    assert_eq!(
        store.service(&sid("svc")).await.unwrap(),
        Some(service("svc", 1))
    );
    assert_eq!(
        store.service_access(&sid("svc")).await.unwrap(),
        Some(first.clone())
    );
    let owner = |slot| ApiKeyOwner {
        service_id: sid("svc"),
        slot,
    };
    assert_eq!(
        store.api_key_owner(&first.primary_hash).await.unwrap(),
        Some(owner(KeySlot::Primary))
    );
    assert_eq!(
        store.api_key_owner(&first.secondary_hash).await.unwrap(),
        Some(owner(KeySlot::Secondary))
    );
    // A stale service version writes neither the service nor the access.
    let stale = access(&[Group::ApiMessageRead], 5, 5);
    assert_conflict(
        store
            .put_service_with_access(&service("svc", 1), &stale)
            .await,
        "service",
    );
    assert_eq!(
        store.service_access(&sid("svc")).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.api_key_owner(&stale.primary_hash).await.unwrap(),
        None
    );
    // Regenerating the primary key: the old hash stops authenticating, the other stays.
    let regenerated = access(&[Group::ApiMessageWrite], 2, 1);
    store
        .put_service_access(&sid("svc"), &regenerated)
        .await
        .unwrap();
    assert_eq!(
        store.api_key_owner(&first.primary_hash).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .api_key_owner(&regenerated.primary_hash)
            .await
            .unwrap(),
        Some(owner(KeySlot::Primary))
    );
    assert_eq!(
        store.api_key_owner(&first.secondary_hash).await.unwrap(),
        Some(owner(KeySlot::Secondary))
    );
}

pub(crate) async fn an_access_change_from_a_stale_read_is_refused_and_writes_nothing(
    store: impl Store,
) {
    let first = access(&[Group::ApiMessageWrite], 1, 1);
    store
        .put_service_with_access(&service("svc", 1), &first)
        .await
        .unwrap();
    // A second access for a new service at version 1 is refused: a create never overwrites.
    assert_conflict(
        store.put_service_access(&sid("svc"), &first).await,
        "service access",
    );
    // Two changes computed from the same read: the primary key regenerated, then the
    // secondary. The second is refused and the first stays in force: the secondary change
    // must not bring the replaced primary key back.
    let primary_regenerated = access(&[Group::ApiMessageWrite], 2, 1);
    let secondary_from_stale = access(&[Group::ApiMessageWrite], 1, 2);
    assert_eq!(primary_regenerated.version, secondary_from_stale.version);
    store
        .put_service_access(&sid("svc"), &primary_regenerated)
        .await
        .unwrap();
    assert_conflict(
        store
            .put_service_access(&sid("svc"), &secondary_from_stale)
            .await,
        "service access",
    );
    assert_eq!(
        store.service_access(&sid("svc")).await.unwrap(),
        Some(primary_regenerated.clone())
    );
    assert_eq!(
        store.api_key_owner(&first.primary_hash).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .api_key_owner(&secondary_from_stale.secondary_hash)
            .await
            .unwrap(),
        None
    );
    // A service update whose access is stale writes neither the service nor the access.
    let mut groups_from_stale = first.clone();
    groups_from_stale.groups = Groups([Group::ApiMessageRead].into_iter().collect());
    groups_from_stale.version = 2;
    assert_conflict(
        store
            .put_service_with_access(&service("svc", 2), &groups_from_stale)
            .await,
        "service access",
    );
    assert_eq!(
        store.service(&sid("svc")).await.unwrap(),
        Some(service("svc", 1))
    );
    // From a fresh read (version 2, both keys as stored) the same change goes through.
    let mut groups_changed = primary_regenerated.clone();
    groups_changed.groups = Groups([Group::ApiMessageRead].into_iter().collect());
    groups_changed.version = 3;
    store
        .put_service_with_access(&service("svc", 2), &groups_changed)
        .await
        .unwrap();
    assert_eq!(
        store.service_access(&sid("svc")).await.unwrap(),
        Some(groups_changed)
    );
}

pub(crate) async fn a_validated_email_belongs_to_one_citizen_at_a_time(store: impl Store) {
    let address = EmailAddress::parse("Mario.Rossi@Example.it").unwrap();
    let mut mine = Profile::new(citizen());
    mine.email = Some(address.clone());
    mine.is_email_validated = true;
    store.put_profile(&mine).await.unwrap();
    assert_eq!(store.email_owner(&address).await.unwrap(), Some(citizen()));
    // The same address in other case, unvalidated, may be written; validated, it is taken.
    let mut theirs = Profile::new(other_citizen());
    theirs.email = Some(EmailAddress::parse("mario.rossi@example.it").unwrap());
    store.put_profile(&theirs).await.unwrap();
    let mut validated = theirs.clone();
    validated.is_email_validated = true;
    validated.version = 1;
    assert!(matches!(
        store.put_profile(&validated).await,
        Err(StoreError::Taken { .. })
    ));
    assert_eq!(store.profile(&other_citizen()).await.unwrap(), Some(theirs));
    // The owner changes address: the old one is free in the same write.
    let mut moved = mine.clone();
    moved.email = Some(EmailAddress::parse("nuovo@example.it").unwrap());
    moved.is_email_validated = false;
    moved.version = 1;
    store.put_profile(&moved).await.unwrap();
    assert_eq!(store.email_owner(&address).await.unwrap(), None);
    store.put_profile(&validated).await.unwrap();
    assert_eq!(
        store.email_owner(&address).await.unwrap(),
        Some(other_citizen())
    );
    // Erasing the owner frees it too.
    store
        .erase_citizen(&erasure(other_citizen()))
        .await
        .unwrap();
    assert_eq!(store.email_owner(&address).await.unwrap(), None);
}

pub(crate) async fn message_flags_change_atomically_and_reading_is_one_way(store: impl Store) {
    let id = MessageId::from_parts(T0.as_millis() as u64, 1);
    assert_eq!(
        store.message_flags(&citizen(), &id).await.unwrap(),
        MessageFlags::default()
    );
    let read = FlagsChange {
        is_read: Some(true),
        is_archived: None,
    };
    let archive = FlagsChange {
        is_read: None,
        is_archived: Some(true),
    };
    store
        .change_message_flags(&citizen(), &id, read)
        .await
        .unwrap()
        .unwrap();
    let both = store
        .change_message_flags(&citizen(), &id, archive)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        both,
        MessageFlags {
            is_read: true,
            is_archived: true
        }
    );
    let unread = FlagsChange {
        is_read: Some(false),
        is_archived: Some(false),
    };
    assert_eq!(
        store
            .change_message_flags(&citizen(), &id, unread)
            .await
            .unwrap(),
        Err(FlagsError::UnreadAfterRead)
    );
    assert_eq!(store.message_flags(&citizen(), &id).await.unwrap(), both);
    assert_eq!(
        store.message_flags(&other_citizen(), &id).await.unwrap(),
        MessageFlags::default()
    );
}

fn feed_event(
    at: Timestamp,
    scope: FeedScope,
    who: &FiscalCode,
    change: Subscription,
) -> FeedEvent {
    FeedEvent {
        at,
        scope,
        citizen: who.hash(),
        change,
    }
}

pub(crate) async fn the_feed_keeps_the_day_s_last_change_with_services_over_profiles(
    store: impl Store,
) {
    let day = FeedDay::of(T0);
    let next_day = t(86_400_000);
    let svc = FeedScope::Service(sid("svc"));
    let mut profile = Profile::new(citizen());
    store
        .put_profile_with_feed(
            &profile,
            &feed_event(
                T0,
                FeedScope::AllServices,
                &citizen(),
                Subscription::Subscribed,
            ),
        )
        .await
        .unwrap();
    profile.version = 1;
    // A stale profile write records no event either.
    assert_conflict(
        store
            .put_profile_with_feed(
                &Profile::new(citizen()),
                &feed_event(
                    T0,
                    FeedScope::AllServices,
                    &third_citizen(),
                    Subscription::Subscribed,
                ),
            )
            .await,
        "profile",
    );
    store
        .put_preference_with_feed(
            &citizen(),
            &preference("svc", 0, false),
            &feed_event(t(10), svc.clone(), &citizen(), Subscription::Unsubscribed),
        )
        .await
        .unwrap();
    store
        .record_feed_event(&feed_event(
            t(20),
            FeedScope::AllServices,
            &other_citizen(),
            Subscription::Subscribed,
        ))
        .await
        .unwrap();
    store
        .record_feed_event(&feed_event(
            next_day,
            FeedScope::AllServices,
            &other_citizen(),
            Subscription::Unsubscribed,
        ))
        .await
        .unwrap();
    assert_eq!(
        store.preference(&citizen(), &sid("svc"), 0).await.unwrap(),
        Some(preference("svc", 0, false))
    );
    let feed = store.subscriptions_feed(day, &sid("svc")).await.unwrap();
    assert_eq!(feed.subscribed, vec![other_citizen().hash()]);
    assert_eq!(feed.unsubscribed, vec![citizen().hash()]);
    let other_service = store.subscriptions_feed(day, &sid("svc2")).await.unwrap();
    let mut both = vec![citizen().hash(), other_citizen().hash()];
    both.sort();
    assert_eq!(other_service.subscribed, both);
    let tomorrow = store
        .subscriptions_feed(FeedDay::of(next_day), &sid("svc"))
        .await
        .unwrap();
    assert_eq!(
        (tomorrow.subscribed, tomorrow.unsubscribed),
        (vec![], vec![other_citizen().hash()])
    );
}

pub(crate) async fn open_data_requests_are_listed_when_due_in_due_order(store: impl Store) {
    let grace = std::time::Duration::from_secs(60);
    let delete = DataRequest::asked(Choice::Delete, T0, grace);
    let download = DataRequest::asked(Choice::Download, t(1), grace);
    let theirs = DataRequest::asked(Choice::Download, T0, grace);
    assert!(
        store
            .swap_data_request(&citizen(), Choice::Delete, None, Some(&delete))
            .await
            .unwrap()
    );
    assert!(
        store
            .swap_data_request(&citizen(), Choice::Download, None, Some(&download))
            .await
            .unwrap()
    );
    assert!(
        store
            .swap_data_request(&other_citizen(), Choice::Download, None, Some(&theirs))
            .await
            .unwrap()
    );
    // Another writer's expectation no longer holds.
    assert!(
        !store
            .swap_data_request(&citizen(), Choice::Delete, None, Some(&delete))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .data_request(&citizen(), Choice::Delete)
            .await
            .unwrap(),
        Some(delete)
    );
    let due = |requests: Vec<DueRequest>| {
        requests
            .into_iter()
            .map(|d| (d.fiscal_code, d.request.choice))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        due(store.due_data_requests(t(1), None, 10).await.unwrap()),
        vec![
            (other_citizen(), Choice::Download),
            (citizen(), Choice::Download)
        ]
    );
    let all = store.due_data_requests(t(60_000), None, 10).await.unwrap();
    assert_eq!(
        due(all.clone()),
        vec![
            (other_citizen(), Choice::Download),
            (citizen(), Choice::Download),
            (citizen(), Choice::Delete)
        ]
    );
    assert_eq!(
        due(store
            .due_data_requests(t(60_000), Some(&all[0]), 1)
            .await
            .unwrap()),
        vec![(citizen(), Choice::Download)]
    );
    // A finished request is no longer due; a removed one is gone.
    let closed = download.moved_to(RequestStatus::Closed, t(2));
    assert!(
        store
            .swap_data_request(&citizen(), Choice::Download, Some(&download), Some(&closed))
            .await
            .unwrap()
    );
    assert!(
        store
            .swap_data_request(&other_citizen(), Choice::Download, Some(&theirs), None)
            .await
            .unwrap()
    );
    assert_eq!(
        due(store.due_data_requests(t(60_000), None, 10).await.unwrap()),
        vec![(citizen(), Choice::Delete)]
    );
    assert_eq!(
        store
            .data_request(&other_citizen(), Choice::Download)
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn an_erasure_closes_its_request_and_forgets_flags_download_and_profile(
    store: impl Store,
) {
    let grace = std::time::Duration::from_secs(60);
    store.put_profile(&Profile::new(citizen())).await.unwrap();
    let download = DataRequest::asked(Choice::Download, T0, grace);
    let delete =
        DataRequest::asked(Choice::Delete, T0, grace).moved_to(RequestStatus::Wip, t(60_000));
    store
        .swap_data_request(&citizen(), Choice::Download, None, Some(&download))
        .await
        .unwrap();
    store
        .swap_data_request(&citizen(), Choice::Delete, None, Some(&delete))
        .await
        .unwrap();
    let id = MessageId::from_parts(T0.as_millis() as u64, 1);
    let read = FlagsChange {
        is_read: Some(true),
        is_archived: None,
    };
    store
        .change_message_flags(&citizen(), &id, read)
        .await
        .unwrap()
        .unwrap();
    store
        .change_message_flags(&other_citizen(), &id, read)
        .await
        .unwrap()
        .unwrap();
    let closed = delete.moved_to(RequestStatus::Closed, t(60_001));
    let report = store
        .erase_citizen(&Erasure {
            fiscal_code: citizen(),
            at: t(60_001),
            closes: Some(closed),
        })
        .await
        .unwrap();
    assert_eq!((report.profile, report.flags), (true, 1));
    assert_eq!(
        store
            .data_request(&citizen(), Choice::Delete)
            .await
            .unwrap(),
        Some(closed)
    );
    assert_eq!(
        store
            .data_request(&citizen(), Choice::Download)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .due_data_requests(t(10_000_000), None, 10)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store.message_flags(&citizen(), &id).await.unwrap(),
        MessageFlags::default()
    );
    assert!(
        store
            .message_flags(&other_citizen(), &id)
            .await
            .unwrap()
            .is_read
    );
    let feed = store
        .subscriptions_feed(FeedDay::of(t(60_001)), &sid("svc"))
        .await
        .unwrap();
    assert_eq!(feed.unsubscribed, vec![citizen().hash()]);
}

pub(crate) async fn a_managed_service_changes_with_its_history_and_engine_service(
    store: impl Store,
) {
    let mut draft = service("managed", 0);
    draft.organization_fiscal_code = OrganizationFiscalCode::parse("00000000000").unwrap();
    let keys = access(&[Group::ApiMessageWrite], 1, 1);
    let created = ServiceLifecycle::create(draft.clone(), keys.clone(), t(1));
    store.commit_service_change(&created).await.unwrap();
    assert_eq!(
        store.service_lifecycle(&sid("managed")).await.unwrap(),
        Some(created.lifecycle.clone())
    );
    assert_eq!(
        store.service(&sid("managed")).await.unwrap(),
        Some(created.service.clone())
    );
    assert_eq!(
        store.service_access(&sid("managed")).await.unwrap(),
        Some(keys)
    );
    // Creating it again (version 1 while 1 is stored) is refused and writes nothing.
    assert_conflict(
        store.commit_service_change(&created).await,
        "service lifecycle",
    );
    assert_eq!(
        store.service_history(&sid("managed")).await.unwrap().len(),
        1
    );

    // Two changes computed from the same read: the second is refused, nothing of it written.
    let reviewed = created.lifecycle.review(true, 1, t(2)).unwrap();
    let mut renamed = draft.clone();
    renamed.service_name = "renamed".into();
    let updated = created.lifecycle.update(renamed, 1, t(2)).unwrap();
    store.commit_service_change(&reviewed).await.unwrap();
    assert_conflict(
        store.commit_service_change(&updated).await,
        "service lifecycle",
    );
    // Approval with auto-publish adds two history items at once and publishes.
    let approved = reviewed.lifecycle.approve(2, t(3)).unwrap();
    store.commit_service_change(&approved).await.unwrap();
    let engine = store.service(&sid("managed")).await.unwrap().unwrap();
    assert!(engine.is_visible && !engine.sandboxed);
    assert_eq!(engine.version, 3);
    let history = store.service_history(&sid("managed")).await.unwrap();
    let statuses: Vec<&str> = history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(statuses, ["draft", "submitted", "approved", "published"]);
    assert_eq!(history[3].seq, 3);
    assert_eq!(history[3].kind, HistoryKind::Publication);

    // An engine service out of step with the stored one refuses the whole change.
    let mut out_of_step = approved.lifecycle.unpublish(3, t(4)).unwrap().unwrap();
    out_of_step.service.version = 9;
    assert_conflict(store.commit_service_change(&out_of_step).await, "service");
    assert_eq!(
        store.service_lifecycle(&sid("managed")).await.unwrap(),
        Some(approved.lifecycle.clone())
    );
    assert_eq!(
        store.service_history(&sid("managed")).await.unwrap().len(),
        4
    );

    // Listed by institution, in id order.
    let mut other = service("another", 0);
    other.organization_fiscal_code = OrganizationFiscalCode::parse("00000000000").unwrap();
    let second = ServiceLifecycle::create(other, access(&[], 1, 1), t(5));
    store.commit_service_change(&second).await.unwrap();
    let elsewhere = ServiceLifecycle::create(service("elsewhere", 0), access(&[], 1, 1), t(5));
    store.commit_service_change(&elsewhere).await.unwrap();
    let listed = store
        .service_lifecycles(&OrganizationFiscalCode::parse("00000000000").unwrap())
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .iter()
        .map(|l| l.service.service_id.as_str())
        .collect();
    assert_eq!(ids, ["another", "managed"]);
    assert_eq!(
        store.service_history(&sid("nothing")).await.unwrap(),
        vec![]
    );
}

/// A logo per owner: a service and an institution with the same id are two owners; an upload
/// replaces the logo kept, and removing it (or an absent one) leaves none.
pub(crate) async fn logos_are_kept_per_owner_and_replaced_whole(store: impl Store) {
    use io_core::{Logo, LogoOwner, sample_png};
    let service = LogoOwner::Service(ServiceId::parse("01234567897").unwrap());
    let institution =
        LogoOwner::Organization(OrganizationFiscalCode::parse("01234567897").unwrap());
    assert_eq!(store.logo(&service).await.unwrap(), None);

    let first = Logo::from_png(sample_png(10, 10), t(1_000)).unwrap();
    store.put_logo(&service, Some(&first)).await.unwrap();
    assert_eq!(store.logo(&service).await.unwrap(), Some(first.clone()));
    assert_eq!(store.logo(&institution).await.unwrap(), None);

    let second = Logo::from_png(sample_png(64, 32), t(2_000)).unwrap();
    store.put_logo(&service, Some(&second)).await.unwrap();
    store.put_logo(&institution, Some(&first)).await.unwrap();
    let kept = store.logo(&service).await.unwrap().unwrap();
    assert_eq!(
        (kept.width(), kept.height(), kept.updated_at()),
        (64, 32, t(2_000))
    );
    assert_eq!(kept.png(), second.png());
    assert_eq!(store.logo(&institution).await.unwrap(), Some(first));

    store.put_logo(&service, None).await.unwrap();
    store.put_logo(&service, None).await.unwrap();
    assert_eq!(store.logo(&service).await.unwrap(), None);
    assert!(store.logo(&institution).await.unwrap().is_some());
}

/// Remote-content configurations: versioned (a stale write conflicts and writes nothing) and
/// listed by institution.
pub(crate) async fn remote_content_configurations_are_versioned_and_listed_per_institution(
    store: impl Store,
) {
    use io_core::{
        ConfigurationId, HasPrecondition, RemoteAuthentication, RemoteContentConfiguration,
        RemoteEnvironment,
    };
    let ours = OrganizationFiscalCode::parse("01234567897").unwrap();
    let theirs = OrganizationFiscalCode::parse("15376371009").unwrap();
    let configuration =
        |organization: &OrganizationFiscalCode, name: &str| RemoteContentConfiguration {
            configuration_id: ConfigurationId::generate(),
            organization: organization.clone(),
            name: name.to_owned(),
            description: "Dettagli".to_owned(),
            has_precondition: HasPrecondition::Never,
            disable_lollipop_for: vec![],
            is_lollipop_enabled: false,
            prod_environment: Some(RemoteEnvironment {
                base_url: "https://avvisi.example.it".to_owned(),
                details_authentication: RemoteAuthentication {
                    header_key_name: "X-Api-Key".to_owned(),
                    key: "k".to_owned(),
                    kind: "API_KEY".to_owned(),
                },
            }),
            test_environment: None,
            test_users: vec![],
            version: 1,
        };
    let first = configuration(&ours, "primo");
    let second = configuration(&ours, "secondo");
    let foreign = configuration(&theirs, "altrui");
    for c in [&first, &second, &foreign] {
        store.put_remote_content_configuration(c).await.unwrap();
    }
    // Created twice: the second is stale.
    assert!(matches!(
        store.put_remote_content_configuration(&first).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut updated = first.clone();
    updated.name = "primo, aggiornato".to_owned();
    updated.version = 2;
    store
        .put_remote_content_configuration(&updated)
        .await
        .unwrap();
    // From the first version again, or skipping one: conflicts, nothing written.
    for version in [2, 4] {
        let mut stale = first.clone();
        stale.name = "perso".to_owned();
        stale.version = version;
        assert!(matches!(
            store.put_remote_content_configuration(&stale).await,
            Err(StoreError::Conflict { .. })
        ));
    }
    assert_eq!(
        store
            .remote_content_configuration(&first.configuration_id)
            .await
            .unwrap(),
        Some(updated.clone())
    );
    assert_eq!(
        store
            .remote_content_configuration(&ConfigurationId::generate())
            .await
            .unwrap(),
        None
    );
    let mut listed = store.remote_content_configurations(&ours).await.unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, vec![updated, second]);
    assert_eq!(
        store.remote_content_configurations(&theirs).await.unwrap(),
        vec![foreign]
    );
}

/// The review queue: every institution's managed services in one status, by service id.
pub(crate) async fn managed_services_are_listed_by_status_across_institutions(store: impl Store) {
    use io_core::LifecycleStatus;
    let mut submitted = Vec::new();
    for (id, organization, review) in [
        ("b-waiting", "00000000000", true),
        ("a-waiting", "01234567897", true),
        ("c-draft", "01234567897", false),
    ] {
        let mut draft = service(id, 0);
        draft.organization_fiscal_code = OrganizationFiscalCode::parse(organization).unwrap();
        let created =
            ServiceLifecycle::create(draft, access(&[Group::ApiMessageWrite], 1, 1), t(1));
        store.commit_service_change(&created).await.unwrap();
        if review {
            let reviewed = created.lifecycle.review(false, 1, t(2)).unwrap();
            store.commit_service_change(&reviewed).await.unwrap();
            submitted.push(reviewed.lifecycle);
        }
    }
    submitted.sort_by(|a, b| a.service.service_id.cmp(&b.service.service_id));
    assert_eq!(
        store
            .service_lifecycles_with_status(LifecycleStatus::Submitted)
            .await
            .unwrap(),
        submitted
    );
    let drafts = store
        .service_lifecycles_with_status(LifecycleStatus::Draft)
        .await
        .unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].service.service_id, sid("c-draft"));
    assert!(
        store
            .service_lifecycles_with_status(LifecycleStatus::Approved)
            .await
            .unwrap()
            .is_empty()
    );
}
