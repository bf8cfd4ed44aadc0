//! `dept serve`: many adapters on one backbone over HTTP (the `dept-serve` crate).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use dept_serve::{EngineOptions, Policy, ServeOptions};

#[derive(Args)]
#[command(
    long_about = "Serve every DePT and prompt-tuning adapter found under --adapters on one frozen backbone. \
                  Requests for different adapters run in one forward pass, and decoding is batched per step: a \
                  request joins the running batch at the next step and leaves when it ends.\n\n\
                  Routes: POST /v1/completions (OpenAI; `model` names an adapter), GET /v1/models, POST \
                  /v1/predict (task fields in, labels out), POST /v1/adapters and DELETE /v1/adapters/{name} \
                  (with --admin-token), /healthz, /readyz, /metrics (Prometheus), /openapi.json.\n\n\
                  SIGTERM or SIGINT: stop accepting, finish the requests in flight (at most --shutdown-grace \
                  seconds), exit."
)]
pub struct ServeArgs {
    /// The backbone: a Hugging Face folder (config.json, model.safetensors, tokenizer.json), or a hub id (t5-base,
    /// org/name@revision) resolved through the Hugging Face cache (downloaded into it when online).
    #[arg(long)]
    model: PathBuf,
    /// Load every adapter folder under this one at start-up, each named by its path below it (`rte`,
    /// `rte-run/best`).
    #[arg(long)]
    adapters: Option<PathBuf>,
    /// Where POST /v1/adapters may load from (default: --adapters); paths outside it are refused.
    #[arg(long)]
    adapter_root: Option<PathBuf>,
    /// Address to listen on; 127.0.0.1 unless told otherwise (0.0.0.0 listens on every interface).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Turns on the admin routes, which then need `Authorization: Bearer TOKEN` (also read from
    /// DEPT_ADMIN_TOKEN).
    #[arg(long, env = "DEPT_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Rows decoded together at most.
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
    /// Requests waiting at most; more are refused with 429 and Retry-After.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// How waiting requests enter the batch: continuous (any adapter, at every step), per-adapter (one
    /// adapter's batch at a time, run to its end), one-at-a-time.
    #[arg(long, default_value = "continuous")]
    batching: Policy,
    /// Largest request body in bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Seconds a request may take before it is answered 504 and its rows dropped.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, default_value_t = 30)]
    shutdown_grace: u64,
    /// Input limit in tokens for prompt-tuning adapters saved without max_length.
    #[arg(long, default_value_t = 512)]
    max_input_tokens: usize,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// CPU threads for the model (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    if args.max_batch == 0 || args.queue == 0 {
        bail!("--max-batch and --queue must be at least 1");
    }
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads);
    }
    // A client that hangs up must not end the server: writes to its socket fail with EPIPE instead.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let options = ServeOptions {
        model: args.model.clone(),
        adapters: args.adapters.clone(),
        adapter_root: args.adapter_root.clone(),
        host: args.host,
        port: args.port,
        admin_token: args.admin_token.clone().filter(|t| !t.is_empty()),
        engine: EngineOptions {
            policy: args.batching,
            max_batch_rows: args.max_batch,
            queue_capacity: args.queue,
            default_max_input: args.max_input_tokens,
        },
        max_body_bytes: args.max_body_bytes,
        request_timeout: Duration::from_secs(args.timeout),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        device: args.device.clone(),
    };
    let admin = options.admin_token.is_some();
    let stopped = dept_serve::serve(options, |address, adapters| {
        // Tests and scripts read this line for the port.
        println!(
            "dept serve: listening on http://{address} ({adapters} adapters; admin routes {})",
            if admin { "on" } else { "off" }
        );
    })?;
    if stopped.cut_short {
        bail!("stopped with requests still in flight after the grace period");
    }
    println!("dept serve: stopped");
    Ok(())
}
