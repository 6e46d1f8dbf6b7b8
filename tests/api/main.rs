//! Integration tests: the real service over HTTP, on SQLite or (with
//! `TEST_DATABASE_URL`) PostgreSQL.

mod auth;
mod backup;
mod cli;
mod clubs;
mod complaints;
mod demo;
mod duplicates;
mod helpers;
mod imports;
mod merge;
mod operations;
mod plugins;
mod privacy;
mod renewals;
mod search;
mod subscribers;
mod timeline;
