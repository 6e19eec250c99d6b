//! The quickstart's cast: one STANDARD service and one citizen per behaviour of the channel
//! decision (io-reference §4), stored the way an integrator stores reference data, with
//! `Store::put_service`, `put_profile` and `put_preference`.
//!
//! Fiscal codes are made valid with [`io_core::fiscal_code::compute_check_character`]; the
//! sandbox code `AAAAAA00A00A000A` is IO's documented exception to the check character.

use std::collections::{BTreeMap, BTreeSet};

use io_core::fiscal_code::compute_check_character;
use io_core::organization_fiscal_code::compute_check_digit;
use io_core::{
    BlockedChannel, EmailAddress, FiscalCode, IdempotencyKey, NewMessage, NewMessageContent,
    OrganizationFiscalCode, Profile, SANDBOX_FISCAL_CODE, SenderCapabilities, Service,
    ServiceCategory, ServiceId, ServiceMetadata, ServicePreference, ServicePreferencesMode,
    ServicePreferencesSettings, ServiceScope, Store, StoreError, Submission,
};

/// The demo service's id.
pub const SERVICE_ID: &str = "tari-comune-esempio";
/// The institution behind the demo service.
pub const ORGANIZATION_NAME: &str = "Comune di Esempio";
/// The first ten digits of the institution's fiscal code; the eleventh is computed.
const ORGANIZATION_CODE_PREFIX: &str = "0243875058";
/// Where messages to the sandbox fiscal code go: the address of the service's owner.
pub const OWNER_EMAIL: &str = "sviluppo@comune-esempio.example";

/// What kind of recipient a citizen is, named after what the decision does with their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// LEGACY profile with a validated email: inbox and email.
    LegacyEmail,
    /// LEGACY profile that blocked EMAIL for the service in `blocked_inbox_or_channels`: inbox
    /// only.
    LegacyEmailBlocked,
    /// AUTO profile whose preference for the service has `is_email_enabled = false`: inbox
    /// *and email*, because the decision honours a per-service EMAIL block in LEGACY mode only
    /// (io-reference §4, as IO does).
    AutoEmailOffInPreference,
    /// MANUAL profile without a preference for the service (no opt-in): REJECTED
    /// SERVICE_NOT_ALLOWED.
    ManualNoPreference,
    /// The inbox master switch is off: REJECTED SERVICE_NOT_ALLOWED.
    InboxDisabled,
    /// A valid fiscal code with no profile: REJECTED USER_NOT_FOUND.
    NoProfile,
    /// Like [`Category::LegacyEmail`], but every message to this citizen requires secure
    /// channels: inbox only, no email.
    SecureMessages,
    /// IO's sandbox code: an email to the service owner, nothing else.
    Sandbox,
}

impl Category {
    /// Every category, in the order messages are spread over them.
    pub const ALL: [Category; 8] = [
        Self::LegacyEmail,
        Self::LegacyEmailBlocked,
        Self::AutoEmailOffInPreference,
        Self::ManualNoPreference,
        Self::InboxDisabled,
        Self::NoProfile,
        Self::SecureMessages,
        Self::Sandbox,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::LegacyEmail => "legacy, email validated",
            Self::LegacyEmailBlocked => "legacy, email blocked",
            Self::AutoEmailOffInPreference => "auto, email off in preference",
            Self::ManualNoPreference => "manual, no preference",
            Self::InboxDisabled => "inbox disabled",
            Self::NoProfile => "no profile",
            Self::SecureMessages => "secure-channels messages",
            Self::Sandbox => "sandbox AAAAAA00A00A000A",
        }
    }

    /// What the decision does with this citizen's messages, and why.
    pub fn rule(self) -> &'static str {
        match self {
            Self::LegacyEmail => "inbox + email (nothing blocked, address validated)",
            Self::LegacyEmailBlocked => "inbox only (EMAIL in blocked_inbox_or_channels)",
            Self::AutoEmailOffInPreference => {
                "inbox only (the preference turns email off; IO would still email)"
            }
            Self::ManualNoPreference => "REJECTED SERVICE_NOT_ALLOWED (MANUAL needs an opt-in)",
            Self::InboxDisabled => "REJECTED SERVICE_NOT_ALLOWED (is_inbox_enabled=false)",
            Self::NoProfile => "REJECTED USER_NOT_FOUND",
            Self::SecureMessages => "inbox only (require_secure_channels suppresses email)",
            Self::Sandbox => "email to the service owner only",
        }
    }
}

/// One recipient of the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citizen {
    /// What the decision should do with their messages.
    pub category: Category,
    /// Their fiscal code.
    pub fiscal_code: FiscalCode,
    /// Their profile, `None` for the citizen without one and for the sandbox code.
    pub profile: Option<Profile>,
    /// Their preference for the demo service, if they expressed one.
    pub preference: Option<ServicePreference>,
}

/// The demo's service and citizens.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The sending service.
    pub service: Service,
    /// One citizen per [`Category`], in [`Category::ALL`] order.
    pub citizens: Vec<Citizen>,
}

/// A fiscal code from its first 15 characters, with the check character computed: `None` unless
/// `first15` is 15 characters of `[A-Z0-9]` in the shape of a fiscal code.
pub fn fiscal_code_from(first15: &str) -> Option<FiscalCode> {
    let check = compute_check_character(first15)?;
    FiscalCode::parse(&format!("{first15}{check}")).ok()
}

/// A demo literal: an invalid one is a mistake in this file, caught by the tests.
fn code(first15: &str) -> FiscalCode {
    fiscal_code_from(first15).expect("the demo's fiscal codes are well-formed literals")
}

fn email(raw: &str) -> EmailAddress {
    EmailAddress::parse(raw).expect("the demo's email addresses are well-formed literals")
}

/// A profile that confirmed `address`, in `mode`. A mode other than LEGACY is at settings
/// version 1, as if the citizen switched once (every switch bumps the version and voids the
/// preferences written under the previous one).
fn profile(fiscal_code: &FiscalCode, address: &str, mode: ServicePreferencesMode) -> Profile {
    let mut profile = Profile::new(fiscal_code.clone());
    profile.email = Some(email(address));
    profile.is_email_validated = true;
    profile.is_email_enabled = true;
    profile.service_preferences_settings = ServicePreferencesSettings {
        mode,
        version: u64::from(mode != ServicePreferencesMode::Legacy),
    };
    profile
}

impl Demo {
    /// The demo's data; nothing is stored yet (see [`Demo::store_into`]).
    pub fn new() -> Self {
        let service = Service {
            service_id: ServiceId::parse(SERVICE_ID).expect("the demo's service id is valid"),
            service_name: "TARI - Tassa sui rifiuti".to_owned(),
            department_name: "Ufficio Tributi".to_owned(),
            organization_name: ORGANIZATION_NAME.to_owned(),
            organization_fiscal_code: organization_code(),
            authorized_cidrs: Vec::new(),
            // A limited (sandbox) key may write only to the sandbox code, as IO seeds it.
            authorized_recipients: BTreeSet::from([
                FiscalCode::parse(SANDBOX_FISCAL_CODE).expect("the sandbox code is accepted")
            ]),
            is_visible: true,
            max_allowed_payment_amount: 0,
            require_secure_channels: false,
            service_metadata: ServiceMetadata {
                scope: ServiceScope::Local,
                category: ServiceCategory::Standard,
                description: Some("Avvisi di pagamento e comunicazioni sulla TARI.".to_owned()),
                ..ServiceMetadata::default()
            },
            owner_email: Some(email(OWNER_EMAIL)),
            sandboxed: false,
            version: 1,
        };
        let citizens = Category::ALL
            .into_iter()
            .map(|category| citizen(category, &service.service_id))
            .collect();
        Self { service, citizens }
    }

    /// Stores the service, the profiles and the preferences. Each profile is checked against
    /// its preference first: `Store::put_preference` stores what it is given, so keeping the
    /// settings version right is the caller's job (the server answers 409 otherwise).
    pub async fn store_into<S: Store>(&self, store: &S) -> Result<(), StoreError> {
        store.put_service(&self.service).await?;
        for citizen in &self.citizens {
            if let Some(profile) = &citizen.profile {
                store.put_profile(profile).await?;
                if let Some(preference) = &citizen.preference {
                    if let Err(mismatch) = preference.check_version(profile) {
                        return Err(StoreError::Conflict {
                            what: "preference",
                            stored: mismatch.current,
                            given: mismatch.given,
                        });
                    }
                    store
                        .put_preference(&citizen.fiscal_code, preference)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The citizen of a category.
    pub fn citizen(&self, category: Category) -> Option<&Citizen> {
        self.citizens.iter().find(|c| c.category == category)
    }

    /// The recipient of the `n`-th message: messages go round the citizens in order.
    pub fn recipient(&self, n: usize) -> &Citizen {
        &self.citizens[n % self.citizens.len()]
    }

    /// How many of the first `total` messages go to `category`.
    pub fn messages_for(&self, category: Category, total: usize) -> usize {
        let count = self.citizens.len();
        match self.citizens.iter().position(|c| c.category == category) {
            Some(index) => total / count + usize::from(index < total % count),
            None => 0,
        }
    }

    /// The `n`-th message of the load, as the service's client would submit it, with an
    /// idempotency key so that a retried submit cannot duplicate it.
    pub fn submission(&self, n: usize) -> Submission {
        let citizen = self.recipient(n);
        let number = n + 1;
        let secure = citizen.category == Category::SecureMessages;
        let (subject, markdown) = if secure {
            (
                format!("Esito della sua istanza di rimborso TARI n. {number}"),
                format!(
                    "Gentile contribuente,\n\nla sua istanza di rimborso n. {number} è stata \
                     esaminata. L'esito, che contiene dati personali, è consultabile solo \
                     nell'app."
                ),
            )
        } else {
            (
                format!("Avviso di pagamento TARI 2026, rata n. {number}"),
                format!(
                    "Gentile contribuente,\n\nè disponibile l'avviso di pagamento della \
                     **TARI 2026** (rata n. {number}). Trova i dettagli anche sul \
                     [portale del Comune](https://www.comune-esempio.example/tari). \
                     Per assistenza scriva a tributi@comune-esempio.example."
                ),
            )
        };
        Submission {
            service_id: self.service.service_id.clone(),
            message: NewMessage {
                fiscal_code: Some(citizen.fiscal_code.as_str().to_owned()),
                time_to_live: None,
                content: NewMessageContent {
                    subject: Some(subject),
                    markdown: Some(markdown),
                    require_secure_channels: secure.then_some(true),
                    ..NewMessageContent::default()
                },
                feature_level_type: None,
                legal_value: None,
            },
            capabilities: SenderCapabilities::default(),
            idempotency_key: IdempotencyKey::parse(&format!("quickstart-{n}")).ok(),
        }
    }
}

impl Default for Demo {
    fn default() -> Self {
        Self::new()
    }
}

fn organization_code() -> OrganizationFiscalCode {
    let check = compute_check_digit(ORGANIZATION_CODE_PREFIX).expect("ten digits");
    OrganizationFiscalCode::parse(&format!("{ORGANIZATION_CODE_PREFIX}{check}"))
        .expect("the check digit was just computed")
}

fn citizen(category: Category, service: &ServiceId) -> Citizen {
    use ServicePreferencesMode::{Auto, Legacy, Manual};
    let (fiscal_code, profile, preference) = match category {
        Category::LegacyEmail => {
            let fc = code("RSSMRA85T10A562");
            let p = profile(&fc, "mario.rossi@example.it", Legacy);
            (fc, Some(p), None)
        }
        Category::LegacyEmailBlocked => {
            let fc = code("MRNMRC70H10A944");
            let mut p = profile(&fc, "marco.marino@example.it", Legacy);
            p.blocked_inbox_or_channels =
                BTreeMap::from([(service.clone(), BTreeSet::from([BlockedChannel::Email]))]);
            (fc, Some(p), None)
        }
        Category::AutoEmailOffInPreference => {
            let fc = code("BNCLRA90A41F205");
            let p = profile(&fc, "laura.bianchi@example.it", Auto);
            let preference = ServicePreference {
                service_id: service.clone(),
                settings_version: p.service_preferences_settings.version,
                is_inbox_enabled: true,
                is_email_enabled: false,
                is_webhook_enabled: true,
                can_access_message_read_status: false,
            };
            (fc, Some(p), Some(preference))
        }
        Category::ManualNoPreference => {
            let fc = code("VRDGPP80B15L219");
            let p = profile(&fc, "giuseppe.verdi@example.it", Manual);
            (fc, Some(p), None)
        }
        Category::InboxDisabled => {
            let fc = code("FRRGLI75C50H501");
            let mut p = profile(&fc, "giulia.ferrari@example.it", Legacy);
            p.is_inbox_enabled = false;
            (fc, Some(p), None)
        }
        Category::NoProfile => (code("CLMLCU88D22D612"), None, None),
        Category::SecureMessages => {
            let fc = code("RCCSFO92E55G273");
            let p = profile(&fc, "sofia.ricci@example.it", Legacy);
            (fc, Some(p), None)
        }
        Category::Sandbox => {
            let fc = FiscalCode::parse(SANDBOX_FISCAL_CODE).expect("the sandbox code is accepted");
            (fc, None, None)
        }
    };
    Citizen {
        category,
        fiscal_code,
        profile,
        preference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_is_valid_and_messages_validate() {
        let demo = Demo::new();
        assert_eq!(demo.citizens.len(), Category::ALL.len());
        for n in 0..Category::ALL.len() {
            let submission = demo.submission(n);
            let limits = io_core::SenderLimits {
                max_allowed_payment_amount: demo.service.max_allowed_payment_amount,
                organization_fiscal_code: &demo.service.organization_fiscal_code,
                capabilities: submission.capabilities,
            };
            submission
                .message
                .validate(limits)
                .expect("demo messages are valid");
        }
    }

    #[test]
    fn messages_are_spread_round_robin() {
        let demo = Demo::new();
        let total = 300;
        let counted: usize = Category::ALL
            .iter()
            .map(|c| demo.messages_for(*c, total))
            .sum();
        assert_eq!(counted, total);
        assert_eq!(demo.messages_for(Category::LegacyEmail, total), 38);
        assert_eq!(demo.messages_for(Category::Sandbox, total), 37);
    }
}
