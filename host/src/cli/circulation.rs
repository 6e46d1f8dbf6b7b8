//! `masthead import`, `export` and `renew-due`: the circulation file (imported here, in this
//! process: the offline path, through the same importer as the import jobs) and the renewal
//! run (a job, run here unless another host runs it already).

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use chrono::Datelike;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::domain::Role;
use crate::services::audit::AuditLog;
use crate::services::auto_renewal::AutoRenewals;
use crate::services::clock::{Clock, SystemClock};
use crate::services::demo;
use crate::services::legacy::{
    self, ImportError, ImportFile, ImportObserver, ImportOptions, ImportReport, Importer, Rejection,
};
use crate::startup::Services;
use crate::store::{self, Actor, Store};

pub(super) fn actor(name: &str) -> Actor {
    Actor {
        key_id: None,
        name: name.to_owned(),
        role: Role::Admin,
    }
}

/// Writes each rejection to the report file and moves the progress bar.
struct Terminal {
    report: csv::Writer<File>,
    bar: ProgressBar,
}

#[async_trait]
impl ImportObserver for Terminal {
    fn rejected(&mut self, rejection: Rejection) {
        let line = rejection.line.to_string();
        if let Err(e) = self
            .report
            .write_record([line.as_str(), rejection.reason.as_str()])
        {
            tracing::error!(error = %e, "the rejection report could not be written");
        }
    }

    async fn between_batches(&mut self, bytes: u64, _: &ImportReport) -> Result<(), ImportError> {
        self.bar.set_position(bytes);
        Ok(())
    }
}

fn bar(path: &Path) -> ProgressBar {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>16} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    bar
}

pub async fn import(
    config: &Config,
    subscribers: &Path,
    terms: Option<&Path>,
    options: ImportOptions,
) -> anyhow::Result<()> {
    let store = store::open(&config.database_url()).await?;
    let importer = Importer::new(
        Arc::clone(&store),
        Arc::new(SystemClock),
        config.home_country()?,
        config.currency()?,
        actor("import"),
    );
    let mut files = vec![(subscribers, ImportFile::Subscribers)];
    files.extend(terms.map(|t| (t, ImportFile::Terms)));
    let mut rejected = 0;
    for (path, file) in files {
        let input = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let report_path = PathBuf::from(format!("{}.rejected.csv", path.display()));
        let mut observer = Terminal {
            report: csv::Writer::from_path(&report_path)
                .with_context(|| format!("cannot write {}", report_path.display()))?,
            bar: bar(path),
        };
        observer.report.write_record(["line", "reason"])?;
        let started = std::time::Instant::now();
        let report = importer
            .import(file, input, &options, &mut observer)
            .await
            .with_context(|| format!("the import of {} stopped", path.display()))?;
        observer.bar.finish_and_clear();
        observer.report.flush()?;
        print_report(path, &report, started.elapsed());
        if report.rejected > 0 {
            println!(
                "  rejected rows, with line and reason: {}",
                report_path.display()
            );
        } else {
            std::fs::remove_file(&report_path).ok();
        }
        rejected += report.rejected;
    }
    store.close().await;
    if rejected > 0 {
        anyhow::bail!(
            "{rejected} rows were rejected; fix them and import again (imported rows are matched, not doubled)"
        );
    }
    Ok(())
}

fn print_report(path: &Path, r: &ImportReport, took: std::time::Duration) {
    let mode = if r.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    println!(
        "{}{mode}: {} rows in {:.1} s: {} created, {} matched, {} unchanged, {} rejected; {} batches committed",
        path.display(),
        r.rows,
        took.as_secs_f64(),
        r.created,
        r.matched,
        r.unchanged,
        r.rejected,
        r.batches
    );
}

pub async fn export(config: &Config, folder: &Path) -> anyhow::Result<()> {
    let store = store::open(&config.database_url()).await?;
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let subscribers = folder.join("subscribers.csv");
    let mut out = File::create(&subscribers)?;
    let mut after = 0;
    loop {
        let page = legacy::export_subscribers(&*store, after).await?;
        out.write_all(&page.csv)?;
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    let terms = folder.join("terms.csv");
    let mut out = File::create(&terms)?;
    let mut after = 0;
    loop {
        let page = legacy::export_terms(&*store, after).await?;
        out.write_all(&page.csv)?;
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    println!("wrote {} and {}", subscribers.display(), terms.display());
    store.close().await;
    Ok(())
}

pub async fn renew_due(config: &Config, days: u32) -> anyhow::Result<()> {
    anyhow::ensure!((1..=90).contains(&days), "--days must be between 1 and 90");
    let store: Arc<dyn Store> = store::open(&config.database_url()).await?;
    let (audit, audit_task) = AuditLog::start(Arc::clone(&store));
    let services = Services::build(
        config,
        Arc::clone(&store),
        audit.clone(),
        Arc::new(SystemClock),
    )?;
    let job = services
        .auto_renewals
        .run_here(&actor("auto-renewal"), days)
        .await?;
    audit.flush().await;
    drop(audit);
    drop(services);
    audit_task.abort();
    let Some(report) = AutoRenewals::report(&job) else {
        store.close().await;
        anyhow::bail!(
            "the auto-renewal (job {}) {}: {}; see `masthead jobs show {}`",
            job.id,
            super::jobs::state_name(job.state),
            job.error.as_deref().unwrap_or("no reason was recorded"),
            job.id
        );
    };
    println!(
        "renewed {} terms ending {} to {}; {} could not be renewed",
        report.renewed,
        report.from.map(|d| d.to_string()).unwrap_or_default(),
        report.until.map(|d| d.to_string()).unwrap_or_default(),
        report.failed.len()
    );
    for failure in &report.failed {
        println!(
            "  {} term {}: {}",
            failure.subscriber, failure.term, failure.reason
        );
    }
    store.close().await;
    Ok(())
}

/// Generates a demo publisher: the catalogue (added where missing) and `n` readers with their
/// histories, loaded through the import, or written as CSV into `csv` instead.
pub async fn demo_data(
    config: &Config,
    n: usize,
    seed: u64,
    csv: Option<&Path>,
) -> anyhow::Result<()> {
    let today = SystemClock.today();
    if let Some(folder) = csv {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let readers = std::io::BufWriter::new(File::create(folder.join("subscribers.csv"))?);
        let terms = std::io::BufWriter::new(File::create(folder.join("terms.csv"))?);
        let summary = demo::write_circulation(n, seed, today, readers, terms)?;
        println!(
            "wrote {} readers ({} near-duplicates) and {} terms to {}",
            summary.subscribers + summary.near_duplicates,
            summary.near_duplicates,
            summary.terms,
            folder.display()
        );
        return Ok(());
    }
    let store = store::open(&config.database_url()).await?;
    load_demo(&store, config, n, seed).await?;
    load_demo_club(&store, config).await?;
    store.close().await;
    Ok(())
}

/// Defines the demo reader club, if it is not there yet, and places every reader in it.
pub async fn load_demo_club(store: &Arc<dyn Store>, config: &Config) -> anyhow::Result<()> {
    let club = demo::club();
    if store.get_club(&club.code).await?.is_some() {
        return Ok(());
    }
    store.insert_club(&club, SystemClock.now()).await?;
    let (audit, audit_task) = AuditLog::start(Arc::clone(store));
    let services = Services::build(
        config,
        Arc::clone(store),
        audit.clone(),
        Arc::new(SystemClock),
    )?;
    let job = services
        .clubs
        .recompute(&actor("demo-data"), &club.code)
        .await?;
    println!(
        "{}: {} of {} readers hold a tier",
        club.name, job.counts.joined, job.counts.processed
    );
    audit.flush().await;
    drop(audit);
    drop(services);
    audit_task.abort();
    Ok(())
}

/// Adds the demo catalogue and readers to an open store.
pub async fn load_demo(
    store: &Arc<dyn Store>,
    config: &Config,
    n: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let today = SystemClock.today();
    for (draft, lists) in demo::catalogue(today.year()) {
        let publication = match store.get_publication(&draft.code).await? {
            Some(existing) => existing,
            None => store.create_publication(&draft, SystemClock.now()).await?,
        };
        for list in lists {
            if !publication
                .price_lists
                .iter()
                .any(|l| l.effective_from == list.effective_from)
            {
                store
                    .add_price_list(publication.id, &list, SystemClock.now(), "demo-data")
                    .await?;
            }
        }
    }
    let folder = tempfile::tempdir()?;
    let (readers_path, terms_path) = (
        folder.path().join("subscribers.csv"),
        folder.path().join("terms.csv"),
    );
    let summary = demo::write_circulation(
        n,
        seed,
        today,
        std::io::BufWriter::new(File::create(&readers_path)?),
        std::io::BufWriter::new(File::create(&terms_path)?),
    )?;
    let importer = Importer::new(
        Arc::clone(store),
        Arc::new(SystemClock),
        config.home_country()?,
        config.currency()?,
        actor("demo-data"),
    );
    let mut quiet = legacy::CollectRejections::default();
    let options = ImportOptions::default();
    let readers = importer
        .import_subscribers(File::open(&readers_path)?, &options, &mut quiet)
        .await?;
    let terms = importer
        .import_terms(File::open(&terms_path)?, &options, &mut quiet)
        .await?;
    println!(
        "demo data: {} readers created ({} matched as existing), {} near-duplicates among them, \
         {} terms created ({} already present)",
        readers.created, readers.matched, summary.near_duplicates, terms.created, terms.unchanged
    );
    if let Some(first) = quiet.0.first() {
        anyhow::bail!(
            "the demo data did not import cleanly: line {}: {}",
            first.line,
            first.reason
        );
    }
    Ok(())
}
