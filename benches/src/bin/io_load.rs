//! `io-load`: a bounded HTTP/1.1 load client for io's HTTP benchmark (`benches/http.sh`).
//!
//! It POSTs a JSON body to a loopback URL over `--connections` keep-alive connections (tokio and
//! hyper's low-level HTTP/1.1 client: one TCP connection per connection slot, no pool, no
//! pipelining, `TCP_NODELAY`) and measures what the server answers. Two modes:
//!
//! - **closed loop** (default): each connection sends its next request as soon as the previous
//!   answer has arrived, for `--duration` seconds: the server's maximum throughput at that
//!   concurrency;
//! - **open loop** (`--rate R`): request *i* is scheduled at `start + i / R`; whichever
//!   connection is free takes the next due request. Latency is measured from each request's
//!   *scheduled* time, so a server that stalls is charged for every request it delayed (no
//!   coordinated omission). The time from the actual send ("service time") is reported beside
//!   it; the difference is queueing in the client (all connections busy) plus the timer's 1 ms
//!   granularity.
//!
//! `{fiscal_code}` in the URL and in the body template is replaced by one of N fiscal codes,
//! round-robin (`--fiscal-codes FILE`, one per line, or `--citizens N` valid generated codes,
//! the same as `io_benches::citizen(0..N)`). Requests and bodies are built before the clock
//! starts.
//!
//! Output: one line of JSON on stdout (flat keys, for scripts) and one human line on stderr.
//! Only 2xx answers count in the throughput (`throughput_2xx_per_s` = 2xx answers / elapsed);
//! other statuses are counted by status, transport failures by kind, and latencies are those
//! of the 2xx answers. Exit status: 0 when at least one 2xx answer came back, 3 when none
//! did, 2 on a usage error, 1 when the target cannot be reached at all.
//!
//! Bounds, always: at most `--duration` seconds of sending (default 60, at most 3,600) plus
//! `--timeout` for the last answers, and at most `--max-requests` (default 2,000,000, at most
//! 10,000,000). Only loopback targets (`127.0.0.1`, `::1`, `localhost`) are accepted: the
//! client shares the machine with the server, and the figures say so.
//!
//! ```sh
//! # closed loop: maximum throughput with 64 connections for 20 s
//! io-load --url 'http://127.0.0.1:8080/api/v1/messages/{fiscal_code}' \
//!     --header 'Ocp-Apim-Subscription-Key: KEY' --connections 64 --duration 20
//! # open loop: 2,000 requests/s for 20 s, latency from the schedule
//! io-load --url 'http://127.0.0.1:8080/api/v1/messages/{fiscal_code}' --rate 2000 --duration 20
//! # the generated fiscal codes, one per line (to seed profiles)
//! io-load --print-fiscal-codes 1000
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The allocator io-server ships with (ARCHITECTURE.md, "Memory"): the client shares the box
/// with the servers it loads, and takes less of it so.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The placeholder replaced by a fiscal code in the URL and the body.
const PLACEHOLDER: &str = "{fiscal_code}";
/// Hard ceilings on the bounds a caller may ask for.
const MAX_DURATION_SECS: f64 = 3600.0;
const MAX_REQUESTS_CEILING: u64 = 10_000_000;

#[derive(Parser, Debug)]
#[command(
    name = "io-load",
    about = "A bounded HTTP/1.1 load client (closed loop, or open loop with --rate) for loopback servers."
)]
struct Args {
    /// Target URL: http, host 127.0.0.1, ::1 or localhost; `{fiscal_code}` is replaced.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080/api/v1/messages/{fiscal_code}"
    )]
    url: String,
    /// Keep-alive connections (at most this many requests in flight).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of sending (a hard bound in both modes).
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Open loop: requests per second over all connections; without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// At most this many requests.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// An extra request header, `'Name: value'` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The body template (JSON; `{fiscal_code}` is replaced). Default: a ~1 KiB IO message
    /// (subject, markdown, due date, payment data) without a recipient in the body.
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// Fiscal codes, one per line (blank lines and `#` comments skipped), used round-robin.
    #[arg(long, value_name = "FILE", conflicts_with = "citizens")]
    fiscal_codes: Option<PathBuf>,
    /// Without --fiscal-codes: this many generated valid fiscal codes (1 to 1000).
    #[arg(long, default_value_t = 1000)]
    citizens: u32,
    /// Seconds to wait for one answer before counting a timeout (and reconnecting).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Client runtime threads (1: a current-thread runtime, the lightest on a shared box).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print this many generated fiscal codes, one per line, and exit.
    #[arg(long, value_name = "N")]
    print_fiscal_codes: Option<u32>,
}

/// A usage or setup error, printed as `io-load: …`.
#[derive(Debug)]
struct Fatal {
    message: String,
    code: u8,
}

fn usage(message: impl Into<String>) -> Fatal {
    Fatal {
        message: message.into(),
        code: 2,
    }
}

/// Everything a connection task needs, built before the clock starts.
struct Plan {
    addr: SocketAddr,
    authority: HeaderValue,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// One (path, body) per fiscal code.
    targets: Vec<(Uri, Bytes)>,
    timeout: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(fatal) => {
            eprintln!("io-load: {}", fatal.message);
            ExitCode::from(fatal.code)
        }
    }
}

fn run(args: Args) -> Result<ExitCode, Fatal> {
    if let Some(n) = args.print_fiscal_codes {
        if !(1..=1000).contains(&n) {
            return Err(usage("--print-fiscal-codes: expected 1 to 1000"));
        }
        for i in 0..n {
            println!("{}", io_benches::citizen(i));
        }
        return Ok(ExitCode::SUCCESS);
    }
    check_bounds(&args)?;
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| Fatal {
        message: format!("cannot start the runtime: {e}"),
        code: 1,
    })?;
    runtime.block_on(load(args))
}

fn check_bounds(args: &Args) -> Result<(), Fatal> {
    if !(1..=4096).contains(&args.connections) {
        return Err(usage("--connections: expected 1 to 4096"));
    }
    if !(args.duration > 0.0 && args.duration <= MAX_DURATION_SECS) {
        return Err(usage(format!(
            "--duration: expected more than 0 and at most {MAX_DURATION_SECS} seconds"
        )));
    }
    if !(1..=MAX_REQUESTS_CEILING).contains(&args.max_requests) {
        return Err(usage(format!(
            "--max-requests: expected 1 to {MAX_REQUESTS_CEILING}"
        )));
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0)
    {
        return Err(usage(
            "--rate: expected a number of requests per second above 0",
        ));
    }
    if !(args.timeout > 0.0 && args.timeout <= 600.0) {
        return Err(usage(
            "--timeout: expected more than 0 and at most 600 seconds",
        ));
    }
    if !(1..=64).contains(&args.threads) {
        return Err(usage("--threads: expected 1 to 64"));
    }
    Ok(())
}

/// Splits a URL template into the resolved loopback address, the `Host` value and the
/// path-and-query template; refuses anything but plain HTTP to a loopback host.
async fn parse_target(url: &str) -> Result<(SocketAddr, HeaderValue, String), Fatal> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| usage(format!("--url {url:?}: expected http://HOST:PORT/PATH")))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.contains('{') || authority.contains('@') {
        return Err(usage(format!(
            "--url {url:?}: the host part may not hold a placeholder or credentials"
        )));
    }
    let probe: Uri = format!("http://{authority}/")
        .parse()
        .map_err(|e| usage(format!("--url {url:?}: {e}")))?;
    let host = probe
        .host()
        .ok_or_else(|| usage(format!("--url {url:?}: no host")))?;
    let port = probe.port_u16().unwrap_or(80);
    let ip = match host {
        "127.0.0.1" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "[::1]" | "::1" => IpAddr::V6(Ipv6Addr::LOCALHOST),
        "localhost" => tokio::net::lookup_host(("localhost", port))
            .await
            .map_err(|e| usage(format!("--url {url:?}: cannot resolve localhost: {e}")))?
            .map(|addr| addr.ip())
            .find(IpAddr::is_loopback)
            .ok_or_else(|| usage(format!("--url {url:?}: localhost is not loopback here")))?,
        other => {
            return Err(usage(format!(
                "--url {url:?}: host {other:?} refused; only 127.0.0.1, ::1 and localhost \
                 (the load must stay on this machine)"
            )));
        }
    };
    let authority =
        HeaderValue::from_str(authority).map_err(|e| usage(format!("--url {url:?}: {e}")))?;
    Ok((SocketAddr::new(ip, port), authority, path.to_string()))
}

fn parse_header(raw: &str) -> Result<(HeaderName, HeaderValue), Fatal> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| usage(format!("--header {raw:?}: expected 'Name: value'")))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|e| usage(format!("--header {raw:?}: bad name: {e}")))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|e| usage(format!("--header {raw:?}: bad value: {e}")))?;
    Ok((name, value))
}

fn read_fiscal_codes(args: &Args) -> Result<Vec<String>, Fatal> {
    let Some(path) = &args.fiscal_codes else {
        if !(1..=1000).contains(&args.citizens) {
            return Err(usage("--citizens: expected 1 to 1000"));
        }
        return Ok((0..args.citizens)
            .map(|n| io_benches::citizen(n).to_string())
            .collect());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--fiscal-codes {}: {e}", path.display())))?;
    let mut codes = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let code = io_core::FiscalCode::parse(line).map_err(|e| {
            usage(format!(
                "--fiscal-codes {}:{}: {line:?} is not a valid fiscal code: {e}",
                path.display(),
                number + 1
            ))
        })?;
        codes.push(code.to_string());
    }
    if codes.is_empty() {
        return Err(usage(format!(
            "--fiscal-codes {}: no fiscal codes in the file",
            path.display()
        )));
    }
    Ok(codes)
}

/// The default body: IO's typical ~1 KiB notice, as `io_benches::new_message_json` but with
/// the recipient in the URL only (IO refuses it in both places).
fn default_body() -> String {
    format!(
        r#"{{"time_to_live":3600,"content":{{"subject":"Avviso di pagamento TARI 2026","markdown":"{}","due_date":"2026-06-30T23:59:59Z","payment_data":{{"amount":12345,"notice_number":"012345678901234567"}}}}}}"#,
        "Gentile contribuente, le comunichiamo che è disponibile l'avviso di pagamento. "
            .repeat(11)
    )
}

async fn plan(args: &Args) -> Result<Plan, Fatal> {
    let (addr, authority, path_template) = parse_target(&args.url).await?;
    let mut headers = vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    for raw in &args.headers {
        let (name, value) = parse_header(raw)?;
        if name == HOST {
            return Err(usage("--header Host: the host comes from --url"));
        }
        if name == CONTENT_TYPE {
            headers.retain(|(existing, _)| *existing != CONTENT_TYPE);
        }
        headers.push((name, value));
    }
    let body_template = match &args.body_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--body-file {}: {e}", path.display())))?,
        None => default_body(),
    };
    let codes = read_fiscal_codes(args)?;
    let mut targets = Vec::with_capacity(codes.len());
    for code in &codes {
        let path = path_template.replace(PLACEHOLDER, code);
        let uri: Uri = path
            .parse()
            .map_err(|e| usage(format!("--url: path {path:?} is not valid: {e}")))?;
        let body = Bytes::from(body_template.replace(PLACEHOLDER, code));
        targets.push((uri, body));
    }
    Ok(Plan {
        addr,
        authority,
        headers,
        targets,
        timeout: Duration::from_secs_f64(args.timeout),
    })
}

/// What one connection task saw.
#[derive(Default)]
struct Stats {
    sent: u64,
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    /// 2xx latencies in µs: from the scheduled time (open loop) or the send (closed loop).
    latency_us: Vec<u32>,
    /// 2xx latencies in µs from the actual send.
    service_us: Vec<u32>,
    last_done: Option<Instant>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.sent += other.sent;
        self.ok += other.ok;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.latency_us.extend(other.latency_us);
        self.service_us.extend(other.service_us);
        self.last_done = self.last_done.max(other.last_done);
    }
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY on {addr}: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/1.1 handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A connection slot: reconnects after a failure, counts everything in `stats`.
struct Slot {
    plan: Arc<Plan>,
    sender: Option<SendRequest<Full<Bytes>>>,
    stats: Stats,
}

impl Slot {
    /// Sends request number `index` and waits for the whole answer. `origin` is when its
    /// latency starts (the schedule in open loop).
    async fn send(&mut self, index: u64, origin: Option<Instant>) {
        let plan = self.plan.clone();
        let (uri, body) = &plan.targets[(index % plan.targets.len() as u64) as usize];
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(HOST, plan.authority.clone());
        for (name, value) in &plan.headers {
            builder = builder.header(name, value.clone());
        }
        let request = match builder.body(Full::new(body.clone())) {
            Ok(request) => request,
            Err(_) => {
                *self.stats.errors.entry("request").or_default() += 1;
                return;
            }
        };
        let sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => match connect(plan.addr).await {
                Ok(sender) => sender,
                Err(_) => {
                    self.stats.sent += 1;
                    *self.stats.errors.entry("connect").or_default() += 1;
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return;
                }
            },
        };
        self.stats.sent += 1;
        let started = Instant::now();
        let outcome = tokio::time::timeout(plan.timeout, exchange(sender, request)).await;
        let done = Instant::now();
        self.stats.last_done = Some(done);
        match outcome {
            Err(_) => *self.stats.errors.entry("timeout").or_default() += 1,
            Ok(Err(kind)) => *self.stats.errors.entry(kind).or_default() += 1,
            Ok(Ok((status, sender))) => {
                self.sender = Some(sender);
                *self.stats.statuses.entry(status).or_default() += 1;
                if (200..300).contains(&status) {
                    self.stats.ok += 1;
                    self.stats
                        .latency_us
                        .push(micros(done - origin.unwrap_or(started)));
                    self.stats.service_us.push(micros(done - started));
                }
            }
        }
    }
}

/// One request and its whole answer on one connection; gives the connection back.
async fn exchange(
    mut sender: SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(u16, SendRequest<Full<Bytes>>), &'static str> {
    sender.ready().await.map_err(|_| "closed")?;
    let response = sender.send_request(request).await.map_err(|e| {
        if e.is_incomplete_message() || e.is_canceled() {
            "closed"
        } else {
            "send"
        }
    })?;
    let status = response.status().as_u16();
    response.into_body().collect().await.map_err(|_| "body")?;
    Ok((status, sender))
}

async fn load(args: Args) -> Result<ExitCode, Fatal> {
    let plan = Arc::new(plan(&args).await?);
    // Open every connection before the clock starts; the first failure stops the run.
    let mut slots = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let sender = connect(plan.addr)
            .await
            .map_err(|message| Fatal { message, code: 1 })?;
        slots.push(Slot {
            plan: plan.clone(),
            sender: Some(sender),
            stats: Stats::default(),
        });
    }
    let duration = Duration::from_secs_f64(args.duration);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    // Open loop: requests scheduled before the deadline, within the count bound.
    let scheduled_total = args
        .rate
        .map(|rate| ((args.duration * rate).floor() as u64).min(args.max_requests));
    // Requests not sent by then (open loop, server too slow) are reported as unsent.
    let hard_stop = deadline + plan.timeout;
    let mut tasks = Vec::with_capacity(slots.len());
    for mut slot in slots {
        let next = next.clone();
        let max_requests = args.max_requests;
        let rate = args.rate;
        tasks.push(tokio::spawn(async move {
            match (rate, scheduled_total) {
                (Some(rate), Some(total)) => loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total {
                        break;
                    }
                    let scheduled = start + Duration::from_secs_f64(index as f64 / rate);
                    if scheduled > Instant::now() {
                        tokio::time::sleep_until(scheduled.into()).await;
                    }
                    if Instant::now() >= hard_stop {
                        break;
                    }
                    slot.send(index, Some(scheduled)).await;
                },
                _ => loop {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= max_requests {
                        break;
                    }
                    slot.send(index, None).await;
                },
            }
            slot.stats
        }));
    }
    let mut stats = Stats::default();
    for task in tasks {
        match task.await {
            Ok(part) => stats.merge(part),
            Err(e) => {
                return Err(Fatal {
                    message: format!("a connection task failed: {e}"),
                    code: 1,
                });
            }
        }
    }
    let elapsed = stats
        .last_done
        .unwrap_or(start)
        .saturating_duration_since(start);
    report(&args, &stats, scheduled_total, elapsed);
    Ok(if stats.ok > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The nearest-rank percentile of sorted µs values, in ms.
fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn report(args: &Args, stats: &Stats, scheduled_total: Option<u64>, elapsed: Duration) {
    let mut latency = stats.latency_us.clone();
    latency.sort_unstable();
    let mut service = stats.service_us.clone();
    service.sort_unstable();
    let non_2xx: BTreeMap<String, u64> = stats
        .statuses
        .iter()
        .filter(|(status, _)| !(200..300).contains(*status))
        .map(|(status, n)| (status.to_string(), *n))
        .collect();
    let non_2xx_total: u64 = non_2xx.values().sum();
    let errors_total: u64 = stats.errors.values().sum();
    let elapsed_s = elapsed.as_secs_f64();
    let throughput = if elapsed_s > 0.0 {
        stats.ok as f64 / elapsed_s
    } else {
        0.0
    };
    let unsent = scheduled_total.map_or(0, |total| total.saturating_sub(stats.sent));
    let mode = if args.rate.is_some() {
        "open"
    } else {
        "closed"
    };
    let json = serde_json::json!({
        "mode": mode,
        "url": args.url,
        "connections": args.connections,
        "threads": args.threads,
        "rate": args.rate,
        "duration_s": args.duration,
        "scheduled": scheduled_total,
        "requests_sent": stats.sent,
        "unsent": unsent,
        "ok_2xx": stats.ok,
        "non_2xx": non_2xx_total,
        "non_2xx_by_status": non_2xx,
        "errors": errors_total,
        "errors_by_kind": stats.errors,
        "elapsed_s": round3(elapsed_s),
        "throughput_2xx_per_s": round3(throughput),
        "p50_ms": round3(percentile_ms(&latency, 0.50)),
        "p90_ms": round3(percentile_ms(&latency, 0.90)),
        "p99_ms": round3(percentile_ms(&latency, 0.99)),
        "max_ms": round3(percentile_ms(&latency, 1.0)),
        "service_p50_ms": round3(percentile_ms(&service, 0.50)),
        "service_p99_ms": round3(percentile_ms(&service, 0.99)),
    });
    println!("{json}");
    let statuses = if non_2xx.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            non_2xx
                .iter()
                .map(|(status, n)| format!("{status}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let errors = if stats.errors.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            stats
                .errors
                .iter()
                .map(|(kind, n)| format!("{kind}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let load = match args.rate {
        Some(rate) => format!("open loop at {rate}/s"),
        None => "closed loop".to_string(),
    };
    let unsent = if unsent > 0 {
        format!(", {unsent} scheduled but unsent (server too slow)")
    } else {
        String::new()
    };
    eprintln!(
        "io-load {load}, {} connections: {} sent, {} 2xx, {non_2xx_total} non-2xx{statuses}, \
         {errors_total} errors{errors}{unsent} in {elapsed_s:.2} s: {throughput:.0} 2xx/s; \
         2xx latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        args.connections,
        stats.sent,
        stats.ok,
        percentile_ms(&latency, 0.50),
        percentile_ms(&latency, 0.90),
        percentile_ms(&latency, 0.99),
        percentile_ms(&latency, 1.0),
    );
}
