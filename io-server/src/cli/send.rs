//! `io-server send`: one message per CSV row through the Services API, resumable and safe to
//! run again.
//!
//! Two reads of the file: the first checks the header, counts the rows, hashes the content and
//! checks an existing results file against it; the second streams the rows to a bounded pool
//! of requests ([`sender`]). Each row is `POST /api/v1/messages/{fiscal_code}` with the `Idempotency-Key`
//! `csv-<content hash>-<row>` ([`rows`]), so a row sent twice (a retry, a rerun after a crash)
//! gets the first message's id back instead of a second message. Results are appended to the
//! results file as rows complete ([`results`]); rows already `created` there are skipped by the
//! next run. Transient answers are retried by [`retry`]'s policy.

mod results;
mod retry;
mod rows;
mod sender;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use csv::StringRecord;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::{mpsc, watch};

use self::results::{CREATED, CreatedRow, FAILED, ResultsWriter};
use self::retry::RetryPolicy;
use self::rows::{Columns, ContentHash, HashingReader, Row, csv_reader};
use self::sender::{Sender, Stop, error_chain};
use super::client::{BaseUrl, http_client};
use super::{CliError, ServerArgs};

/// `io-server send`'s options.
#[derive(Debug, Args)]
#[command(after_long_help = SEND_HELP)]
pub(crate) struct SendArgs {
    /// Where the server is.
    #[command(flatten)]
    server: ServerArgs,
    /// The sending service's API key (prefer the environment variable: a flag shows in `ps`).
    #[arg(long, env = "IO_API_KEY", hide_env_values = true)]
    key: String,
    /// The CSV file: a header row, then one message per row.
    #[arg(long, value_name = "FILE")]
    csv: PathBuf,
    /// The results file [default: <csv>.results.csv].
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
}

/// The long help of `send`.
const SEND_HELP: &str = "\
CSV: a header row naming the columns, in any order: fiscal_code, subject, markdown (required),
due_date, amount (euro cents), notice_number (optional; empty cells are left out). Quote cells
holding commas, quotes or newlines (RFC 4180). Row 1 is the first row after the header.

Each row is sent with the Idempotency-Key csv-<SHA-256 of the file>-<row>: running the same
command again, after an interruption or a crash, never makes a second message for a row (the
server answers the first id), as long as the server still remembers the key (24 hours by
default). Rows already `created` in the results file are skipped without asking the server.
Editing the file changes every key: rows not yet created are then sent as new messages.

Results file: row,fiscal_code,status,id,error; status is created or failed; one line per row,
in the order rows complete, flushed as they are written.

Retries: 429 waits Retry-After (at most 60 s), 5xx and connection errors back off from 0.5 s;
at most 5 retries per row, then the row fails. A 401 stops the run. Ctrl-C stops starting new
rows and lets those in flight finish (twice: quit at once).

Exit status: 0 when every row is created, 1 when a row failed or was not attempted, 2 on a
usage or setup error (unreadable file, unreachable server, refused key).";

/// Runs `send`.
pub(crate) async fn run(args: SendArgs) -> Result<(), CliError> {
    let base = BaseUrl::parse(&args.server.url)?;
    let key = args.key.trim().to_string();
    if key.is_empty() {
        return Err(CliError::setup("--key (or IO_API_KEY) is empty"));
    }
    let results_path = args
        .results
        .clone()
        .unwrap_or_else(|| default_results_path(&args.csv));
    if same_file(&args.csv, &results_path) {
        return Err(CliError::setup(
            "--results names the CSV file itself; give another file",
        ));
    }
    let created = results::load_created(&results_path).map_err(CliError::setup)?;
    let created = Arc::new(created);
    let survey = {
        let (csv, created) = (args.csv.clone(), created.clone());
        tokio::task::spawn_blocking(move || survey(&csv, &created))
            .await
            .map_err(CliError::setup)??
    };
    let http = http_client(args.server.ca_cert.as_deref())?;
    preflight(&http, &base).await?;
    let mut writer = ResultsWriter::start(&results_path, &created).map_err(CliError::setup)?;

    let skipped = created.len() as u64;
    let to_send = survey.rows - skipped;
    println!(
        "{}: {} rows, {skipped} already created, {to_send} to send (results: {})",
        args.csv.display(),
        survey.rows,
        results_path.display()
    );

    let (stop, _) = watch::channel(false);
    let interrupt = tokio::spawn(interrupt_on_ctrl_c(stop.clone()));
    let (rows_tx, rows_rx) = mpsc::channel::<Row>(usize::from(args.concurrency) * 2);
    let producer = {
        let (csv, created, columns) = (args.csv.clone(), created.clone(), survey.columns.clone());
        tokio::task::spawn_blocking(move || produce(&csv, &columns, &created, rows_tx))
    };
    let sender = Sender::new(
        http,
        base,
        key,
        survey.hash.clone(),
        RetryPolicy::default(),
        stop.subscribe(),
    );
    let bar = progress_bar(to_send);
    let mut tally = Tally::default();
    let mut stopped: Option<Stop> = None;
    let run = async {
        let still_going = stop.subscribe();
        let outcomes = futures::stream::unfold(rows_rx, |mut rx| async move {
            rx.recv().await.map(|row| (row, rx))
        })
        .take_while(move |_| std::future::ready(!*still_going.borrow()))
        .map(|row| sender.send(row))
        .buffer_unordered(usize::from(args.concurrency));
        let mut outcomes = std::pin::pin!(outcomes);
        while let Some(outcome) = outcomes.next().await {
            let (status, id, error) = match &outcome.result {
                Ok(created) => {
                    tally.created += 1;
                    tally.replayed += u64::from(created.replayed);
                    (CREATED, created.id.as_str(), "")
                }
                Err(failure) => {
                    tally.failed += 1;
                    if let Some(reason) = &failure.stop {
                        stopped.get_or_insert_with(|| reason.clone());
                        stop.send_replace(true);
                    }
                    (FAILED, "", failure.error.as_str())
                }
            };
            writer
                .record(outcome.row, &outcome.raw_fiscal_code, status, id, error)
                .map_err(CliError::setup)?;
            bar.inc(1);
            bar.set_message(format!(
                "created {} · failed {}",
                tally.created, tally.failed
            ));
        }
        Ok::<(), CliError>(())
    };
    let ran = run.await;
    interrupt.abort();
    bar.finish_and_clear();
    ran?;
    if *stop.borrow() && stopped.is_none() {
        stopped = Some(Stop::Interrupted);
    }
    // The stream and its receiver are gone: the producer returns at its next row.
    let read = producer.await.map_err(CliError::setup)?;

    let not_attempted = to_send - tally.created - tally.failed;
    println!(
        "created: {} ({} replayed), failed: {}, skipped: {skipped}",
        tally.created, tally.replayed, tally.failed
    );
    if not_attempted > 0 {
        let reason = stopped.as_ref().map_or("stopped".into(), Stop::to_string);
        println!("not attempted: {not_attempted} ({reason}); run the same command again to resume");
    }
    match read {
        Err(error) => {
            return Err(CliError::setup(format!(
                "reading {}: {error}",
                args.csv.display()
            )));
        }
        Ok(Some(hash)) if hash != survey.hash => {
            return Err(CliError::setup(format!(
                "{} changed while it was being sent (SHA-256 {} then {}): check the results \
                 before sending it again",
                args.csv.display(),
                survey.hash.as_hex(),
                hash.as_hex()
            )));
        }
        Ok(_) => {}
    }
    if let Some(Stop::Unauthorized(detail)) = &stopped {
        return Err(CliError::setup(format!(
            "the server refused the key: {detail}"
        )));
    }
    if tally.failed > 0 || not_attempted > 0 {
        return Err(CliError::failed(format!(
            "{} of {} rows not created; see {} (the error column says why)",
            tally.failed + not_attempted,
            survey.rows,
            results_path.display()
        )));
    }
    Ok(())
}

/// `<csv>.results.csv`.
fn default_results_path(csv: &Path) -> PathBuf {
    let mut path = csv.as_os_str().to_owned();
    path.push(".results.csv");
    PathBuf::from(path)
}

/// Whether two paths name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What the first read of the file found.
#[derive(Debug)]
struct Survey {
    /// Where the columns are.
    columns: Columns,
    /// Rows after the header.
    rows: u64,
    /// The content's hash.
    hash: ContentHash,
}

/// The first read: header, row count, hash, and the results file checked against the rows.
fn survey(path: &Path, created: &BTreeMap<u64, CreatedRow>) -> Result<Survey, CliError> {
    let reading = |e: &dyn std::fmt::Display| CliError::setup(format!("{}: {e}", path.display()));
    let file = File::open(path).map_err(|e| reading(&e))?;
    let mut reader = csv_reader(HashingReader::new(file));
    let header = reader.headers().map_err(|e| reading(&e))?.clone();
    let columns = Columns::from_header(&header).map_err(|e| reading(&e))?;
    let mut rows = 0;
    let mut mismatch = None;
    read_records(&mut reader, |number, record| {
        rows = number;
        let Some(done) = created.get(&number) else {
            return true;
        };
        let fiscal_code = record.map_or("", |record| columns.fiscal_code(record));
        if fiscal_code != done.fiscal_code.trim() {
            mismatch.get_or_insert(number);
        }
        true
    })
    .map_err(|e| reading(&e))?;
    if let Some(beyond) = created.keys().copied().find(|row| *row > rows) {
        mismatch.get_or_insert(beyond);
    }
    if let Some(row) = mismatch {
        return Err(CliError::setup(format!(
            "the results file does not belong to {}: it lists row {row} as created for another \
             fiscal code (or a row the file does not have); give another --results file",
            path.display()
        )));
    }
    let hash = reader.into_inner().finish().map_err(|e| reading(&e))?;
    Ok(Survey {
        columns,
        rows,
        hash,
    })
}

/// Calls `visit` with each row's number and record (or `None` when that row is not valid CSV)
/// until it returns false; an I/O error ends the read.
fn read_records<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    mut visit: impl FnMut(u64, Result<&StringRecord, &csv::Error>) -> bool,
) -> Result<(), csv::Error> {
    let mut record = StringRecord::new();
    let mut number = 0;
    loop {
        let read = reader.read_record(&mut record);
        let go_on = match &read {
            Ok(false) => return Ok(()),
            Err(error) if error.is_io_error() => return read.map(drop),
            Ok(true) => {
                number += 1;
                visit(number, Ok(&record))
            }
            Err(error) => {
                number += 1;
                visit(number, Err(error))
            }
        };
        if !go_on {
            return Ok(());
        }
    }
}

/// The second read: every row not yet created, in order, into `rows`. Returns the content's
/// hash, or `None` when the run stopped before the end of the file.
fn produce(
    path: &Path,
    columns: &Columns,
    created: &BTreeMap<u64, CreatedRow>,
    rows: mpsc::Sender<Row>,
) -> std::io::Result<Option<ContentHash>> {
    let mut reader = csv_reader(HashingReader::new(File::open(path)?));
    reader.headers().map_err(std::io::Error::other)?;
    let mut complete = true;
    read_records(&mut reader, |number, record| {
        if created.contains_key(&number) {
            return true;
        }
        let row = match record {
            Ok(record) => columns.row(number, record),
            Err(error) => Row::unreadable(number, error),
        };
        complete = rows.blocking_send(row).is_ok();
        complete
    })
    .map_err(std::io::Error::other)?;
    if !complete {
        return Ok(None);
    }
    reader.into_inner().finish().map(Some)
}

/// Fails early, as a setup error, when nothing answers at `base` (instead of retrying every row).
async fn preflight(http: &reqwest::Client, base: &BaseUrl) -> Result<(), CliError> {
    match http.get(base.join("/healthz")).send().await {
        Ok(_) => Ok(()),
        Err(error) => Err(CliError::setup(format!(
            "cannot reach the server at {base}: {}",
            error_chain(&error.without_url())
        ))),
    }
}

/// On Ctrl-C: stop starting rows; on a second one, quit at once.
async fn interrupt_on_ctrl_c(stop: watch::Sender<bool>) {
    if tokio::signal::ctrl_c().await.is_ok() {
        stop.send_replace(true);
        eprintln!("interrupted: finishing the rows in flight (Ctrl-C again to quit now)");
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    }
}

/// A bar on stdout when stdout is a terminal; hidden otherwise (logs, pipes, tests).
fn progress_bar(rows: u64) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(rows), ProgressDrawTarget::stdout());
    if let Ok(style) =
        ProgressStyle::with_template("{wide_bar} {pos}/{len} rows · {msg} · {elapsed} (eta {eta})")
    {
        bar.set_style(style);
    }
    bar
}

/// Counts of this run.
#[derive(Debug, Default)]
struct Tally {
    created: u64,
    replayed: u64,
    failed: u64,
}
