//! The plugin runtime: one wasmtime engine with a pooling allocator and an epoch ticker,
//! components checked and precompiled once, an `InstancePre` cached per plugin version, and a
//! fresh sandboxed store for every batch, run on the runtime's own low-priority threads within
//! a bounded number of instance slots, of which one plugin version may hold only a share.

pub mod bindings;
mod clocks;
mod inspect;
pub mod outcome;
mod sandbox;
mod workers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::domain::plugin::{Limits, PluginKind};
use bindings::offer_provider::OfferProviderPre;
use bindings::segmenter::SegmenterPre;
use bindings::targeter::TargeterPre;
use bindings::{Campaign, Occasion, Offer, Targeting, wit};
use clocks::Clocks;
use workers::Workers;

pub use inspect::Inspected;
pub use outcome::{Cause, Failure, Report};
use sandbox::Sandbox;
pub use sandbox::{LogCaps, LogLine};

/// The day the clocks read in calls that belong to no batch (an instantiation, a configure).
const EPOCH: wit::Date = wit::Date {
    year: 1970,
    month: 1,
    day: 1,
};

/// How often the epoch ticks; deadlines are whole ticks.
const TICK: Duration = Duration::from_millis(1);

/// The host-wide caps every plugin runs within.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeSettings {
    pub max_component_bytes: usize,
    pub caps: Limits,
    pub log: LogCaps,
    pub max_result_bytes: usize,
    /// Instances alive at once; more calls wait for a free slot, up to their deadline.
    pub max_instances: u32,
    /// The share of the slots, in percent, that one plugin version may hold at once.
    pub plugin_share_percent: u32,
    /// The threads plugin calls run on (0: one per slot).
    pub threads: usize,
}

impl RuntimeSettings {
    /// How many slots one plugin version may hold at once: at least one.
    pub fn slots_per_plugin(&self) -> usize {
        let share = u64::from(self.max_instances) * u64::from(self.plugin_share_percent.min(100));
        usize::try_from(share / 100).unwrap_or(usize::MAX).max(1)
    }
}

/// A plugin version ready to instantiate.
pub struct Prepared {
    pub id: String,
    pub version: String,
    pre: KindPre,
}

enum KindPre {
    Segmenter(SegmenterPre<Sandbox>),
    Targeter(TargeterPre<Sandbox>),
    OfferProvider(OfferProviderPre<Sandbox>),
}

impl Prepared {
    pub fn kind(&self) -> PluginKind {
        match self.pre {
            KindPre::Segmenter(_) => PluginKind::Segmenter,
            KindPre::Targeter(_) => PluginKind::Targeter,
            KindPre::OfferProvider(_) => PluginKind::OfferProvider,
        }
    }
}

/// What one call needs besides its records.
#[derive(Clone)]
pub struct Invocation {
    pub plugin: Arc<Prepared>,
    pub limits: Limits,
    pub config: Vec<(String, wit::ConfigValue)>,
}

pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<Sandbox>,
    settings: RuntimeSettings,
    slots: Arc<Semaphore>,
    /// Each plugin version's own slots, at most `slots_per_plugin` of them.
    shares: Mutex<HashMap<String, Arc<Semaphore>>>,
    workers: Workers,
    cache: Mutex<HashMap<String, Arc<Prepared>>>,
    ticking: Arc<AtomicBool>,
}

/// Bytes of each instance slot's linear memory kept resident between uses.
const KEEP_RESIDENT: usize = 4 << 20;

impl PluginRuntime {
    pub fn new(settings: RuntimeSettings) -> anyhow::Result<Self> {
        let memory_bytes = u64::from(settings.caps.memory_mib) << 20;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(settings.max_instances)
            .total_core_instances(settings.max_instances * 8)
            .total_memories(settings.max_instances * 2)
            .total_tables(settings.max_instances * 8)
            .max_memory_size(memory_bytes as usize)
            // Per component, so one with dozens of modules is refused when it is loaded
            // (at upload) instead of taking a memory slot and the memory cap per module.
            .max_core_instances_per_component(sandbox::MAX_CORE_INSTANCES)
            .max_memories_per_component(sandbox::MAX_MEMORIES)
            .max_tables_per_component(sandbox::MAX_TABLES)
            // A batch's readers are lowered into a fresh instance's memory. Keeping the first
            // megabytes of each slot resident (zeroed with a memset when the slot is reused)
            // spares the kernel a page fault and a page clearing for every page of every batch.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(1 << 16);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(1 << 20)
            .memory_reservation(memory_bytes)
            .memory_guard_size(64 << 10)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        clocks::add_to_linker(&mut linker, Sandbox::timers)?;
        bindings::host::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)?;
        bindings::wit::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)?;
        let ticking = Arc::new(AtomicBool::new(true));
        let (ticker_engine, still) = (engine.clone(), ticking.clone());
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while still.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticker_engine.increment_epoch();
                }
            })?;
        let threads = match settings.threads {
            0 => settings.max_instances as usize,
            n => n,
        };
        Ok(Self {
            engine,
            linker,
            slots: Arc::new(Semaphore::new(settings.max_instances as usize)),
            shares: Mutex::new(HashMap::new()),
            workers: Workers::start(threads)?,
            settings,
            cache: Mutex::new(HashMap::new()),
            ticking,
        })
    }

    pub fn settings(&self) -> &RuntimeSettings {
        &self.settings
    }

    /// Checks an uploaded component (size, kind, contract version, imports) and precompiles
    /// it. Slow for large components: call it off the async executor.
    pub fn inspect(&self, bytes: &[u8], kind: PluginKind) -> Result<Inspected, String> {
        inspect::inspect(self, bytes, kind)
    }

    /// The ready-to-run plugin for a stored version, compiled at most once per process.
    pub fn prepare(
        &self,
        id: &str,
        version: &str,
        kind: PluginKind,
        compiled: &[u8],
        component: &[u8],
    ) -> anyhow::Result<Arc<Prepared>> {
        let key = format!("{id}@{version}");
        if let Some(found) = self.lock_cache().get(&key) {
            return Ok(found.clone());
        }
        let component = match inspect::deserialize(&self.engine, compiled) {
            Ok(component) => component,
            Err(_) => Component::new(&self.engine, component)?,
        };
        let pre = self.linker.instantiate_pre(&component)?;
        let pre = match kind {
            PluginKind::Segmenter => KindPre::Segmenter(SegmenterPre::new(pre)?),
            PluginKind::Targeter => KindPre::Targeter(TargeterPre::new(pre)?),
            PluginKind::OfferProvider => KindPre::OfferProvider(OfferProviderPre::new(pre)?),
        };
        let prepared = Arc::new(Prepared {
            id: id.to_string(),
            version: version.to_string(),
            pre,
        });
        self.lock_cache().insert(key, prepared.clone());
        Ok(prepared)
    }

    /// Drops a version from the cache (after a delete).
    pub fn forget(&self, id: &str, version: &str) {
        self.lock_cache().remove(&format!("{id}@{version}"));
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Prepared>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a segmenter over one batch.
    pub async fn segment(
        self: &Arc<Self>,
        call: Invocation,
        context: wit::Context,
        batch: Vec<wit::Subscriber>,
    ) -> Result<Report<Vec<String>>, Failure> {
        let (plugin, deadline_ms) = (Arc::clone(&call.plugin), call.limits.deadline_ms);
        self.off_thread(plugin, deadline_ms, move |runtime| {
            runtime.run(
                &call,
                Clocks::on(&context.today),
                batch.len(),
                |store, pre| {
                    let KindPre::Segmenter(pre) = pre else {
                        return Err(wrong_kind(PluginKind::Segmenter));
                    };
                    let api = pre.instantiate(&mut *store)?;
                    let api = api.masthead_plugin_segment_api();
                    if let Err(e) = api.call_configure(&mut *store, &call.config)? {
                        return Ok(Err(e));
                    }
                    runtime.restart_deadline(store, &call);
                    Ok(Ok(api.call_segment(&mut *store, &context, &batch)?))
                },
                |keys| keys.iter().map(|k| k.len() + 8).sum(),
            )
        })
        .await
    }

    /// Runs a targeter over one batch for a campaign.
    pub async fn target(
        self: &Arc<Self>,
        call: Invocation,
        context: wit::Context,
        campaign: Campaign,
        batch: Vec<wit::Subscriber>,
    ) -> Result<Report<Targeting>, Failure> {
        let (plugin, deadline_ms) = (Arc::clone(&call.plugin), call.limits.deadline_ms);
        self.off_thread(plugin, deadline_ms, move |runtime| {
            runtime.run(
                &call,
                Clocks::on(&context.today),
                batch.len(),
                |store, pre| {
                    let KindPre::Targeter(pre) = pre else {
                        return Err(wrong_kind(PluginKind::Targeter));
                    };
                    let api = pre.instantiate(&mut *store)?;
                    let api = api.masthead_plugin_target_api();
                    if let Err(e) = api.call_configure(&mut *store, &call.config)? {
                        return Ok(Err(e));
                    }
                    runtime.restart_deadline(store, &call);
                    Ok(Ok(api.call_target(
                        &mut *store,
                        &context,
                        &campaign,
                        &batch,
                    )?))
                },
                |t| match t {
                    Targeting::Score(_) => 8,
                    Targeting::Exclude(reason) => reason.len() + 8,
                },
            )
        })
        .await
    }

    /// Asks an offer provider for the offers of each record.
    pub async fn propose(
        self: &Arc<Self>,
        call: Invocation,
        context: wit::Context,
        occasion: Occasion,
        batch: Vec<wit::Subscriber>,
    ) -> Result<Report<Vec<Offer>>, Failure> {
        let (plugin, deadline_ms) = (Arc::clone(&call.plugin), call.limits.deadline_ms);
        self.off_thread(plugin, deadline_ms, move |runtime| {
            runtime.run(
                &call,
                Clocks::on(&context.today),
                batch.len(),
                |store, pre| {
                    let KindPre::OfferProvider(pre) = pre else {
                        return Err(wrong_kind(PluginKind::OfferProvider));
                    };
                    let api = pre.instantiate(&mut *store)?;
                    let api = api.masthead_plugin_offer_api();
                    if let Err(e) = api.call_configure(&mut *store, &call.config)? {
                        return Ok(Err(e));
                    }
                    runtime.restart_deadline(store, &call);
                    Ok(Ok(api.call_propose(
                        &mut *store,
                        &context,
                        occasion,
                        &batch,
                    )?))
                },
                |offers| {
                    offers
                        .iter()
                        .map(|o| {
                            o.code.len() + o.title.len() + o.publication.len() + o.reason.len() + 64
                        })
                        .sum()
                },
            )
        })
        .await
    }

    /// Instantiates the plugin in a fresh sandbox and drops it, calling nothing: the fixed
    /// cost every call pays (measured by the benchmarks).
    pub fn instantiate(&self, call: &Invocation) -> wasmtime::Result<()> {
        let memory_bytes = (call.limits.memory_mib as usize) << 20;
        let mut store = Store::new(
            &self.engine,
            Sandbox::new(Clocks::on(&EPOCH), memory_bytes, self.settings.log),
        );
        store.limiter(|s| s.limiter());
        store.set_fuel(call.limits.fuel_per_batch)?;
        store.epoch_deadline_trap();
        self.restart_deadline(&mut store, call);
        match &call.plugin.pre {
            KindPre::Segmenter(pre) => pre.instantiate(&mut store).map(drop),
            KindPre::Targeter(pre) => pre.instantiate(&mut store).map(drop),
            KindPre::OfferProvider(pre) => pre.instantiate(&mut store).map(drop),
        }
    }

    /// Waits for one of the plugin version's own slots, then for a slot of the pool, then
    /// for a plugin thread, and runs `work` there. Waiting ends at the call's deadline: a call
    /// that found no room by then fails as the host's condition, not the plugin's fault.
    async fn off_thread<T: Send + 'static>(
        self: &Arc<Self>,
        plugin: Arc<Prepared>,
        deadline_ms: u64,
        work: impl FnOnce(&PluginRuntime) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let patience = Duration::from_millis(deadline_ms);
        let started = Instant::now();
        let left = || patience.saturating_sub(started.elapsed());
        let share = self.share_of(&plugin);
        let Ok(Ok(own)) = tokio::time::timeout(left(), share.acquire_owned()).await else {
            return Err(Failure::host(format!(
                "plugin {} already had its share of {} instance slots busy for this call's \
                 deadline of {deadline_ms} ms",
                plugin.id,
                self.settings.slots_per_plugin()
            )));
        };
        let Ok(Ok(slot)) = tokio::time::timeout(left(), self.slots.clone().acquire_owned()).await
        else {
            return Err(Failure::host(format!(
                "all {} plugin instance slots stayed busy for this call's deadline of \
                 {deadline_ms} ms",
                self.settings.max_instances
            )));
        };
        let runtime = self.clone();
        let ran = self
            .workers
            .run(left(), move || {
                let _held = (own, slot);
                work(&runtime)
            })
            .await;
        ran.unwrap_or_else(|| {
            Err(Failure::host(format!(
                "no plugin thread came free within this call's deadline of {deadline_ms} ms"
            )))
        })
    }

    /// The semaphore counting one plugin version's slots.
    fn share_of(&self, plugin: &Prepared) -> Arc<Semaphore> {
        let key = format!("{}@{}", plugin.id, plugin.version);
        let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
        let share = shares
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.slots_per_plugin())));
        Arc::clone(share)
    }

    fn restart_deadline(&self, store: &mut Store<Sandbox>, call: &Invocation) {
        store.set_epoch_deadline(deadline_ticks(call.limits.deadline_ms));
    }

    /// One batch in a fresh store: instantiate, configure, call, then check the results.
    fn run<T>(
        &self,
        call: &Invocation,
        clocks: Clocks,
        batch_len: usize,
        body: impl FnOnce(
            &mut Store<Sandbox>,
            &KindPre,
        ) -> wasmtime::Result<Result<Vec<Result<T, String>>, String>>,
        size_of: impl Fn(&T) -> usize,
    ) -> Result<Report<T>, Failure> {
        let started = Instant::now();
        let memory_bytes = (call.limits.memory_mib as usize) << 20;
        let mut store = Store::new(
            &self.engine,
            Sandbox::new(clocks, memory_bytes, self.settings.log),
        );
        store.limiter(|s| s.limiter());
        store
            .set_fuel(call.limits.fuel_per_batch)
            .map_err(|e| Failure::host(e.to_string()))?;
        store.epoch_deadline_trap();
        self.restart_deadline(&mut store, call);
        let outcome = body(&mut store, &call.plugin.pre);
        let fuel_used = call.limits.fuel_per_batch - store.get_fuel().unwrap_or(0);
        let (log, dropped) = store.data_mut().take_log();
        let stats = outcome::Stats {
            fuel_used,
            peak_memory_bytes: store.data().peak_memory_bytes(),
            duration: started.elapsed(),
            log,
            dropped_log_lines: dropped,
        };
        let checked = match outcome {
            Err(error) => Err(outcome::classify(error, store.data(), call.limits)),
            Ok(Err(reason)) => Err(Failure::new(
                Cause::Configure,
                format!("configure refused the configuration: {reason}"),
            )),
            Ok(Ok(results)) => {
                outcome::check(results, batch_len, self.settings.max_result_bytes, size_of)
            }
        };
        let report = checked
            .map(|results| Report {
                results,
                stats: stats.clone(),
            })
            .map_err(|failure| failure.with_stats(stats));
        outcome::record_metrics(&call.plugin, &report, batch_len);
        report
    }
}

impl Drop for PluginRuntime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

fn deadline_ticks(deadline_ms: u64) -> u64 {
    deadline_ms.div_ceil(TICK.as_millis() as u64).max(1)
}

fn wrong_kind(expected: PluginKind) -> wasmtime::Error {
    wasmtime::Error::msg(format!("this plugin is not a {}", expected.as_str()))
}

impl PluginRuntime {
    /// Calls only the plugin's `configure` with `call.config`, in a fresh sandbox under the
    /// call's limits: whether this version accepts a configuration, asked before it is stored.
    pub async fn configure(self: &Arc<Self>, call: Invocation) -> Result<outcome::Stats, Failure> {
        let (plugin, deadline_ms) = (Arc::clone(&call.plugin), call.limits.deadline_ms);
        self.off_thread(plugin, deadline_ms, move |runtime| {
            runtime.run(
                &call,
                Clocks::on(&EPOCH),
                0,
                |store, pre| {
                    let answer = match pre {
                        KindPre::Segmenter(pre) => pre
                            .instantiate(&mut *store)?
                            .masthead_plugin_segment_api()
                            .call_configure(&mut *store, &call.config)?,
                        KindPre::Targeter(pre) => pre
                            .instantiate(&mut *store)?
                            .masthead_plugin_target_api()
                            .call_configure(&mut *store, &call.config)?,
                        KindPre::OfferProvider(pre) => pre
                            .instantiate(&mut *store)?
                            .masthead_plugin_offer_api()
                            .call_configure(&mut *store, &call.config)?,
                    };
                    Ok(answer.map(|()| Vec::<Result<(), String>>::new()))
                },
                |()| 0,
            )
        })
        .await
        .map(|report| report.stats)
    }
}
