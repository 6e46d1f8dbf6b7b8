//! Plugin views of readers in the store: `ViewStore` and its records; `sql.rs` holds the SQL both
//! backends run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::term::Term;
use crate::domain::{Consents, Profile};

/// The reads behind the views plugins get of readers.
#[async_trait]
pub trait ViewStore: Send + Sync {
    /// Live (unmerged) subscribers.
    async fn count_readers(&self) -> StoreResult<i64>;
    /// Live subscribers with a sequence above `after` (and at most `through`), in order.
    async fn reader_rows(
        &self,
        after: i64,
        through: Option<i64>,
        limit: i64,
        with_profile: bool,
    ) -> StoreResult<Vec<ReaderRow>>;
    /// The terms (without holds) of subscribers `first..=last`, by subscriber, oldest first.
    async fn reader_terms(&self, first: i64, last: i64) -> StoreResult<Vec<(i64, Term)>>;
}

/// What a plugin view of a reader needs from the subscriber row.
#[derive(Debug, Clone)]
pub struct ReaderRow {
    pub sequence: i64,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub birth_year: Option<u16>,
    pub consents: Consents,
    /// Read only when a plugin may see contact details or attributes.
    pub profile: Option<Profile>,
    /// Filled only for plugins that read complaints.
    pub complaints: ComplaintTally,
    /// Personal data removed: such a reader holds no club tier.
    pub erased: bool,
    /// `(club, tier, rank)` with rank 1 for a club's lowest tier; filled only for plugins that
    /// read club tiers.
    pub club_tiers: Vec<(String, String, u8)>,
}

/// A reader's complaints, as plugins see them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComplaintTally {
    /// When the oldest complaint still unresolved was opened.
    pub oldest_open: Option<DateTime<Utc>>,
    /// Not yet resolved.
    pub open: u32,
    pub total: u32,
    /// Opened in the last 365 days.
    pub last_year: u32,
    /// A response or resolution came after its due time, or is missing past it.
    pub breached: u32,
}
