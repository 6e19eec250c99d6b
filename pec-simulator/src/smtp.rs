//! The simulator's SMTP side: just enough of RFC 5321 (EHLO, AUTH PLAIN and LOGIN, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT) to take a submission, then the receipts are appended to the sender's
//! mailbox over IMAP.

use std::sync::Arc;

use base64::Engine as _;
use io_channels::pec::daticert::PecKind;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use io_channels::pec::compose::{ReceiptBuilder, Signer};

use crate::Config;
use crate::outcome::Outcome;

/// The largest submission taken.
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, config: Arc<Config>, signer: Arc<Signer>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let config = config.clone();
                let signer = signer.clone();
                tokio::spawn(async move {
                    if let Err(error) = session(stream, config, signer).await {
                        tracing::debug!(%error, "SMTP session ended");
                    }
                });
            }
            Err(error) => tracing::warn!(%error, "accept failed"),
        }
    }
}

async fn session(
    stream: TcpStream,
    config: Arc<Config>,
    signer: Arc<Signer>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 pec-simulator ESMTP\r\n").await?;
    let mut authenticated = false;
    let mut from: Option<String> = None;
    let mut recipients: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" | "HELO" => "250-pec-simulator\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME".into(),
            "AUTH" => {
                let mut parts = command.split_whitespace().skip(1);
                let mechanism = parts.next().unwrap_or_default().to_ascii_uppercase();
                let credentials = match mechanism.as_str() {
                    "PLAIN" => {
                        let initial = match parts.next() {
                            Some(initial) => initial.to_owned(),
                            None => {
                                write.write_all(b"334 \r\n").await?;
                                read_line(&mut lines).await?
                            }
                        };
                        decode(&initial).and_then(|plain| {
                            let mut fields = plain.split(|b| *b == 0).skip(1);
                            Some((fields.next()?.to_vec(), fields.next()?.to_vec()))
                        })
                    }
                    "LOGIN" => {
                        write.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                        let user = decode(&read_line(&mut lines).await?);
                        write.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                        let password = decode(&read_line(&mut lines).await?);
                        user.zip(password)
                    }
                    _ => None,
                };
                authenticated = credentials.is_some_and(|(user, password)| {
                    user == config.user.as_bytes() && password == config.password.as_bytes()
                });
                if authenticated {
                    "235 2.7.0 Authentication successful".into()
                } else {
                    "535 5.7.8 Authentication credentials invalid".into()
                }
            }
            "MAIL" if !authenticated => "530 5.7.0 Authentication required".into(),
            "MAIL" => {
                from = Some(address(command));
                recipients.clear();
                "250 2.1.0 Ok".into()
            }
            "RCPT" if from.is_none() => "503 5.5.1 MAIL first".into(),
            "RCPT" => {
                recipients.push(address(command));
                "250 2.1.5 Ok".into()
            }
            "DATA" if recipients.is_empty() => "503 5.5.1 RCPT first".into(),
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let message = read_data(&mut lines).await?;
                let Some(message) = message else {
                    write.write_all(b"552 5.3.4 Message too big\r\n").await?;
                    continue;
                };
                let sender = from.take().unwrap_or_default();
                let id = format!("sim{}", OffsetDateTime::now_utc().unix_timestamp_nanos());
                for recipient in std::mem::take(&mut recipients) {
                    let config = config.clone();
                    let signer = signer.clone();
                    let message = message.clone();
                    let sender = sender.clone();
                    tokio::spawn(async move {
                        if let Err(error) =
                            deliver(&config, &signer, sender, recipient, message).await
                        {
                            tracing::warn!(%error, "receipts not delivered to the sender's mailbox");
                        }
                    });
                }
                format!("250 2.0.0 Ok: queued as {id}")
            }
            "RSET" => {
                from = None;
                recipients.clear();
                "250 2.0.0 Ok".into()
            }
            "NOOP" => "250 2.0.0 Ok".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not recognized".into(),
        };
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\r\n").await?;
    }
}

async fn read_line(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut line = String::new();
    lines.read_line(&mut line).await?;
    Ok(line.trim_end().to_owned())
}

fn decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

/// The address of `MAIL FROM:<a>` or `RCPT TO:<a>`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].trim().to_owned()
}

/// The message of a DATA command, dot-unstuffed; `None` when larger than the limit (read to
/// its end all the same).
async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_big).then_some(message));
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + content.len() > MAX_MESSAGE_BYTES {
            too_big = true;
        } else {
            message.extend_from_slice(content);
        }
    }
}

/// Appends the receipts of one submission to the sender's mailbox.
async fn deliver(
    config: &Config,
    signer: &Signer,
    sender: String,
    recipient: String,
    message: Vec<u8>,
) -> Result<(), async_imap::error::Error> {
    let parsed = mail_parser::MessageParser::default().parse(&message);
    let header = |name: &str| {
        parsed
            .as_ref()
            .and_then(|m| m.header_raw(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let builder = ReceiptBuilder {
        sender,
        subject: parsed
            .as_ref()
            .and_then(|m| m.subject())
            .unwrap_or_default()
            .to_owned(),
        message_id: header("Message-ID"),
        original: message.clone(),
        provider_domain: config.provider_domain.clone(),
        received_at: OffsetDateTime::now_utc(),
        recipient: recipient.clone(),
    };
    let outcome = Outcome::for_recipient(&recipient);
    let mut receipts: Vec<(PecKind, Vec<u8>)> = Vec::new();
    for (n, kind) in outcome.receipts().iter().enumerate() {
        match builder.build(*kind, n as u32, signer) {
            Ok(raw) => receipts.push((*kind, raw)),
            Err(error) => tracing::warn!(%error, %kind, "receipt not signed; not sent"),
        }
    }
    // A provider keeps a receipt until the sender's mailbox takes it: a refused connection or
    // a failed APPEND is tried again, and only the receipts not yet appended are sent.
    let mut attempt = 1;
    loop {
        match append(config, &recipient, &mut receipts).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < APPEND_ATTEMPTS => {
                tracing::info!(%error, attempt, "the sender's mailbox refused the receipts; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// How many times the receipts of one submission are offered to the sender's mailbox.
const APPEND_ATTEMPTS: u32 = 10;

/// Appends `receipts` to the sender's inbox in order, removing each once appended.
async fn append(
    config: &Config,
    recipient: &str,
    receipts: &mut Vec<(PecKind, Vec<u8>)>,
) -> Result<(), async_imap::error::Error> {
    if receipts.is_empty() {
        return Ok(());
    }
    let tcp = TcpStream::connect(config.imap).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    let mut session = client
        .login(&config.user, &config.password)
        .await
        .map_err(|(error, _)| error)?;
    while let Some((kind, raw)) = receipts.first() {
        session.append("INBOX", None, None, raw).await?;
        tracing::info!(%kind, %recipient, "receipt delivered to the sender's mailbox");
        receipts.remove(0);
    }
    session.logout().await?;
    Ok(())
}
