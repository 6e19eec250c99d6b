//! Remote contents (IO's `/messages-sending/remote-contents/configurations`): a sender that keeps
//! the details of its messages on its own servers registers where they live and how io
//! authenticates there. A configuration belongs to the institution whose manage key created it;
//! its *test* environment serves the fiscal codes listed as its test users, its *production*
//! environment everyone else.
//!
//! The checks here are the ones without I/O (texts, header names, fiscal codes, the shape of the
//! base URL); the server also passes each base URL through its SSRF guard before keeping it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{FiscalCode, OrganizationFiscalCode};

/// The longest name or description, in characters.
pub const TEXT_MAX: usize = 1000;
/// The longest base URL.
pub const BASE_URL_MAX: usize = 2048;
/// The most fiscal codes in one list (test users, Lollipop exclusions).
pub const FISCAL_CODES_MAX: usize = 1000;

/// A configuration's id: a ULID io gives it at creation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ConfigurationId(String);

impl ConfigurationId {
    /// A new id.
    pub fn generate() -> Self {
        Self(ulid::Ulid::new().to_string())
    }

    /// Validates an id given back by a caller.
    pub fn parse(raw: &str) -> Result<Self, RemoteContentError> {
        raw.parse::<ulid::Ulid>()
            .map(|ulid| Self(ulid.to_string()))
            .map_err(|_| RemoteContentError::new("configurationId", "not a ULID"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConfigurationId {
    type Error = RemoteContentError;
    fn try_from(raw: String) -> Result<Self, RemoteContentError> {
        Self::parse(&raw)
    }
}

impl From<ConfigurationId> for String {
    fn from(id: ConfigurationId) -> String {
        id.0
    }
}

impl fmt::Display for ConfigurationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConfigurationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigurationId({})", self.0)
    }
}

/// Whether the citizen must accept a precondition before reading the details (IO's
/// `HasPrecondition`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HasPrecondition {
    /// Every time the message is opened.
    Always,
    /// The first time only.
    Once,
    /// Never.
    Never,
}

/// How io authenticates to the sender's server: one header with a key (IO's
/// `RCAuthenticationConfig`). `Debug` hides the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteAuthentication {
    /// The header's name: an HTTP token, not one io sets itself.
    pub header_key_name: String,
    /// Its value: visible ASCII.
    pub key: String,
    /// The kind of credential, as the sender names it (kept, not interpreted).
    #[serde(rename = "type")]
    pub kind: String,
}

impl fmt::Debug for RemoteAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteAuthentication")
            .field("header_key_name", &self.header_key_name)
            .field("key", &"…")
            .field("type", &self.kind)
            .finish()
    }
}

/// Where one environment's details are and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteEnvironment {
    /// The sender's server: io reads `{base_url}/messages/{id}`.
    pub base_url: String,
    /// The header io sends there.
    pub details_authentication: RemoteAuthentication,
}

/// A remote-content configuration as its institution keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteContentConfiguration {
    /// Its id.
    pub configuration_id: ConfigurationId,
    /// The institution it belongs to (IO's `user_id`).
    pub organization: OrganizationFiscalCode,
    /// A name for the institution's own use.
    pub name: String,
    /// A description for the institution's own use.
    pub description: String,
    /// Whether a precondition comes before the details.
    pub has_precondition: HasPrecondition,
    /// Kept as IO has it; io never signs with Lollipop (it refuses `is_lollipop_enabled`).
    pub disable_lollipop_for: Vec<FiscalCode>,
    /// Always false in io.
    pub is_lollipop_enabled: bool,
    /// For everyone but the test users.
    pub prod_environment: Option<RemoteEnvironment>,
    /// For the test users only.
    pub test_environment: Option<RemoteEnvironment>,
    /// The fiscal codes the test environment serves.
    pub test_users: Vec<FiscalCode>,
    /// 1 at creation, one more at each update: a change from a stale read conflicts.
    pub version: u64,
}

impl RemoteContentConfiguration {
    /// The environment that serves `citizen`: the test one for its test users, else the
    /// production one; `None` when that environment is not configured.
    pub fn environment_for(&self, citizen: &FiscalCode) -> Option<&RemoteEnvironment> {
        if self.test_users.contains(citizen) {
            self.test_environment.as_ref()
        } else {
            self.prod_environment.as_ref()
        }
    }

    /// Checks what can be checked without I/O; the error names the field.
    pub fn check(&self) -> Result<(), RemoteContentError> {
        check_text("name", &self.name)?;
        check_text("description", &self.description)?;
        if self.is_lollipop_enabled {
            return Err(RemoteContentError::new(
                "is_lollipop_enabled",
                "io does not sign requests with Lollipop; set it to false",
            ));
        }
        for (field, list) in [
            ("disable_lollipop_for", &self.disable_lollipop_for),
            ("test_environment.test_users", &self.test_users),
        ] {
            if list.len() > FISCAL_CODES_MAX {
                return Err(RemoteContentError::new(
                    field,
                    format!("at most {FISCAL_CODES_MAX} fiscal codes"),
                ));
            }
        }
        for (field, environment) in [
            ("prod_environment", &self.prod_environment),
            ("test_environment", &self.test_environment),
        ] {
            if let Some(environment) = environment {
                check_environment(field, environment)?;
            }
        }
        Ok(())
    }
}

fn check_text(field: &str, value: &str) -> Result<(), RemoteContentError> {
    let length = value.chars().count();
    if value.trim().is_empty() || length > TEXT_MAX {
        return Err(RemoteContentError::new(
            field,
            format!("1 to {TEXT_MAX} characters, not only blanks"),
        ));
    }
    Ok(())
}

/// Headers io sets itself, or that would change how the request is framed or routed.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-authorization",
    "fiscal_code",
    "user-agent",
    "accept",
];

fn check_environment(
    field: &str,
    environment: &RemoteEnvironment,
) -> Result<(), RemoteContentError> {
    let url = &environment.base_url;
    let lower = url.to_ascii_lowercase();
    if url.len() > BASE_URL_MAX
        || !(lower.starts_with("https://") || lower.starts_with("http://"))
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(RemoteContentError::new(
            &format!("{field}.base_url"),
            format!("an absolute http or https URL of at most {BASE_URL_MAX} characters"),
        ));
    }
    let auth = &environment.details_authentication;
    let name = &auth.header_key_name;
    let token = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(RemoteContentError::new(
            &format!("{field}.details_authentication.header_key_name"),
            "an HTTP header name (letters, digits and !#$%&'*+-.^_`|~, at most 100)",
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(RemoteContentError::new(
            &format!("{field}.details_authentication.header_key_name"),
            format!("{name} is a header io sets itself"),
        ));
    }
    if auth.key.is_empty()
        || auth.key.len() > 4096
        || !auth.key.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(RemoteContentError::new(
            &format!("{field}.details_authentication.key"),
            "1 to 4096 visible ASCII characters",
        ));
    }
    check_text(&format!("{field}.details_authentication.type"), &auth.kind)
}

/// A configuration io refuses, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RemoteContentError {
    /// The JSON path of the field.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RemoteContentError {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(url: &str, header: &str) -> RemoteEnvironment {
        RemoteEnvironment {
            base_url: url.to_owned(),
            details_authentication: RemoteAuthentication {
                header_key_name: header.to_owned(),
                key: "s3cret-key".to_owned(),
                kind: "API_KEY".to_owned(),
            },
        }
    }

    fn configuration() -> RemoteContentConfiguration {
        RemoteContentConfiguration {
            configuration_id: ConfigurationId::generate(),
            organization: OrganizationFiscalCode::parse("01234567897").unwrap(),
            name: "Avvisi".to_owned(),
            description: "Dettagli degli avvisi".to_owned(),
            has_precondition: HasPrecondition::Never,
            disable_lollipop_for: vec![],
            is_lollipop_enabled: false,
            prod_environment: Some(environment("https://avvisi.example.it/api", "X-Api-Key")),
            test_environment: Some(environment("https://test.example.it/api", "X-Api-Key")),
            test_users: vec![FiscalCode::parse("RSSMRA85T10A562S").unwrap()],
            version: 1,
        }
    }

    #[test]
    fn test_users_get_the_test_environment_and_others_production() {
        let configuration = configuration();
        let tester = FiscalCode::parse("RSSMRA85T10A562S").unwrap();
        let other = FiscalCode::parse("VRDGPP80A01H501U").unwrap();
        assert_eq!(
            configuration.environment_for(&tester).unwrap().base_url,
            "https://test.example.it/api"
        );
        assert_eq!(
            configuration.environment_for(&other).unwrap().base_url,
            "https://avvisi.example.it/api"
        );
        let no_prod = RemoteContentConfiguration {
            prod_environment: None,
            ..configuration
        };
        assert!(no_prod.environment_for(&other).is_none());
    }

    /// A change to a valid configuration.
    type Change = Box<dyn Fn(&mut RemoteContentConfiguration)>;

    #[test]
    fn each_refusal_names_its_field() {
        assert_eq!(configuration().check(), Ok(()));
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.name = " ".into()), "name"),
            (
                Box::new(|c| c.description = "x".repeat(TEXT_MAX + 1)),
                "description",
            ),
            (
                Box::new(|c| c.is_lollipop_enabled = true),
                "is_lollipop_enabled",
            ),
            (
                Box::new(|c| c.prod_environment = Some(environment("ftp://x", "X-Api-Key"))),
                "prod_environment.base_url",
            ),
            (
                Box::new(|c| c.test_environment = Some(environment("https://x", "Host"))),
                "test_environment.details_authentication.header_key_name",
            ),
            (
                Box::new(|c| c.prod_environment = Some(environment("https://x", "X Key"))),
                "prod_environment.details_authentication.header_key_name",
            ),
            (
                Box::new(|c| {
                    let mut env = environment("https://x", "X-Api-Key");
                    env.details_authentication.key = "line\nbreak".into();
                    c.prod_environment = Some(env);
                }),
                "prod_environment.details_authentication.key",
            ),
        ];
        for (change, field) in cases {
            let mut configuration = configuration();
            change(&mut configuration);
            assert_eq!(configuration.check().unwrap_err().field, field);
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", configuration());
        assert!(!shown.contains("s3cret-key"), "{shown}");
        assert!(shown.contains("X-Api-Key"));
    }

    #[test]
    fn ids_are_ulids() {
        let id = ConfigurationId::generate();
        assert_eq!(ConfigurationId::parse(id.as_str()), Ok(id));
        assert!(ConfigurationId::parse("not-a-ulid").is_err());
    }
}
