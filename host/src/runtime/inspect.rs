//! Upload checks on a component: its size, the contract version and kind it exports, and that
//! every import is one the host provides; then the precompiled artefact kept for later starts.

use wasmtime::component::Component;
use wasmtime::{Engine, component::types::ComponentItem};

use super::PluginRuntime;
use super::outcome::{MAX_MESSAGE_BYTES, cap_text};
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
    let component = deserialize(&runtime.engine, &compiled)
        .map_err(|e| format!("the compiled component could not be loaded: {e:#}"))?;
    let api_version = exported_version(&runtime.engine, &component, kind)?;
    runtime
        .linker
        .instantiate_pre(&component)
        .map_err(|e| format!("the component needs something Masthead does not provide: {e:#}"))?;
    Ok(Inspected {
        api_version,
        compiled,
    })
}

/// Finds the kind's export and reads the contract version from its name.
fn exported_version(
    engine: &Engine,
    component: &Component,
    kind: PluginKind,
) -> Result<Version, String> {
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
    Ok(version)
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
