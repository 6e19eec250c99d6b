//! The commands over the admin API: `service create|list|show|keys`, `token citizen`,
//! `journal verify`. Each prints what a person needs on stdout, one `name: value` per line
//! where it is a record, so that scripts can pick a line too.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use io_core::{FiscalCode, MessageId, ServiceId};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use super::client::{AdminClient, ApiError};
use super::{AdminArgs, CliError};

/// `io-server service …`: services, their permission groups and API keys.
#[derive(Debug, Args)]
pub(crate) struct ServiceArgs {
    /// Where the server is, and the admin token.
    #[command(flatten)]
    admin: AdminArgs,
    /// What to do.
    #[command(subcommand)]
    command: ServiceCommand,
}

/// The `service` subcommands.
#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Creates a service; prints its id and its two API keys.
    Create(CreateService),
    /// Lists the services: id, name, organization, permission groups.
    List,
    /// Prints a service as the admin API answers it (JSON).
    Show {
        /// The service id.
        #[arg(value_parser = ServiceId::parse)]
        id: ServiceId,
    },
    /// Prints a service's primary and secondary keys, after regenerating one if asked.
    Keys {
        /// The service id.
        #[arg(value_parser = ServiceId::parse)]
        id: ServiceId,
        /// Replace this key with a new one (the other one keeps working meanwhile).
        #[arg(long, value_name = "KEY")]
        regenerate: Option<KeyChoice>,
    },
}

/// `service create`'s options: the service's required fields, its groups, and any other IO
/// service field from a JSON file.
#[derive(Debug, Args)]
struct CreateService {
    /// Name shown to citizens (`service_name`).
    #[arg(long)]
    name: Option<String>,
    /// Office sending the messages (`department_name`).
    #[arg(long)]
    department: Option<String>,
    /// Institution (`organization_name`).
    #[arg(long)]
    organization: Option<String>,
    /// The institution's fiscal code, 11 digits (`organization_fiscal_code`).
    #[arg(long)]
    organization_fiscal_code: Option<String>,
    /// A permission group of the keys, with IO's names (e.g. ApiMessageWrite); repeat for
    /// more. Default: the sandbox groups (limited write, message read, limited profile read).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// A JSON object with more of IO's service fields (authorized_cidrs,
    /// max_allowed_payment_amount, service_metadata, …); the options above override it.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Which API key to regenerate.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyChoice {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

impl KeyChoice {
    /// The admin API's `key_type`.
    fn key_type(self) -> &'static str {
        match self {
            Self::Primary => "PRIMARY_KEY",
            Self::Secondary => "SECONDARY_KEY",
        }
    }
}

/// `io-server token …`: tokens for development and tests.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// Where the server is, and the admin token.
    #[command(flatten)]
    admin: AdminArgs,
    /// What to do.
    #[command(subcommand)]
    command: TokenCommand,
}

/// The `token` subcommands.
#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mints a citizen API token and prints it alone on stdout (its lifetime goes to stderr).
    Citizen {
        /// The citizen's fiscal code.
        #[arg(long, value_parser = FiscalCode::parse)]
        fiscal_code: FiscalCode,
    },
}

/// `io-server journal …`: the evidence kept for each message.
#[derive(Debug, Args)]
pub(crate) struct JournalArgs {
    /// Where the server is, and the admin token.
    #[command(flatten)]
    admin: AdminArgs,
    /// What to do.
    #[command(subcommand)]
    command: JournalCommand,
}

/// The `journal` subcommands.
#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// Asks the server to verify a message's hash-chained journal and prints the result; exit
    /// status 1 when it does not verify or the message is unknown.
    Verify {
        /// The message id (a ULID).
        #[arg(long, value_parser = parse_message_id)]
        message: MessageId,
    },
}

/// Parses a message id for clap.
pub(crate) fn parse_message_id(raw: &str) -> Result<MessageId, String> {
    raw.trim()
        .parse()
        .map_err(|e| format!("not a message id: {e}"))
}

/// Runs `service …`.
pub(crate) async fn service(args: ServiceArgs) -> Result<(), CliError> {
    let client = AdminClient::new(&args.admin.server, args.admin.admin_token.as_deref())?;
    match args.command {
        ServiceCommand::Create(create) => create_service(&client, create).await,
        ServiceCommand::List => list_services(&client).await,
        ServiceCommand::Show { id } => {
            let service = client.get(&format!("/services/{}", id.as_str())).await?;
            println!("{}", pretty(&service));
            Ok(())
        }
        ServiceCommand::Keys { id, regenerate } => {
            let path = format!("/services/{}/keys", id.as_str());
            let keys = match regenerate {
                None => client.get(&path).await?,
                Some(choice) => {
                    client
                        .put(&path, &json!({ "key_type": choice.key_type() }))
                        .await?
                }
            };
            print_keys(&keys)
        }
    }
}

/// The body of `POST /adm/services`: the JSON file's fields, then the options.
fn service_body(create: CreateService) -> Result<Value, CliError> {
    let mut body = match &create.json {
        None => Map::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::setup(format!("--json {}: {e}", path.display())))?;
            match serde_json::from_str(&text) {
                Ok(Value::Object(fields)) => fields,
                Ok(_) => {
                    return Err(CliError::setup(format!(
                        "--json {}: expected a JSON object of service fields",
                        path.display()
                    )));
                }
                Err(e) => {
                    return Err(CliError::setup(format!("--json {}: {e}", path.display())));
                }
            }
        }
    };
    for (field, option, value) in [
        ("service_name", "--name", create.name),
        ("department_name", "--department", create.department),
        ("organization_name", "--organization", create.organization),
        (
            "organization_fiscal_code",
            "--organization-fiscal-code",
            create.organization_fiscal_code,
        ),
    ] {
        match value {
            Some(value) => {
                body.insert(field.into(), Value::String(value));
            }
            None if body.contains_key(field) => {}
            None => {
                return Err(CliError::setup(format!(
                    "{option} is required (or {field} in the --json file)"
                )));
            }
        }
    }
    if !create.groups.is_empty() {
        body.insert("groups".into(), json!(create.groups));
    }
    Ok(Value::Object(body))
}

/// `service create`.
async fn create_service(client: &AdminClient, create: CreateService) -> Result<(), CliError> {
    let body = service_body(create)?;
    let created = client.post("/services", &body).await?;
    let id = field(&created, "service_id")?;
    let keys = client.get(&format!("/services/{id}/keys")).await?;
    println!("service_id: {id}");
    print_keys(&keys)
}

/// `service list`: one aligned line per service.
async fn list_services(client: &AdminClient) -> Result<(), CliError> {
    let listed = client.get("/services").await?;
    let items = listed
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| CliError::failed("the service list has no `items` array"))?;
    if items.is_empty() {
        println!("no services");
        return Ok(());
    }
    let mut lines = vec![[
        "SERVICE_ID".to_string(),
        "NAME".to_string(),
        "ORGANIZATION".to_string(),
        "GROUPS".to_string(),
    ]];
    for item in items {
        let text = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or("-");
        let groups = item
            .get("groups")
            .and_then(Value::as_array)
            .map(|groups| {
                groups
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        lines.push([
            text("service_id").to_string(),
            text("service_name").to_string(),
            text("organization_name").to_string(),
            groups,
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|column| {
            lines
                .iter()
                .map(|line| line[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for [id, name, organization, groups] in &lines {
        println!(
            "{id:<w0$}  {name:<w1$}  {organization:<w2$}  {groups}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    Ok(())
}

/// Prints `{primary_key, secondary_key}`.
fn print_keys(keys: &Value) -> Result<(), CliError> {
    println!("primary_key: {}", field(keys, "primary_key")?);
    println!("secondary_key: {}", field(keys, "secondary_key")?);
    Ok(())
}

/// Runs `token …`.
pub(crate) async fn token(args: TokenArgs) -> Result<(), CliError> {
    let client = AdminClient::new(&args.admin.server, args.admin.admin_token.as_deref())?;
    match args.command {
        TokenCommand::Citizen { fiscal_code } => {
            let minted = client
                .post(
                    "/citizen-tokens",
                    &json!({ "fiscal_code": fiscal_code.as_str() }),
                )
                .await?;
            println!("{}", field(&minted, "token")?);
            if let Some(seconds) = minted.get("expires_in").and_then(Value::as_u64) {
                eprintln!("the token expires in {seconds} s");
            }
            Ok(())
        }
    }
}

/// Runs `journal …`.
pub(crate) async fn journal(args: JournalArgs) -> Result<(), CliError> {
    let client = AdminClient::new(&args.admin.server, args.admin.admin_token.as_deref())?;
    match args.command {
        JournalCommand::Verify { message } => verify(&client, &message).await,
    }
}

/// `journal verify`: the server checks the chain; this prints its answer.
async fn verify(client: &AdminClient, id: &MessageId) -> Result<(), CliError> {
    let lookup = match client.get(&format!("/messages/{id}")).await {
        Ok(lookup) => lookup,
        Err(ApiError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
            return Err(CliError::failed(format!("no message {id}")));
        }
        Err(error) => return Err(error.into()),
    };
    let text = |value: &Value, name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_string()
    };
    println!("message: {id}");
    println!("status: {}", text(&lookup, "status"));
    for delivery in lookup
        .get("deliveries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "delivery: {} {}",
            text(delivery, "channel"),
            text(delivery, "status")
        );
    }
    let journal = lookup
        .get("journal")
        .ok_or_else(|| CliError::failed("the answer has no `journal`"))?;
    let entries = journal.get("entries").and_then(Value::as_u64).unwrap_or(0);
    if journal.get("verified").and_then(Value::as_bool) == Some(true) {
        println!("journal: verified, {entries} entries");
        println!("head: {}", text(journal, "head"));
        Ok(())
    } else {
        let error = text(journal, "error");
        println!("journal: NOT verified: {error}");
        Err(CliError::failed(format!(
            "the journal of message {id} does not verify"
        )))
    }
}

/// A string field of an answer.
fn field<'a>(value: &'a Value, name: &str) -> Result<&'a str, CliError> {
    value
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| CliError::failed(format!("the answer has no `{name}`")))
}

/// Indented JSON.
fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(json: Option<PathBuf>) -> CreateService {
        CreateService {
            name: Some("Tassa rifiuti".into()),
            department: Some("Tributi".into()),
            organization: None,
            organization_fiscal_code: Some("02438750586".into()),
            groups: vec!["ApiMessageWrite".into()],
            json,
        }
    }

    #[test]
    fn options_override_the_json_file_and_required_fields_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("service.json");
        std::fs::write(
            &file,
            r#"{"service_name": "old", "organization_name": "Comune di Roma", "max_allowed_payment_amount": 5000}"#,
        )
        .unwrap();
        let body = service_body(create(Some(file))).unwrap();
        assert_eq!(
            body,
            json!({
                "service_name": "Tassa rifiuti",
                "department_name": "Tributi",
                "organization_name": "Comune di Roma",
                "organization_fiscal_code": "02438750586",
                "max_allowed_payment_amount": 5000,
                "groups": ["ApiMessageWrite"],
            })
        );
        let Err(CliError::Setup(error)) = service_body(create(None)) else {
            panic!("a missing organization is a usage error");
        };
        assert!(error.to_string().contains("--organization is required"));
    }
}
