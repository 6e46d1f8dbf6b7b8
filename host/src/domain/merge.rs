//! Folding a duplicate subscriber into the one that stays.

use super::consent::Consents;
use super::contact::normalize_postal_code;
use super::subscriber::{Address, ProfileDraft};
use super::text;

/// The profile after `source` is folded into `target`: the target's values win, the source
/// fills gaps, and contacts are combined without repeats.
pub fn fold_profiles(target: &ProfileDraft, source: &ProfileDraft) -> ProfileDraft {
    let mut merged = target.clone();
    merged.given_name = target
        .given_name
        .clone()
        .or_else(|| source.given_name.clone());
    merged.family_name = target
        .family_name
        .clone()
        .or_else(|| source.family_name.clone());
    merged.organisation_name = target
        .organisation_name
        .clone()
        .or_else(|| source.organisation_name.clone());
    merged.birth_date = target.birth_date.or(source.birth_date);
    for email in &source.emails {
        if !merged
            .emails
            .iter()
            .any(|e| e.address.eq_ignore_ascii_case(&email.address))
        {
            merged.emails.push(email.clone());
        }
    }
    for phone in &source.phones {
        if !merged.phones.iter().any(|p| p.number == phone.number) {
            merged.phones.push(phone.clone());
        }
    }
    for address in &source.addresses {
        if !merged.addresses.iter().any(|a| same_address(a, address)) {
            merged.addresses.push(address.clone());
        }
    }
    let (p, s) = (&mut merged.preferences, &source.preferences);
    p.delivery_method = p.delivery_method.or(s.delivery_method);
    p.packaging = p.packaging.or(s.packaging);
    p.payment_method = p.payment_method.or(s.payment_method);
    p.contact_channel = p.contact_channel.or(s.contact_channel);
    merged.relationship_manager = target.relationship_manager.or(source.relationship_manager);
    merged.relationship_level = target.relationship_level.max(source.relationship_level);
    for (key, value) in &source.custom_attributes {
        merged
            .custom_attributes
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
    merged
}

/// Consents after a merge: for each purpose, the most recent decision stands.
pub fn fold_consents(target: &Consents, source: &Consents) -> Consents {
    let mut merged = target.clone();
    for (purpose, state) in source {
        match merged.get(purpose) {
            Some(kept) if kept.changed_at >= state.changed_at => {}
            _ => {
                merged.insert(*purpose, state.clone());
            }
        }
    }
    merged
}

fn same_address(a: &Address, b: &Address) -> bool {
    a.kind == b.kind
        && normalize_postal_code(&a.postal_code) == normalize_postal_code(&b.postal_code)
        && a.lines
            .iter()
            .map(|l| text::fold(l))
            .eq(b.lines.iter().map(|l| text::fold(l)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::{ConsentChannel, ConsentPurpose, ConsentState};
    use crate::domain::subscriber::{EmailEntry, RelationshipLevel};
    use chrono::{TimeZone, Utc};

    fn email(address: &str) -> EmailEntry {
        EmailEntry {
            address: address.into(),
            label: None,
        }
    }

    #[test]
    fn target_wins_and_source_fills_gaps() {
        let target = ProfileDraft {
            family_name: Some("Smith".into()),
            emails: vec![email("anna@example.com")],
            relationship_level: RelationshipLevel::Reactive,
            ..Default::default()
        };
        let source = ProfileDraft {
            given_name: Some("Anna".into()),
            family_name: Some("Smyth".into()),
            emails: vec![email("ANNA@example.com"), email("a.smith@work.example")],
            relationship_level: RelationshipLevel::Proactive,
            ..Default::default()
        };
        let merged = fold_profiles(&target, &source);
        assert_eq!(merged.family_name.as_deref(), Some("Smith"));
        assert_eq!(merged.given_name.as_deref(), Some("Anna"));
        assert_eq!(merged.emails.len(), 2);
        assert_eq!(merged.relationship_level, RelationshipLevel::Proactive);
    }

    #[test]
    fn latest_consent_decision_stands() {
        let state = |granted, day| ConsentState {
            granted,
            channel: ConsentChannel::Web,
            changed_at: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
        };
        let target = Consents::from([(ConsentPurpose::MarketingEmail, state(true, 1))]);
        let source = Consents::from([
            (ConsentPurpose::MarketingEmail, state(false, 5)),
            (ConsentPurpose::MarketingPost, state(true, 2)),
        ]);
        let merged = fold_consents(&target, &source);
        assert!(!merged[&ConsentPurpose::MarketingEmail].granted);
        assert!(merged[&ConsentPurpose::MarketingPost].granted);
    }
}
