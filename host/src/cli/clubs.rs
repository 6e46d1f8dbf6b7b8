//! `masthead clubs recompute`: the tier recomputation over every reader, for a nightly cron.

use std::sync::Arc;

use crate::config::Config;
use crate::services::audit::AuditLog;
use crate::services::clock::SystemClock;
use crate::startup::Services;
use crate::store::{self, Store};

/// Recomputes the tiers of every reader in one club, or in every club.
pub async fn recompute(config: &Config, club: Option<&str>) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = store::open(&config.database_url()).await?;
    let (audit, audit_task) = AuditLog::start(Arc::clone(&store));
    let services = Services::build(
        config,
        Arc::clone(&store),
        audit.clone(),
        Arc::new(SystemClock),
    )?;
    let codes: Vec<String> = match club {
        Some(code) => vec![code.to_owned()],
        None => store
            .list_clubs()
            .await?
            .into_iter()
            .map(|c| c.definition.code)
            .collect(),
    };
    if codes.is_empty() {
        println!("there are no clubs; define one with POST /api/v1/clubs");
    }
    let actor = super::circulation::actor("tier-recomputation");
    let mut failed = false;
    for code in codes {
        let started = std::time::Instant::now();
        let job = services.clubs.recompute(&actor, &code).await?;
        let c = job.counts;
        println!(
            "{code}: {} readers in {:.1} s: {} joined, {} promoted, {} demoted, {} left, \
             {} undecided{}",
            c.processed,
            started.elapsed().as_secs_f64(),
            c.joined,
            c.promoted,
            c.demoted,
            c.left,
            c.undecided,
            job.error
                .as_deref()
                .map(|e| format!("; failed: {e}"))
                .unwrap_or_default()
        );
        failed |= job.error.is_some();
    }
    audit.flush().await;
    drop(audit);
    drop(services);
    audit_task.abort();
    store.close().await;
    anyhow::ensure!(!failed, "a recomputation failed");
    Ok(())
}
