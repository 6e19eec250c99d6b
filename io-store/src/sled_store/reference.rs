//! Services, their API access and their callback targets, as committer jobs.

use io_core::{
    ApiKeyOwner, CallbackTarget, KeySlot, Logo, LogoOwner, RemoteContentConfiguration, Service,
    ServiceAccess, ServiceChange, ServiceId, ServiceLifecycle, StoreError, Timestamp,
};

use super::committer::{Job, Output, Tx};
use super::keys::{self, kind};
use super::{decode, encode};

/// Writes `service` if its version follows the stored one (1 for a new service).
fn put_service_in(tx: &mut Tx<'_>, service: &Service) -> Result<(), StoreError> {
    let key = keys::text(kind::SERVICE, service.service_id.as_str());
    let expected = match tx.get(&key)? {
        Some(bytes) => decode::<Service>("service", &bytes)?.version + 1,
        None => 1,
    };
    if service.version != expected {
        return Err(StoreError::Conflict {
            what: "service",
            stored: expected.saturating_sub(1),
            given: service.version.saturating_sub(1),
        });
    }
    tx.insert(key, encode(service));
    Ok(())
}

/// Replaces a service's access and the key index in step, if its version follows the stored
/// one.
fn put_access_in(
    tx: &mut Tx<'_>,
    service: &ServiceId,
    access: &ServiceAccess,
) -> Result<(), StoreError> {
    let key = keys::text(kind::ACCESS, service.as_str());
    let previous = match tx.get(&key)? {
        Some(bytes) => Some(decode::<ServiceAccess>("service access", &bytes)?),
        None => None,
    };
    let expected = previous.as_ref().map_or(1, |previous| previous.version + 1);
    if access.version != expected {
        return Err(StoreError::Conflict {
            what: "service access",
            stored: expected - 1,
            given: access.version.saturating_sub(1),
        });
    }
    if let Some(previous) = previous {
        for slot in KeySlot::ALL {
            let old = previous.key_hash(slot);
            if KeySlot::ALL.iter().all(|s| access.key_hash(*s) != old) {
                tx.remove(keys::raw(kind::API_KEY, old));
            }
        }
    }
    for slot in KeySlot::ALL {
        let owner = ApiKeyOwner {
            service_id: service.clone(),
            slot,
        };
        tx.insert(
            keys::raw(kind::API_KEY, access.key_hash(slot)),
            encode(&owner),
        );
    }
    tx.insert(key, encode(access));
    Ok(())
}

/// The job of `put_service`.
pub(crate) fn put_service(service: Service) -> Job {
    Box::new(move |tx| {
        put_service_in(tx, &service)?;
        Ok(Output::Done)
    })
}

/// The job of `put_service_with_access`.
pub(crate) fn put_service_with_access(service: Service, access: ServiceAccess) -> Job {
    Box::new(move |tx| {
        put_service_in(tx, &service)?;
        put_access_in(tx, &service.service_id, &access)?;
        Ok(Output::Done)
    })
}

/// The job of `put_service_access`.
pub(crate) fn put_access(service: ServiceId, access: ServiceAccess) -> Job {
    Box::new(move |tx| {
        put_access_in(tx, &service, &access)?;
        Ok(Output::Done)
    })
}

/// The job of `put_callback`.
pub(crate) fn put_callback(service: ServiceId, target: Option<CallbackTarget>) -> Job {
    Box::new(move |tx| {
        let key = keys::text(kind::CALLBACK, service.as_str());
        match &target {
            Some(target) => tx.insert(key, encode(target)),
            None => tx.remove(key),
        }
        Ok(Output::Done)
    })
}

/// The job of `put_logo`.
pub(crate) fn put_logo(owner: LogoOwner, logo: Option<Logo>) -> Job {
    Box::new(move |tx| {
        let key = keys::logo(&owner);
        match &logo {
            Some(logo) => tx.insert(key, encode_logo(logo)),
            None => tx.remove(key),
        }
        Ok(Output::Done)
    })
}

/// A logo's value: its upload time, then the PNG.
fn encode_logo(logo: &Logo) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + logo.png().len());
    value.extend_from_slice(&logo.updated_at().as_millis().to_be_bytes());
    value.extend_from_slice(logo.png());
    value
}

/// A logo back from its value.
pub(crate) fn decode_logo(value: &[u8]) -> Result<Logo, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "logo",
        detail,
    };
    let (time, png) = value
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("a value shorter than its layout".into()))?;
    Logo::from_stored(
        png.to_vec(),
        Timestamp::from_millis(i64::from_be_bytes(*time)),
    )
    .map_err(|e| corrupt(e.to_string()))
}

/// The job of `put_remote_content_configuration`: its version follows the stored one.
pub(crate) fn put_remote_content(configuration: RemoteContentConfiguration) -> Job {
    Box::new(move |tx| {
        let key = keys::text(
            kind::REMOTE_CONTENT,
            configuration.configuration_id.as_str(),
        );
        let stored = match tx.get(&key)? {
            Some(bytes) => {
                decode::<RemoteContentConfiguration>("remote-content configuration", &bytes)?
                    .version
            }
            None => 0,
        };
        if configuration.version != stored + 1 {
            return Err(StoreError::Conflict {
                what: "remote-content configuration",
                stored,
                given: configuration.version.saturating_sub(1),
            });
        }
        tx.insert(key, encode(&configuration));
        Ok(Output::Done)
    })
}

/// The job of `commit_service_change`: the lifecycle and the engine's service each follow
/// their stored versions, the history items follow the stored history.
pub(crate) fn commit_service_change(change: ServiceChange) -> Job {
    Box::new(move |tx| {
        let id = &change.lifecycle.service.service_id;
        let key = keys::text(kind::LIFECYCLE, id.as_str());
        let stored = match tx.get(&key)? {
            Some(bytes) => Some(decode::<ServiceLifecycle>("service lifecycle", &bytes)?),
            None => None,
        };
        let expected = stored.as_ref().map_or(1, |s| s.version + 1);
        if change.lifecycle.version != expected {
            return Err(StoreError::Conflict {
                what: "service lifecycle",
                stored: expected - 1,
                given: change.lifecycle.version.saturating_sub(1),
            });
        }
        let first = stored.as_ref().map_or(0, |s| s.history_len);
        for (seq, item) in (first..).zip(&change.history) {
            if item.seq != seq {
                return Err(StoreError::Conflict {
                    what: "service history",
                    stored: seq,
                    given: item.seq,
                });
            }
            tx.insert(keys::history(id, item.seq), encode(item));
        }
        put_service_in(tx, &change.service)?;
        if let Some(access) = &change.access {
            put_access_in(tx, id, access)?;
        }
        tx.insert(key, encode(&change.lifecycle));
        Ok(Output::Done)
    })
}
