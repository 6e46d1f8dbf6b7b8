//! Upload checks on a component: its size, its core instances, memories and tables, the
//! contract version and kind it exports, that every import is one the host provides, and that
//! it starts within the host's caps with the kind's functions at their contract signatures;
//! then the precompiled artefact kept for later starts.

use wasmtime::component::{Component, ComponentNamedList, Instance, InstancePre, Lift, Lower};
use wasmtime::{Engine, Store, component::types::ComponentItem};

use super::bindings::{Campaign, Occasion, Offer, Targeting, wit};
use super::clocks::Clocks;
use super::outcome::{MAX_MESSAGE_BYTES, cap_text, classify};
use super::sandbox::{MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES, Sandbox};
use super::{EPOCH, PluginRuntime, deadline_ticks};
use crate::domain::plugin::{API_VERSION, PluginKind, Version};

/// A component that passed the checks.
#[derive(Debug)]
pub struct Inspected {
    /// The contract version read from the component's export name.
    pub api_version: Version,
    /// The artefact `Engine::precompile_component` made; loaded without recompiling.
    pub compiled: Vec<u8>,
}

/// Runs every check; a refusal names what is wrong, capped like any text from a plugin
/// (it may quote the component's own names).
pub(super) fn inspect(
    runtime: &PluginRuntime,
    bytes: &[u8],
    kind: PluginKind,
) -> Result<Inspected, String> {
    checks(runtime, bytes, kind).map_err(|reason| cap_text(reason, MAX_MESSAGE_BYTES))
}

fn checks(runtime: &PluginRuntime, bytes: &[u8], kind: PluginKind) -> Result<Inspected, String> {
    let cap = runtime.settings.max_component_bytes;
    if bytes.len() > cap {
        return Err(format!(
            "the component is {} bytes, over this host's cap of {cap}",
            bytes.len()
        ));
    }
    let compiled = runtime
        .engine
        .precompile_component(bytes)
        .map_err(|e| format!("not a valid WebAssembly component: {e:#}"))?;
    // Loading checks the component against the instance pool: its core instances, memories
    // and tables, and each memory's declared size.
    let component = deserialize(&runtime.engine, &compiled).map_err(|e| {
        format!(
            "the component can never run on this host, which allows a component at most \
             {MAX_CORE_INSTANCES} core instances, {MAX_MEMORIES} linear memories and \
             {MAX_TABLES} tables, and {} MiB of memory: {e:#}",
            runtime.settings.caps.memory_mib
        )
    })?;
    let (export, api_version) = exported_version(&runtime.engine, &component, kind)?;
    let pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(|e| format!("the component needs something Masthead does not provide: {e:#}"))?;
    starts_with_the_contract(runtime, &pre, kind, &export)?;
    Ok(Inspected {
        api_version,
        compiled,
    })
}

/// Instantiates the component in a sandbox under the host's caps, and checks each function
/// of the kind's export against its signature in the contract (the types the bindings call it
/// with; they check only once instantiated, and without naming the function): a component
/// that cannot start, or whose first call would fail, is refused now. None of its functions
/// is called.
fn starts_with_the_contract(
    runtime: &PluginRuntime,
    pre: &InstancePre<Sandbox>,
    kind: PluginKind,
    export: &str,
) -> Result<(), String> {
    let caps = runtime.settings.caps;
    let memory_bytes = (caps.memory_mib as usize) << 20;
    let mut store = Store::new(
        &runtime.engine,
        Sandbox::new(Clocks::on(&EPOCH), memory_bytes, runtime.settings.log),
    );
    store.limiter(|s| s.limiter());
    store
        .set_fuel(caps.fuel_per_batch)
        .map_err(|e| format!("the component could not be started: {e}"))?;
    store.epoch_deadline_trap();
    store.set_epoch_deadline(deadline_ticks(caps.deadline_ms));
    let instance = match pre.instantiate(&mut store) {
        Ok(instance) => instance,
        Err(error) => {
            let failure = classify(error, store.data(), caps);
            return Err(format!("the component cannot start: {}", failure.message));
        }
    };
    let mut contract = Contract {
        store,
        instance,
        export,
    };
    contract.check::<(Config,), (Result<(), String>,)>("configure")?;
    match kind {
        PluginKind::Segmenter => {
            contract.check::<(wit::Context, Batch), (Vec<Result<Vec<String>, String>>,)>("segment")
        }
        PluginKind::Targeter => contract
            .check::<(wit::Context, Campaign, Batch), (Vec<Result<Targeting, String>>,)>("target"),
        PluginKind::OfferProvider => contract
            .check::<(wit::Context, Occasion, Batch), (Vec<Result<Vec<Offer>, String>>,)>(
                "propose",
            ),
    }
}

/// What every kind's `configure` takes, and the records every call gets.
type Config = Vec<(String, wit::ConfigValue)>;
type Batch = Vec<wit::Subscriber>;

/// An instance whose export `export` is checked function by function.
struct Contract<'a> {
    store: Store<Sandbox>,
    instance: Instance,
    export: &'a str,
}

impl Contract<'_> {
    fn check<Params, Results>(&mut self, function: &str) -> Result<(), String>
    where
        Params: ComponentNamedList + Lower,
        Results: ComponentNamedList + Lift,
    {
        let export = self.export;
        let api = self
            .instance
            .get_export_index(&mut self.store, None, export)
            .ok_or_else(|| format!("the component does not export {export}"))?;
        let index = self
            .instance
            .get_export_index(&mut self.store, Some(&api), function)
            .ok_or_else(|| {
                format!("{export} has no function `{function}`; build it from the {API_VERSION} WIT of masthead-sdk")
            })?;
        self.instance
            .get_typed_func::<Params, Results>(&mut self.store, &index)
            .map(drop)
            .map_err(|e| {
                format!(
                    "`{function}` in {export} does not have the signature of the \
                     masthead:plugin@{API_VERSION} contract ({e:#}); build it from the SDK's WIT"
                )
            })
    }
}

/// Finds the kind's export and reads the contract version from its name.
fn exported_version(
    engine: &Engine,
    component: &Component,
    kind: PluginKind,
) -> Result<(String, Version), String> {
    let interface = kind.export_interface();
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_string())
        .collect();
    let Some(name) = exports
        .iter()
        .find(|n| n.split('@').next() == Some(interface))
    else {
        let found = if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports.join(", ")
        };
        return Err(format!(
            "a plugin of kind {} must export {interface}@{API_VERSION}; this component exports {found}",
            kind.as_str()
        ));
    };
    let version = name
        .split_once('@')
        .and_then(|(_, v)| Version::parse(v))
        .ok_or_else(|| format!("the export {name} carries no contract version"))?;
    if !version.is_served() {
        return Err(format!(
            "the component was built for masthead:plugin@{version}; this host serves masthead:plugin@{API_VERSION} (rebuild it with a masthead-sdk for {}.x)",
            API_VERSION.major
        ));
    }
    Ok((name.clone(), version))
}

/// Loads an artefact made by this engine's `precompile_component`.
#[allow(unsafe_code)]
pub(super) fn deserialize(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the bytes come from `Engine::precompile_component` and
    // were not tampered with. Masthead only passes artefacts it produced itself at upload and
    // keeps in its own database next to the source component; wasmtime also refuses artefacts
    // from another engine version or configuration, in which case the caller recompiles.
    unsafe { Component::deserialize(engine, compiled) }
}
