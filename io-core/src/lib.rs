//! # io-core
//!
//! The domain and the delivery engine of io, a message delivery engine for public
//! administrations modelled on Italy's IO platform. This crate does no I/O: it meets the world
//! only through the [`Store`], [`Channel`] and [`Clock`] traits, so an integrator can embed it
//! with any store and any channels (io-store and io-channels provide the usual ones).
//!
//! Modules, one concept each:
//! - [`fiscal_code`], [`organization_fiscal_code`], [`email_address`], [`ids`]: values validated
//!   once, at the edge.
//! - [`network`]: CIDR networks (authorized callers, trusted proxies).
//! - [`profile`], [`preference`], [`activation`], [`installation`], [`service`]: the citizen's and
//!   the sender's data (io-reference §3–§5).
//! - [`groups`], [`access`]: what a service's API keys may do, and which keys are in force.
//! - [`message_flags`], [`subscription_feed`], [`data_request`]: the citizen's read and archive
//!   flags, the services' subscriptions feed, GDPR requests.
//! - [`callback`]: sender callbacks (the journal's entries posted to the sending service).
//! - [`message`]: `NewMessage` as IO's API receives it, its validation, the stored message.
//! - [`status`], [`delivery`], [`outcome`]: where a message and each of its deliveries stand.
//! - [`decision`]: the channel decision of io-reference §4, one pure function.
//! - [`notification_text`]: the email teaser and the push texts.
//! - `openapi` (feature `openapi`): the OpenAPI schemas of the wire types' constrained fields.
//! - [`backoff`], [`rate_limit`]: the retry schedule and the delivery rate limits.
//! - [`journal`]: the hash-chained evidence journal and its verification.
//! - [`pec`]: PEC receipts and what each does to a PEC delivery.
//! - [`store`], [`channel`], [`clock`]: the traits the engine needs.
//! - [`engine`]: submit, process, dispatch, retry, expire.
//! - [`timestamp`]: instants as milliseconds since the epoch.

pub mod access;
pub mod activation;
pub mod backoff;
pub mod callback;
pub mod channel;
pub mod clock;
pub mod data_request;
pub mod decision;
pub mod delivery;
pub mod email_address;
pub mod engine;
pub mod fiscal_code;
pub mod groups;
pub mod ids;
pub mod installation;
pub mod journal;
pub mod logo;
pub mod message;
pub mod message_flags;
pub mod network;
pub mod notification_text;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod organization_fiscal_code;
pub mod outcome;
pub mod pec;
pub mod preference;
pub mod profile;
pub mod rate_limit;
pub mod remote_content;
pub mod service;
pub mod service_lifecycle;
pub mod status;
pub mod store;
pub mod subscription_feed;
pub mod timestamp;
pub mod topic;

pub use access::{ApiKeyOwner, KeyHash, KeySlot, ServiceAccess};
pub use activation::{Activation, ActivationStatus, DEFAULT_ACTIVATION_GRACE};
pub use backoff::RetryPolicy;
pub use callback::{CallbackCursor, CallbackEvent, CallbackPolicy, CallbackSender, CallbackTarget};
pub use channel::{Channel, ChannelKind, DeliveryJob, UnknownChannel};
pub use clock::{Clock, SystemClock, TokioClock};
pub use data_request::{Choice, DataRequest, RequestStatus};
pub use decision::{DecisionInput, Route, SenderAllowedInput, decide, inbox_allowed};
pub use delivery::{Delivery, DeliveryState, DeliveryTarget, FailureReason};
pub use email_address::{EmailAddress, EmailAddressError};
pub use engine::{
    Accepted, Committed, Engine, EngineConfig, EngineConfigError, Observer, RoundReport,
    Submission, SubmitError, VerifyError,
};
pub use fiscal_code::{FiscalCode, FiscalCodeError, FiscalCodeHash, SANDBOX_FISCAL_CODE};
pub use groups::{Group, Groups};
pub use ids::{DeliveryId, IdError, IdempotencyKey, MessageId, ServiceId};
pub use installation::{Installation, InstallationId, PushPlatform};
pub use journal::{JournalEntry, JournalError, JournalEvent, JournalHead};
pub use logo::{Logo, LogoError, LogoOwner, MAX_LOGO_BYTES, MAX_LOGO_SIDE, sample_png};
pub use message::{
    FeatureLevel, Message, MessageContent, NewMessage, NewMessageContent, NewPayee, NewPaymentData,
    NewPrescriptionData, NewThirdPartyData, PaymentData, PrescriptionData, SenderCapabilities,
    SenderLimits, THIRD_PARTY_TEXT_MAX, ThirdPartyData, ValidMessage, ValidationError,
};
pub use message_flags::{FlagsChange, FlagsError, MessageFlags};
pub use network::{InvalidNetwork, IpNetwork};
pub use organization_fiscal_code::{OrganizationFiscalCode, OrganizationFiscalCodeError};
pub use outcome::{Effect, Outcome, OutcomeRecord, PermanentReason, Report, TransientCause};
pub use preference::{PreferenceVersionMismatch, ServicePreference};
pub use profile::{
    BlockedChannel, PreferredLanguage, Profile, PushNotificationsContentType, ReminderStatus,
    ServicePreferencesMode, ServicePreferencesSettings, StaleVersion,
};
pub use rate_limit::{InvalidRateLimit, RateLimit, RateLimits};
pub use remote_content::{
    ConfigurationId, HasPrecondition, RemoteAuthentication, RemoteContentConfiguration,
    RemoteContentError, RemoteEnvironment,
};
pub use service::{Service, ServiceCategory, ServiceMetadata, ServiceScope};
pub use service_lifecycle::{
    HistoryKind, LifecycleError, LifecycleStatus, Publication, PublicationStatus, ServiceChange,
    ServiceHistoryItem, ServiceLifecycle,
};
pub use status::{MessageStatus, RejectionReason};
pub use store::{
    AcceptOutcome, AcceptRecord, AttemptStart, CallbackRecord, DeliveryRecord, DueRequest, Erasure,
    ErasureReport, Evidence, Lease, ProcessRecord, ReceiptOutcome, ReceiptRecord, RecipientRecords,
    Store, StoreError, StoredJournal, StoredMessage, Task, TaskKind,
};
pub use subscription_feed::{DayFeed, FeedDay, FeedEvent, FeedScope, Subscription};
pub use timestamp::{Timestamp, TimestampError};
pub use topic::{TOPICS, Topic};
