//! Runs the quickstart's code (through the library, as the example does) with a small load on a
//! temporary store, and checks that every citizen's messages ended exactly as the channel
//! decision of io-reference §4 says, and that every sampled journal verifies.

use std::collections::BTreeMap;
use std::sync::Arc;

use io_core::{ChannelKind, EmailAddress};
use io_examples::demo::OWNER_EMAIL;
use io_examples::{Category, QuickstartOptions, Tally, run_quickstart};
use io_store::SledStore;

const MESSAGES: usize = 300;

/// What the decision implies for `n` messages to a citizen of `category`.
fn expected(category: Category, n: usize) -> Tally {
    let statuses = |label: &str| BTreeMap::from([(label.to_owned(), n)]);
    let sent = |channels: &[ChannelKind]| {
        channels
            .iter()
            .map(|c| ((*c, "SENT".to_owned()), n))
            .collect::<BTreeMap<_, _>>()
    };
    let (statuses, deliveries) = match category {
        Category::LegacyEmail => (
            statuses("PROCESSED"),
            sent(&[ChannelKind::Inbox, ChannelKind::Email]),
        ),
        // A preference's email flag is honoured in every mode (io deviates from IO, which
        // reads it in LEGACY mode only): the AUTO citizen who turned email off gets none.
        Category::LegacyEmailBlocked
        | Category::SecureMessages
        | Category::AutoEmailOffInPreference => {
            (statuses("PROCESSED"), sent(&[ChannelKind::Inbox]))
        }
        Category::ManualNoPreference | Category::InboxDisabled => {
            (statuses("REJECTED SERVICE_NOT_ALLOWED"), sent(&[]))
        }
        Category::NoProfile => (statuses("REJECTED USER_NOT_FOUND"), sent(&[])),
        Category::Sandbox => (statuses("PROCESSED"), sent(&[ChannelKind::Email])),
    };
    Tally {
        messages: n,
        statuses,
        deliveries,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_citizen_gets_what_the_decision_implies() {
    let store = Arc::new(SledStore::temporary().expect("a temporary sled store opens"));
    let options = QuickstartOptions {
        messages: MESSAGES,
        concurrency: 64,
        // Verify every journal: the load is small.
        journal_sample: MESSAGES,
    };
    let run = run_quickstart(store, &options)
        .await
        .expect("the quickstart runs");
    let summary = &run.summary;

    assert_eq!(summary.messages, MESSAGES);
    for category in Category::ALL {
        let n = run.demo.messages_for(category, MESSAGES);
        assert!(n > 0, "{category:?} receives messages");
        let tally = summary.by_category.get(&category).cloned();
        assert_eq!(
            tally,
            Some(expected(category, n)),
            "{category:?}: {}",
            category.rule()
        );
    }

    // The email stand-in was asked for exactly the email deliveries: to the citizens' own
    // addresses, the sandbox's to the service owner, none for the secure messages.
    let owner = EmailAddress::parse(OWNER_EMAIL).unwrap();
    let mut emails = BTreeMap::new();
    for citizen in &run.demo.citizens {
        let address = match citizen.category {
            Category::LegacyEmail => citizen.profile.as_ref().unwrap().email.clone().unwrap(),
            Category::Sandbox => owner.clone(),
            _ => continue,
        };
        emails.insert(
            address,
            run.demo.messages_for(citizen.category, MESSAGES) as u64,
        );
    }
    assert_eq!(summary.email.by_address, emails);
    assert_eq!(summary.email.duplicates, 0);
    let teaser = summary.email.sample_teaser.as_deref().unwrap();
    assert!(teaser.contains("[link rimosso]") && !teaser.contains("https://"));

    assert_eq!(summary.journals_checked, MESSAGES);
    assert_eq!(summary.journal_failures, Vec::<String>::new());
    assert_eq!(summary.problems(), Vec::<String>::new());
    // Every message is decided in its accept write and the inbox delivery is SENT there too,
    // so the engine ran exactly one task per delivery to a provider channel.
    let provider_deliveries: usize = summary
        .deliveries()
        .iter()
        .filter(|((channel, _), _)| *channel != ChannelKind::Inbox)
        .map(|(_, count)| count)
        .sum();
    assert_eq!(run.tasks_run, provider_deliveries as u64);
}
