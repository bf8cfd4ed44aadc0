//! The model thread: one frozen backbone, every loaded adapter, and the loop that batches requests.
//!
//! libtorch work never runs on the async runtime: the HTTP side sends [`Command`]s over a channel and awaits each
//! answer on a oneshot channel. Each turn of the loop the thread
//!
//! 1. takes every command waiting (blocking only when it has nothing to do): generation requests join the
//!    waiting line with the adapter version they asked for, loads and unloads happen at once;
//! 2. drops rows whose client went away (its answer channel closed: a hang-up or a timeout);
//! 3. admits waiting requests as the [`Policy`] says — with the default [`Policy::Continuous`] up to
//!    `max_batch_rows` rows run at once and newcomers join at the next step, whatever their adapter, their
//!    inputs encoded together in one mixed forward pass ([`dept_models::prompted::start_mixed_rows`]);
//! 4. advances every running row by one greedy token, answers the rows that finished (end of sequence or their
//!    `max_tokens`) and drops them from the batch.
//!
//! A request holds an `Rc` of the adapter version it was admitted with, so a reload under the same name never
//! changes an answer in flight, and its key/value cache lives and dies with its row (it is never shared, so it
//! cannot be reused across a reload). A panic or error inside the model fails the rows of that batch with a 500;
//! the thread goes on.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use dept_models::layout::length_buckets;
use dept_models::prompted::{start_mixed_rows, MixedRow};
use dept_models::{Backbone, DecodingRows};
use tch::Tensor;
use tokio::sync::oneshot;

use crate::adapters::{self, AdapterInfo, Catalog, ServedAdapter};
use crate::metrics::Metrics;
use crate::ServeError;

/// How waiting requests are admitted into the running batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Iteration-level batching over every adapter: a request joins the running rows at the next step, leaves when
    /// it finishes.
    Continuous,
    /// What HF PEFT allows: a batch holds one adapter's requests (the oldest waiting request's adapter) and runs
    /// until all of them finish; only then is the next batch formed.
    PerAdapter,
    /// One request at a time.
    OneAtATime,
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "continuous" => Ok(Policy::Continuous),
            "per-adapter" => Ok(Policy::PerAdapter),
            "one-at-a-time" => Ok(Policy::OneAtATime),
            other => Err(format!(
                "unknown batching policy {other:?}: continuous, per-adapter or one-at-a-time"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub policy: Policy,
    /// Rows decoded together at most.
    pub max_batch_rows: usize,
    /// Requests waiting (sent, not yet running) at most; beyond it requests are refused with 429.
    pub queue_capacity: usize,
    /// The input limit of a prompt-tuning adapter saved without `s`.
    pub default_max_input: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            policy: Policy::Continuous,
            max_batch_rows: 32,
            queue_capacity: 256,
            default_max_input: 512,
        }
    }
}

/// One generation: token ids for an adapter, decoded greedily.
pub struct Generation {
    pub adapter: String,
    pub input_ids: Vec<i64>,
    pub max_tokens: usize,
    pub reply: oneshot::Sender<Result<Generated, ServeError>>,
}

/// A finished generation.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The new tokens, up to and including end of sequence.
    pub tokens: Vec<i64>,
    /// True when the answer ended with end of sequence, false when it reached `max_tokens`.
    pub stopped: bool,
    /// The adapter version (content hash) that produced it.
    pub version: String,
    /// Time between the request reaching the engine and its first token.
    pub queued_s: f64,
}

pub enum Command {
    Generate(Generation),
    Load {
        name: String,
        dir: PathBuf,
        reply: oneshot::Sender<Result<AdapterInfo, ServeError>>,
    },
    Unload {
        name: String,
        reply: oneshot::Sender<Result<AdapterInfo, ServeError>>,
    },
}

/// The HTTP side's end of the engine: send commands, see the queue and what is loaded.
#[derive(Clone)]
pub struct EngineHandle {
    commands: Sender<Command>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
    pub catalog: Catalog,
    /// The backbone's facts the HTTP side checks requests against.
    pub model: ModelFacts,
    alive: Arc<AtomicBool>,
}

/// What requests are checked against before they reach the engine.
#[derive(Debug, Clone)]
pub struct ModelFacts {
    pub eos_token_id: i64,
    pub decoder_only: bool,
    pub max_positions: Option<i64>,
    pub model_type: String,
}

impl EngineHandle {
    /// Queues a generation, or refuses it at once when the queue is full (429) or the engine has stopped.
    pub fn submit(&self, generation: Generation) -> Result<(), ServeError> {
        let queued = self.queued.fetch_add(1, Ordering::SeqCst);
        if queued >= self.capacity {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(ServeError::Busy {
                queued,
                capacity: self.capacity,
                retry_after_s: 1,
            });
        }
        self.send(Command::Generate(generation))
    }

    pub fn send(&self, command: Command) -> Result<(), ServeError> {
        self.commands
            .send(command)
            .map_err(|_| ServeError::Model("the model thread has stopped".into()))
    }

    /// The most requests that may wait at once (`--queue`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Requests sent and not yet running.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// False once the model thread has ended.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }
}

/// Starts the model thread: `load_backbone` runs on it (libtorch objects stay on the thread that made them), then
/// the adapters `initial` (name, folder) are loaded; returns once they are (an adapter that cannot be loaded fails
/// the start, naming it).
pub fn start(
    load_backbone: impl FnOnce() -> Result<Box<dyn Backbone>, ServeError> + Send + 'static,
    model_type: String,
    initial: Vec<(String, PathBuf)>,
    options: EngineOptions,
    metrics: Arc<Metrics>,
) -> Result<(EngineHandle, std::thread::JoinHandle<()>), ServeError> {
    let (commands, receiver) = mpsc::channel();
    let catalog: Catalog = Default::default();
    let queued = Arc::new(AtomicUsize::new(0));
    let alive = Arc::new(AtomicBool::new(true));
    let (started, ready) = mpsc::channel::<Result<ModelFacts, ServeError>>();
    let thread = {
        let (catalog, queued, alive, options) = (
            catalog.clone(),
            queued.clone(),
            alive.clone(),
            options.clone(),
        );
        std::thread::Builder::new()
            .name("dept-model".into())
            .spawn(move || {
                let opened = load_backbone().and_then(|backbone| {
                    let facts = ModelFacts {
                        eos_token_id: backbone.eos_token_id(),
                        decoder_only: backbone.architecture()
                            == dept_models::Architecture::DecoderOnly,
                        max_positions: backbone.max_positions(),
                        model_type,
                    };
                    let mut engine = Engine {
                        backbone,
                        adapters: BTreeMap::new(),
                        catalog,
                        options,
                        queued,
                        metrics,
                        waiting: VecDeque::new(),
                        running: Running::default(),
                    };
                    for (name, dir) in &initial {
                        engine.load(name, dir)?;
                    }
                    Ok((engine, facts))
                });
                match opened {
                    Ok((mut engine, facts)) => {
                        let _ = started.send(Ok(facts));
                        engine.run(receiver);
                    }
                    Err(error) => {
                        let _ = started.send(Err(error));
                    }
                }
                alive.store(false, Ordering::SeqCst);
            })
            .map_err(|e| ServeError::Startup(format!("cannot start the model thread: {e}")))?
    };
    let model = ready
        .recv()
        .map_err(|_| ServeError::Startup("the model thread ended while loading".into()))??;
    let handle = EngineHandle {
        commands,
        queued,
        capacity: options.queue_capacity,
        catalog,
        model,
        alive,
    };
    Ok((handle, thread))
}

struct Engine {
    backbone: Box<dyn Backbone>,
    adapters: BTreeMap<String, Rc<ServedAdapter>>,
    catalog: Catalog,
    options: EngineOptions,
    queued: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    waiting: VecDeque<Waiting>,
    running: Running,
}

/// A request admitted to the engine, with the adapter version it will run on.
struct Waiting {
    generation: Generation,
    adapter: Rc<ServedAdapter>,
    arrived: Instant,
}

/// A running row: its request, its adapter and what it generated so far.
struct Row {
    generation: Generation,
    adapter: Rc<ServedAdapter>,
    tokens: Vec<i64>,
    queued_s: f64,
}

#[derive(Default)]
struct Running {
    state: Option<DecodingRows>,
    rows: Vec<Row>,
    /// Logits of each row's next token `[rows, vocab]`.
    logits: Option<Tensor>,
}

impl Engine {
    fn run(&mut self, commands: Receiver<Command>) {
        loop {
            let idle = self.running.rows.is_empty() && self.waiting.is_empty();
            if idle {
                match commands.recv() {
                    Ok(command) => self.handle(command),
                    Err(_) => return, // every handle dropped: the server is done
                }
                // Requests come in waves (clients answered together send again together): a moment's wait lets
                // the wave gather into one prefill instead of its first request running alone.
                let until = Instant::now() + GATHER_WINDOW;
                while let Some(left) = until.checked_duration_since(Instant::now()) {
                    match commands.recv_timeout(left) {
                        Ok(command) => self.handle(command),
                        Err(_) => break,
                    }
                }
            }
            while let Ok(command) = commands.try_recv() {
                self.handle(command);
            }
            self.drop_abandoned();
            let turn = catch_unwind(AssertUnwindSafe(|| -> Result<(), ServeError> {
                self.admit()?;
                self.step()
            }));
            let failure = match turn {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(panic) => Some(panic_message(panic)),
            };
            if let Some(message) = failure {
                tracing::error!("a batch failed: {message}");
                self.fail_running(&message);
            }
            self.metrics
                .running_rows
                .set(self.running.rows.len() as i64);
            self.metrics
                .queue_depth
                .set(self.queued.load(Ordering::SeqCst) as i64);
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Generate(generation) => match self.adapters.get(&generation.adapter) {
                // The route checked the input against the version it saw; a reload since may have lowered s. Such
                // a row would fail the whole step it joins, with every other newcomer in it: refuse it alone.
                Some(adapter) if generation.input_ids.len() > adapter.info.max_input_tokens => {
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    let error = ServeError::BadRequest(format!(
                        "the input has {} tokens, adapter {:?} takes at most {} (its s; it was reloaded while \
                         the request was on its way)",
                        generation.input_ids.len(),
                        generation.adapter,
                        adapter.info.max_input_tokens
                    ));
                    let _ = generation.reply.send(Err(error));
                }
                Some(adapter) => self.waiting.push_back(Waiting {
                    adapter: adapter.clone(),
                    generation,
                    arrived: Instant::now(),
                }),
                None => {
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    let known = self.adapters.keys().cloned().collect::<Vec<_>>();
                    let error = unknown_adapter(&generation.adapter, &known);
                    let _ = generation.reply.send(Err(error));
                }
            },
            Command::Load { name, dir, reply } => {
                let _ = reply.send(self.load(&name, &dir));
            }
            Command::Unload { name, reply } => {
                let removed = self.adapters.remove(&name);
                let answer = match removed {
                    Some(adapter) => {
                        self.write_catalog(|c| {
                            c.remove(&name);
                        });
                        self.metrics.loaded_adapters.set(self.adapters.len() as i64);
                        Ok(adapter.info.clone())
                    }
                    None => Err(unknown_adapter(
                        &name,
                        &self.adapters.keys().cloned().collect::<Vec<_>>(),
                    )),
                };
                let _ = reply.send(answer);
            }
        }
    }

    /// Loads (or atomically replaces) adapter `name`: requests already admitted keep the version they hold.
    fn load(&mut self, name: &str, dir: &std::path::Path) -> Result<AdapterInfo, ServeError> {
        adapters::check_name(name)?;
        let served = adapters::load(
            name,
            dir,
            self.backbone.as_ref(),
            self.options.default_max_input,
        )?;
        let info = served.info.clone();
        self.adapters.insert(name.to_string(), Rc::new(served));
        self.write_catalog(|c| {
            c.insert(name.to_string(), info.clone());
        });
        self.metrics.loaded_adapters.set(self.adapters.len() as i64);
        Ok(info)
    }

    fn write_catalog(&self, change: impl FnOnce(&mut BTreeMap<String, AdapterInfo>)) {
        let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        change(&mut catalog);
    }

    /// Waiting requests and running rows whose client no longer waits (hung up, or its handler timed out).
    fn drop_abandoned(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|w| !w.generation.reply.is_closed());
        let dropped = before - self.waiting.len();
        if dropped > 0 {
            self.queued.fetch_sub(dropped, Ordering::SeqCst);
            self.metrics.abandoned.inc_by(dropped as u64);
        }
        let keep: Vec<i64> = (0..self.running.rows.len() as i64)
            .filter(|&i| !self.running.rows[i as usize].generation.reply.is_closed())
            .collect();
        if keep.len() < self.running.rows.len() {
            self.metrics
                .abandoned
                .inc_by((self.running.rows.len() - keep.len()) as u64);
            self.keep_rows(&keep);
        }
    }

    /// Moves waiting requests into the running batch as the policy allows, encoding them in one forward pass.
    fn admit(&mut self) -> Result<(), ServeError> {
        let running = self.running.rows.len();
        let chosen: Vec<Waiting> = match self.options.policy {
            Policy::Continuous => {
                let free = self.options.max_batch_rows.saturating_sub(running);
                let n = free.min(self.waiting.len());
                self.waiting.drain(..n).collect()
            }
            Policy::PerAdapter if running == 0 => {
                let Some(first) = self.waiting.front() else {
                    return Ok(());
                };
                let adapter = first.adapter.clone();
                let mut chosen = Vec::new();
                let mut rest = VecDeque::new();
                for w in self.waiting.drain(..) {
                    if chosen.len() < self.options.max_batch_rows
                        && Rc::ptr_eq(&w.adapter, &adapter)
                    {
                        chosen.push(w);
                    } else {
                        rest.push_back(w);
                    }
                }
                self.waiting = rest;
                chosen
            }
            Policy::OneAtATime if running == 0 => self.waiting.pop_front().into_iter().collect(),
            _ => Vec::new(),
        };
        if chosen.is_empty() {
            return Ok(());
        }
        self.queued.fetch_sub(chosen.len(), Ordering::SeqCst);
        let now = Instant::now();
        let rows: Vec<Row> = chosen
            .into_iter()
            .map(|w| Row {
                queued_s: (now - w.arrived).as_secs_f64(),
                generation: w.generation,
                adapter: w.adapter,
                tokens: Vec::new(),
            })
            .collect();
        // Newcomers are encoded in buckets of similar length (prompt and input), so that a short input is not
        // padded to a long one's width: on a CPU the encoder's cost follows the padded width.
        let mut rows = rows;
        rows.sort_by_key(|r| r.adapter.info.m as usize + r.generation.input_ids.len());
        let widths: Vec<usize> = rows
            .iter()
            .map(|r| r.adapter.info.m as usize + r.generation.input_ids.len())
            .collect();
        let mut rows = rows.into_iter();
        for size in length_buckets(&widths, PREFILL_PADDING) {
            let bucket: Vec<Row> = rows.by_ref().take(size).collect();
            self.prefill(bucket)?;
        }
        Ok(())
    }

    /// Encodes `rows` in one mixed forward pass and adds them to the running batch; a failure answers them alone.
    fn prefill(&mut self, rows: Vec<Row>) -> Result<(), ServeError> {
        let inputs: Vec<MixedRow> = rows
            .iter()
            .map(|r| MixedRow {
                input_ids: &r.generation.input_ids,
                adapter: &r.adapter.prompt,
            })
            .collect();
        let started = start_mixed_rows(self.backbone.as_ref(), &inputs);
        let (state, logits) = match started {
            Ok(started) => started,
            Err(error) => {
                // Only these newcomers failed; the running rows go on.
                for row in rows {
                    let _ = row.generation.reply.send(Err(error.clone_message()));
                }
                return Ok(());
            }
        };
        for row in &rows {
            self.metrics.rows_for(&row.adapter.info.name);
        }
        self.metrics.prefill_rows.observe(rows.len() as f64);
        let running = std::mem::take(&mut self.running);
        self.running = Running {
            state: Some(match running.state {
                Some(previous) => previous.join(state)?,
                None => state,
            }),
            logits: Some(match running.logits {
                Some(previous) => Tensor::cat(&[previous, logits], 0),
                None => logits,
            }),
            rows: running.rows.into_iter().chain(rows).collect(),
        };
        Ok(())
    }

    /// One greedy token for every running row; finished rows are answered and leave.
    fn step(&mut self) -> Result<(), ServeError> {
        let Some(logits) = self.running.logits.take() else {
            return Ok(());
        };
        let eos = self.backbone.eos_token_id();
        let tokens = logits.argmax(-1, false);
        let picked = Vec::<i64>::try_from(&tokens).map_err(|e| ServeError::Model(e.to_string()))?;
        self.metrics.step_rows.observe(picked.len() as f64);
        self.metrics.tokens.inc_by(picked.len() as u64);
        let mut keep = Vec::with_capacity(picked.len());
        let rows = std::mem::take(&mut self.running.rows);
        let mut still = Vec::with_capacity(rows.len());
        for (i, (mut row, token)) in rows.into_iter().zip(picked).enumerate() {
            row.tokens.push(token);
            let stopped = token == eos;
            if stopped || row.tokens.len() >= row.generation.max_tokens {
                let answer = Generated {
                    tokens: std::mem::take(&mut row.tokens),
                    stopped,
                    version: row.adapter.info.version.clone(),
                    queued_s: row.queued_s,
                };
                let _ = row.generation.reply.send(Ok(answer));
            } else {
                keep.push(i as i64);
                still.push(row);
            }
        }
        self.running.rows = still;
        let Some(mut state) = self.running.state.take() else {
            return Ok(());
        };
        if keep.is_empty() {
            return Ok(());
        }
        state.retain(&keep);
        let next = tokens.index_select(0, &Tensor::from_slice(&keep));
        let logits = self.backbone.step_rows(&mut state, &next)?;
        self.running.state = Some(state);
        self.running.logits = Some(logits);
        Ok(())
    }

    /// Keeps the running rows at `keep` (their state and next-token logits too).
    fn keep_rows(&mut self, keep: &[i64]) {
        let rows = std::mem::take(&mut self.running.rows);
        let keep_set: std::collections::BTreeSet<i64> = keep.iter().copied().collect();
        self.running.rows = rows
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep_set.contains(&(*i as i64)))
            .map(|(_, r)| r)
            .collect();
        if self.running.rows.is_empty() {
            self.running = Running::default();
            return;
        }
        if let Some(state) = self.running.state.as_mut() {
            state.retain(keep);
        }
        if let Some(logits) = self.running.logits.take() {
            self.running.logits = Some(logits.index_select(0, &Tensor::from_slice(keep)));
        }
    }

    /// Every running row fails with `message` (a 500); the batch starts afresh.
    fn fail_running(&mut self, message: &str) {
        let running = std::mem::take(&mut self.running);
        for row in running.rows {
            let _ = row
                .generation
                .reply
                .send(Err(ServeError::Model(message.to_string())));
        }
    }
}

/// How long an idle engine waits, after the first request, for others arriving with it.
const GATHER_WINDOW: std::time::Duration = std::time::Duration::from_millis(2);

/// How much wider than its narrowest row a prefill bucket may be (at most a fifth of it is padding).
const PREFILL_PADDING: f64 = dept_models::layout::BUCKET_PADDING;

trait CloneMessage {
    fn clone_message(&self) -> ServeError;
}

impl CloneMessage for dept_models::ModelError {
    /// An input the model refused is the request's fault (400); anything else is the server's (500).
    fn clone_message(&self) -> ServeError {
        match self {
            dept_models::ModelError::Input(_) | dept_models::ModelError::Adapter(_) => {
                ServeError::BadRequest(self.to_string())
            }
            other => ServeError::Model(other.to_string()),
        }
    }
}

pub(crate) fn unknown_adapter(name: &str, known: &[String]) -> ServeError {
    const SHOWN: usize = 20;
    let mut list = known
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if known.len() > SHOWN {
        list.push_str(&format!(", … ({} in all: GET /v1/models)", known.len()));
    }
    if known.is_empty() {
        list = "none is loaded".into();
    }
    ServeError::NotFound(format!(
        "no adapter named {name:?} is loaded (known: {list}); the bare backbone is never served in its place"
    ))
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic in the model".into())
}
