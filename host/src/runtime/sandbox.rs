//! The store a plugin runs in: WASI with nothing granted, virtual clocks, a fixed seed, capped
//! memory, tables and instances, a capped log, and the host functions of the contract.

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::random::Deterministic;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::host;
use super::clocks::{Clocks, Timers, VirtualClock};
use super::outcome::cap_text;

/// Core module instances one component may hold: a component built from Rust has a few (its
/// module and the canonical ABI shims), an interpreter linked from many modules a dozen or so.
pub(super) const MAX_CORE_INSTANCES: u32 = 32;
/// Linear memories one component may define: each may grow to the memory cap, so without a
/// count (and a cap on their sum) 40 memories of 64 MiB make one plugin 2.5 GiB.
pub(super) const MAX_MEMORIES: u32 = 2;
/// Tables one component may define (its modules' and the canonical ABI shims').
pub(super) const MAX_TABLES: u32 = 16;
/// Elements one table may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// How much a plugin may write to its log in one call.
#[derive(Debug, Clone, Copy)]
pub struct LogCaps {
    pub lines: usize,
    pub line_bytes: usize,
}

/// One line a plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: tracing::Level,
    pub message: String,
}

impl LogLine {
    /// Writes the line to the host's log at the level the plugin gave it.
    pub fn write_to_host_log(&self, plugin: &str, version: &str) {
        let message = &self.message;
        match self.level {
            tracing::Level::ERROR => {
                tracing::error!(plugin, version, "plugin log: {message}")
            }
            tracing::Level::WARN => tracing::warn!(plugin, version, "plugin log: {message}"),
            tracing::Level::INFO => tracing::info!(plugin, version, "plugin log: {message}"),
            tracing::Level::DEBUG => {
                tracing::debug!(plugin, version, "plugin log: {message}")
            }
            tracing::Level::TRACE => {
                tracing::trace!(plugin, version, "plugin log: {message}")
            }
        }
    }
}

/// The host log level of a plugin's log level.
fn level_of(level: host::LogLevel) -> tracing::Level {
    match level {
        host::LogLevel::Debug => tracing::Level::DEBUG,
        host::LogLevel::Info => tracing::Level::INFO,
        host::LogLevel::Warn => tracing::Level::WARN,
        host::LogLevel::Error => tracing::Level::ERROR,
    }
}

/// Everything one plugin instance can touch.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    clock: VirtualClock,
    stderr: MemoryOutputPipe,
    memory: MemoryCap,
    log: Vec<LogLine>,
    dropped_lines: usize,
    log_caps: LogCaps,
}

impl Sandbox {
    /// A sandbox on `clocks` (see `clocks`: its timers never block).
    pub fn new(clocks: Clocks, memory_bytes: usize, log_caps: LogCaps) -> Self {
        let stderr = MemoryOutputPipe::new(8 * 1024);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(clocks.wall())
            .monotonic_clock(clocks.monotonic())
            .secure_random(Deterministic::new(SEED.to_vec()))
            .insecure_random(Deterministic::new(SEED.to_vec()))
            .insecure_random_seed(0x6d61_7374_6865_6164)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            clock: clocks.monotonic(),
            stderr,
            memory: MemoryCap {
                max_bytes: memory_bytes,
                total_bytes: 0,
                peak_bytes: 0,
                denied: false,
            },
            log: Vec::new(),
            dropped_lines: 0,
            log_caps,
        }
    }

    /// What the virtual `wasi:clocks/monotonic-clock` reaches.
    pub fn timers(&mut self) -> Timers<'_> {
        Timers {
            clock: &self.clock,
            table: &mut self.table,
        }
    }

    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.memory
    }

    /// Whether the plugin asked for more memory than its cap.
    pub fn memory_denied(&self) -> bool {
        self.memory.denied
    }

    pub fn peak_memory_bytes(&self) -> usize {
        self.memory.peak_bytes
    }

    /// What the plugin wrote to stderr (a panic message, usually), lossily decoded.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    /// The lines logged, and how many more were dropped over the cap.
    pub fn take_log(&mut self) -> (Vec<LogLine>, usize) {
        (std::mem::take(&mut self.log), self.dropped_lines)
    }
}

/// The bytes both random sources cycle through: plugins get the same "randomness" every run.
const SEED: [u8; 16] = *b"masthead-plugins";

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for Sandbox {
    fn log(&mut self, level: host::LogLevel, message: String) {
        if self.log.len() >= self.log_caps.lines {
            self.dropped_lines += 1;
            return;
        }
        self.log.push(LogLine {
            level: level_of(level),
            message: cap_text(message, self.log_caps.line_bytes),
        });
    }
}

impl super::bindings::wit::Host for Sandbox {}

/// Caps the linear memory of the whole instance (every memory of every core module added
/// up), its tables and its core instances, and remembers whether the plugin hit the cap.
struct MemoryCap {
    max_bytes: usize,
    /// The sum of every memory's current size.
    total_bytes: usize,
    peak_bytes: usize,
    denied: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A new memory arrives here too, growing from 0 to its initial size.
        let total = self.total_bytes - current.min(self.total_bytes) + desired;
        if total > self.max_bytes {
            self.denied = true;
            return Ok(false);
        }
        self.total_bytes = total;
        self.peak_bytes = self.peak_bytes.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    // One store holds one component instance, so these are per component; the pooling
    // allocator refuses a component over them when it is loaded, these hold for any allocator.
    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES as usize
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES as usize
    }

    fn tables(&self) -> usize {
        MAX_TABLES as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(line_bytes: usize) -> Sandbox {
        Sandbox::new(
            Clocks::on(&super::super::EPOCH),
            64 << 20,
            LogCaps {
                lines: 10,
                line_bytes,
            },
        )
    }

    #[test]
    fn a_cut_log_line_keeps_only_the_capped_bytes() {
        let mut sandbox = sandbox(1_024);
        host::Host::log(&mut sandbox, host::LogLevel::Info, "é".repeat(3 << 20));
        let (log, _) = sandbox.take_log();
        let line = &log[0].message;
        assert!(line.starts_with("ééé"));
        assert!(line.ends_with("bytes cut]"), "{line}");
        assert!(line.len() < 1_100, "{} bytes kept", line.len());
        assert!(
            line.capacity() < 1_100,
            "the 6 MiB allocation is still held: capacity {}",
            line.capacity()
        );
    }

    #[test]
    fn plugin_log_levels_map_to_the_same_host_levels() {
        let mut sandbox = sandbox(100);
        for level in [
            host::LogLevel::Debug,
            host::LogLevel::Info,
            host::LogLevel::Warn,
            host::LogLevel::Error,
        ] {
            host::Host::log(&mut sandbox, level, "line".into());
        }
        let (log, dropped) = sandbox.take_log();
        let levels: Vec<_> = log.iter().map(|l| l.level).collect();
        assert_eq!(
            levels,
            [
                tracing::Level::DEBUG,
                tracing::Level::INFO,
                tracing::Level::WARN,
                tracing::Level::ERROR
            ]
        );
        assert_eq!(dropped, 0);
    }

    #[test]
    fn the_memory_cap_holds_for_all_memories_of_an_instance_together() {
        let mib = 1 << 20;
        let mut cap = MemoryCap {
            max_bytes: 64 * mib,
            total_bytes: 0,
            peak_bytes: 0,
            denied: false,
        };
        // Two memories of 30 MiB fit; a third does not, nor does growing one past the sum.
        assert!(cap.memory_growing(0, 30 * mib, None).expect("limiter"));
        assert!(cap.memory_growing(0, 30 * mib, None).expect("limiter"));
        assert!(!cap.denied);
        assert!(!cap.memory_growing(0, 30 * mib, None).expect("limiter"));
        assert!(
            !cap.memory_growing(30 * mib, 40 * mib, None)
                .expect("limiter")
        );
        assert!(cap.denied);
        assert!(
            cap.memory_growing(30 * mib, 34 * mib, None)
                .expect("limiter")
        );
        assert_eq!(cap.peak_bytes, 64 * mib);
    }
}
