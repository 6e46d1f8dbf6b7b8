//! Integration tests: the real service over HTTP, on SQLite or (with
//! `TEST_DATABASE_URL`) PostgreSQL.

mod audiences;
mod audit_batches;
mod auth;
mod backup;
mod cli;
mod clubs;
mod complaints;
mod contract;
mod declarative;
mod demo;
mod distributable;
mod duplicates;
mod helpers;
mod import_jobs;
mod import_rows;
mod imports;
mod jobs;
mod logs_file;
mod merge;
mod money;
mod operations;
mod pipeline;
mod plugins;
mod privacy;
mod profile_rules;
mod renewals;
mod replica;
mod request_heads;
mod search;
mod standby;
mod subscribers;
mod timeline;
