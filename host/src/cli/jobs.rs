//! `masthead jobs`: list, show, follow and cancel background jobs, straight in the database
//! (the same jobs `GET /api/v1/jobs` lists).

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use crate::config::Config;
use crate::services::ServiceError;
use crate::services::jobs::{JobView, Jobs};
use crate::store::{self, JobFilter, JobRecord, JobState};

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The latest jobs, newest first.
    List {
        /// Only this kind: segment_refresh, club_recompute, auto_renewal or import.
        #[arg(long)]
        kind: Option<String>,
        /// Only this state: queued, running, succeeded, failed or cancelled.
        #[arg(long, value_parser = parse_state)]
        state: Option<JobState>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One job with every claim a host made of it.
    Show { id: i64 },
    /// Prints the job's progress until it finishes; fails unless it succeeded.
    Follow { id: i64 },
    /// Cancels a queued job at once, a running one within seconds.
    Cancel { id: i64 },
}

pub async fn run(command: JobsCommand, config: &Config) -> anyhow::Result<()> {
    let store = store::open(&config.database_url()).await?;
    let jobs = Jobs::new(Arc::clone(&store), config.jobs.settings()?);
    let result = match command {
        JobsCommand::List { kind, state, limit } => {
            anyhow::ensure!((1..=1000).contains(&limit), "--limit must be 1 to 1000");
            let filter = JobFilter {
                kind,
                state,
                limit,
                ..JobFilter::default()
            };
            println!(
                "{:>6}  {:<16}  {:<14}  {:<10}  {:>8}  {:<21}  created",
                "id", "kind", "subject", "state", "attempts", "progress"
            );
            for job in jobs.list(&filter).await? {
                println!(
                    "{:>6}  {:<16}  {:<14}  {:<10}  {:>8}  {:<21}  {}",
                    job.id,
                    job.kind,
                    job.subject,
                    state_name(job.state),
                    job.attempts,
                    progress(&job),
                    job.created_at.to_rfc3339()
                );
            }
            Ok(())
        }
        JobsCommand::Show { id } => jobs
            .get(id)
            .await
            .map(|view| show(&view))
            .map_err(named(id)),
        JobsCommand::Follow { id } => follow(&jobs, id).await,
        JobsCommand::Cancel { id } => match jobs.cancel(id).await {
            Ok(job) if job.state == JobState::Cancelled => {
                println!("job {id} is cancelled");
                Ok(())
            }
            Ok(_) => {
                println!("job {id} was asked to stop; it stops within seconds");
                Ok(())
            }
            Err(e) => Err(named(id)(e)),
        },
    };
    store.close().await;
    result
}

async fn follow(jobs: &Jobs, id: i64) -> anyhow::Result<()> {
    let mut last = String::new();
    loop {
        let view = jobs
            .wait(id, Duration::from_secs(2))
            .await
            .map_err(named(id))?;
        let line = format!(
            "{} {}: {}",
            state_name(view.job.state),
            view.job.lease_host.as_deref().unwrap_or("-"),
            progress(&view.job)
        );
        if line != last {
            println!("{line}");
            last = line;
        }
        if view.job.state.is_finished() {
            show(&view);
            anyhow::ensure!(
                view.job.state == JobState::Succeeded,
                "job {id} {}",
                state_name(view.job.state)
            );
            return Ok(());
        }
    }
}

fn show(view: &JobView) {
    let job = &view.job;
    println!("job {} ({}) {}", job.id, job.kind, state_name(job.state));
    println!("  subject:   {}", job.subject);
    if let Some(period) = &job.period {
        println!("  period:    {period}");
    }
    println!("  arguments: {}", job.arguments);
    println!("  progress:  {}", progress(job));
    println!(
        "  created:   {} by {}",
        job.created_at.to_rfc3339(),
        job.created_by
    );
    if let Some(result) = &job.result {
        println!("  result:    {result}");
    }
    if let Some(error) = &job.error {
        println!("  error:     {error}");
    }
    for run in &view.runs {
        println!(
            "  attempt {} on {}: {} .. {} ({})",
            run.attempt,
            run.host,
            run.claimed_at.to_rfc3339(),
            run.ended_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            run.outcome.as_deref().unwrap_or("running")
        );
    }
}

fn progress(job: &JobRecord) -> String {
    match job.total {
        Some(total) => format!("{}/{total}", job.processed),
        None => job.processed.to_string(),
    }
}

pub(super) fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

fn parse_state(text: &str) -> Result<JobState, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!("`{text}` is not a state: queued, running, succeeded, failed or cancelled")
    })
}

fn named(id: i64) -> impl Fn(ServiceError) -> anyhow::Error {
    move |e| match e {
        ServiceError::NotFound(_) => {
            anyhow::anyhow!("there is no job {id}; see `masthead jobs list`")
        }
        other => anyhow::anyhow!("{other}"),
    }
}
