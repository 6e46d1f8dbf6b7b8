//! The audit writer's batches: many rows per statement, every entry written whole and in order.

use chrono::SubsecRound;
use masthead::domain::{Role, SubscriberNumber};
use masthead::store::{Actor, AuditEntry, AuditFilter};
use serde_json::json;

use crate::helpers::empty_database;

fn read_of(i: i64, at: chrono::DateTime<chrono::Utc>) -> AuditEntry {
    AuditEntry {
        at: at + chrono::Duration::milliseconds(i),
        actor: Actor {
            key_id: (i % 2 == 0).then_some(i),
            name: format!("desk {}", i % 3),
            role: Role::Staff,
        },
        action: "subscriber.read",
        subscriber: (i % 5 != 0).then(|| SubscriberNumber::from_sequence(100_000 + i % 7)),
        request_id: (i % 4 != 0).then(|| format!("request-{i}")),
        detail: json!({ "entry": i }),
    }
}

#[tokio::test]
async fn a_batch_of_any_size_is_written_whole_and_in_order() {
    // Arrange: batches that split into statements of several sizes (1,000 = 512 + 256 + 128 +
    // 64 + 32 + 8), one row, and three rows.
    let database = empty_database().await;
    let store = masthead::store::open(&database.url).await.expect("migrate");
    // Milliseconds, which both backends keep exactly.
    let start = (chrono::Utc::now() - chrono::Duration::hours(1)).trunc_subsecs(3);
    let entries: Vec<AuditEntry> = (0..1_004).map(|i| read_of(i, start)).collect();

    // Act
    for batch in [&entries[..1_000], &entries[1_000..1_001], &entries[1_001..]] {
        store.append_audit(batch).await.expect("append");
    }

    // Assert: every entry, each field as given, oldest first.
    let mut written = store
        .list_audit(&AuditFilter {
            limit: 2_000,
            ..AuditFilter::default()
        })
        .await
        .expect("list");
    written.reverse();
    assert_eq!(written.len(), entries.len());
    for (entry, record) in entries.iter().zip(&written) {
        assert_eq!(record.at, entry.at);
        assert_eq!(record.actor.key_id, entry.actor.key_id);
        assert_eq!(record.actor.name, entry.actor.name);
        assert_eq!(record.actor.role, entry.actor.role);
        assert_eq!(record.action, entry.action);
        assert_eq!(record.subscriber, entry.subscriber);
        assert_eq!(record.request_id, entry.request_id);
        assert_eq!(record.detail, entry.detail);
    }
}
