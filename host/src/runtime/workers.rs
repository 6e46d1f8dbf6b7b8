//! The threads plugin calls run on: a fixed set of their own, at the lowest OS priority, so a
//! plugin that burns its whole deadline takes CPU only from other plugins, never from the API.

use std::time::{Duration, Instant};

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

/// Nice 19 on Linux: the scheduler gives these threads what the API threads leave.
fn lower_priority() {
    if let Err(e) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::warn!(error = ?e, "could not lower a plugin thread's priority");
    }
}
