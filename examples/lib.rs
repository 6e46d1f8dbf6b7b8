//! Runnable clients of the Masthead API; see the `[[example]]` targets in this crate.
