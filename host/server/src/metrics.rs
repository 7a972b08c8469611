//! `GET /metrics` in Prometheus text format (prometheus-client): what the server counts as it works (tool calls, model calls, turns) and what the runtime and the store already count, read at each scrape (hooks, the component cache, sessions, instance slots).

use std::sync::Arc;
use std::time::Instant;

use agent_host_llm::{ChatRequest, EventReceiver, Provider, ProviderEvent, SharedProvider};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// Label pairs, such as `[("tool", "echo"), ("outcome", "ok")]`.
type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// Latency buckets from 1 ms to about 65 s.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The counters and histograms the server feeds as it works.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// What the runtime and the store count, filled in at each scrape.
    snapshot: Arc<std::sync::Mutex<Snapshot>>,
    tool_calls: Family<Labels, Counter>,
    tool_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    llm_requests: Family<Labels, Counter>,
    llm_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    llm_first_token_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    turns: Family<Labels, Counter>,
    turn_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty counters, registered under `agent_host_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("agent_host");
        let tool_calls = Family::<Labels, Counter>::default();
        let tool_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(seconds_histogram);
        let llm_requests = Family::<Labels, Counter>::default();
        let llm_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(seconds_histogram);
        let llm_first_token_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(seconds_histogram);
        let turns = Family::<Labels, Counter>::default();
        let turn_seconds = seconds_histogram();
        let snapshot = Arc::new(std::sync::Mutex::new(Snapshot::default()));
        registry.register_collector(Box::new(SnapshotSlot(snapshot.clone())));
        registry.register(
            "tool_calls",
            "Tool calls the agent made, by tool and outcome (ok or error)",
            tool_calls.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Tool call time, hooks included, by tool",
            tool_seconds.clone(),
        );
        registry.register(
            "llm_requests",
            "Model calls, by provider and status (ok, or the error kind)",
            llm_requests.clone(),
        );
        registry.register(
            "llm_request_duration_seconds",
            "Model call time from the request to the end of its answer, by provider",
            llm_seconds.clone(),
        );
        registry.register(
            "llm_time_to_first_token_seconds",
            "Time from a model request to its first event, by provider",
            llm_first_token_seconds.clone(),
        );
        registry.register(
            "turns",
            "Turns run (session messages and chat completions), by outcome",
            turns.clone(),
        );
        registry.register(
            "turn_duration_seconds",
            "Turn time from start to stored result",
            turn_seconds.clone(),
        );
        Self {
            registry,
            snapshot,
            tool_calls,
            tool_seconds,
            llm_requests,
            llm_seconds,
            llm_first_token_seconds,
            turns,
            turn_seconds,
        }
    }

    /// Counts one finished tool call.
    pub(crate) fn tool_call(&self, tool: &str, ok: bool, duration_ms: f64) {
        let outcome = if ok { "ok" } else { "error" };
        self.tool_calls
            .get_or_create(&labels(&[("tool", tool), ("outcome", outcome)]))
            .inc();
        self.tool_seconds
            .get_or_create(&labels(&[("tool", tool)]))
            .observe(duration_ms / 1e3);
    }

    /// Counts one turn.
    pub(crate) fn turn(&self, outcome: &str, started: Instant) {
        self.turns
            .get_or_create(&labels(&[("outcome", outcome)]))
            .inc();
        self.turn_seconds.observe(started.elapsed().as_secs_f64());
    }

    /// `provider`, counted and timed at every call.
    pub fn metered(self: &Arc<Self>, provider: SharedProvider) -> SharedProvider {
        Arc::new(MeteredProvider {
            inner: provider,
            metrics: self.clone(),
        })
    }

    /// The Prometheus text exposition (version 0.0.4) of these metrics and
    /// of `snapshot`.
    pub fn render(&self, snapshot: Snapshot) -> String {
        let mut slot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        *slot = snapshot;
        drop(slot);
        let mut text = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// A provider whose calls are counted and timed.
struct MeteredProvider {
    inner: SharedProvider,
    metrics: Arc<Metrics>,
}

impl Provider for MeteredProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn model(&self) -> &str {
        self.inner.model()
    }

    fn retries(&self) -> u64 {
        self.inner.retries()
    }

    fn start(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver {
        let started = Instant::now();
        let mut events = self.inner.start(request, cancel);
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let metrics = self.metrics.clone();
        let provider = [("provider", self.inner.name().to_owned())];
        tokio::spawn(async move {
            let provider_labels: Labels = provider
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect();
            let mut first = true;
            let mut status = "ok".to_owned();
            while let Some(event) = events.recv().await {
                if first {
                    first = false;
                    metrics
                        .llm_first_token_seconds
                        .get_or_create(&provider_labels)
                        .observe(started.elapsed().as_secs_f64());
                }
                let end = matches!(event, Ok(ProviderEvent::Finish { .. }) | Err(_));
                if let Err(err) = &event {
                    status = format!("{:?}", err.kind()).to_ascii_lowercase();
                }
                if sender.send(event).await.is_err() || end {
                    break;
                }
            }
            metrics
                .llm_seconds
                .get_or_create(&provider_labels)
                .observe(started.elapsed().as_secs_f64());
            let mut counted = provider_labels.clone();
            counted.push(("status".to_owned(), status));
            metrics.llm_requests.get_or_create(&counted).inc();
        });
        receiver
    }
}

/// What the runtime and the store count, read at one scrape.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// (extension, point, calls, failures, time in seconds).
    pub hooks: Vec<(String, String, u64, u64, f64)>,
    /// Component-cache lookups answered, by level.
    pub cache_hits: [(&'static str, u64); 2],
    /// Component-cache lookups not answered, by level.
    pub cache_misses: [(&'static str, u64); 2],
    /// Real compilations.
    pub compiles: u64,
    /// Time spent compiling, in seconds.
    pub compile_seconds: f64,
    /// Sessions in memory.
    pub live_sessions: u64,
    /// Turns running now.
    pub turns_in_flight: u64,
    /// Sandbox instance slots held by calls now.
    pub instance_slots_in_use: u64,
    /// Session-writer batches applied.
    pub writer_batches: u64,
    /// Session writes applied.
    pub writer_operations: u64,
    /// Session-writer flushes to disk.
    pub writer_flushes: u64,
    /// Time spent in those flushes, in seconds.
    pub writer_flush_seconds: f64,
    /// (provider, model, retries) of each served model.
    pub llm_retries: Vec<(String, String, u64)>,
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (set, value) in rows {
        ConstCounter::new(*value).encode(family.encode_family(set)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value as i64);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Snapshot {
    /// What the runtime and the store of `state` count, now.
    pub fn read(state: &crate::state::AppState) -> Self {
        let runtime = state.runtime();
        let cache = runtime.cache_stats();
        let writer = state.store().stats();
        Self {
            hooks: runtime
                .hook_stats()
                .rows()
                .into_iter()
                .map(|row| {
                    (
                        row.extension,
                        row.point.as_str().to_owned(),
                        row.counters.calls,
                        row.counters.failures,
                        row.counters.time_us as f64 / 1e6,
                    )
                })
                .collect(),
            cache_hits: [("memory", cache.memory_hits), ("disk", cache.disk_hits)],
            cache_misses: [("memory", cache.memory_misses), ("disk", cache.disk_misses)],
            compiles: cache.compiles,
            compile_seconds: cache.compile_ms / 1e3,
            live_sessions: state.live().len() as u64,
            turns_in_flight: state.turns_in_flight() as u64,
            instance_slots_in_use: runtime.busy_instance_slots() as u64,
            writer_batches: writer.batches,
            writer_operations: writer.operations,
            writer_flushes: writer.flushes,
            writer_flush_seconds: writer.flush_us as f64 / 1e6,
            llm_retries: state.models().retry_counts(),
        }
    }
}

/// The snapshot as a collector the registry reads at each encode.
#[derive(Debug)]
struct SnapshotSlot(Arc<std::sync::Mutex<Snapshot>>);

impl Collector for SnapshotSlot {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .encode_into(encoder)
    }
}

impl Snapshot {
    fn encode_into(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let hook_rows = |pick: fn(&(String, String, u64, u64, f64)) -> f64| -> Vec<(Labels, f64)> {
            self.hooks
                .iter()
                .map(|row| {
                    (
                        labels(&[("extension", &row.0), ("point", &row.1)]),
                        pick(row),
                    )
                })
                .collect()
        };
        counter(
            &mut encoder,
            "hook_calls",
            "Extension hook calls, by extension and point",
            &hook_rows(|r| r.2 as f64),
        )?;
        counter(
            &mut encoder,
            "hook_failures",
            "Extension hook calls that trapped or ran out of budget",
            &hook_rows(|r| r.3 as f64),
        )?;
        counter(
            &mut encoder,
            "hook_seconds",
            "Time spent in extension hook calls",
            &hook_rows(|r| r.4),
        )?;
        let levels = |rows: &[(&'static str, u64); 2]| -> Vec<(Labels, f64)> {
            rows.iter()
                .map(|(level, value)| (labels(&[("level", level)]), *value as f64))
                .collect()
        };
        counter(
            &mut encoder,
            "cache_hits",
            "Compiled-component cache lookups answered, by level",
            &levels(&self.cache_hits),
        )?;
        counter(
            &mut encoder,
            "cache_misses",
            "Compiled-component cache lookups not answered, by level",
            &levels(&self.cache_misses),
        )?;
        counter(
            &mut encoder,
            "compiles",
            "Real compilations of plugin components",
            &[(Labels::new(), self.compiles as f64)],
        )?;
        counter(
            &mut encoder,
            "compile_seconds",
            "Time spent compiling plugin components",
            &[(Labels::new(), self.compile_seconds)],
        )?;
        counter(
            &mut encoder,
            "session_writer_batches",
            "Session-writer batches applied",
            &[(Labels::new(), self.writer_batches as f64)],
        )?;
        counter(
            &mut encoder,
            "session_writer_operations",
            "Session writes applied",
            &[(Labels::new(), self.writer_operations as f64)],
        )?;
        counter(
            &mut encoder,
            "session_writer_flushes",
            "Session-writer flushes to disk",
            &[(Labels::new(), self.writer_flushes as f64)],
        )?;
        counter(
            &mut encoder,
            "session_writer_flush_seconds",
            "Time spent in session-writer flushes (divide by the flushes for the mean)",
            &[(Labels::new(), self.writer_flush_seconds)],
        )?;
        let retries: Vec<(Labels, f64)> = self
            .llm_retries
            .iter()
            .map(|(provider, model, count)| {
                (
                    labels(&[("provider", provider), ("model", model)]),
                    *count as f64,
                )
            })
            .collect();
        counter(
            &mut encoder,
            "llm_retries",
            "Model requests sent again after a failure (429, 5xx, a lost connection)",
            &retries,
        )?;
        gauge(
            &mut encoder,
            "live_sessions",
            "Sessions in memory",
            self.live_sessions,
        )?;
        gauge(
            &mut encoder,
            "turns_in_flight",
            "Turns running now",
            self.turns_in_flight,
        )?;
        gauge(
            &mut encoder,
            "instance_slots_in_use",
            "Sandbox instance slots held by calls now",
            self.instance_slots_in_use,
        )?;
        Ok(())
    }
}
