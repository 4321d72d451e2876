//! Dynamic batching: requests for one served output wait in a bounded
//! queue; threads of its own (`instances`, off the async runtime) take
//! what is queued, up to `max_batch` rows, waiting at most `max_delay_ms`
//! for more, run the graph once on all their rows and split the answer
//! back. One instance gathers at a time; the others run their batches.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering::Relaxed},
        mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
    },
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use super::stats::ModelStats;
use crate::graph::{Answer, Batching, Graph};

/// Why a request got no answer: an HTTP status and one sentence.
#[derive(Debug, Clone)]
pub struct Failure {
    /// 400 for the client's data, 500 for the server's fault.
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

/// One request's rows, waiting for its answer.
pub struct Job {
    /// Rows (row-major).
    pub x: Vec<f32>,
    /// How many.
    pub rows: usize,
    /// The request's id (routers hash it).
    pub id: String,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Answer, Failure>>,
}

/// The queue of one served output; its thread stops when the batcher is
/// dropped and the queue has drained.
pub struct Batcher {
    tx: SyncSender<Job>,
    /// Requests queued and not yet running (those joining a batch that
    /// waits for `max_delay_ms` included).
    waiting: Arc<AtomicUsize>,
    max_queue: usize,
    stats: Arc<ModelStats>,
}

/// What a batch thread needs.
struct Runner {
    graph: Arc<Graph<'static>>,
    output: String,
    threads: usize,
    routed: bool,
    waiting: Arc<AtomicUsize>,
    stats: Arc<ModelStats>,
}

impl Batcher {
    /// Starts the thread answering `output` of `graph`.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(
        graph: Arc<Graph<'static>>,
        output: &str,
        batching: Batching,
        threads: usize,
        stats: Arc<ModelStats>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(batching.max_queue);
        let rx = Arc::new(Mutex::new(rx));
        let waiting = Arc::new(AtomicUsize::new(0));
        let runner = Arc::new(Runner {
            routed: graph.routes(output),
            waiting: waiting.clone(),
            graph,
            output: output.to_string(),
            threads,
            stats: stats.clone(),
        });
        // By default half the cores: the other half parse requests and
        // write answers (measured on 2 cores, a second instance slowed
        // 64-row requests by 10-25%: both fought the runtime's threads).
        let instances = batching.instances.unwrap_or_else(|| {
            (std::thread::available_parallelism().map_or(1, usize::from) / 2).max(1)
        });
        for i in 0..instances.max(1) {
            let (runner, rx) = (runner.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("batch-{output}-{i}"))
                .spawn(move || runner.serve(&rx, batching))?;
        }
        Ok(Self {
            tx,
            waiting,
            max_queue: batching.max_queue,
            stats,
        })
    }

    /// Queues `job`, or gives it back when the queue is full.
    ///
    /// # Errors
    /// The queue is full (or its thread is gone).
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        if self.waiting.fetch_add(1, Relaxed) >= self.max_queue {
            self.waiting.fetch_sub(1, Relaxed);
            return Err(job);
        }
        self.stats.queued.fetch_add(1, Relaxed);
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                self.waiting.fetch_sub(1, Relaxed);
                self.stats.queued.fetch_sub(1, Relaxed);
                Err(job)
            }
        }
    }
}

impl Runner {
    /// One instance's loop: gather a batch (one instance at a time holds
    /// the queue while its batch gathers), then run it while the next
    /// instance gathers.
    fn serve(&self, rx: &Mutex<Receiver<Job>>, b: Batching) {
        let delay = Duration::from_millis(b.max_delay_ms);
        let mut carry: Option<Job> = None;
        loop {
            let queue = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let first = match carry.take() {
                Some(j) => j,
                None => match queue.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
            };
            let deadline = Instant::now() + delay;
            let mut rows = first.rows;
            let mut batch = vec![first];
            while rows < b.max_batch {
                let now = Instant::now();
                let next = if now >= deadline {
                    queue.try_recv().ok()
                } else {
                    queue.recv_timeout(deadline - now).ok()
                };
                let Some(j) = next else { break };
                if rows + j.rows > b.max_batch {
                    carry = Some(j);
                    break;
                }
                rows += j.rows;
                batch.push(j);
            }
            drop(queue);
            // These stop waiting (the carried one still waits).
            self.waiting.fetch_sub(batch.len(), Relaxed);
            self.stats.queued.fetch_sub(batch.len() as u64, Relaxed);
            // Requests whose client left (or timed out) are not run.
            batch.retain(|j| !j.reply.is_closed());
            if !batch.is_empty() {
                self.run(batch);
            }
        }
    }

    /// Runs the graph on `x` for request `id`; a panic is a 500.
    fn predict(&self, x: &[f32], id: &str) -> Result<Answer, Failure> {
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.graph
                .predict_request(&self.output, x, self.threads, id)
        }));
        match r {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(Failure {
                status: if is_user_error(&e) { 400 } else { 500 },
                message: self.for_client(format!("{e:#}")),
            }),
            Err(_) => Err(Failure {
                status: 500,
                message: format!("predicting `{}` panicked", self.output),
            }),
        }
    }

    /// `message` with the graph file's path cut to its name: clients are
    /// not told where the server keeps its files.
    fn for_client(&self, message: String) -> String {
        let path = self.graph.path();
        match path.file_name() {
            Some(name) if path.as_os_str() != name => {
                message.replace(&path.display().to_string(), &name.to_string_lossy())
            }
            _ => message,
        }
    }

    /// Each request on its own, answered as it is done.
    fn run_each(&self, batch: Vec<Job>) {
        for j in batch {
            let answer = self.predict(&j.x, &j.id);
            let _ = j.reply.send(answer);
        }
    }

    fn run(&self, mut batch: Vec<Job>) {
        let rows: usize = batch.iter().map(|j| j.rows).sum();
        self.stats.batch_rows.observe(rows as f64);
        self.stats.batch_requests.observe(batch.len() as f64);
        if batch.len() == 1 || self.routed {
            // Alone, or each request takes its own way through routers.
            self.run_each(batch);
            return;
        }
        let x: Vec<f32> = batch.iter().flat_map(|j| j.x.iter().copied()).collect();
        match self.predict(&x, &batch[0].id) {
            Ok(all) => {
                let mut start = 0;
                for j in batch.drain(..) {
                    let n = j.rows * all.width;
                    let answer = Answer {
                        rows: j.rows,
                        width: all.width,
                        classes: all.classes.clone(),
                        values: all.values[start..start + n].to_vec(),
                        notes: all.notes.clone(),
                        missing: all.missing.clone(),
                    };
                    start += n;
                    let _ = j.reply.send(Ok(answer));
                }
            }
            // One request's rows may be what the model refuses: each is
            // run alone so that only that one fails.
            Err(_) => self.run_each(batch),
        }
    }
}

/// Whether `e` is the caller's fault (bad values), not the server's.
fn is_user_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<crate::model::CallError>()
            .is_some_and(|c| c.error.kind.is_user_error())
            || c.downcast_ref::<tessera_core::PluginError>()
                .is_some_and(|p| p.kind.is_user_error())
            || c.is::<crate::data::DataError>()
            || c.downcast_ref::<crate::graph::remote::RemoteError>()
                .is_some_and(crate::graph::remote::RemoteError::is_client_error)
    })
}
