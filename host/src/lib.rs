//! Masthead: the subscriber database and CRM plugin host of a publisher.

#![deny(unsafe_code)]

pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod runtime;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;

/// mimalloc instead of the system allocator: the import and the plugin views allocate on one
/// thread and free on another, which glibc's arenas serve with lock contention.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
