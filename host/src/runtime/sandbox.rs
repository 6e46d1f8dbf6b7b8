//! The store a plugin runs in: WASI with nothing granted, virtual clocks, a fixed seed, capped
//! memory, a capped log, and the host functions of the contract.

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::random::Deterministic;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::host;
use super::clocks::{Clocks, Timers, VirtualClock};

/// How much a plugin may write to its log in one call.
#[derive(Debug, Clone, Copy)]
pub struct LogCaps {
    pub lines: usize,
    pub line_bytes: usize,
}

/// One line a plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
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
        let mut message = message;
        if message.len() > self.log_caps.line_bytes {
            let mut end = self.log_caps.line_bytes;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let level = match level {
            host::LogLevel::Debug => "debug",
            host::LogLevel::Info => "info",
            host::LogLevel::Warn => "warn",
            host::LogLevel::Error => "error",
        };
        self.log.push(LogLine { level, message });
    }
}

impl super::bindings::wit::Host for Sandbox {}

/// Caps linear memory and remembers whether the plugin hit the cap.
struct MemoryCap {
    max_bytes: usize,
    peak_bytes: usize,
    denied: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.denied = true;
            return Ok(false);
        }
        self.peak_bytes = self.peak_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
