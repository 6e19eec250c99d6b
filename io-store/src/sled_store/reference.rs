//! Services, their API access and their callback targets, as committer jobs.

use io_core::{
    ApiKeyOwner, CallbackTarget, KeySlot, Service, ServiceAccess, ServiceId, StoreError,
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
