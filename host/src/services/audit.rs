//! The audit log writer: changes are audited inside their own transaction; reads are queued
//! here and written in batches (within 20 ms) so that a busy card desk does not pay a write
//! per lookup. Entries are dated when they happen and listed in that order.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{AuditEntry, Store};

const QUEUE: usize = 16_384;
const BATCH: usize = 1_000;
/// The longest a queued read waits for others to share its write.
const LINGER: Duration = Duration::from_millis(20);

enum Command {
    Record(AuditEntry),
    Flush(oneshot::Sender<()>),
}

/// A handle to the background writer; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Command>,
}

impl AuditLog {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_batches(store, receiver));
        (Self { sender }, task)
    }

    /// Queues a read of personal data; waits only when the queue is full.
    pub async fn record(&self, entry: AuditEntry) {
        if self.sender.send(Command::Record(entry)).await.is_err() {
            tracing::error!("audit writer has stopped; a read was not recorded");
        }
    }

    /// Returns once everything queued before the call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = receiver.recv().await {
        // Gather what arrives within LINGER of the first entry (or until the batch is full,
        // or someone waits on a flush): every commit costs the single writer a transaction
        // and empties each reader's page cache, so a busy desk is served better by fewer.
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Record(entry) => batch.push(entry),
                Command::Flush(done) => waiting.push(done),
            }
            if batch.len() < BATCH && waiting.is_empty() {
                next = tokio::time::timeout_at(deadline, receiver.recv())
                    .await
                    .ok()
                    .flatten();
            }
        }
        write(&*store, &mut batch).await;
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
    write(&*store, &mut batch).await;
}

async fn write(store: &dyn Store, batch: &mut Vec<AuditEntry>) {
    if batch.is_empty() {
        return;
    }
    for attempt in 1..=3 {
        match store.append_audit(batch).await {
            Ok(()) => {
                metrics::counter!("masthead_audit_entries_written_total")
                    .increment(batch.len() as u64);
                batch.clear();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, entries = batch.len(), "audit write failed");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
        }
    }
    tracing::error!(
        entries = batch.len(),
        "audit entries dropped after three failed writes"
    );
    metrics::counter!("masthead_audit_entries_dropped_total").increment(batch.len() as u64);
    batch.clear();
}
