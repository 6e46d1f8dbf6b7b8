//! The subscriber registry: create with duplicate checks, read, update, search, consents,
//! merge and erasure, each audited.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::audit::AuditLog;
use super::{DuplicateCandidate, ServiceError, ServiceResult, match_label};
use crate::domain::consent::{self, ConsentEvent};
use crate::domain::merge::{fold_consents, fold_profiles};
use crate::domain::search::{self, MatchKind, Probe, TermKind};
use crate::domain::subscriber::{ProfilePatch, erased_profile};
use crate::domain::{
    ConsentChange, CountryCode, FieldErrors, Profile, ProfileDraft, SubscriberNumber,
    SubscriberStatus,
};
use crate::store::{
    Actor, AuditEntry, AuditFilter, AuditRecord, MergePlan, NewSubscriber, Store, Subscriber,
    SubscriberFilter, SubscriberSummary,
};

/// Who is asking, for the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub request_id: Option<String>,
    /// When the request arrived, by the service's clock; what it changes is dated so.
    pub now: DateTime<Utc>,
}

impl Caller {
    pub(crate) fn audit(
        &self,
        action: &'static str,
        subscriber: Option<SubscriberNumber>,
        detail: serde_json::Value,
    ) -> AuditEntry {
        AuditEntry {
            at: self.now,
            actor: self.actor.clone(),
            action,
            subscriber,
            request_id: self.request_id.clone(),
            detail,
        }
    }
}

/// One search result with the reason it was found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchHit {
    #[serde(flatten)]
    pub subscriber: SubscriberSummary,
    pub matched: MatchKind,
}

/// The reader's whole card as staff see it: the profile plus what the system keeps.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriberCard {
    #[schema(value_type = String, example = "1000007")]
    pub number: SubscriberNumber,
    pub display_name: String,
    #[serde(flatten)]
    pub profile: ProfileDraft,
    #[schema(value_type = Object)]
    pub consents: crate::domain::Consents,
    /// Present once this record was merged: the number that now holds its history.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub merged_into: Option<SubscriberNumber>,
    /// Send it back in `If-Match` to change the card.
    pub version: i64,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

impl From<Subscriber> for SubscriberCard {
    fn from(s: Subscriber) -> Self {
        let display_name = s.profile.display_name();
        let mut profile = s.profile.into_draft();
        profile.status = s.status;
        Self {
            number: s.number,
            display_name,
            profile,
            consents: s.consents,
            merged_into: s.merged_into,
            version: s.version,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Everything held about one subscriber, for a subject access request.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberExport {
    pub subscriber: SubscriberCard,
    pub consent_history: Vec<ConsentEvent>,
    /// Every term of every title, oldest first.
    pub terms: Vec<crate::domain::term::Term>,
    /// Who read or changed this record, newest first.
    pub access_log: Vec<AuditRecord>,
}

pub struct Registry {
    store: Arc<dyn Store>,
    audit: AuditLog,
    home: CountryCode,
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, audit: AuditLog, home: CountryCode) -> Self {
        Self { store, audit, home }
    }

    pub(crate) fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// The publisher's country, which national phone numbers and addresses default to.
    pub fn home(&self) -> CountryCode {
        self.home
    }

    pub async fn create(
        &self,
        caller: &Caller,
        draft: ProfileDraft,
        consents: Vec<ConsentChange>,
        allow_duplicate: bool,
    ) -> ServiceResult<Subscriber> {
        let consent_errors = consent::check_changes(&consents).err().unwrap_or_default();
        let profile = self.parse(caller, draft, consent_errors).await?;
        if !allow_duplicate {
            let candidates = self.duplicates_of(&profile, None).await?;
            if !candidates.is_empty() {
                return Err(ServiceError::PossibleDuplicates(candidates));
            }
        }
        let terms = search::terms_for(&profile);
        let audit = caller.audit(
            "subscriber.create",
            None,
            json!({ "allow_duplicate": allow_duplicate, "consents": consents.len() }),
        );
        let subscriber = self
            .store
            .insert_subscriber(
                NewSubscriber {
                    profile,
                    terms,
                    consents,
                    recorded_by: caller.actor.name.clone(),
                    at: audit.at,
                },
                audit,
            )
            .await?;
        Ok(subscriber)
    }

    /// The whole card; reading it is audited.
    pub async fn get(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
    ) -> ServiceResult<Subscriber> {
        let subscriber = self.load(number).await?;
        self.audit
            .record(caller.audit("subscriber.read", Some(number), json!({})))
            .await;
        Ok(subscriber)
    }

    pub async fn update(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        expected_version: i64,
        patch: ProfilePatch,
    ) -> ServiceResult<Subscriber> {
        let current = self.load_live(number).await?;
        if current.version != expected_version {
            return Err(stale(number));
        }
        let mut draft = current.profile.draft().clone();
        patch.apply(&mut draft);
        let profile = self.parse(caller, draft, FieldErrors::default()).await?;
        let changed = profile.changed_fields(&current.profile);
        if changed.is_empty() {
            return Ok(current);
        }
        let terms = search::terms_for(&profile);
        let audit = caller.audit(
            "subscriber.update",
            Some(number),
            json!({ "fields": changed }),
        );
        Ok(self
            .store
            .update_profile(number, expected_version, &profile, &terms, audit)
            .await?)
    }

    pub async fn list(
        &self,
        caller: &Caller,
        filter: &SubscriberFilter,
    ) -> ServiceResult<Vec<SubscriberSummary>> {
        let page = self.store.list_subscribers(filter).await?;
        self.audit
            .record(caller.audit("subscriber.list", None, json!({ "results": page.len() })))
            .await;
        Ok(page)
    }

    /// Reads the query box and returns the best matches first.
    pub async fn search(
        &self,
        caller: &Caller,
        query: &str,
        limit: usize,
    ) -> ServiceResult<Vec<SearchHit>> {
        let probes = search::interpret(query, self.home)
            .map_err(|e| ServiceError::Invalid(FieldErrors::single("q", e)))?;
        let mut hits: Vec<SearchHit> = Vec::new();
        // Ask for more than needed: one reader can match several words of one probe.
        let found = self.store.search(&probes, (limit * 3) as i64).await?;
        for (probe, probe_hits) in probes.iter().zip(found) {
            for hit in probe_hits {
                hits.push(SearchHit {
                    matched: match_kind(probe, hit.exact),
                    subscriber: hit.subscriber,
                });
            }
        }
        hits.sort_by_key(|h| h.matched);
        let mut seen = std::collections::HashSet::new();
        hits.retain(|h| seen.insert(h.subscriber.number));
        hits.truncate(limit);
        self.audit
            .record(caller.audit("subscriber.search", None, json!({ "results": hits.len() })))
            .await;
        Ok(hits)
    }

    pub async fn record_consents(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        changes: Vec<ConsentChange>,
    ) -> ServiceResult<Subscriber> {
        if changes.is_empty() {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "consents",
                "give at least one consent change",
            )));
        }
        consent::check_changes(&changes).map_err(ServiceError::Invalid)?;
        self.load_live(number).await?;
        let purposes: Vec<_> = changes
            .iter()
            .map(|c| json!({ "purpose": c.purpose, "granted": c.granted }))
            .collect();
        let audit = caller.audit(
            "subscriber.consents",
            Some(number),
            json!({ "changes": purposes }),
        );
        Ok(self
            .store
            .record_consents(number, &changes, audit.at, audit)
            .await?)
    }

    pub async fn consent_history(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
    ) -> ServiceResult<Vec<ConsentEvent>> {
        self.load(number).await?;
        self.audit
            .record(caller.audit("subscriber.consent_history", Some(number), json!({})))
            .await;
        Ok(self.store.consent_history(number).await?)
    }

    /// Folds `source` into `target`; the source number redirects to the target afterwards.
    pub async fn merge(
        &self,
        caller: &Caller,
        target: SubscriberNumber,
        source: SubscriberNumber,
        expected_target_version: Option<i64>,
    ) -> ServiceResult<Subscriber> {
        if target == source {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "source",
                "a subscriber cannot be merged into itself",
            )));
        }
        let kept = self.load_live(target).await?;
        if expected_target_version.is_some_and(|v| v != kept.version) {
            return Err(stale(target));
        }
        let folded = match self.store.get_subscriber(source).await? {
            None => {
                return Err(ServiceError::NotFound(format!(
                    "there is no subscriber {source}"
                )));
            }
            Some(s)
                if matches!(
                    s.status,
                    SubscriberStatus::Merged | SubscriberStatus::Erased
                ) =>
            {
                return Err(ServiceError::Conflict(format!(
                    "subscriber {source} is {} and cannot be merged",
                    s.status.as_str()
                )));
            }
            Some(s) => s,
        };
        let draft = fold_profiles(kept.profile.draft(), folded.profile.draft());
        let profile =
            Profile::parse(draft, self.home, caller.now.date_naive()).map_err(|errors| {
                let detail: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                ServiceError::Conflict(format!(
                    "the merged card would be invalid ({}); edit one of the two first",
                    detail.join("; ")
                ))
            })?;
        let audit = caller.audit(
            "subscriber.merge",
            Some(target),
            json!({ "source": source.to_string(), "fields": profile.changed_fields(&kept.profile) }),
        );
        let plan = MergePlan {
            source,
            source_version: folded.version,
            target,
            target_version: kept.version,
            consents: fold_consents(&kept.consents, &folded.consents),
            terms: search::terms_for(&profile),
            profile,
            at: audit.at,
        };
        Ok(self.store.merge_subscribers(plan, audit).await?)
    }

    /// Removes the personal data of one subscriber; the number and anonymous history stay.
    pub async fn erase(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        expected_version: Option<i64>,
    ) -> ServiceResult<Subscriber> {
        let current = self.load_live(number).await?;
        if expected_version.is_some_and(|v| v != current.version) {
            return Err(stale(number));
        }
        let erased = erased_profile(current.profile.draft().kind);
        let audit = caller.audit("subscriber.erase", Some(number), json!({}));
        Ok(self
            .store
            .erase_subscriber(number, current.version, &erased, audit)
            .await?)
    }

    pub async fn export(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
    ) -> ServiceResult<SubscriberExport> {
        let subscriber = self.load(number).await?;
        self.audit
            .record(caller.audit("subscriber.export", Some(number), json!({})))
            .await;
        self.audit.flush().await;
        let access_log = self
            .store
            .list_audit(&AuditFilter {
                subscriber: Some(number),
                limit: 10_000,
                ..Default::default()
            })
            .await?;
        Ok(SubscriberExport {
            consent_history: self.store.consent_history(number).await?,
            terms: self.store.list_terms(number).await?,
            subscriber: subscriber.into(),
            access_log,
        })
    }

    /// Checks a draft on the caller's day, and that its relationship manager is an active
    /// staff member; the problems join those the caller already found.
    async fn parse(
        &self,
        caller: &Caller,
        draft: ProfileDraft,
        mut errors: FieldErrors,
    ) -> ServiceResult<Profile> {
        if let Some(id) = draft.relationship_manager
            && !self
                .store
                .get_staff(id)
                .await?
                .is_some_and(|staff| staff.active)
        {
            errors.add(
                "relationship_manager",
                "no active staff member has this id; see GET /api/v1/staff",
            );
        }
        match Profile::parse(draft, self.home, caller.now.date_naive()) {
            Ok(profile) if errors.is_empty() => Ok(profile),
            Ok(_) => Err(ServiceError::Invalid(errors)),
            Err(more) => {
                errors.extend(more);
                Err(ServiceError::Invalid(errors))
            }
        }
    }

    async fn duplicates_of(
        &self,
        profile: &Profile,
        except: Option<SubscriberNumber>,
    ) -> ServiceResult<Vec<DuplicateCandidate>> {
        let keys = search::duplicate_keys(profile);
        let matches = self.store.find_by_terms(&keys).await?;
        let mut grouped: BTreeMap<SubscriberNumber, DuplicateCandidate> = BTreeMap::new();
        for m in matches {
            if Some(m.subscriber.number) == except {
                continue;
            }
            let label = match_label(m.kind);
            let entry = grouped
                .entry(m.subscriber.number)
                .or_insert_with(|| DuplicateCandidate {
                    subscriber: m.subscriber,
                    matched_on: Vec::new(),
                });
            if !entry.matched_on.contains(&label) {
                entry.matched_on.push(label);
            }
        }
        Ok(grouped.into_values().collect())
    }

    /// The record behind a number; a merged number answers with where it went.
    pub(crate) async fn load(&self, number: SubscriberNumber) -> ServiceResult<Subscriber> {
        match self.store.get_subscriber(number).await? {
            None => Err(ServiceError::NotFound(format!(
                "there is no subscriber {number}"
            ))),
            Some(s) => match s.merged_into {
                Some(to) => Err(ServiceError::Moved { from: number, to }),
                None => Ok(s),
            },
        }
    }

    /// Like `load`, for a change: an erased record cannot change.
    pub(crate) async fn load_live(&self, number: SubscriberNumber) -> ServiceResult<Subscriber> {
        let subscriber = self.load(number).await?;
        if subscriber.status == SubscriberStatus::Erased {
            return Err(ServiceError::Conflict(format!(
                "subscriber {number} was erased and can no longer change"
            )));
        }
        Ok(subscriber)
    }
}

fn stale(number: SubscriberNumber) -> ServiceError {
    ServiceError::Conflict(format!(
        "subscriber {number} was changed by someone else since you loaded it; load it again"
    ))
}

fn match_kind(probe: &Probe, exact: bool) -> MatchKind {
    match (probe, exact) {
        (Probe::Number(_), _) => MatchKind::Number,
        (Probe::Sequence(_), _) => MatchKind::NumberWithoutCheckDigit,
        (Probe::Name(_), true) => MatchKind::Name,
        (Probe::Name(_), false) => MatchKind::NamePrefix,
        (Probe::Exact(TermKind::Email, _) | Probe::Prefix(TermKind::Email, _), true) => {
            MatchKind::Email
        }
        (Probe::Exact(TermKind::Phone, _) | Probe::Prefix(TermKind::Phone, _), true) => {
            MatchKind::Phone
        }
        (Probe::Prefix(TermKind::Email, _), false) => MatchKind::EmailPrefix,
        (Probe::Prefix(TermKind::Phone, _), false) => MatchKind::PhonePrefix,
        _ => MatchKind::PostalCode,
    }
}
