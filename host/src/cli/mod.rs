//! The `masthead` command line: serve, migrate, API keys, the circulation file, renewals and
//! plugins.

mod backup;
mod circulation;
mod clubs;
mod fixture;
mod jobs;
mod keys;
mod plugin;
mod sample;

pub use circulation::load_demo;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides};
use crate::services;
use crate::services::legacy::ImportOptions;
use crate::startup::{Application, shutdown_signal};
use crate::store;
use crate::store::SubscriberFilter;

#[derive(Debug, Parser)]
#[command(
    name = "masthead",
    version,
    about = "Subscriber database and CRM plugin host for publishers"
)]
pub struct Cli {
    /// Configuration file (default: ./masthead.toml when present).
    #[arg(long, global = true, env = "MASTHEAD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Folder for the embedded database and first-start files.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (creates and migrates the database on first start).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// On an empty database, first load a demo publisher with 10,000 readers.
        #[arg(long)]
        demo: bool,
    },
    /// Create or bring the database schema up to date, then exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Load a legacy circulation file: subscribers.csv, then (optionally) terms.csv. Rows are
    /// matched to known readers instead of created twice; rejected rows are written with
    /// their line and reason to FILE.rejected.csv. See examples/circulation/README.md for the columns.
    Import {
        subscribers: PathBuf,
        terms: Option<PathBuf>,
        /// Check and match every row, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rows per transaction.
        #[arg(long, default_value_t = 5_000)]
        batch_size: usize,
    },
    /// Write a checked copy of the whole database to FILE, consistent while the service
    /// serves; it restores into SQLite or PostgreSQL.
    Backup { file: PathBuf },
    /// Load a backup made by `masthead backup` into an empty database (all or nothing).
    Restore { file: PathBuf },
    /// Write subscribers.csv and terms.csv, in the import's shape, into a folder.
    Export { folder: PathBuf },
    /// Generate a believable publisher (titles, price lists, readers and their renewal
    /// histories) and load it, or write it as the import's CSV files with --csv. The same
    /// seed always gives the same data.
    DemoData {
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write subscribers.csv and terms.csv into this folder instead of the database.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Plugins: start a crate, check and run a package locally, manage stored plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Renew every auto-renew term ending within the next days; safe to run again.
    RenewDue {
        #[arg(long, default_value_t = 14)]
        days: u32,
    },
    /// Reader clubs.
    #[command(subcommand)]
    Clubs(ClubsCommand),
    /// Background jobs: list, show, follow, cancel.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClubsCommand {
    /// Recompute every reader's tier now, in this process (catches lapses and expired
    /// overrides; `serve` also runs it nightly). Safe to run again: only changed standings
    /// are written.
    Recompute {
        /// Only this club (default: every club).
        #[arg(long)]
        club: Option<String>,
    },
}

impl Cli {
    pub fn config(&self) -> anyhow::Result<Config> {
        let listen = match &self.command {
            Command::Serve { listen, .. } => *listen,
            _ => None,
        };
        Config::load(
            self.config.as_deref(),
            &Overrides {
                listen,
                database_url: self.database_url.clone(),
                data_dir: self.data_dir.clone(),
                log_format: self.log_format,
            },
        )
    }
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { demo, .. } => serve(config, demo).await,
        Command::Migrate => {
            let store = store::open(&config.database_url()).await?;
            println!("{} database is up to date", store.backend());
            store.close().await;
            Ok(())
        }
        Command::Keys(command) => keys::run(command, &config).await,
        Command::Jobs(command) => jobs::run(command, &config).await,
        Command::Plugin(command) => plugin::run(command, &config).await,
        Command::Import {
            subscribers,
            terms,
            dry_run,
            batch_size,
        } => {
            anyhow::ensure!(
                (1..=50_000).contains(&batch_size),
                "--batch-size must be between 1 and 50000"
            );
            let options = ImportOptions {
                dry_run,
                batch_size,
            };
            circulation::import(&config, &subscribers, terms.as_deref(), options).await
        }
        Command::Backup { file } => backup::backup(&config, &file).await,
        Command::Restore { file } => backup::restore(&config, &file).await,
        Command::Export { folder } => circulation::export(&config, &folder).await,
        Command::RenewDue { days } => circulation::renew_due(&config, days).await,
        Command::Clubs(ClubsCommand::Recompute { club }) => {
            clubs::recompute(&config, club.as_deref()).await
        }
        Command::DemoData {
            subscribers,
            seed,
            csv,
        } => circulation::demo_data(&config, subscribers, seed, csv.as_deref()).await,
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    if demo {
        let store = app.store();
        let empty = SubscriberFilter {
            limit: 1,
            ..SubscriberFilter::default()
        };
        if store.list_subscribers(&empty).await?.is_empty() {
            tracing::info!("loading the demo publisher (10,000 readers); this takes a few seconds");
            circulation::load_demo(&store, &config, 10_000, 1).await?;
            circulation::load_demo_club(&store, &config).await?;
        }
    }
    if let Some(path) = services::keys::bootstrap_admin(
        &*app.store(),
        &services::clock::SystemClock,
        &config.data_dir,
    )
    .await?
    {
        tracing::warn!(
            file = %path.display(),
            "no admin key existed, so one was created and written to this file (readable only by \
             you); use it to create personal keys, then delete the file"
        );
    }
    app.run_until_stopped(shutdown_signal()).await
}
