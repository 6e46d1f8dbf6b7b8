//! Building and running the service: the app binds its own listener (port 0 in tests) and
//! stops when the given future resolves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::{self, AppState, HttpLimits};
use crate::runtime::PluginRuntime;
use crate::services::audiences::Audiences;
use crate::services::audit::AuditLog;
use crate::services::auto_renewal::AutoRenewals;
use crate::services::catalogue::Catalogue;
use crate::services::clock::{Clock, SystemClock};
use crate::services::clubs::Clubs;
use crate::services::clubs::events::Events;
use crate::services::complaints::Complaints;
use crate::services::imports::Imports;
use crate::services::jobs::{JobKind, Jobs, Recurring, Runner, Schedule};
use crate::services::keys::KeyCache;
use crate::services::pipeline;
use crate::services::plugins::Plugins;
use crate::services::plugins::campaigns::Campaigns;
use crate::services::plugins::offers::Offers;
use crate::services::renewals::Circulation;
use crate::services::segments::Segments;
use crate::services::subscribers::Registry;
use crate::services::timeline::Timelines;
use crate::store::{self, Store};
use crate::telemetry;

/// Every service, wired to one store, audit log and clock; the HTTP app and the CLI share it.
pub struct Services {
    pub registry: Arc<Registry>,
    pub catalogue: Arc<Catalogue>,
    pub circulation: Arc<Circulation>,
    pub plugins: Arc<Plugins>,
    pub segments: Arc<Segments>,
    pub offers: Arc<Offers>,
    pub campaigns: Arc<Campaigns>,
    pub complaints: Arc<Complaints>,
    pub timelines: Arc<Timelines>,
    pub clubs: Arc<Clubs>,
    pub events: Arc<Events>,
    pub jobs: Arc<Jobs>,
    pub auto_renewals: Arc<AutoRenewals>,
    pub imports: Arc<Imports>,
    pub audiences: Arc<Audiences>,
    /// The daily schedules in force (the nightly recomputation, the daily auto-renewal).
    schedules: Vec<(Arc<dyn Recurring>, chrono::NaiveTime)>,
    clock: Arc<dyn Clock>,
}

impl Services {
    pub fn build(
        config: &Config,
        store: Arc<dyn Store>,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let currency = config.currency()?;
        let grace_days = i64::from(config.renewals.grace_days);
        let registry = Arc::new(Registry::new(
            Arc::clone(&store),
            audit.clone(),
            config.home_country()?,
        ));
        let catalogue = Arc::new(Catalogue::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            currency,
        ));
        let jobs = Arc::new(Jobs::new(Arc::clone(&store), config.jobs.settings()?));
        let runtime = Arc::new(PluginRuntime::new(config.plugins.runtime())?);
        let plugins = Arc::new(Plugins::new(
            Arc::clone(&store),
            audit.clone(),
            runtime,
            Arc::clone(&clock),
            config.plugins.failure_threshold,
        ));
        let clubs = Arc::new(Clubs::new(
            Arc::clone(&store),
            Arc::clone(&registry),
            audit.clone(),
            Arc::clone(&plugins),
            Arc::clone(&jobs),
            Arc::clone(&clock),
            currency,
            grace_days,
        ));
        let circulation = Arc::new(Circulation::new(
            Arc::clone(&store),
            audit.clone(),
            Arc::clone(&registry),
            Arc::clone(&catalogue),
            Arc::clone(&clock),
            config.renewal_policy()?,
            Arc::clone(&clubs),
        ));
        let events = Arc::new(Events::new(
            Arc::clone(&store),
            Arc::clone(&clubs),
            Arc::clone(&registry),
            audit.clone(),
        ));
        let auto_renewals = Arc::new(AutoRenewals::new(
            Arc::clone(&circulation),
            Arc::clone(&jobs),
            Arc::clone(&clock),
            config.jobs.renewals_days,
        ));
        let imports = Arc::new(Imports::new(
            Arc::clone(&store),
            Arc::clone(&jobs),
            Arc::clone(&clock),
            config.home_country()?,
            currency,
        ));
        let mut schedules: Vec<(Arc<dyn Recurring>, chrono::NaiveTime)> = Vec::new();
        if let Some(at) = config.jobs.recompute_time()? {
            schedules.push((Arc::clone(&clubs) as _, at));
        }
        if let Some(at) = config.jobs.renewals_time()? {
            schedules.push((Arc::clone(&auto_renewals) as _, at));
        }
        let batch_size = config.plugins.batch_size;
        let audiences = Arc::new(Audiences::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            grace_days,
        ));
        Ok(Self {
            segments: Arc::new(Segments::new(
                Arc::clone(&plugins),
                Arc::clone(&jobs),
                Arc::clone(&audiences),
                currency,
                grace_days,
                batch_size,
            )),
            campaigns: Arc::new(Campaigns::new(
                Arc::clone(&plugins),
                currency,
                grace_days,
                batch_size,
            )),
            offers: Arc::new(Offers::new(
                Arc::clone(&plugins),
                Arc::clone(&registry),
                currency,
                grace_days,
            )),
            complaints: Arc::new(Complaints::new(
                Arc::clone(&store),
                Arc::clone(&registry),
                audit.clone(),
                Arc::clone(&clock),
                config.complaints.policy()?,
                config.complaints.due_soon_minutes,
                currency,
            )),
            timelines: Arc::new(Timelines::new(
                Arc::clone(&store),
                Arc::clone(&registry),
                audit,
            )),
            registry,
            catalogue,
            circulation,
            plugins,
            clubs,
            events,
            jobs,
            auto_renewals,
            imports,
            audiences,
            schedules,
            clock,
        })
    }

    /// The job runner of this process: every kind of job, and the schedules in force.
    pub fn runner(&self) -> Runner {
        let kinds: Vec<Arc<dyn JobKind>> = vec![
            Arc::clone(&self.segments) as _,
            Arc::clone(&self.clubs) as _,
            Arc::clone(&self.auto_renewals) as _,
            Arc::clone(&self.imports) as _,
        ];
        let schedules = self
            .schedules
            .iter()
            .map(|(work, at)| Schedule::daily(Arc::clone(work), *at, Arc::clone(&self.clock)))
            .collect();
        Runner::new(Arc::clone(&self.jobs), kinds, schedules)
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Arc<dyn Store>,
    audit: AuditLog,
    audit_task: JoinHandle<()>,
    /// The job runner and the keeper of the kept readers, and the switch that stops both.
    runner: JoinHandle<()>,
    keeper: JoinHandle<()>,
    stop_runner: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Opens the configured database and binds the configured address.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let standby = config.standby()?;
        let store =
            store::open_with_standby(&config.database_url(), config.pool_size(), standby.as_ref())
                .await?;
        Self::build_with_store(config, store).await
    }

    /// Serves an already opened store.
    pub async fn build_with_store(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        Self::build_with_clock(config, store, Arc::new(SystemClock)).await
    }

    /// Serves an already opened store, reading the time from `clock`.
    pub async fn build_with_clock(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        config.standby()?;
        let listener = TcpListener::bind(config.listen).await.with_context(|| {
            format!(
                "cannot listen on {}; is another service using it?",
                config.listen
            )
        })?;
        let (audit, audit_task) = AuditLog::start(Arc::clone(&store));
        let services = Services::build(
            config,
            Arc::clone(&store),
            audit.clone(),
            Arc::clone(&clock),
        )?;
        let (stop_runner, stopped) = tokio::sync::watch::channel(false);
        let keeper = tokio::spawn(pipeline::keep_up(
            Arc::clone(&store),
            pipeline::KEEP_UP_EVERY,
            stopped.clone(),
        ));
        let runner = tokio::spawn(services.runner().run(stopped));
        let state = AppState {
            jobs: Arc::clone(&services.jobs),
            store: Arc::clone(&store),
            registry: services.registry,
            catalogue: services.catalogue,
            circulation: services.circulation,
            imports: services.imports,
            auto_renewals: services.auto_renewals,
            import_limit_bytes: config.import_limit_bytes,
            audit: audit.clone(),
            metrics: telemetry::metrics_handle(),
            plugins: services.plugins,
            segments: services.segments,
            offers: services.offers,
            campaigns: services.campaigns,
            complaints: services.complaints,
            timelines: services.timelines,
            clubs: services.clubs,
            events: services.events,
            audiences: services.audiences,
            clock,
            keys: Arc::new(KeyCache::new(Duration::from_secs(config.key_cache_secs))),
        };
        let limits = HttpLimits {
            body_limit_bytes: config.body_limit_bytes,
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            import_timeout: Duration::from_secs(config.import_timeout_secs),
            max_component_bytes: (config.plugins.max_component_mib as usize) << 20,
        };
        Ok(Self {
            listener,
            router: http::router(state, &limits),
            store,
            audit,
            audit_task,
            runner,
            keeper,
            stop_runner,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Serves until `shutdown` resolves, lets requests in flight finish, writes the queued
    /// audit entries and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(
            address = %self.listener.local_addr()?,
            backend = self.store.backend(),
            "masthead is serving"
        );
        http::server::serve(self.listener, self.router, shutdown).await;
        // Running jobs are given back, to be taken up by another host (or the next start).
        let _ = self.stop_runner.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.runner).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.keeper).await;
        self.audit.flush().await;
        drop(self.audit);
        // The router's copies of the audit handle are gone, so the writer drains and ends.
        let _ = tokio::time::timeout(Duration::from_secs(10), self.audit_task).await;
        self.store.close().await;
        tracing::info!("masthead stopped");
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}
