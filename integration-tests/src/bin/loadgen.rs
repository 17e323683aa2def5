//! `loadgen`: latency at a fixed offered rate, for targets stated as "N requests/s with p99 under
//! T" (`make bench`). wrk measures the ceiling: each connection sends as soon as its previous
//! answer arrives, so at saturation its latencies are mostly queueing. Here requests are due at
//! evenly spaced instants, at most `--connections` are in flight, and each latency is counted from
//! the instant the request was due (a request that had to wait for a free connection counts its
//! wait), as wrk2 does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Mutex, Semaphore};

#[derive(Parser)]
#[command(about = "Offer a fixed request rate over a bounded number of connections; print p50/p99.")]
struct Args {
    /// Requests per second to offer.
    #[arg(long)]
    rate: u32,
    /// Requests in flight at most (one keep-alive connection each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long to offer the rate, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Request body (sent with Content-Type: application/json).
    #[arg(long)]
    body: Option<String>,
    /// Extra header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    url: String,
}

fn headers(raw: &[String]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for line in raw {
        let (name, value) = line.split_once(':').ok_or_else(|| format!("header {line:?} is not `Name: value`"))?;
        map.append(
            HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| e.to_string())?,
            HeaderValue::from_str(value.trim()).map_err(|e| e.to_string())?,
        );
    }
    if !map.contains_key(reqwest::header::CONTENT_TYPE) {
        map.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(map)
}

#[derive(Default)]
struct Outcomes {
    latencies: Vec<Duration>,
    failed: u64,
    first_failure: Option<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let headers = match headers(&args.headers) {
        Ok(h) => h,
        Err(err) => {
            eprintln!("loadgen: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let method = match reqwest::Method::from_bytes(args.method.as_bytes()) {
        Ok(m) => m,
        Err(err) => {
            eprintln!("loadgen: method: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    meridian_platform::tls::install_crypto_provider();
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(args.connections)
            .default_headers(headers)
            .build()
            .expect("an HTTP client");
        let slots = Arc::new(Semaphore::new(args.connections));
        let results = Arc::new(Mutex::new(Outcomes::default()));
        let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
        let total = u64::from(args.rate) * args.seconds;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..total {
            let due = start + interval.mul_f64(i as f64);
            tokio::time::sleep_until(due.into()).await;
            let permit = slots.clone().acquire_owned().await.expect("the semaphore stays open");
            let request = client.request(method.clone(), &args.url);
            let request = match &args.body {
                Some(body) => request.body(body.clone()),
                None => request,
            };
            let results = results.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = match request.send().await {
                    Ok(res) if res.status().is_success() => res.bytes().await.map(|_| ()).map_err(|e| e.to_string()),
                    Ok(res) => Err(format!("status {}", res.status())),
                    Err(err) => Err(err.to_string()),
                };
                let latency = due.elapsed();
                drop(permit);
                let mut results = results.lock().await;
                results.latencies.push(latency);
                if let Err(err) = outcome {
                    results.failed += 1;
                    results.first_failure.get_or_insert(err);
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let elapsed = start.elapsed();
        let Outcomes { mut latencies, failed, first_failure } = std::mem::take(&mut *results.lock().await);
        latencies.sort_unstable();
        if let Some(failure) = first_failure {
            eprintln!("loadgen: first failure: {failure}");
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:.0} req/s p50 {:.2}ms p99 {:.2}ms max {:.2}ms non-2xx-or-failed {}",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(percentile(&latencies, 100.0)),
            failed
        );
    });
    std::process::ExitCode::SUCCESS
}
