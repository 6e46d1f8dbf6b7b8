//! The threads plugin calls run on: a fixed set of their own, under the idle scheduling
//! policy, so a plugin that burns its whole deadline takes CPU only from other plugins, never
//! from the API.

use std::time::{Duration, Instant};

use thread_priority::ThreadPriority;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of named threads taking jobs from one queue.
pub struct Workers {
    queue: flume::Sender<Job>,
}

impl Workers {
    /// Starts `threads` threads; each lowers its own priority first.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (queue, jobs) = flume::unbounded::<Job>();
        for n in 0..threads.max(1) {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("plugin-{n}"))
                .spawn(move || {
                    lower_priority();
                    // Ends when the runtime, and with it the sender, is dropped.
                    while let Ok(job) = jobs.recv() {
                        job();
                    }
                })?;
        }
        Ok(Self { queue })
    }

    /// Runs `work` on a plugin thread unless it waited there longer than `patience`; `None`
    /// when it did not run (no thread came free in time, or the threads are gone).
    pub async fn run<T: Send + 'static>(
        &self,
        patience: Duration,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, answer) = oneshot::channel();
        let queued = Instant::now();
        let job: Job = Box::new(move || {
            if queued.elapsed() <= patience {
                let _ = done.send(work());
            }
        });
        self.queue.send(job).ok()?;
        answer.await.ok()
    }
}

/// `SCHED_IDLE` on Linux: these threads run only on a core no API thread wants, and an API
/// thread that wakes takes the core at once (at nice 19 alone it still waits out the running
/// slice and shares the core by weight). Elsewhere, the lowest priority the OS gives.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        match set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle) {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = ?e, "could not move a plugin thread to SCHED_IDLE"),
        }
    }
    if let Err(e) = thread_priority::set_current_thread_priority(ThreadPriority::Min) {
        tracing::warn!(error = ?e, "could not lower a plugin thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn plugin_threads_run_under_the_idle_policy() {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let workers = Workers::start(1).unwrap();
        let policy = workers
            .run(
                Duration::from_secs(5),
                thread_priority::thread_schedule_policy,
            )
            .await
            .expect("the plugin thread ran the job");
        assert_eq!(
            policy.unwrap(),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
        );
    }

    #[tokio::test]
    async fn a_job_that_waited_past_its_patience_does_not_run() {
        let workers = Workers::start(1).unwrap();
        let busy = workers.run(Duration::from_secs(5), || {
            std::thread::sleep(Duration::from_millis(300));
        });
        let late = workers.run(Duration::from_millis(10), || "ran");
        let (_, late) = tokio::join!(busy, late);
        assert_eq!(late, None);
    }
}
