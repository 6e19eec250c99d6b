use super::*;

use crate::{
    ActivationStatus, DEFAULT_ACTIVATION_GRACE, FeatureLevel, FiscalCode, MessageContent,
    OrganizationFiscalCode, SANDBOX_FISCAL_CODE, ServiceId, ServiceMetadata,
    ServicePreferencesSettings,
};

const CITIZEN: &str = "RSSMRA85T10A562S";
const CITIZEN_EMAIL: &str = "mario.rossi@example.it";
const OWNER_EMAIL: &str = "sviluppo@comune.example.it";
const DOMICILE: &str = "mario.rossi@pec.example.it";
const SERVICE: &str = "01HQRD0N2X9P6XQ3X9N7VZJ4JA";
const OTHER_SERVICE: &str = "01HQRD0N2X9P6XQ3X9N7VZJ4JB";
/// The profile's settings version once it has left LEGACY mode.
const CURRENT_SETTINGS: u64 = 1;
/// When the activation of a SPECIAL service was last set.
const ACTIVATED_AT: Timestamp = Timestamp::from_millis(1_767_225_600_000); // 2026-01-01T00:00Z

/// Everything `decide` reads, owned, so that a row can change any of it.
#[derive(Debug, Clone)]
struct Case {
    profile: Option<Profile>,
    preference: Option<ServicePreference>,
    activation: Option<Activation>,
    service: Service,
    message: ValidMessage,
    has_devices: bool,
    now: Timestamp,
    activation_grace: Duration,
}

impl Case {
    fn decide(&self) -> Result<Route, RejectionReason> {
        decide(DecisionInput {
            profile: self.profile.as_ref(),
            preference: self.preference.as_ref(),
            activation: self.activation.as_ref(),
            service: &self.service,
            message: &self.message,
            has_devices: self.has_devices,
            now: self.now,
            activation_grace: self.activation_grace,
        })
    }

    fn profile(&mut self) -> &mut Profile {
        self.profile.as_mut().expect("the row keeps the profile")
    }

    /// A message with legal value to a citizen with a digital domicile.
    fn legal(&mut self) {
        self.message.legal_value = true;
        self.profile().digital_domicile = Some(email(DOMICILE));
    }

    fn set_mode(&mut self, mode: ServicePreferencesMode) {
        self.profile().service_preferences_settings = ServicePreferencesSettings {
            mode,
            version: CURRENT_SETTINGS,
        };
    }

    /// LEGACY mode: block `channels` for `service`.
    fn block(&mut self, service: &str, channels: &[BlockedChannel]) {
        self.profile()
            .blocked_inbox_or_channels
            .insert(service_id(service), channels.iter().copied().collect());
    }

    /// A preference for the sender under the current settings version.
    fn prefer(&mut self, inbox: bool, email: bool, webhook: bool) {
        self.preference = Some(ServicePreference {
            service_id: service_id(SERVICE),
            settings_version: CURRENT_SETTINGS,
            is_inbox_enabled: inbox,
            is_email_enabled: email,
            is_webhook_enabled: webhook,
            can_access_message_read_status: true,
        });
    }

    /// Makes the sender a SPECIAL service with an activation in `status`.
    fn special(&mut self, status: Option<ActivationStatus>) {
        self.service.service_metadata.category = ServiceCategory::Special;
        self.activation = status.map(|status| Activation {
            service_id: service_id(SERVICE),
            fiscal_code: citizen(),
            status,
            updated_at: ACTIVATED_AT,
            version: 0,
        });
    }
}

fn service_id(raw: &str) -> ServiceId {
    ServiceId::parse(raw).unwrap()
}

fn citizen() -> FiscalCode {
    FiscalCode::parse(CITIZEN).unwrap()
}

fn email(raw: &str) -> EmailAddress {
    EmailAddress::parse(raw).unwrap()
}

fn profile() -> Profile {
    let mut profile = Profile::new(citizen());
    profile.is_inbox_enabled = true;
    profile.email = Some(email(CITIZEN_EMAIL));
    profile.is_email_validated = true;
    profile.is_email_enabled = true;
    profile.is_webhook_enabled = true;
    profile
}

fn service() -> Service {
    Service {
        service_id: service_id(SERVICE),
        service_name: "TARI".to_owned(),
        department_name: "Ufficio tributi".to_owned(),
        organization_name: "Comune di Esempio".to_owned(),
        organization_fiscal_code: OrganizationFiscalCode::parse("15376371009").unwrap(),
        authorized_cidrs: Vec::new(),
        authorized_recipients: [FiscalCode::parse(SANDBOX_FISCAL_CODE).unwrap()].into(),
        is_visible: true,
        max_allowed_payment_amount: 0,
        require_secure_channels: false,
        service_metadata: ServiceMetadata::default(),
        owner_email: Some(email(OWNER_EMAIL)),
        sandboxed: false,
        version: 1,
    }
}

fn message() -> ValidMessage {
    ValidMessage {
        fiscal_code: citizen(),
        content: MessageContent {
            subject: "Avviso di pagamento TARI 2026".to_owned(),
            markdown: "x".repeat(80),
            due_date: None,
            payment_data: None,
            require_secure_channels: None,
            prescription_data: None,
            third_party_data: None,
        },
        time_to_live_secs: 3_600,
        feature_level: FeatureLevel::Standard,
        legal_value: false,
    }
}

/// Profile with inbox on, validated and enabled email, push on (LEGACY mode, nothing blocked);
/// a STANDARD service with an owner email; a message that leaves secure channels to the service;
/// a device; an hour after the activation time.
fn baseline() -> Case {
    Case {
        profile: Some(profile()),
        preference: None,
        activation: None,
        service: service(),
        message: message(),
        has_devices: true,
        now: ACTIVATED_AT.plus(Duration::from_secs(3_600)),
        activation_grace: DEFAULT_ACTIVATION_GRACE,
    }
}

fn route(with_email: bool, push: bool) -> Result<Route, RejectionReason> {
    Ok(Route {
        inbox: true,
        email: with_email.then(|| email(CITIZEN_EMAIL)),
        push,
        pec: None,
    })
}

/// The baseline route plus PEC to the citizen's domicile.
fn legal_route(with_email: bool, push: bool) -> Result<Route, RejectionReason> {
    route(with_email, push).map(|route| Route {
        pec: Some(email(DOMICILE)),
        ..route
    })
}

/// PEC alone: a legal message whose inbox is not allowed.
fn pec_only() -> Result<Route, RejectionReason> {
    Ok(Route {
        inbox: false,
        email: None,
        push: false,
        pec: Some(email(DOMICILE)),
    })
}

fn sandbox_route(owner: Option<&str>) -> Result<Route, RejectionReason> {
    Ok(Route {
        inbox: false,
        email: owner.map(email),
        push: false,
        pec: None,
    })
}

struct Row {
    name: &'static str,
    mutate: fn(&mut Case),
    want: Result<Route, RejectionReason>,
}

fn row(name: &'static str, mutate: fn(&mut Case), want: Result<Route, RejectionReason>) -> Row {
    Row { name, mutate, want }
}

#[test]
fn decide_follows_every_rule_of_the_reference() {
    use ActivationStatus::{Active, Inactive, Pending};
    use BlockedChannel::{Email, Inbox, Webhook};
    use RejectionReason::{ServiceNotAllowed, UserNotFound};
    use ServicePreferencesMode::{Auto, Legacy, Manual};

    let all = route(true, true);
    let rows = [
        // Baseline and the master switches.
        row("baseline: inbox, email and push", |_| {}, all.clone()),
        row("no profile", |c| c.profile = None, Err(UserNotFound)),
        row(
            "inbox disabled in the profile",
            |c| c.profile().is_inbox_enabled = false,
            Err(ServiceNotAllowed),
        ),
        // LEGACY: the blocked map of the profile.
        row(
            "legacy: inbox blocked for this service",
            |c| c.block(SERVICE, &[Inbox]),
            Err(ServiceNotAllowed),
        ),
        row(
            "legacy: inbox blocked for another service",
            |c| c.block(OTHER_SERVICE, &[Inbox, Email, Webhook]),
            all.clone(),
        ),
        row(
            "legacy: email blocked",
            |c| c.block(SERVICE, &[Email]),
            route(false, true),
        ),
        row(
            "legacy: webhook blocked",
            |c| c.block(SERVICE, &[Webhook]),
            route(true, false),
        ),
        row(
            "legacy: email and webhook blocked, inbox kept",
            |c| c.block(SERVICE, &[Email, Webhook]),
            route(false, false),
        ),
        row(
            "legacy: an empty block list blocks nothing",
            |c| c.block(SERVICE, &[]),
            all.clone(),
        ),
        row(
            "legacy: a preference is not consulted",
            |c| {
                c.prefer(false, false, false);
                let legacy = &mut c.profile().service_preferences_settings;
                legacy.mode = Legacy;
                legacy.version = CURRENT_SETTINGS;
            },
            all.clone(),
        ),
        // AUTO: opt-out.
        row("auto: no preference", |c| c.set_mode(Auto), all.clone()),
        row(
            "auto: preference with inbox false",
            |c| {
                c.set_mode(Auto);
                c.prefer(false, true, true);
            },
            Err(ServiceNotAllowed),
        ),
        row(
            "auto: preference with email false (io honours it; IO would still email)",
            |c| {
                c.set_mode(Auto);
                c.prefer(true, false, true);
            },
            route(false, true),
        ),
        row(
            "auto: preference with email and webhook false, inbox kept",
            |c| {
                c.set_mode(Auto);
                c.prefer(true, false, false);
            },
            route(false, false),
        ),
        row(
            "auto: preference with webhook false",
            |c| {
                c.set_mode(Auto);
                c.prefer(true, true, false);
            },
            route(true, false),
        ),
        row(
            "auto: the legacy block map is not consulted",
            |c| {
                c.block(SERVICE, &[Inbox]);
                c.set_mode(Auto);
            },
            all.clone(),
        ),
        // MANUAL: opt-in.
        row(
            "manual: no preference",
            |c| c.set_mode(Manual),
            Err(ServiceNotAllowed),
        ),
        row(
            "manual: preference with inbox true",
            |c| {
                c.set_mode(Manual);
                c.prefer(true, true, true);
            },
            all.clone(),
        ),
        row(
            "manual: preference with inbox false",
            |c| {
                c.set_mode(Manual);
                c.prefer(false, true, true);
            },
            Err(ServiceNotAllowed),
        ),
        row(
            "manual: preference with email false",
            |c| {
                c.set_mode(Manual);
                c.prefer(true, false, true);
            },
            route(false, true),
        ),
        row(
            "manual: preference with webhook false",
            |c| {
                c.set_mode(Manual);
                c.prefer(true, true, false);
            },
            route(true, false),
        ),
        // Preferences under another settings version, or for another service, do not count.
        row(
            "auto: preference of an old settings version is ignored",
            |c| {
                c.set_mode(Auto);
                c.prefer(false, false, false);
                c.preference.as_mut().unwrap().settings_version = CURRENT_SETTINGS - 1;
            },
            all.clone(),
        ),
        row(
            "manual: preference of an old settings version is ignored",
            |c| {
                c.set_mode(Manual);
                c.prefer(true, true, true);
                c.preference.as_mut().unwrap().settings_version = CURRENT_SETTINGS - 1;
            },
            Err(ServiceNotAllowed),
        ),
        row(
            "manual: preference for another service is ignored",
            |c| {
                c.set_mode(Manual);
                c.prefer(true, true, true);
                c.preference.as_mut().unwrap().service_id = service_id(OTHER_SERVICE);
            },
            Err(ServiceNotAllowed),
        ),
        // SPECIAL services: the activation decides.
        row(
            "special: active activation",
            |c| c.special(Some(Active)),
            all.clone(),
        ),
        row(
            "special: pending, inside the grace period",
            |c| {
                c.special(Some(Pending));
                c.now = ACTIVATED_AT.plus(DEFAULT_ACTIVATION_GRACE - Duration::from_millis(1));
            },
            all.clone(),
        ),
        row(
            "special: pending, exactly at the end of the grace period",
            |c| {
                c.special(Some(Pending));
                c.now = ACTIVATED_AT.plus(DEFAULT_ACTIVATION_GRACE);
            },
            Err(ServiceNotAllowed),
        ),
        row(
            "special: pending, after the grace period",
            |c| {
                c.special(Some(Pending));
                c.now = ACTIVATED_AT.plus(DEFAULT_ACTIVATION_GRACE + Duration::from_secs(1));
            },
            Err(ServiceNotAllowed),
        ),
        row(
            "special: pending, within a shorter configured grace period",
            |c| {
                c.special(Some(Pending));
                c.activation_grace = Duration::from_secs(3_600);
                c.now = ACTIVATED_AT.plus(Duration::from_secs(3_599));
            },
            all.clone(),
        ),
        row(
            "special: pending, past a shorter configured grace period",
            |c| {
                c.special(Some(Pending));
                c.activation_grace = Duration::from_secs(3_600);
                c.now = ACTIVATED_AT.plus(Duration::from_secs(3_600));
            },
            Err(ServiceNotAllowed),
        ),
        row(
            "special: active, auto preference with email false",
            |c| {
                c.special(Some(Active));
                c.set_mode(Auto);
                c.prefer(true, false, true);
            },
            route(false, true),
        ),
        row(
            "special: active, manual preference with email false",
            |c| {
                c.special(Some(Active));
                c.set_mode(Manual);
                c.prefer(true, false, true);
            },
            route(false, true),
        ),
        row(
            "special: inactive activation",
            |c| c.special(Some(Inactive)),
            Err(ServiceNotAllowed),
        ),
        row(
            "special: no activation",
            |c| c.special(None),
            Err(ServiceNotAllowed),
        ),
        row(
            "special: active but inbox disabled in the profile",
            |c| {
                c.special(Some(Active));
                c.profile().is_inbox_enabled = false;
            },
            Err(ServiceNotAllowed),
        ),
        row(
            "special: active but no profile",
            |c| {
                c.special(Some(Active));
                c.profile = None;
            },
            Err(UserNotFound),
        ),
        row(
            "standard: an activation is irrelevant",
            |c| {
                c.special(Some(Inactive));
                c.service.service_metadata.category = ServiceCategory::Standard;
            },
            all.clone(),
        ),
        // Email.
        row(
            "email not validated",
            |c| c.profile().is_email_validated = false,
            route(false, true),
        ),
        row(
            "email disabled",
            |c| c.profile().is_email_enabled = false,
            route(false, true),
        ),
        row(
            "no email address",
            |c| c.profile().email = None,
            route(false, true),
        ),
        row(
            "service requires secure channels",
            |c| c.service.require_secure_channels = true,
            route(false, true),
        ),
        row(
            "message requires secure channels, service does not",
            |c| c.message.content.require_secure_channels = Some(true),
            route(false, true),
        ),
        row(
            "message waives the secure channels of the service",
            |c| {
                c.service.require_secure_channels = true;
                c.message.content.require_secure_channels = Some(false);
            },
            all.clone(),
        ),
        // Push.
        row(
            "push disabled",
            |c| c.profile().is_webhook_enabled = false,
            route(true, false),
        ),
        row("no devices", |c| c.has_devices = false, route(true, false)),
        row(
            "nothing but the inbox",
            |c| {
                c.profile().email = None;
                c.has_devices = false;
            },
            route(false, false),
        ),
        // Sandbox recipient: the service owner's email, nothing else.
        row(
            "sandbox, no profile",
            |c| {
                c.message.fiscal_code = FiscalCode::parse(SANDBOX_FISCAL_CODE).unwrap();
                c.profile = None;
            },
            sandbox_route(Some(OWNER_EMAIL)),
        ),
        row(
            "sandbox, with a profile whose inbox is disabled",
            |c| {
                c.message.fiscal_code = FiscalCode::parse(SANDBOX_FISCAL_CODE).unwrap();
                c.profile().is_inbox_enabled = false;
            },
            sandbox_route(Some(OWNER_EMAIL)),
        ),
        row(
            "sandbox, service without an owner email",
            |c| {
                c.message.fiscal_code = FiscalCode::parse(SANDBOX_FISCAL_CODE).unwrap();
                c.profile = None;
                c.service.owner_email = None;
            },
            sandbox_route(None),
        ),
        // PEC: a message with legal value goes to the digital domicile, whatever the
        // preferences; without a domicile, or without legal value, nothing changes.
        row(
            "legal message to a citizen with a domicile",
            |c| c.legal(),
            legal_route(true, true),
        ),
        row(
            "domicile but an ordinary message",
            |c| c.profile().digital_domicile = Some(email(DOMICILE)),
            all.clone(),
        ),
        row(
            "legal message, no domicile",
            |c| c.message.legal_value = true,
            all.clone(),
        ),
        row(
            "legal message, inbox disabled in the profile: PEC alone",
            |c| {
                c.legal();
                c.profile().is_inbox_enabled = false;
            },
            pec_only(),
        ),
        row(
            "legal message, legacy: inbox blocked: PEC alone",
            |c| {
                c.legal();
                c.block(SERVICE, &[Inbox, Email, Webhook]);
            },
            pec_only(),
        ),
        row(
            "legal message, manual mode without a preference: PEC alone",
            |c| {
                c.legal();
                c.set_mode(Manual);
            },
            pec_only(),
        ),
        row(
            "legal message, special service not activated: PEC alone",
            |c| {
                c.legal();
                c.special(Some(Inactive));
            },
            pec_only(),
        ),
        row(
            "legal message, secure channels required: no email, PEC kept",
            |c| {
                c.legal();
                c.message.content.require_secure_channels = Some(true);
            },
            legal_route(false, true),
        ),
        row(
            "legal message, no profile",
            |c| {
                c.message.legal_value = true;
                c.profile = None;
            },
            Err(UserNotFound),
        ),
        row(
            "legal message to the sandbox recipient: the owner's email only",
            |c| {
                c.legal();
                c.message.fiscal_code = FiscalCode::parse(SANDBOX_FISCAL_CODE).unwrap();
            },
            sandbox_route(Some(OWNER_EMAIL)),
        ),
    ];

    let mut names = std::collections::BTreeSet::new();
    for Row { name, mutate, want } in rows {
        assert!(names.insert(name), "duplicate row name {name:?}");
        let mut case = baseline();
        mutate(&mut case);
        assert_eq!(case.decide(), want, "{name}");
    }
}

/// A deliberate deviation from IO (see the module doc): IO ignores a preference's
/// `is_email_enabled` outside LEGACY mode, io honours it in every mode.
#[test]
fn email_turned_off_for_a_service_is_never_sent_in_any_mode() {
    use ServicePreferencesMode::{Auto, Legacy, Manual};
    for mode in [Legacy, Auto, Manual] {
        for special in [false, true] {
            let mut case = baseline();
            if special {
                case.special(Some(ActivationStatus::Active));
            }
            case.set_mode(mode);
            match mode {
                // LEGACY has no per-service preference: its email switch is the block map.
                Legacy => case.block(SERVICE, &[BlockedChannel::Email]),
                Auto | Manual => case.prefer(true, false, true),
            }
            assert_eq!(
                case.decide(),
                route(false, true),
                "{mode:?}, special {special}"
            );
            // The same citizen with email on for the service is emailed.
            match mode {
                Legacy => case.block(SERVICE, &[]),
                Auto | Manual => case.prefer(true, true, true),
            }
            assert_eq!(
                case.decide(),
                route(true, true),
                "{mode:?}, special {special}"
            );
        }
    }
}

#[test]
fn route_channels_follow_the_channel_order() {
    for inbox in [false, true] {
        for with_email in [false, true] {
            for push in [false, true] {
                for pec in [false, true] {
                    let route = Route {
                        inbox,
                        email: with_email.then(|| email(CITIZEN_EMAIL)),
                        push,
                        pec: pec.then(|| email(DOMICILE)),
                    };
                    let want: Vec<ChannelKind> = ChannelKind::ALL
                        .into_iter()
                        .filter(|kind| match kind {
                            ChannelKind::Inbox => inbox,
                            ChannelKind::Email => with_email,
                            ChannelKind::Push => push,
                            ChannelKind::Pec => pec,
                        })
                        .collect();
                    assert_eq!(route.channels(), want, "{route:?}");
                }
            }
        }
    }
    let all = Route {
        inbox: true,
        email: Some(email(CITIZEN_EMAIL)),
        push: true,
        pec: None,
    };
    assert_eq!(
        all.channels(),
        [ChannelKind::Inbox, ChannelKind::Email, ChannelKind::Push]
    );
    let sandbox = Route {
        inbox: false,
        email: Some(email(OWNER_EMAIL)),
        push: false,
        pec: None,
    };
    assert_eq!(sandbox.channels(), [ChannelKind::Email]);
}
