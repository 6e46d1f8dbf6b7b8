//! The Masthead plugin SDK: the WIT contract and the Rust API that plugin authors build on.
//!
//! The contract (`wit/`) and the guest API land with the plugin host; this crate reserves the
//! name and the place in the workspace so that the host and the plugins share one source.
