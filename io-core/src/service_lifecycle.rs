//! A service its institution manages itself (IO's `/manage/services`): a draft that goes to
//! review, is approved or rejected by the platform's operators, and is published to citizens
//! and unpublished by the institution (io-reference, IO's services CMS).
//!
//! The engine never reads this record: it sends with the [`Service`] each change derives
//! ([`ServiceLifecycle::engine_service`]) and the store writes in the same atomic change. Until
//! the service is published, that service is *sandboxed*: its keys write only to its
//! `authorized_recipients`.

use serde::{Deserialize, Serialize};

use crate::{Service, ServiceAccess, Timestamp};

/// Where a service stands in its review (IO's `CmsServiceLifecycleStatusType`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStatus {
    /// Being written by its institution; editable.
    Draft,
    /// Sent to review: frozen until the platform approves or rejects it.
    Submitted,
    /// Approved: the institution may publish it.
    Approved,
    /// Rejected with a reason: it goes to review again only once edited.
    Rejected,
    /// Deleted by its institution: gone from every listing, sends nothing.
    Deleted,
}

impl LifecycleStatus {
    /// IO's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Deleted => "deleted",
        }
    }
}

/// Whether citizens see a released version (IO's `CmsServicePublicationStatusType`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublicationStatus {
    /// Listed to citizens and sending to any of them.
    Published,
    /// Taken down by its institution; it may be released again.
    Unpublished,
}

impl PublicationStatus {
    /// IO's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Unpublished => "unpublished",
        }
    }
}

/// The last released version of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// Published or unpublished.
    pub status: PublicationStatus,
    /// The version released: the draft as it was approved.
    pub service: Service,
    /// When the status last changed.
    pub last_update: Timestamp,
}

/// A managed service: its draft, its review status and its publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLifecycle {
    /// The draft: what the institution last saved. Its `version` is not used.
    pub service: Service,
    /// Where the draft stands.
    pub status: LifecycleStatus,
    /// Why the platform rejected it (only while `Rejected`).
    pub reason: Option<String>,
    /// Asked at review: publish as soon as the platform approves.
    pub auto_publish: bool,
    /// The last released version, if any.
    pub publication: Option<Publication>,
    /// When the draft or its status last changed.
    pub last_update: Timestamp,
    /// 1 on creation, one more at every change: the store refuses a change computed from a
    /// stale read (`Conflict`), so two concurrent changes cannot undo each other.
    pub version: u64,
    /// How many history items the service has (the next item's sequence number).
    pub history_len: u64,
}

/// Which record a history item follows.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryKind {
    /// A change of the draft or of its review status.
    Lifecycle,
    /// A release or an unpublication.
    Publication,
}

/// One change of a managed service, kept for its institution (IO's `CmsServiceHistoryItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHistoryItem {
    /// Position in the service's history, from 0.
    pub seq: u64,
    /// Lifecycle or publication.
    pub kind: HistoryKind,
    /// The status reached: a lifecycle or a publication status, by IO's name.
    pub status: String,
    /// The rejection's reason.
    pub reason: Option<String>,
    /// The service's data after the change.
    pub service: Service,
    /// When.
    pub at: Timestamp,
}

/// What `Store::commit_service_change` writes atomically: the lifecycle, its new history
/// items, the service the engine sends with and, for a new service, its API access.
#[derive(Debug, Clone)]
pub struct ServiceChange {
    /// The lifecycle after the change (version: the stored one plus one, 1 for a new one).
    pub lifecycle: ServiceLifecycle,
    /// The history items the change adds, numbered from the stored `history_len`.
    pub history: Vec<ServiceHistoryItem>,
    /// The service the engine sends with (version: the stored one plus one, 1 for a new one).
    pub service: Service,
    /// A new service's API access.
    pub access: Option<ServiceAccess>,
}

/// A change the service's status does not allow (IO answers 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The action needs another lifecycle status.
    #[error("a service in status {status} cannot be {action}")]
    Status {
        /// What was asked.
        action: &'static str,
        /// The service's status.
        status: &'static str,
    },
    /// A rejected service goes to review again only once edited.
    #[error("a rejected service must be edited before it is sent to review again")]
    RejectedUnchanged,
    /// Unpublishing a service never released.
    #[error("the service has never been published")]
    NeverPublished,
}

impl ServiceLifecycle {
    /// A new draft (version 1), and the change that stores it with its access.
    pub fn create(service: Service, access: ServiceAccess, now: Timestamp) -> ServiceChange {
        let lifecycle = ServiceLifecycle {
            service,
            status: LifecycleStatus::Draft,
            reason: None,
            auto_publish: false,
            publication: None,
            last_update: now,
            version: 0,
            history_len: 0,
        };
        lifecycle.change(Some(access), 0, &[HistoryKind::Lifecycle], now)
    }

    /// Replaces the draft: allowed unless the service is under review; the service becomes a
    /// draft again (a published version stays published until a new one is released).
    pub fn update(
        &self,
        service: Service,
        engine_version: u64,
        now: Timestamp,
    ) -> Result<ServiceChange, LifecycleError> {
        self.require_not(LifecycleStatus::Submitted, "updated")?;
        let mut next = self.clone();
        next.service = service;
        next.status = LifecycleStatus::Draft;
        next.reason = None;
        Ok(next.change(None, engine_version, &[HistoryKind::Lifecycle], now))
    }

    /// Sends the draft to review, asking for publication on approval or not.
    pub fn review(
        &self,
        auto_publish: bool,
        engine_version: u64,
        now: Timestamp,
    ) -> Result<ServiceChange, LifecycleError> {
        match self.status {
            LifecycleStatus::Draft => {}
            LifecycleStatus::Rejected => return Err(LifecycleError::RejectedUnchanged),
            other => return Err(status_error("sent to review", other)),
        }
        let mut next = self.clone();
        next.status = LifecycleStatus::Submitted;
        next.auto_publish = auto_publish;
        Ok(next.change(None, engine_version, &[HistoryKind::Lifecycle], now))
    }

    /// The platform's approval; the service is also published when its institution asked so.
    pub fn approve(
        &self,
        engine_version: u64,
        now: Timestamp,
    ) -> Result<ServiceChange, LifecycleError> {
        self.require(LifecycleStatus::Submitted, "approved")?;
        let mut next = self.clone();
        next.status = LifecycleStatus::Approved;
        if !self.auto_publish {
            return Ok(next.change(None, engine_version, &[HistoryKind::Lifecycle], now));
        }
        next.publication = Some(Publication {
            status: PublicationStatus::Published,
            service: self.service.clone(),
            last_update: now,
        });
        Ok(next.change(
            None,
            engine_version,
            &[HistoryKind::Lifecycle, HistoryKind::Publication],
            now,
        ))
    }

    /// The platform's rejection, with its reason.
    pub fn reject(
        &self,
        reason: String,
        engine_version: u64,
        now: Timestamp,
    ) -> Result<ServiceChange, LifecycleError> {
        self.require(LifecycleStatus::Submitted, "rejected")?;
        let mut next = self.clone();
        next.status = LifecycleStatus::Rejected;
        next.reason = Some(reason);
        Ok(next.change(None, engine_version, &[HistoryKind::Lifecycle], now))
    }

    /// Publishes the approved draft: citizens see it and it sends to any of them.
    pub fn release(
        &self,
        engine_version: u64,
        now: Timestamp,
    ) -> Result<ServiceChange, LifecycleError> {
        self.require(LifecycleStatus::Approved, "published")?;
        let mut next = self.clone();
        next.publication = Some(Publication {
            status: PublicationStatus::Published,
            service: self.service.clone(),
            last_update: now,
        });
        Ok(next.change(None, engine_version, &[HistoryKind::Publication], now))
    }

    /// Takes the published version down; `None` when it is already unpublished (nothing to
    /// write).
    pub fn unpublish(
        &self,
        engine_version: u64,
        now: Timestamp,
    ) -> Result<Option<ServiceChange>, LifecycleError> {
        let Some(publication) = &self.publication else {
            return Err(LifecycleError::NeverPublished);
        };
        if publication.status == PublicationStatus::Unpublished {
            return Ok(None);
        }
        let mut next = self.clone();
        next.publication = Some(Publication {
            status: PublicationStatus::Unpublished,
            service: publication.service.clone(),
            last_update: now,
        });
        Ok(Some(next.change(
            None,
            engine_version,
            &[HistoryKind::Publication],
            now,
        )))
    }

    /// Deletes the service: unpublished, out of every listing, sending to nobody.
    pub fn delete(&self, engine_version: u64, now: Timestamp) -> ServiceChange {
        let mut next = self.clone();
        next.status = LifecycleStatus::Deleted;
        if let Some(publication) = &mut next.publication {
            publication.status = PublicationStatus::Unpublished;
            publication.last_update = now;
        }
        next.change(None, engine_version, &[HistoryKind::Lifecycle], now)
    }

    /// Whether citizens see a released version.
    pub fn is_published(&self) -> bool {
        self.publication
            .as_ref()
            .is_some_and(|p| p.status == PublicationStatus::Published)
    }

    /// The service the engine sends with: the published version while published (listed,
    /// writing to anyone), else the last released version or the draft, unlisted and
    /// sandboxed; a deleted service also loses its authorized recipients.
    pub fn engine_service(&self, version: u64) -> Service {
        let mut service = match &self.publication {
            Some(publication) => publication.service.clone(),
            None => self.service.clone(),
        };
        let published = self.is_published() && self.status != LifecycleStatus::Deleted;
        service.is_visible = published;
        service.sandboxed = !published;
        if self.status == LifecycleStatus::Deleted {
            service.authorized_recipients.clear();
        }
        service.version = version;
        service
    }

    fn require(&self, status: LifecycleStatus, action: &'static str) -> Result<(), LifecycleError> {
        if self.status == status {
            Ok(())
        } else {
            Err(status_error(action, self.status))
        }
    }

    fn require_not(
        &self,
        status: LifecycleStatus,
        action: &'static str,
    ) -> Result<(), LifecycleError> {
        if self.status == status {
            Err(status_error(action, self.status))
        } else {
            Ok(())
        }
    }

    /// `self` as the next version, with one history item per kind and the engine's service
    /// derived from it.
    fn change(
        mut self,
        access: Option<ServiceAccess>,
        engine_version: u64,
        kinds: &[HistoryKind],
        now: Timestamp,
    ) -> ServiceChange {
        self.version += 1;
        self.last_update = now;
        let mut history = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let (status, service) = match kind {
                HistoryKind::Lifecycle => (self.status.as_str(), self.service.clone()),
                HistoryKind::Publication => {
                    let publication = self
                        .publication
                        .as_ref()
                        .expect("a publication change has a publication");
                    (publication.status.as_str(), publication.service.clone())
                }
            };
            history.push(ServiceHistoryItem {
                seq: self.history_len,
                kind: *kind,
                status: status.to_owned(),
                reason: self.reason.clone(),
                service,
                at: now,
            });
            self.history_len += 1;
        }
        let service = self.engine_service(engine_version + 1);
        ServiceChange {
            lifecycle: self,
            history,
            service,
            access,
        }
    }
}

fn status_error(action: &'static str, status: LifecycleStatus) -> LifecycleError {
    LifecycleError::Status {
        action,
        status: status.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FiscalCode, Groups, OrganizationFiscalCode, ServiceId, ServiceMetadata};

    fn service() -> Service {
        Service {
            service_id: ServiceId::parse("svc").unwrap(),
            service_name: "Tari".into(),
            department_name: "Tributi".into(),
            organization_name: "Comune".into(),
            organization_fiscal_code: OrganizationFiscalCode::parse("15376371009").unwrap(),
            authorized_cidrs: vec![],
            authorized_recipients: [FiscalCode::parse("AAAAAA00A00A000A").unwrap()].into(),
            is_visible: false,
            max_allowed_payment_amount: 0,
            require_secure_channels: false,
            service_metadata: ServiceMetadata::default(),
            owner_email: None,
            version: 0,
            sandboxed: false,
        }
    }

    fn access() -> ServiceAccess {
        ServiceAccess {
            groups: Groups::default(),
            primary: 1,
            secondary: 1,
            primary_hash: [1; 32],
            secondary_hash: [2; 32],
            version: 1,
        }
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_new_service_is_a_sandboxed_unlisted_draft() {
        let change = ServiceLifecycle::create(service(), access(), at(1));
        assert_eq!(change.lifecycle.status, LifecycleStatus::Draft);
        assert_eq!(change.lifecycle.version, 1);
        assert_eq!(change.lifecycle.history_len, 1);
        assert_eq!(change.history[0].status, "draft");
        assert_eq!(change.service.version, 1);
        assert!(change.service.sandboxed && !change.service.is_visible);
        assert!(change.access.is_some());
    }

    #[test]
    fn draft_to_published_to_unpublished() {
        let c = ServiceLifecycle::create(service(), access(), at(1));
        let c = c.lifecycle.review(false, c.service.version, at(2)).unwrap();
        assert_eq!(c.lifecycle.status, LifecycleStatus::Submitted);
        let c = c.lifecycle.approve(c.service.version, at(3)).unwrap();
        assert_eq!(c.lifecycle.status, LifecycleStatus::Approved);
        assert!(c.service.sandboxed, "approval alone publishes nothing");
        let c = c.lifecycle.release(c.service.version, at(4)).unwrap();
        assert!(c.lifecycle.is_published());
        assert!(!c.service.sandboxed && c.service.is_visible);
        assert_eq!(c.history[0].kind, HistoryKind::Publication);
        assert_eq!(c.history[0].seq, 3);
        // Editing a published service keeps the released version in force.
        let mut edited = service();
        edited.service_name = "Tari 2027".into();
        let c = c
            .lifecycle
            .update(edited, c.service.version, at(5))
            .unwrap();
        assert_eq!(c.lifecycle.status, LifecycleStatus::Draft);
        assert_eq!(c.service.service_name, "Tari");
        assert!(!c.service.sandboxed);
        let c = c
            .lifecycle
            .unpublish(c.service.version, at(6))
            .unwrap()
            .unwrap();
        assert!(c.service.sandboxed && !c.service.is_visible);
        assert_eq!(c.service.version, 6);
        assert!(c.lifecycle.unpublish(6, at(7)).unwrap().is_none());
    }

    #[test]
    fn auto_publish_releases_on_approval() {
        let c = ServiceLifecycle::create(service(), access(), at(1));
        let c = c.lifecycle.review(true, 1, at(2)).unwrap();
        let c = c.lifecycle.approve(2, at(3)).unwrap();
        assert!(c.lifecycle.is_published());
        assert_eq!(c.history.len(), 2);
        assert_eq!((c.history[0].seq, c.history[1].seq), (2, 3));
        assert_eq!(c.lifecycle.version, 3);
        assert_eq!(c.service.version, 3);
    }

    #[test]
    fn status_rules() {
        let c = ServiceLifecycle::create(service(), access(), at(1));
        let draft = c.lifecycle;
        assert!(matches!(
            draft.release(1, at(2)),
            Err(LifecycleError::Status { .. })
        ));
        assert!(draft.approve(1, at(2)).is_err());
        assert_eq!(
            draft.unpublish(1, at(2)).unwrap_err(),
            LifecycleError::NeverPublished
        );
        let submitted = draft.review(false, 1, at(2)).unwrap().lifecycle;
        assert!(submitted.update(service(), 2, at(3)).is_err());
        assert!(submitted.review(false, 2, at(3)).is_err());
        let rejected = submitted
            .reject("missing privacy URL".into(), 2, at(3))
            .unwrap()
            .lifecycle;
        assert_eq!(rejected.reason.as_deref(), Some("missing privacy URL"));
        assert_eq!(
            rejected.review(false, 3, at(4)).unwrap_err(),
            LifecycleError::RejectedUnchanged
        );
        let edited = rejected.update(service(), 3, at(4)).unwrap().lifecycle;
        assert_eq!(edited.reason, None);
        assert!(edited.review(false, 4, at(5)).is_ok());
    }

    #[test]
    fn a_deleted_service_writes_to_nobody() {
        let c = ServiceLifecycle::create(service(), access(), at(1));
        let c = c.lifecycle.delete(1, at(2));
        assert_eq!(c.lifecycle.status, LifecycleStatus::Deleted);
        assert!(c.service.sandboxed);
        assert!(c.service.authorized_recipients.is_empty());
    }
}
