//! Reference data (services, their API access and callback targets) and the citizen's records
//! (profiles with the uniqueness of validated emails, preferences, activations, installations,
//! message flags, the subscriptions feed) on PostgreSQL.
//!
//! A versioned write reads the stored version `FOR UPDATE` and writes in the same transaction,
//! so two writers from the same version cannot both succeed: the second waits for the first
//! and then finds the version moved (`Conflict`).

use io_core::{
    Activation, ApiKeyOwner, CallbackTarget, ConfigurationId, DayFeed, EmailAddress, FeedDay,
    FeedEvent, FeedScope, FiscalCode, FiscalCodeHash, FlagsChange, FlagsError, Installation,
    InstallationId, KeyHash, KeySlot, LifecycleStatus, Logo, LogoOwner, MessageFlags, MessageId,
    OrganizationFiscalCode, Profile, RecipientRecords, RemoteContentConfiguration, Service,
    ServiceAccess, ServiceChange, ServiceHistoryItem, ServiceId, ServiceLifecycle,
    ServicePreference, StoreError, Subscription, Timestamp,
};
use sqlx::{PgConnection, Row};

use super::{PostgresStore, backend, decode, encode, id_bytes, signed, unsigned};

/// The scope column of the feed: `*` for every service.
fn scope_key(scope: &FeedScope) -> &str {
    match scope {
        FeedScope::AllServices => "*",
        FeedScope::Service(id) => id.as_str(),
    }
}

/// One `body` column of a row found by a query, decoded.
async fn fetch_body<T: for<'de> serde::Deserialize<'de>>(
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    store: &PostgresStore,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    match query.fetch_optional(store.pool()).await.map_err(backend)? {
        Some(row) => decode(what, row.try_get::<&str, _>(0).map_err(backend)?).map(Some),
        None => Ok(None),
    }
}

/// Every `body` column of the rows found, decoded, in the query's order.
async fn fetch_bodies<T: for<'de> serde::Deserialize<'de>>(
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    store: &PostgresStore,
    what: &'static str,
) -> Result<Vec<T>, StoreError> {
    query
        .fetch_all(store.pool())
        .await
        .map_err(backend)?
        .iter()
        .map(|row| decode(what, row.try_get::<&str, _>(0).map_err(backend)?))
        .collect()
}

// -- Services -----------------------------------------------------------------------------------

async fn put_service_in(conn: &mut PgConnection, service: &Service) -> Result<(), StoreError> {
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT version FROM services WHERE service_id = $1 FOR UPDATE")
            .bind(service.service_id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let expected = stored.map_or(1, |v| unsigned(v) + 1);
    if service.version != expected {
        return Err(StoreError::Conflict {
            what: "service",
            stored: expected.saturating_sub(1),
            given: service.version.saturating_sub(1),
        });
    }
    sqlx::query(
        "INSERT INTO services (service_id, version, body) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (service_id) DO UPDATE SET version = excluded.version, body = excluded.body",
    )
    .bind(service.service_id.as_str())
    .bind(signed(service.version))
    .bind(encode(service))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn put_access_in(
    conn: &mut PgConnection,
    service: &ServiceId,
    access: &ServiceAccess,
) -> Result<(), StoreError> {
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT version FROM service_access WHERE service_id = $1 FOR UPDATE")
            .bind(service.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let expected = stored.map_or(1, |v| unsigned(v) + 1);
    if access.version != expected {
        return Err(StoreError::Conflict {
            what: "service access",
            stored: expected - 1,
            given: access.version.saturating_sub(1),
        });
    }
    let hashes: Vec<Vec<u8>> = KeySlot::ALL
        .iter()
        .map(|slot| access.key_hash(*slot).to_vec())
        .collect();
    // The replaced keys stop authenticating in the same write as the new ones start.
    sqlx::query("DELETE FROM api_keys WHERE service_id = $1 AND NOT (key_hash = ANY($2))")
        .bind(service.as_str())
        .bind(&hashes)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    for slot in KeySlot::ALL {
        let owner = ApiKeyOwner {
            service_id: service.clone(),
            slot,
        };
        sqlx::query(
            "INSERT INTO api_keys (key_hash, service_id, body) VALUES ($1, $2, $3::jsonb)
             ON CONFLICT (key_hash) DO UPDATE SET service_id = excluded.service_id, body = excluded.body",
        )
        .bind(access.key_hash(slot).to_vec())
        .bind(service.as_str())
        .bind(encode(&owner))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    sqlx::query(
        "INSERT INTO service_access (service_id, version, body) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (service_id) DO UPDATE SET version = excluded.version, body = excluded.body",
    )
    .bind(service.as_str())
    .bind(signed(access.version))
    .bind(encode(access))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(super) async fn put_service(
    store: &PostgresStore,
    service: &Service,
    access: Option<&ServiceAccess>,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    put_service_in(&mut tx, service).await?;
    if let Some(access) = access {
        put_access_in(&mut tx, &service.service_id, access).await?;
    }
    tx.commit().await.map_err(backend)
}

pub(super) async fn put_service_access(
    store: &PostgresStore,
    service: &ServiceId,
    access: &ServiceAccess,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    put_access_in(&mut tx, service, access).await?;
    tx.commit().await.map_err(backend)
}

pub(super) async fn service(
    store: &PostgresStore,
    id: &ServiceId,
) -> Result<Option<Service>, StoreError> {
    fetch_body(
        sqlx::query("SELECT body::text FROM services WHERE service_id = $1").bind(id.as_str()),
        store,
        "service",
    )
    .await
}

pub(super) async fn services(store: &PostgresStore) -> Result<Vec<Service>, StoreError> {
    fetch_bodies(
        sqlx::query("SELECT body::text FROM services ORDER BY service_id"),
        store,
        "service",
    )
    .await
}

/// The lifecycle, its history items, the engine's service and a new service's access, in one
/// transaction; the stored lifecycle is locked first, so a concurrent change waits and then
/// finds the version moved.
pub(super) async fn commit_service_change(
    store: &PostgresStore,
    change: &ServiceChange,
) -> Result<(), StoreError> {
    let lifecycle = &change.lifecycle;
    let id = &lifecycle.service.service_id;
    let mut tx = store.begin().await?;
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT body::text FROM service_lifecycles WHERE service_id = $1 FOR UPDATE",
    )
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    let stored: Option<ServiceLifecycle> = stored
        .map(|body| decode("service lifecycle", &body))
        .transpose()?;
    let expected = stored.as_ref().map_or(1, |s| s.version + 1);
    if lifecycle.version != expected {
        return Err(StoreError::Conflict {
            what: "service lifecycle",
            stored: expected - 1,
            given: lifecycle.version.saturating_sub(1),
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
        sqlx::query(
            "INSERT INTO service_history (service_id, seq, body) VALUES ($1, $2, $3::jsonb)",
        )
        .bind(id.as_str())
        .bind(signed(item.seq))
        .bind(encode(item))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    put_service_in(&mut tx, &change.service).await?;
    if let Some(access) = &change.access {
        put_access_in(&mut tx, id, access).await?;
    }
    sqlx::query(
        "INSERT INTO service_lifecycles (service_id, organization, version, body)
         VALUES ($1, $2, $3, $4::jsonb)
         ON CONFLICT (service_id) DO UPDATE SET organization = excluded.organization,
             version = excluded.version, body = excluded.body",
    )
    .bind(id.as_str())
    .bind(lifecycle.service.organization_fiscal_code.as_str())
    .bind(signed(lifecycle.version))
    .bind(encode(lifecycle))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub(super) async fn service_lifecycle(
    store: &PostgresStore,
    id: &ServiceId,
) -> Result<Option<ServiceLifecycle>, StoreError> {
    fetch_body(
        sqlx::query("SELECT body::text FROM service_lifecycles WHERE service_id = $1")
            .bind(id.as_str()),
        store,
        "service lifecycle",
    )
    .await
}

pub(super) async fn service_lifecycles(
    store: &PostgresStore,
    organization: &OrganizationFiscalCode,
) -> Result<Vec<ServiceLifecycle>, StoreError> {
    fetch_bodies(
        sqlx::query(
            "SELECT body::text FROM service_lifecycles WHERE organization = $1 ORDER BY service_id",
        )
        .bind(organization.as_str()),
        store,
        "service lifecycle",
    )
    .await
}

pub(super) async fn service_lifecycles_with_status(
    store: &PostgresStore,
    status: LifecycleStatus,
) -> Result<Vec<ServiceLifecycle>, StoreError> {
    // No index: the review queue is read by operators, rarely, over a small table.
    fetch_bodies(
        sqlx::query(
            "SELECT body::text FROM service_lifecycles WHERE body->>'status' = $1
             ORDER BY service_id",
        )
        .bind(status.as_str()),
        store,
        "service lifecycle",
    )
    .await
}

pub(super) async fn service_history(
    store: &PostgresStore,
    id: &ServiceId,
) -> Result<Vec<ServiceHistoryItem>, StoreError> {
    fetch_bodies(
        sqlx::query("SELECT body::text FROM service_history WHERE service_id = $1 ORDER BY seq")
            .bind(id.as_str()),
        store,
        "service history",
    )
    .await
}

pub(super) async fn service_access(
    store: &PostgresStore,
    service: &ServiceId,
) -> Result<Option<ServiceAccess>, StoreError> {
    fetch_body(
        sqlx::query("SELECT body::text FROM service_access WHERE service_id = $1")
            .bind(service.as_str()),
        store,
        "service access",
    )
    .await
}

pub(super) async fn api_key_owner(
    store: &PostgresStore,
    hash: &KeyHash,
) -> Result<Option<ApiKeyOwner>, StoreError> {
    fetch_body(
        sqlx::query("SELECT body::text FROM api_keys WHERE key_hash = $1").bind(hash.to_vec()),
        store,
        "api key",
    )
    .await
}

pub(super) async fn put_callback(
    store: &PostgresStore,
    service: &ServiceId,
    target: Option<&CallbackTarget>,
) -> Result<(), StoreError> {
    match target {
        Some(target) => sqlx::query(
            "INSERT INTO callback_targets (service_id, body) VALUES ($1, $2::jsonb)
             ON CONFLICT (service_id) DO UPDATE SET body = excluded.body",
        )
        .bind(service.as_str())
        .bind(encode(target)),
        None => {
            sqlx::query("DELETE FROM callback_targets WHERE service_id = $1").bind(service.as_str())
        }
    }
    .execute(store.pool())
    .await
    .map_err(backend)?;
    Ok(())
}

pub(super) async fn callback(
    store: &PostgresStore,
    service: &ServiceId,
) -> Result<Option<CallbackTarget>, StoreError> {
    fetch_body(
        sqlx::query("SELECT body::text FROM callback_targets WHERE service_id = $1")
            .bind(service.as_str()),
        store,
        "callback",
    )
    .await
}

pub(super) async fn put_remote_content(
    store: &PostgresStore,
    configuration: &RemoteContentConfiguration,
) -> Result<(), StoreError> {
    let id = configuration.configuration_id.as_str();
    let written = if configuration.version == 1 {
        sqlx::query(
            "INSERT INTO remote_content_configurations (configuration_id, organization, version, body)
             VALUES ($1, $2, 1, $3::jsonb) ON CONFLICT (configuration_id) DO NOTHING",
        )
        .bind(id)
        .bind(configuration.organization.as_str())
        .bind(encode(configuration))
    } else {
        sqlx::query(
            "UPDATE remote_content_configurations
             SET version = $2, body = $3::jsonb, organization = $4
             WHERE configuration_id = $1 AND version = $2 - 1",
        )
        .bind(id)
        .bind(signed(configuration.version))
        .bind(encode(configuration))
        .bind(configuration.organization.as_str())
    }
    .execute(store.pool())
    .await
    .map_err(backend)?
    .rows_affected();
    if written == 1 {
        return Ok(());
    }
    let stored: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM remote_content_configurations WHERE configuration_id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(backend)?;
    Err(StoreError::Conflict {
        what: "remote-content configuration",
        stored: stored.map_or(0, |v| v as u64),
        given: configuration.version.saturating_sub(1),
    })
}

pub(super) async fn remote_content(
    store: &PostgresStore,
    id: &ConfigurationId,
) -> Result<Option<RemoteContentConfiguration>, StoreError> {
    fetch_body(
        sqlx::query(
            "SELECT body::text FROM remote_content_configurations WHERE configuration_id = $1",
        )
        .bind(id.as_str()),
        store,
        "remote-content configuration",
    )
    .await
}

pub(super) async fn remote_contents(
    store: &PostgresStore,
    organization: &OrganizationFiscalCode,
) -> Result<Vec<RemoteContentConfiguration>, StoreError> {
    fetch_bodies(
        sqlx::query(
            "SELECT body::text FROM remote_content_configurations WHERE organization = $1
             ORDER BY configuration_id",
        )
        .bind(organization.as_str()),
        store,
        "remote-content configuration",
    )
    .await
}

/// A logo's owner as its table's key.
fn logo_key(owner: &LogoOwner) -> (&'static str, &str) {
    match owner {
        LogoOwner::Service(id) => ("service", id.as_str()),
        LogoOwner::Organization(code) => ("organization", code.as_str()),
    }
}

pub(super) async fn put_logo(
    store: &PostgresStore,
    owner: &LogoOwner,
    logo: Option<&Logo>,
) -> Result<(), StoreError> {
    let (kind, id) = logo_key(owner);
    match logo {
        Some(logo) => sqlx::query(
            "INSERT INTO logos (owner_kind, owner_id, updated_at, png) VALUES ($1, $2, $3, $4)
             ON CONFLICT (owner_kind, owner_id)
             DO UPDATE SET updated_at = excluded.updated_at, png = excluded.png",
        )
        .bind(kind)
        .bind(id)
        .bind(logo.updated_at().as_millis())
        .bind(logo.png()),
        None => sqlx::query("DELETE FROM logos WHERE owner_kind = $1 AND owner_id = $2")
            .bind(kind)
            .bind(id),
    }
    .execute(store.pool())
    .await
    .map_err(backend)?;
    Ok(())
}

pub(super) async fn logo(
    store: &PostgresStore,
    owner: &LogoOwner,
) -> Result<Option<Logo>, StoreError> {
    let (kind, id) = logo_key(owner);
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT updated_at, png FROM logos WHERE owner_kind = $1 AND owner_id = $2")
            .bind(kind)
            .bind(id)
            .fetch_optional(store.pool())
            .await
            .map_err(backend)?;
    row.map(|(updated_at, png)| {
        Logo::from_stored(png, Timestamp::from_millis(updated_at)).map_err(|e| {
            StoreError::Corrupt {
                what: "logo",
                detail: e.to_string(),
            }
        })
    })
    .transpose()
}

// -- Profiles -----------------------------------------------------------------------------------

/// The key of a validated email's owner: addresses compare without regard to case.
fn email_key(email: &EmailAddress) -> String {
    email.as_str().to_ascii_lowercase()
}

/// The address a profile holds validated, if any.
fn claimed(profile: &Profile) -> Option<&EmailAddress> {
    profile
        .email
        .as_ref()
        .filter(|_| profile.is_email_validated)
}

/// Writes `profile` if its version follows the stored one (0 for a new profile), keeping the
/// owners of validated emails in step.
pub(super) async fn put_profile_in(
    conn: &mut PgConnection,
    profile: &Profile,
) -> Result<(), StoreError> {
    let fiscal_code = profile.fiscal_code.as_str();
    let previous: Option<String> =
        sqlx::query_scalar("SELECT body::text FROM profiles WHERE fiscal_code = $1 FOR UPDATE")
            .bind(fiscal_code)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let previous: Option<Profile> = previous.map(|text| decode("profile", &text)).transpose()?;
    let expected = previous.as_ref().map_or(0, |p| p.version + 1);
    if profile.version != expected {
        return Err(StoreError::Conflict {
            what: "profile",
            stored: expected.saturating_sub(1),
            given: profile.version.saturating_sub(1),
        });
    }
    let before = previous.as_ref().and_then(claimed).map(email_key);
    let after = claimed(profile).map(email_key);
    if before.is_some() && before != after {
        sqlx::query("DELETE FROM validated_emails WHERE email = $1 AND fiscal_code = $2")
            .bind(before.as_deref())
            .bind(fiscal_code)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    if let Some(email) = &after {
        // The primary key decides between two citizens validating one address at once.
        let owner: Option<String> = sqlx::query_scalar(
            "INSERT INTO validated_emails (email, fiscal_code) VALUES ($1, $2)
             ON CONFLICT (email) DO UPDATE SET email = excluded.email
             RETURNING fiscal_code",
        )
        .bind(email)
        .bind(fiscal_code)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        if owner.as_deref() != Some(fiscal_code) {
            return Err(StoreError::Taken {
                what: "validated email address",
            });
        }
    }
    sqlx::query(
        "INSERT INTO profiles (fiscal_code, version, body) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (fiscal_code) DO UPDATE SET version = excluded.version, body = excluded.body",
    )
    .bind(fiscal_code)
    .bind(signed(profile.version))
    .bind(encode(profile))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Records a feed event (the last of a day per scope and citizen wins).
pub(super) async fn feed_in(conn: &mut PgConnection, event: &FeedEvent) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO feed (day, scope, citizen, subscribed) VALUES ($1, $2, $3, $4)
         ON CONFLICT (day, scope, citizen) DO UPDATE SET subscribed = excluded.subscribed",
    )
    .bind(FeedDay::of(event.at).days_since_epoch())
    .bind(scope_key(&event.scope))
    .bind(event.citizen.as_str())
    .bind(event.change == Subscription::Subscribed)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(super) async fn put_profile(
    store: &PostgresStore,
    profile: &Profile,
    event: Option<&FeedEvent>,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    put_profile_in(&mut tx, profile).await?;
    if let Some(event) = event {
        feed_in(&mut tx, event).await?;
    }
    tx.commit().await.map_err(backend)
}

pub(super) async fn profile(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
) -> Result<Option<Profile>, StoreError> {
    fetch_body(
        sqlx::query("SELECT body::text FROM profiles WHERE fiscal_code = $1")
            .bind(fiscal_code.as_str()),
        store,
        "profile",
    )
    .await
}

pub(super) async fn profiles_of(
    store: &PostgresStore,
    citizens: &[FiscalCode],
) -> Result<Vec<Profile>, StoreError> {
    let codes: Vec<&str> = citizens.iter().map(FiscalCode::as_str).collect();
    fetch_bodies(
        sqlx::query("SELECT body::text FROM profiles WHERE fiscal_code = ANY($1)").bind(codes),
        store,
        "profile",
    )
    .await
}

pub(super) async fn recipient(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    service: &ServiceId,
    activation: bool,
    devices: bool,
) -> Result<RecipientRecords, StoreError> {
    // One row whether or not the profile exists; the preference is the one stored under the
    // profile's settings version (none without a profile).
    let row = sqlx::query(
        "SELECT p.body::text,
             (SELECT r.body::text FROM preferences r
              WHERE r.fiscal_code = $1 AND r.service_id = $2
                AND r.settings_version =
                    (p.body->'service_preferences_settings'->>'version')::bigint),
             (SELECT a.body::text FROM activations a
              WHERE $3 AND a.service_id = $2 AND a.fiscal_code = $1),
             $4 AND EXISTS (SELECT 1 FROM installations i WHERE i.fiscal_code = $1)
         FROM (SELECT 1) AS one LEFT JOIN profiles p ON p.fiscal_code = $1",
    )
    .bind(fiscal_code.as_str())
    .bind(service.as_str())
    .bind(activation)
    .bind(devices)
    .fetch_one(store.pool())
    .await
    .map_err(backend)?;
    let body = |i: usize| row.try_get::<Option<&str>, _>(i).map_err(backend);
    Ok(RecipientRecords {
        profile: body(0)?.map(|text| decode("profile", text)).transpose()?,
        preference: body(1)?
            .map(|text| decode("preference", text))
            .transpose()?,
        activation: body(2)?
            .map(|text| decode("activation", text))
            .transpose()?,
        has_devices: row.try_get(3).map_err(backend)?,
    })
}

pub(super) async fn email_owner(
    store: &PostgresStore,
    email: &EmailAddress,
) -> Result<Option<FiscalCode>, StoreError> {
    let owner: Option<String> =
        sqlx::query_scalar("SELECT fiscal_code FROM validated_emails WHERE email = $1")
            .bind(email_key(email))
            .fetch_optional(store.pool())
            .await
            .map_err(backend)?;
    owner
        .map(|owner| {
            FiscalCode::parse(&owner).map_err(|e| StoreError::Corrupt {
                what: "email owner",
                detail: e.to_string(),
            })
        })
        .transpose()
}

// -- Preferences, activations, installations ----------------------------------------------------

pub(super) async fn put_preference(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    preference: &ServicePreference,
    event: Option<&FeedEvent>,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    sqlx::query(
        "INSERT INTO preferences (fiscal_code, service_id, settings_version, body)
         VALUES ($1, $2, $3, $4::jsonb)
         ON CONFLICT (fiscal_code, service_id, settings_version) DO UPDATE SET body = excluded.body",
    )
    .bind(fiscal_code.as_str())
    .bind(preference.service_id.as_str())
    .bind(signed(preference.settings_version))
    .bind(encode(preference))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if let Some(event) = event {
        feed_in(&mut tx, event).await?;
    }
    tx.commit().await.map_err(backend)
}

pub(super) async fn preference(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    service: &ServiceId,
    settings_version: u64,
) -> Result<Option<ServicePreference>, StoreError> {
    fetch_body(
        sqlx::query(
            "SELECT body::text FROM preferences
             WHERE fiscal_code = $1 AND service_id = $2 AND settings_version = $3",
        )
        .bind(fiscal_code.as_str())
        .bind(service.as_str())
        .bind(signed(settings_version)),
        store,
        "preference",
    )
    .await
}

pub(super) async fn preferences_of(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
) -> Result<Vec<ServicePreference>, StoreError> {
    fetch_bodies(
        sqlx::query(
            "SELECT body::text FROM preferences WHERE fiscal_code = $1
             ORDER BY service_id, settings_version",
        )
        .bind(fiscal_code.as_str()),
        store,
        "preference",
    )
    .await
}

pub(super) async fn put_activation(
    store: &PostgresStore,
    activation: &Activation,
) -> Result<Activation, StoreError> {
    let mut stored = activation.clone();
    // The row's version moves in the statement that writes it: concurrent writers each get
    // their own version.
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO activations (service_id, fiscal_code, version, body)
         VALUES ($1, $2, 0, $3::jsonb)
         ON CONFLICT (service_id, fiscal_code)
         DO UPDATE SET version = activations.version + 1, body = excluded.body
         RETURNING version",
    )
    .bind(activation.service_id.as_str())
    .bind(activation.fiscal_code.as_str())
    .bind(encode(activation))
    .fetch_one(store.pool())
    .await
    .map_err(backend)?;
    stored.version = unsigned(version);
    Ok(stored)
}

/// The stored activation with the row's version (the body's is whatever the writer gave).
fn activation_row(row: &sqlx::postgres::PgRow) -> Result<Activation, StoreError> {
    let mut activation: Activation =
        decode("activation", row.try_get::<&str, _>(0).map_err(backend)?)?;
    activation.version = unsigned(row.try_get::<i64, _>(1).map_err(backend)?);
    Ok(activation)
}

pub(super) async fn activation(
    store: &PostgresStore,
    service: &ServiceId,
    fiscal_code: &FiscalCode,
) -> Result<Option<Activation>, StoreError> {
    sqlx::query(
        "SELECT body::text, version FROM activations WHERE service_id = $1 AND fiscal_code = $2",
    )
    .bind(service.as_str())
    .bind(fiscal_code.as_str())
    .fetch_optional(store.pool())
    .await
    .map_err(backend)?
    .as_ref()
    .map(activation_row)
    .transpose()
}

pub(super) async fn activations_of(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
) -> Result<Vec<Activation>, StoreError> {
    sqlx::query(
        "SELECT body::text, version FROM activations WHERE fiscal_code = $1 ORDER BY service_id",
    )
    .bind(fiscal_code.as_str())
    .fetch_all(store.pool())
    .await
    .map_err(backend)?
    .iter()
    .map(activation_row)
    .collect()
}

pub(super) async fn put_installation(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    installation: &Installation,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO installations (fiscal_code, installation_id, body) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (fiscal_code, installation_id) DO UPDATE SET body = excluded.body",
    )
    .bind(fiscal_code.as_str())
    .bind(installation.installation_id.as_str())
    .bind(encode(installation))
    .execute(store.pool())
    .await
    .map_err(backend)?;
    Ok(())
}

pub(super) async fn remove_installation(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    installation: &InstallationId,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM installations WHERE fiscal_code = $1 AND installation_id = $2")
        .bind(fiscal_code.as_str())
        .bind(installation.as_str())
        .execute(store.pool())
        .await
        .map_err(backend)?;
    Ok(())
}

pub(super) async fn installations(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
) -> Result<Vec<Installation>, StoreError> {
    fetch_bodies(
        sqlx::query(
            "SELECT body::text FROM installations WHERE fiscal_code = $1 ORDER BY installation_id",
        )
        .bind(fiscal_code.as_str()),
        store,
        "installation",
    )
    .await
}

pub(super) async fn installations_of(
    store: &PostgresStore,
    citizens: &[FiscalCode],
) -> Result<Vec<(FiscalCode, Vec<Installation>)>, StoreError> {
    let codes: Vec<&str> = citizens.iter().map(FiscalCode::as_str).collect();
    let rows = sqlx::query(
        "SELECT fiscal_code, body::text FROM installations WHERE fiscal_code = ANY($1)
         ORDER BY fiscal_code, installation_id",
    )
    .bind(&codes)
    .fetch_all(store.pool())
    .await
    .map_err(backend)?;
    let mut by_citizen: std::collections::HashMap<String, Vec<Installation>> =
        std::collections::HashMap::new();
    for row in rows {
        let citizen: String = row.try_get(0).map_err(backend)?;
        let installation: Installation = decode("installation", row.try_get(1).map_err(backend)?)?;
        by_citizen.entry(citizen).or_default().push(installation);
    }
    Ok(citizens
        .iter()
        .map(|citizen| {
            let devices = by_citizen
                .get(citizen.as_str())
                .cloned()
                .unwrap_or_default();
            (citizen.clone(), devices)
        })
        .collect())
}

// -- Message flags and the feed -----------------------------------------------------------------

pub(super) async fn message_flags(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    message: &MessageId,
) -> Result<MessageFlags, StoreError> {
    Ok(fetch_body(
        sqlx::query(
            "SELECT body::text FROM message_flags WHERE fiscal_code = $1 AND message_id = $2",
        )
        .bind(fiscal_code.as_str())
        .bind(id_bytes(message)),
        store,
        "message flags",
    )
    .await?
    .unwrap_or_default())
}

/// Changes the flags under the row's lock (a row of default flags is made to lock if there is
/// none; it is kept only if the change writes), so two changes at once apply one after the
/// other.
pub(super) async fn change_message_flags(
    store: &PostgresStore,
    fiscal_code: &FiscalCode,
    message: &MessageId,
    change: FlagsChange,
) -> Result<Result<MessageFlags, FlagsError>, StoreError> {
    let mut tx = store.begin().await?;
    let default = encode(&MessageFlags::default());
    sqlx::query(
        "INSERT INTO message_flags (fiscal_code, message_id, body) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT DO NOTHING",
    )
    .bind(fiscal_code.as_str())
    .bind(id_bytes(message))
    .bind(&default)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let current: String = sqlx::query_scalar(
        "SELECT body::text FROM message_flags WHERE fiscal_code = $1 AND message_id = $2 FOR UPDATE",
    )
    .bind(fiscal_code.as_str())
    .bind(id_bytes(message))
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    let current: MessageFlags = decode("message flags", &current)?;
    let changed = current.changed(change);
    if let Ok(next) = &changed
        && *next != current
    {
        sqlx::query(
            "UPDATE message_flags SET body = $3::jsonb WHERE fiscal_code = $1 AND message_id = $2",
        )
        .bind(fiscal_code.as_str())
        .bind(id_bytes(message))
        .bind(encode(next))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
    } else {
        tx.rollback().await.map_err(backend)?;
    }
    Ok(changed)
}

pub(super) async fn record_feed_event(
    store: &PostgresStore,
    event: &FeedEvent,
) -> Result<(), StoreError> {
    let mut conn = store.pool().acquire().await.map_err(backend)?;
    feed_in(&mut conn, event).await
}

pub(super) async fn subscriptions_feed(
    store: &PostgresStore,
    day: FeedDay,
    service: &ServiceId,
) -> Result<DayFeed, StoreError> {
    // A service-level event of a citizen overrides a profile-level one.
    let rows = sqlx::query(
        "SELECT DISTINCT ON (citizen) citizen, subscribed FROM feed
         WHERE day = $1 AND scope IN ('*', $2)
         ORDER BY citizen, (scope = '*')",
    )
    .bind(day.days_since_epoch())
    .bind(service.as_str())
    .fetch_all(store.pool())
    .await
    .map_err(backend)?;
    let mut feed = DayFeed::default();
    for row in rows {
        let citizen: &str = row.try_get(0).map_err(backend)?;
        let hash = FiscalCodeHash::parse(citizen).map_err(|e| StoreError::Corrupt {
            what: "feed",
            detail: e.to_string(),
        })?;
        if row.try_get::<bool, _>(1).map_err(backend)? {
            feed.subscribed.push(hash);
        } else {
            feed.unsubscribed.push(hash);
        }
    }
    Ok(feed)
}
