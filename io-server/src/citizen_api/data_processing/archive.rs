//! The archive a DOWNLOAD request yields: every piece of data io holds about one citizen,
//! assembled when fetched, so no second copy of it lies in the store waiting to be expired or
//! erased. IO hands out an encrypted zip; this is the same content as one JSON document.

use io_core::{
    ActivationStatus, FiscalCode, MessageFlags, Profile, PushPlatform, ServicePreference, Store,
    Timestamp,
};
use serde::Serialize;

use crate::app::App;
use crate::problem::Problem;
use crate::views::MessageResponse;

/// How many message ids the archive reads from the store at a time.
const MESSAGES_PER_READ: usize = 500;

/// Everything about one citizen.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DataArchive)]
pub struct Archive {
    #[schema(value_type = FiscalCode)]
    fiscal_code: String,
    #[schema(schema_with = io_core::openapi::timestamp)]
    generated_at: String,
    /// Null when the citizen has no profile.
    profile: Option<Profile>,
    service_preferences: Vec<ServicePreference>,
    installations: Vec<InstallationEntry>,
    activations: Vec<ActivationEntry>,
    messages: Vec<MessageEntry>,
}

/// A device, with its token: it is the citizen's data too.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ArchivedInstallation)]
struct InstallationEntry {
    #[schema(value_type = io_core::InstallationId)]
    installation_id: String,
    platform: PushPlatform,
    push_channel: String,
    #[schema(schema_with = io_core::openapi::timestamp)]
    updated_at: String,
}

/// An activation of a SPECIAL service.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ArchivedActivation)]
struct ActivationEntry {
    #[schema(value_type = io_core::ServiceId)]
    service_id: String,
    status: ActivationStatus,
    #[schema(schema_with = io_core::openapi::timestamp)]
    updated_at: String,
}

/// A message to the citizen, whatever its status, with its deliveries and the citizen's flags.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ArchivedMessage)]
struct MessageEntry {
    #[serde(flatten)]
    response: MessageResponse,
    is_read: bool,
    is_archived: bool,
}

impl Archive {
    /// The archive of `fiscal_code`'s data as it is at `now`.
    pub(super) async fn of<S: Store>(
        app: &App<S>,
        fiscal_code: &FiscalCode,
        now: Timestamp,
    ) -> Result<Self, Problem> {
        let store = &app.store;
        let installations = store
            .installations(fiscal_code)
            .await?
            .into_iter()
            .map(|i| InstallationEntry {
                installation_id: i.installation_id.as_str().to_string(),
                platform: i.platform,
                push_channel: i.push_channel,
                updated_at: i.updated_at.to_rfc3339(),
            })
            .collect();
        let activations = store
            .activations_of(fiscal_code)
            .await?
            .into_iter()
            .map(|a| ActivationEntry {
                service_id: a.service_id.as_str().to_string(),
                status: a.status,
                updated_at: a.updated_at.to_rfc3339(),
            })
            .collect();
        let mut messages = Vec::new();
        let mut after = None;
        loop {
            let ids = store
                .messages_to(fiscal_code, after, MESSAGES_PER_READ)
                .await?;
            let Some(last) = ids.last().copied() else {
                break;
            };
            for id in ids {
                // Gone meanwhile (an erasure): nothing to archive.
                let Some(stored) = store.message(&id).await? else {
                    continue;
                };
                let deliveries = store.deliveries(&id).await?;
                let MessageFlags {
                    is_read,
                    is_archived,
                } = store.message_flags(fiscal_code, &id).await?;
                messages.push(MessageEntry {
                    response: MessageResponse::new(&stored.message, stored.status, &deliveries),
                    is_read,
                    is_archived,
                });
            }
            after = Some(last);
        }
        Ok(Self {
            fiscal_code: fiscal_code.as_str().to_string(),
            generated_at: now.to_rfc3339(),
            profile: store.profile(fiscal_code).await?,
            service_preferences: store.preferences_of(fiscal_code).await?,
            installations,
            activations,
            messages,
        })
    }
}
