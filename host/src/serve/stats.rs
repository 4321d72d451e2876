//! Counters and histograms of the server, written in the Prometheus text
//! format at `/metrics`. Updates are atomic adds: no lock on the request
//! path once a model's or node's series exist.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

/// Upper bounds (seconds) of the latency buckets.
const LATENCY_BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Upper bounds of the batch-size buckets (rows).
const BATCH_BOUNDS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 512.0, 4096.0];

/// A histogram with fixed bucket bounds.
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), and one past the last bound.
    counts: Vec<AtomicU64>,
    /// The sum of observations, in millionths.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((v * 1e6) as u64, Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut total = 0;
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {total}");
        }
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
    }
}

/// The HTTP statuses counted one by one; others count as "other".
const STATUSES: [u16; 10] = [200, 400, 401, 404, 405, 413, 500, 503, 504, 0];

/// The counter of `status` in a per-status array (the last: "other").
fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|s| *s == status)
        .unwrap_or(STATUSES.len() - 1)
}

/// What one served model (output) has seen.
pub struct ModelStats {
    by_status: [AtomicU64; STATUSES.len()],
    /// Request latency, seconds, from the body read to the answer.
    pub latency: Histogram,
    /// Rows per batch run.
    pub batch_rows: Histogram,
    /// Requests per batch run.
    pub batch_requests: Histogram,
    /// Requests waiting now.
    pub queued: AtomicU64,
    /// Seconds the last load of the deployment serving it took, in
    /// millionths.
    pub load_micros: AtomicU64,
}

impl ModelStats {
    fn new() -> Self {
        Self {
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: Histogram::new(&LATENCY_BOUNDS),
            batch_rows: Histogram::new(&BATCH_BOUNDS),
            batch_requests: Histogram::new(&BATCH_BOUNDS),
            queued: AtomicU64::new(0),
            load_micros: AtomicU64::new(0),
        }
    }

    /// Counts one answered request.
    pub fn answered(&self, status: u16, took: Duration) {
        self.by_status[status_slot(status)].fetch_add(1, Relaxed);
        self.latency.observe(took.as_secs_f64());
    }
}

/// Every series of the server.
#[derive(Default)]
pub struct Stats {
    models: RwLock<BTreeMap<String, Arc<ModelStats>>>,
    nodes: RwLock<BTreeMap<String, Arc<Histogram>>>,
    /// Answers by status, every route.
    http: [AtomicU64; STATUSES.len()],
    /// Reloads that took effect.
    pub reloads_ok: AtomicU64,
    /// Reloads refused (the old deployment kept serving).
    pub reloads_failed: AtomicU64,
}

fn get_or_insert<T>(map: &RwLock<BTreeMap<String, Arc<T>>>, key: &str, new: fn() -> T) -> Arc<T> {
    if let Some(v) = map
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(key)
    {
        return v.clone();
    }
    map.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key.to_string())
        .or_insert_with(|| Arc::new(new()))
        .clone()
}

/// `"` and `\` escaped for a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Stats {
    /// The series of model `name` (kept across reloads).
    pub fn model(&self, name: &str) -> Arc<ModelStats> {
        get_or_insert(&self.models, name, ModelStats::new)
    }

    /// The latency histogram of graph node `id`.
    pub fn node(&self, id: &str) -> Arc<Histogram> {
        get_or_insert(&self.nodes, id, || Histogram::new(&LATENCY_BOUNDS))
    }

    /// Counts one HTTP answer.
    pub fn http(&self, status: u16) {
        self.http[status_slot(status)].fetch_add(1, Relaxed);
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let status_name = |s: u16| {
            if s == 0 {
                "other".to_string()
            } else {
                s.to_string()
            }
        };
        out.push_str(
            "# HELP tessera_http_responses_total HTTP answers by status code, every route.\n",
        );
        out.push_str("# TYPE tessera_http_responses_total counter\n");
        for (s, c) in STATUSES.iter().zip(&self.http) {
            let _ = writeln!(
                out,
                "tessera_http_responses_total{{code=\"{}\"}} {}",
                status_name(*s),
                c.load(Relaxed)
            );
        }
        let models = self
            .models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str(
            "# HELP tessera_inference_requests_total Inference requests by model and status code.\n",
        );
        out.push_str("# TYPE tessera_inference_requests_total counter\n");
        for (name, m) in models.iter() {
            for (s, c) in STATUSES.iter().zip(&m.by_status) {
                let n = c.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "tessera_inference_requests_total{{model=\"{}\",code=\"{}\"}} {n}",
                        label(name),
                        status_name(*s)
                    );
                }
            }
        }
        type Pick = fn(&ModelStats) -> &Histogram;
        let histograms: [(&str, &str, Pick); 3] = [
            (
                "tessera_inference_duration_seconds",
                "Inference request latency by model, from the request read to the answer.",
                |m| &m.latency,
            ),
            ("tessera_batch_rows", "Rows per batch run, by model.", |m| {
                &m.batch_rows
            }),
            (
                "tessera_batch_requests",
                "Requests joined per batch run, by model.",
                |m| &m.batch_requests,
            ),
        ];
        for (metric, help, pick) in histograms {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} histogram");
            for (name, m) in models.iter() {
                pick(m).write(&mut out, metric, &format!("model=\"{}\"", label(name)));
            }
        }
        out.push_str("# HELP tessera_queue_depth Requests waiting for a batch, by model.\n");
        out.push_str("# TYPE tessera_queue_depth gauge\n");
        for (name, m) in models.iter() {
            let _ = writeln!(
                out,
                "tessera_queue_depth{{model=\"{}\"}} {}",
                label(name),
                m.queued.load(Relaxed)
            );
        }
        out.push_str(
            "# HELP tessera_model_load_seconds How long the deployment serving the model took to load.\n",
        );
        out.push_str("# TYPE tessera_model_load_seconds gauge\n");
        for (name, m) in models.iter() {
            let _ = writeln!(
                out,
                "tessera_model_load_seconds{{model=\"{}\"}} {}",
                label(name),
                m.load_micros.load(Relaxed) as f64 / 1e6
            );
        }
        drop(models);
        let metric = "tessera_node_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {metric} Time a graph node took per batch.\n# TYPE {metric} histogram"
        );
        for (id, h) in self
            .nodes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            h.write(&mut out, metric, &format!("node=\"{}\"", label(id)));
        }
        out.push_str("# HELP tessera_reloads_total Reloads of the deployment, by result.\n");
        out.push_str("# TYPE tessera_reloads_total counter\n");
        let _ = writeln!(
            out,
            "tessera_reloads_total{{result=\"ok\"}} {}\ntessera_reloads_total{{result=\"failed\"}} {}",
            self.reloads_ok.load(Relaxed),
            self.reloads_failed.load(Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_sum() {
        let s = Stats::default();
        let m = s.model("a\"b");
        m.answered(200, Duration::from_micros(300));
        m.answered(200, Duration::from_millis(2));
        m.answered(404, Duration::from_secs(9));
        s.node("rf").observe(0.001);
        let text = s.render();
        assert!(
            text.contains("tessera_inference_requests_total{model=\"a\\\"b\",code=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains(
            "tessera_inference_duration_seconds_bucket{model=\"a\\\"b\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains(
            "tessera_inference_duration_seconds_bucket{model=\"a\\\"b\",le=\"0.0025\"} 2"
        ));
        assert!(
            text.contains(
                "tessera_inference_duration_seconds_bucket{model=\"a\\\"b\",le=\"+Inf\"} 3"
            )
        );
        assert!(text.contains("tessera_inference_duration_seconds_count{model=\"a\\\"b\"} 3"));
        assert!(text.contains("tessera_node_duration_seconds_bucket{node=\"rf\",le=\"0.001\"} 1"));
        // Every sample line is `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
