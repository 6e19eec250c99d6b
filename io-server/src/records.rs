//! The server's own records, kept in the engine's store as auxiliary records
//! (`Store::put_record`), one space each:
//!
//! | space | key | value |
//! |---|---|---|
//! | `credentials` | service id | groups and the generation of each key |
//! | `api_keys` | SHA-256 of a key | service id, slot, generation |
//! | `message_flags` | fiscal code + message id | the citizen's read / archived flags |
//! | `subscriptions` | day, scope (`*` or a service id), citizen hash | `S` or `U` |
//! | `email_owners` | a validated email address (lower case) | the fiscal code owning it |
//! | `data_requests` | fiscal code, choice | a GDPR request |
//! | `data_requests_due` | due time (ms, big-endian), fiscal code, choice | nothing: a hint |

use std::sync::Arc;

use io_core::{FiscalCode, FiscalCodeHash, MessageId, ServiceId, Store, StoreError, Timestamp};
use io_store::SledStore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::api_keys::{KeyDeriver, KeySlot, constant_time_eq, key_hash};
use crate::groups::Groups;

const CREDENTIALS: &str = "credentials";
const API_KEYS: &str = "api_keys";
const MESSAGE_FLAGS: &str = "message_flags";
const SUBSCRIPTIONS: &str = "subscriptions";
const EMAIL_OWNERS: &str = "email_owners";
const DATA_REQUESTS: &str = "data_requests";
const DATA_REQUESTS_DUE: &str = "data_requests_due";

/// The store the server runs on.
pub type AppStore = SledStore;

/// A service's permission groups and key generations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// What the service's keys may do.
    pub groups: Groups,
    /// Generation of the primary key (bumped on regeneration).
    pub primary: u64,
    /// Generation of the secondary key.
    pub secondary: u64,
}

impl Credentials {
    /// The generation of `slot`.
    pub fn generation(&self, slot: KeySlot) -> u64 {
        match slot {
            KeySlot::Primary => self.primary,
            KeySlot::Secondary => self.secondary,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyIndexEntry {
    service_id: ServiceId,
    slot: KeySlot,
    generation: u64,
}

/// The citizen's flags on one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFlags {
    /// Read (one-way: never goes back to false).
    pub is_read: bool,
    /// Archived.
    pub is_archived: bool,
}

/// A subscription change of the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// The citizen can now be written to.
    Subscribed,
    /// The citizen can no longer be written to.
    Unsubscribed,
}

/// Which services a subscription event concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedScope {
    /// Every service (a profile created or deleted).
    AllServices,
    /// One service (a preference changed).
    Service(ServiceId),
}

/// A GDPR request in the schedule of due requests: a hint that (fiscal code, choice) may need
/// carrying out from `due` on. The request record itself says whether it still does, so a
/// hint written by a request that never got stored, or left by one since aborted or
/// replaced, is only dropped by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledRequest {
    /// From when the request may be carried out.
    pub due: Timestamp,
    /// Whose request.
    pub fiscal_code: FiscalCode,
    /// Which request (`DOWNLOAD` or `DELETE`).
    pub choice: String,
}

impl ScheduledRequest {
    /// Time first, so a scan in key order meets due requests first.
    fn key(&self) -> Vec<u8> {
        let millis = u64::try_from(self.due.as_millis()).unwrap_or(0);
        let mut key = millis.to_be_bytes().to_vec();
        key.extend_from_slice(self.fiscal_code.as_str().as_bytes());
        key.extend_from_slice(self.choice.as_bytes());
        key
    }

    fn from_key(key: &[u8]) -> Result<Self, StoreError> {
        let bad = || corrupt(DATA_REQUESTS_DUE, "malformed key");
        let (due, rest) = key.split_first_chunk::<8>().ok_or_else(bad)?;
        let (fiscal_code, choice) = rest.split_at_checked(16).ok_or_else(bad)?;
        let due = i64::try_from(u64::from_be_bytes(*due)).map_err(|_| bad())?;
        Ok(Self {
            due: Timestamp::from_millis(due),
            fiscal_code: FiscalCode::parse(&String::from_utf8_lossy(fiscal_code))
                .map_err(|e| corrupt(DATA_REQUESTS_DUE, e))?,
            choice: String::from_utf8_lossy(choice).into_owned(),
        })
    }
}

/// Typed access to the server's records.
#[derive(Clone)]
pub struct Records {
    store: Arc<AppStore>,
}

fn corrupt(what: &'static str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: error.to_string(),
    }
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what, e))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("server records serialize")
}

impl Records {
    /// Records in `store`.
    pub fn new(store: Arc<AppStore>) -> Self {
        Self { store }
    }

    /// A service's credentials.
    pub async fn credentials(
        &self,
        service: &ServiceId,
    ) -> Result<Option<Credentials>, StoreError> {
        match self
            .store
            .record(CREDENTIALS, service.as_str().as_bytes())
            .await?
        {
            Some(bytes) => decode(CREDENTIALS, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores a service's credentials and indexes both of its keys (dropping the index entries
    /// of keys replaced by a new generation).
    pub async fn put_credentials(
        &self,
        service: &ServiceId,
        credentials: &Credentials,
        deriver: &KeyDeriver,
    ) -> Result<(), StoreError> {
        let previous = self.credentials(service).await?;
        for slot in [KeySlot::Primary, KeySlot::Secondary] {
            let generation = credentials.generation(slot);
            let entry = KeyIndexEntry {
                service_id: service.clone(),
                slot,
                generation,
            };
            let key = deriver.key(service, slot, generation);
            self.store
                .put_record(API_KEYS, &key_hash(&key), Some(&encode(&entry)))
                .await?;
        }
        self.store
            .put_record(
                CREDENTIALS,
                service.as_str().as_bytes(),
                Some(&encode(credentials)),
            )
            .await?;
        if let Some(previous) = previous {
            for slot in [KeySlot::Primary, KeySlot::Secondary] {
                let old = previous.generation(slot);
                if old != credentials.generation(slot) {
                    let key = deriver.key(service, slot, old);
                    self.store
                        .put_record(API_KEYS, &key_hash(&key), None)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The service a presented key belongs to, with its groups, if the key is current.
    pub async fn authenticate(
        &self,
        presented: &str,
        deriver: &KeyDeriver,
    ) -> Result<Option<(ServiceId, Groups)>, StoreError> {
        let hash = key_hash(presented);
        let Some(bytes) = self.store.record(API_KEYS, &hash).await? else {
            return Ok(None);
        };
        let entry: KeyIndexEntry = decode(API_KEYS, &bytes)?;
        let Some(credentials) = self.credentials(&entry.service_id).await? else {
            return Ok(None);
        };
        if credentials.generation(entry.slot) != entry.generation {
            return Ok(None);
        }
        // The index was found by hash; confirm the key itself, in constant time.
        let expected = deriver.key(&entry.service_id, entry.slot, entry.generation);
        if !constant_time_eq(expected.as_bytes(), presented.as_bytes()) {
            return Ok(None);
        }
        Ok(Some((entry.service_id, credentials.groups)))
    }

    /// A citizen's flags on a message (all false when never set).
    pub async fn message_flags(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
    ) -> Result<MessageFlags, StoreError> {
        match self
            .store
            .record(MESSAGE_FLAGS, &flags_key(fiscal_code, message))
            .await?
        {
            Some(bytes) => decode(MESSAGE_FLAGS, &bytes),
            None => Ok(MessageFlags::default()),
        }
    }

    /// Stores a citizen's flags on a message.
    pub async fn put_message_flags(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
        flags: MessageFlags,
    ) -> Result<(), StoreError> {
        self.store
            .put_record(
                MESSAGE_FLAGS,
                &flags_key(fiscal_code, message),
                Some(&encode(&flags)),
            )
            .await
    }

    /// Changes a citizen's flags on a message with `change`, atomically: a concurrent change
    /// makes `change` run again on what that one stored, so neither is lost (and a read flag,
    /// once stored, is seen by every later change). Returns the flags stored.
    pub async fn update_message_flags<E: From<StoreError>>(
        &self,
        fiscal_code: &FiscalCode,
        message: &MessageId,
        mut change: impl FnMut(MessageFlags) -> Result<MessageFlags, E>,
    ) -> Result<MessageFlags, E> {
        let key = flags_key(fiscal_code, message);
        let mut found = self.store.record(MESSAGE_FLAGS, &key).await?;
        loop {
            let current = match &found {
                Some(bytes) => decode(MESSAGE_FLAGS, bytes)?,
                None => MessageFlags::default(),
            };
            let next = change(current)?;
            if next == current {
                return Ok(next);
            }
            match self
                .store
                .swap_record(MESSAGE_FLAGS, &key, found.as_deref(), Some(&encode(&next)))
                .await?
            {
                Ok(()) => return Ok(next),
                Err(stored) => found = stored,
            }
        }
    }

    /// Forgets every flag a citizen set (GDPR erasure); returns how many messages had some.
    pub async fn forget_message_flags(&self, fiscal_code: &FiscalCode) -> Result<u64, StoreError> {
        let prefix = fiscal_code.as_str().as_bytes();
        let mut forgotten = 0;
        loop {
            let page = self
                .store
                .records(MESSAGE_FLAGS, prefix, None, 1000)
                .await?;
            if page.is_empty() {
                return Ok(forgotten);
            }
            for (key, _) in page {
                self.store.put_record(MESSAGE_FLAGS, &key, None).await?;
                forgotten += 1;
            }
        }
    }

    /// Records a subscription change on the day of `at` (UTC); the last change of a day wins.
    pub async fn record_subscription(
        &self,
        at: Timestamp,
        scope: &FeedScope,
        citizen: &FiscalCodeHash,
        change: Subscription,
    ) -> Result<(), StoreError> {
        let day = utc_day(at);
        let scope = match scope {
            FeedScope::AllServices => "*",
            FeedScope::Service(id) => id.as_str(),
        };
        let key = format!("{day}\0{scope}\0{}", citizen.as_str());
        let value: &[u8] = match change {
            Subscription::Subscribed => b"S",
            Subscription::Unsubscribed => b"U",
        };
        self.store
            .put_record(SUBSCRIPTIONS, key.as_bytes(), Some(value))
            .await
    }

    /// The feed of `service` for `day` (`YYYY-MM-DD`): citizens subscribed and unsubscribed
    /// that day, for all services or for this one. A service-level event overrides a
    /// profile-level one of the same day for the same citizen.
    pub async fn subscriptions_feed(
        &self,
        day: &str,
        service: &ServiceId,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut latest = std::collections::BTreeMap::new();
        for scope in ["*", service.as_str()] {
            let prefix = format!("{day}\0{scope}\0");
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = self
                    .store
                    .records(SUBSCRIPTIONS, prefix.as_bytes(), after.as_deref(), 1000)
                    .await?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                for (key, value) in page {
                    let hash = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                    latest.insert(hash, value == b"S");
                }
            }
        }
        let (subscribed, unsubscribed): (Vec<_>, Vec<_>) =
            latest.into_iter().partition(|(_, subscribed)| *subscribed);
        Ok((
            subscribed.into_iter().map(|(h, _)| h).collect(),
            unsubscribed.into_iter().map(|(h, _)| h).collect(),
        ))
    }

    /// The citizen who validated `email`, if any.
    pub async fn email_owner(&self, email: &str) -> Result<Option<FiscalCode>, StoreError> {
        match self
            .store
            .record(EMAIL_OWNERS, email.to_ascii_lowercase().as_bytes())
            .await?
        {
            Some(bytes) => {
                let raw = String::from_utf8_lossy(&bytes).into_owned();
                FiscalCode::parse(&raw)
                    .map(Some)
                    .map_err(|e| corrupt(EMAIL_OWNERS, e))
            }
            None => Ok(None),
        }
    }

    /// Claims `email` for `owner`; returns the other owner if it is taken.
    pub async fn claim_email(
        &self,
        email: &str,
        owner: &FiscalCode,
    ) -> Result<Result<(), FiscalCode>, StoreError> {
        let key = email.to_ascii_lowercase();
        match self
            .store
            .swap_record(
                EMAIL_OWNERS,
                key.as_bytes(),
                None,
                Some(owner.as_str().as_bytes()),
            )
            .await?
        {
            Ok(()) => Ok(Ok(())),
            Err(Some(found)) if found == owner.as_str().as_bytes() => Ok(Ok(())),
            Err(Some(found)) => FiscalCode::parse(&String::from_utf8_lossy(&found))
                .map(Err)
                .map_err(|e| corrupt(EMAIL_OWNERS, e)),
            // Deleted meanwhile: claim again.
            Err(None) => Box::pin(self.claim_email(email, owner)).await,
        }
    }

    /// Releases `email` if `owner` holds it.
    pub async fn release_email(&self, email: &str, owner: &FiscalCode) -> Result<(), StoreError> {
        let key = email.to_ascii_lowercase();
        self.store
            .swap_record(
                EMAIL_OWNERS,
                key.as_bytes(),
                Some(owner.as_str().as_bytes()),
                None,
            )
            .await
            .map(drop)
    }

    /// A GDPR request record (JSON), by citizen and choice.
    pub async fn data_request<T: DeserializeOwned>(
        &self,
        fiscal_code: &FiscalCode,
        choice: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = format!("{}\0{choice}", fiscal_code.as_str());
        match self.store.record(DATA_REQUESTS, key.as_bytes()).await? {
            Some(bytes) => decode(DATA_REQUESTS, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores (or with `None` removes) a GDPR request record.
    pub async fn put_data_request<T: Serialize>(
        &self,
        fiscal_code: &FiscalCode,
        choice: &str,
        request: Option<&T>,
    ) -> Result<(), StoreError> {
        let key = format!("{}\0{choice}", fiscal_code.as_str());
        let value = request.map(encode);
        self.store
            .put_record(DATA_REQUESTS, key.as_bytes(), value.as_deref())
            .await
    }

    /// Replaces a GDPR request record only if it still is `expected` (`None`: absent); false
    /// when it changed meanwhile. Compares decoded values, so a record written by an older
    /// version of the type compares by content, not by bytes.
    pub async fn swap_data_request<T: Serialize + DeserializeOwned + PartialEq>(
        &self,
        fiscal_code: &FiscalCode,
        choice: &str,
        expected: Option<&T>,
        new: Option<&T>,
    ) -> Result<bool, StoreError> {
        let key = format!("{}\0{choice}", fiscal_code.as_str());
        let raw = self.store.record(DATA_REQUESTS, key.as_bytes()).await?;
        let current: Option<T> = raw
            .as_deref()
            .map(|bytes| decode(DATA_REQUESTS, bytes))
            .transpose()?;
        if current.as_ref() != expected {
            return Ok(false);
        }
        let new = new.map(encode);
        Ok(self
            .store
            .swap_record(
                DATA_REQUESTS,
                key.as_bytes(),
                raw.as_deref(),
                new.as_deref(),
            )
            .await?
            .is_ok())
    }

    /// Puts a GDPR request in the schedule of due requests.
    pub async fn schedule_data_request(
        &self,
        request: &ScheduledRequest,
    ) -> Result<(), StoreError> {
        self.store
            .put_record(DATA_REQUESTS_DUE, &request.key(), Some(b""))
            .await
    }

    /// Takes a GDPR request out of the schedule (absent is fine).
    pub async fn unschedule_data_request(
        &self,
        request: &ScheduledRequest,
    ) -> Result<(), StoreError> {
        self.store
            .put_record(DATA_REQUESTS_DUE, &request.key(), None)
            .await
    }

    /// Up to `limit` scheduled requests due at `now`, earliest first, after `after` when
    /// given: the worker reads only what is due, however many requests wait.
    pub async fn due_data_requests(
        &self,
        now: Timestamp,
        after: Option<&ScheduledRequest>,
        limit: usize,
    ) -> Result<Vec<ScheduledRequest>, StoreError> {
        let after = after.map(ScheduledRequest::key);
        let page = self
            .store
            .records(DATA_REQUESTS_DUE, b"", after.as_deref(), limit)
            .await?;
        let mut due = Vec::new();
        for (key, _) in page {
            let request = ScheduledRequest::from_key(&key)?;
            if request.due > now {
                break;
            }
            due.push(request);
        }
        Ok(due)
    }
}

fn flags_key(fiscal_code: &FiscalCode, message: &MessageId) -> Vec<u8> {
    let mut key = fiscal_code.as_str().as_bytes().to_vec();
    key.extend_from_slice(&message.to_bytes());
    key
}

/// `YYYY-MM-DD` of an instant, in UTC.
pub fn utc_day(at: Timestamp) -> String {
    at.to_rfc3339()[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flag_change_made_meanwhile_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(Arc::new(SledStore::open(dir.path().join("store")).unwrap()));
        let citizen = FiscalCode::parse("RSSMRA85T10A562S").unwrap();
        let message: MessageId = "01J0000000000000000000000A".parse().unwrap();
        let mut calls = 0;
        let stored = records
            .update_message_flags(&citizen, &message, |mut flags| {
                calls += 1;
                if calls == 1 {
                    // Another request archives the message between this one's read and write.
                    let archived = MessageFlags {
                        is_read: false,
                        is_archived: true,
                    };
                    std::thread::scope(|scope| {
                        scope.spawn(|| {
                            tokio::runtime::Builder::new_current_thread()
                                .build()
                                .unwrap()
                                .block_on(records.put_message_flags(&citizen, &message, archived))
                                .unwrap();
                        });
                    });
                }
                flags.is_read = true;
                Ok::<_, StoreError>(flags)
            })
            .await
            .unwrap();
        let both = MessageFlags {
            is_read: true,
            is_archived: true,
        };
        assert_eq!((stored, calls), (both, 2));
        assert_eq!(
            records.message_flags(&citizen, &message).await.unwrap(),
            both
        );
    }
}
