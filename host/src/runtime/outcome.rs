//! What a plugin call produced: per-record results with the cost of the call, or a failure
//! with its cause; and the checks, caps and metrics applied to both.

use std::time::Duration;

use wasmtime::Trap;

use super::Prepared;
use super::sandbox::{LogLine, Sandbox};
use crate::domain::plugin::Limits;

/// The most of one message the host keeps and shows when a plugin wrote it (a configure
/// error, a per-record error, a trap with the plugin's stderr, names from its component):
/// enough for a person to read, too little to fill the database or a response.
pub const MAX_MESSAGE_BYTES: usize = 4 << 10;

/// `text` cut to at most `max_bytes` (on a character boundary) followed by a note of how
/// much was cut; text within the cap is returned as it is. A cut copies the kept bytes into
/// a new string, so the plugin's oversized allocation is freed rather than kept behind them.
pub fn cap_text(text: String, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text;
    }
    let kept = text.floor_char_boundary(max_bytes);
    let note = format!("… [{} more bytes cut]", text.len() - kept);
    let mut capped = String::with_capacity(kept + note.len());
    capped.push_str(&text[..kept]);
    capped.push_str(&note);
    capped
}

/// Why a whole batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The plugin trapped: a panic, an unreachable, a stack overflow, a bad memory access.
    Trap,
    /// The batch used up its fuel budget.
    Fuel,
    /// A call ran past its wall-clock deadline.
    Deadline,
    /// The plugin asked for more memory than its cap.
    Memory,
    /// The results broke the contract: wrong count, too large, invalid values.
    Malformed,
    /// `configure` refused the configuration.
    Configure,
    /// The host could not run the plugin (no slot, a broken artefact); not the plugin's fault.
    Host,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trap => "trap",
            Self::Fuel => "fuel",
            Self::Deadline => "deadline",
            Self::Memory => "memory",
            Self::Malformed => "malformed",
            Self::Configure => "configure",
            Self::Host => "host",
        }
    }

    /// Whether the failure counts against the plugin (towards its circuit breaker).
    pub fn is_plugin_fault(self) -> bool {
        self != Self::Host
    }
}

/// The cost of one call.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub fuel_used: u64,
    pub peak_memory_bytes: usize,
    pub duration: Duration,
    pub log: Vec<LogLine>,
    pub dropped_log_lines: usize,
}

/// A batch that ran: one result per record, in order.
#[derive(Debug)]
pub struct Report<T> {
    pub results: Vec<Result<T, String>>,
    pub stats: Stats,
}

/// A batch that failed as a whole.
#[derive(Debug, Clone)]
pub struct Failure {
    pub cause: Cause,
    pub message: String,
    pub stats: Stats,
}

impl Failure {
    /// A failure whose message is capped at [`MAX_MESSAGE_BYTES`]: every message that
    /// carries a plugin's words is made here.
    pub fn new(cause: Cause, message: impl Into<String>) -> Self {
        Self {
            cause,
            message: cap_text(message.into(), MAX_MESSAGE_BYTES),
            stats: Stats::default(),
        }
    }

    pub fn host(message: impl Into<String>) -> Self {
        Self::new(Cause::Host, message)
    }

    pub(super) fn with_stats(mut self, stats: Stats) -> Self {
        self.stats = stats;
        self
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.cause.as_str(), self.message)
    }
}

/// Names the cause of an error a call returned.
pub(super) fn classify(error: wasmtime::Error, sandbox: &Sandbox, limits: Limits) -> Failure {
    let stderr = sandbox.stderr();
    let said = if stderr.is_empty() {
        String::new()
    } else {
        format!(" (the plugin wrote: {stderr})")
    };
    // The pool ran out of slots of some kind (instances, memories, tables): the host's
    // condition, never the fault of the plugin that happened to ask last.
    if let Some(full) = error
        .chain()
        .find_map(|e| e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>())
    {
        return Failure::host(format!("the plugin instance pool is full: {full}"));
    }
    if sandbox.memory_denied() {
        return Failure::new(
            Cause::Memory,
            format!(
                "the plugin needed more than its memory cap of {} MiB{said}",
                limits.memory_mib
            ),
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::new(
            Cause::Fuel,
            format!(
                "the batch used up its fuel budget of {} units (an endless loop, or too much work per batch)",
                limits.fuel_per_batch
            ),
        ),
        Some(Trap::Interrupt) => Failure::new(
            Cause::Deadline,
            format!("a call ran past its deadline of {} ms", limits.deadline_ms),
        ),
        Some(Trap::StackOverflow) => Failure::new(
            Cause::Trap,
            format!("the plugin overflowed its stack (runaway recursion){said}"),
        ),
        Some(trap) => Failure::new(Cause::Trap, format!("the plugin trapped: {trap}{said}")),
        None => Failure::new(Cause::Trap, format!("the plugin failed: {error:#}{said}")),
    }
}

/// Checks the contract on results: one per record, and no more than the size cap in all;
/// each record's error is capped at [`MAX_MESSAGE_BYTES`].
pub(super) fn check<T>(
    results: Vec<Result<T, String>>,
    batch_len: usize,
    max_bytes: usize,
    size_of: impl Fn(&T) -> usize,
) -> Result<Vec<Result<T, String>>, Failure> {
    if results.len() != batch_len {
        return Err(Failure::new(
            Cause::Malformed,
            format!(
                "the plugin returned {} results for a batch of {batch_len} records",
                results.len()
            ),
        ));
    }
    let bytes: usize = results
        .iter()
        .map(|r| match r {
            Ok(value) => size_of(value),
            Err(reason) => reason.len() + 8,
        })
        .sum();
    if bytes > max_bytes {
        return Err(Failure::new(
            Cause::Malformed,
            format!("the results take {bytes} bytes, over the cap of {max_bytes}"),
        ));
    }
    Ok(results
        .into_iter()
        .map(|r| r.map_err(|reason| cap_text(reason, MAX_MESSAGE_BYTES)))
        .collect())
}

pub(super) fn record_metrics<T>(
    plugin: &Prepared,
    report: &Result<Report<T>, Failure>,
    batch_len: usize,
) {
    let labels = [
        ("plugin", plugin.id.clone()),
        ("version", plugin.version.clone()),
    ];
    metrics::counter!("masthead_plugin_calls_total", &labels).increment(1);
    metrics::counter!("masthead_plugin_records_total", &labels).increment(batch_len as u64);
    let stats = match report {
        Ok(report) => {
            let failed = report.results.iter().filter(|r| r.is_err()).count();
            if failed > 0 {
                metrics::counter!("masthead_plugin_errors_total", "plugin" => plugin.id.clone(), "version" => plugin.version.clone(), "cause" => "record")
                    .increment(failed as u64);
            }
            &report.stats
        }
        Err(failure) => {
            metrics::counter!("masthead_plugin_errors_total", "plugin" => plugin.id.clone(), "version" => plugin.version.clone(), "cause" => failure.cause.as_str())
                .increment(1);
            &failure.stats
        }
    };
    metrics::counter!("masthead_plugin_fuel_used_total", &labels).increment(stats.fuel_used);
    metrics::histogram!("masthead_plugin_call_duration_seconds", &labels)
        .record(stats.duration.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_within_the_cap_is_kept_whole() {
        assert_eq!(cap_text("short".into(), 5), "short");
        assert_eq!(cap_text(String::new(), 0), "");
    }

    #[test]
    fn text_over_the_cap_is_cut_on_a_character_boundary_with_a_note() {
        // "é" is two bytes: a cut at 5 bytes keeps two of them, not half of the third.
        assert_eq!(cap_text("éééé".into(), 5), "éé… [4 more bytes cut]");
        let long = cap_text("x".repeat(50 << 20), MAX_MESSAGE_BYTES);
        assert!(long.len() < MAX_MESSAGE_BYTES + 40);
        assert!(long.capacity() < MAX_MESSAGE_BYTES + 40);
        assert!(long.ends_with(&format!(
            "[{} more bytes cut]",
            (50 << 20) - MAX_MESSAGE_BYTES
        )));
    }

    #[test]
    fn failures_and_per_record_errors_are_capped() {
        let failure = Failure::new(Cause::Configure, "no".repeat(1 << 20));
        assert!(failure.message.len() < MAX_MESSAGE_BYTES + 40);
        let results: Vec<Result<u8, String>> = vec![Ok(1), Err("e".repeat(100_000))];
        let checked = check(results, 2, 1 << 20, |_| 1).expect("within the result cap");
        let Err(reason) = &checked[1] else {
            panic!("the error stays an error")
        };
        assert!(reason.len() < MAX_MESSAGE_BYTES + 40, "{}", reason.len());
        assert_eq!(checked[0], Ok(1));
    }
}
