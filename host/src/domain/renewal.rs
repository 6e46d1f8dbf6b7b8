//! One-step renewal: "like last year, but with these changes", planned from the renewal
//! history. Pricing is applied afterwards, by the service, from the price lists.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

use super::FieldErrors;
use super::publication::{Format, PublicationCode, PublicationDraft};
use super::tenure::{self, SubscriptionStatus};
use super::term::{PaymentMethod, SalesChannel, Term};

/// A title to add to a renewal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TitleChoice {
    #[schema(value_type = String)]
    pub publication: PublicationCode,
    pub format: Format,
    pub months: u32,
}

/// A renewed title in another format or for another length.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TitleChange {
    #[schema(value_type = String)]
    pub publication: PublicationCode,
    pub format: Option<Format>,
    pub months: Option<u32>,
}

/// What differs from last year; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewalChanges {
    #[serde(default)]
    pub add: Vec<TitleChoice>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub drop: Vec<PublicationCode>,
    #[serde(default)]
    pub change: Vec<TitleChange>,
    /// First day of added titles and of a lapsed reader's new terms (default: today).
    pub start: Option<NaiveDate>,
    pub channel: Option<SalesChannel>,
    pub payment_method: Option<PaymentMethod>,
    pub auto_renew: Option<bool>,
    /// A one-to-one offer the reader accepts: its title is renewed (or added) in the offer's
    /// format and length, at the offer's price instead of the usual discounts.
    pub offer: Option<OfferChoice>,
}

/// An offer named as `GET .../offers` showed it; the host asks its plugin again before
/// honouring it, so only an offer still made to this reader today is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferChoice {
    pub plugin: String,
    pub code: String,
}

impl RenewalChanges {
    /// The changes with the accepted offer's title in them: renewed in the offer's format and
    /// length when the reader has held it, added otherwise. A change that contradicts the
    /// offer (dropping its title, or another format or length for it) is refused.
    pub fn with_offer(
        mut self,
        held: &[Term],
        offer: &TitleChoice,
    ) -> Result<RenewalChanges, FieldErrors> {
        let mut errors = FieldErrors::default();
        let title = &offer.publication;
        if self.drop.contains(title) {
            errors.add(
                "drop",
                format!("{title} is the accepted offer's title; keep it"),
            );
        }
        let contradicts = |format: Option<Format>, months: Option<u32>| {
            format.is_some_and(|f| f != offer.format) || months.is_some_and(|m| m != offer.months)
        };
        if self
            .change
            .iter()
            .any(|c| &c.publication == title && contradicts(c.format, c.months))
            || self
                .add
                .iter()
                .any(|a| &a.publication == title && contradicts(Some(a.format), Some(a.months)))
        {
            errors.add(
                "offer",
                format!(
                    "the offer is for {title} as {} for {} months; leave {title} out of add \
                     and change",
                    offer.format.as_str(),
                    offer.months
                ),
            );
        }
        errors.into_result(())?;
        self.change.retain(|c| &c.publication != title);
        self.add.retain(|a| &a.publication != title);
        if held.iter().any(|t| &t.publication == title) {
            self.change.push(TitleChange {
                publication: title.clone(),
                format: Some(offer.format),
                months: Some(offer.months),
            });
        } else {
            self.add.push(offer.clone());
        }
        Ok(self)
    }
}

/// A term the renewal will create, before pricing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTerm {
    pub publication: PublicationCode,
    pub format: Format,
    pub months: u32,
    pub start: NaiveDate,
    pub renews: Option<i64>,
    pub channel: SalesChannel,
    pub payment_method: PaymentMethod,
    pub auto_renew: bool,
}

/// The latest term of each title, with the title's status.
pub fn latest_by_title(
    terms: &[Term],
    today: NaiveDate,
    grace_days: i64,
) -> BTreeMap<&PublicationCode, (&Term, SubscriptionStatus)> {
    let mut by_title: BTreeMap<&PublicationCode, Vec<&Term>> = BTreeMap::new();
    for term in terms {
        by_title.entry(&term.publication).or_default().push(term);
    }
    by_title
        .into_iter()
        .filter_map(|(code, terms)| {
            let spans: Vec<_> = terms.iter().map(|t| t.span()).collect();
            let latest = terms.iter().max_by_key(|t| (t.start, t.id))?;
            Some((code, (*latest, tenure::status(&spans, today, grace_days))))
        })
        .collect()
}

/// The terms a renewal creates: every current title continued the day after its last term,
/// or, for a lapsed reader, the titles held when they lapsed started afresh; then `changes`.
pub fn plan(
    terms: &[Term],
    changes: &RenewalChanges,
    catalogue: &BTreeMap<PublicationCode, PublicationDraft>,
    today: NaiveDate,
    grace_days: i64,
) -> Result<Vec<PlannedTerm>, FieldErrors> {
    let mut errors = FieldErrors::default();
    let latest = latest_by_title(terms, today, grace_days);
    let fresh_start = changes.start.unwrap_or(today);
    // A title whose latest term has not begun is already renewed (or newly bought).
    let ahead: Vec<&Term> = latest
        .values()
        .map(|(term, _)| *term)
        .filter(|t| t.start > today && t.cancellation.is_none())
        .collect();
    let mut basis: Vec<(&Term, NaiveDate)> = latest
        .values()
        .filter(|(term, status)| status.is_current() && term.start <= today)
        .map(|(term, _)| (*term, term.span().last.succ_opt().unwrap_or(NaiveDate::MAX)))
        .collect();
    if basis.is_empty() && ahead.is_empty() {
        // A lapsed reader renews what they held when they lapsed.
        let lapsed: Vec<&Term> = latest
            .values()
            .filter(|(_, status)| *status == SubscriptionStatus::Lapsed)
            .map(|(term, _)| *term)
            .collect();
        if let Some(last) = lapsed.iter().map(|t| t.span().last).max() {
            basis = lapsed
                .into_iter()
                .filter(|t| (last - t.span().last).num_days() < grace_days)
                .map(|t| (t, fresh_start))
                .collect();
        }
    }
    let most_recent = terms.iter().max_by_key(|t| (t.created_at, t.id));
    let mut planned: Vec<PlannedTerm> = basis
        .iter()
        .map(|(term, start)| PlannedTerm {
            publication: term.publication.clone(),
            format: term.format,
            months: term.months,
            start: *start,
            renews: Some(term.id),
            channel: changes.channel.unwrap_or(term.channel),
            payment_method: changes.payment_method.unwrap_or(term.payment_method),
            auto_renew: changes.auto_renew.unwrap_or(term.auto_renew),
        })
        .collect();
    let held = |planned: &[PlannedTerm]| {
        planned
            .iter()
            .map(|p| p.publication.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };

    for (i, code) in changes.drop.iter().enumerate() {
        match planned.iter().position(|p| &p.publication == code) {
            Some(at) => {
                planned.remove(at);
            }
            None => errors.add(
                format!("drop[{i}]"),
                format!(
                    "{code} is not among the titles being renewed ({})",
                    held(&planned)
                ),
            ),
        }
    }
    for (i, change) in changes.change.iter().enumerate() {
        let field = format!("change[{i}]");
        let Some(entry) = planned
            .iter_mut()
            .find(|p| p.publication == change.publication)
        else {
            errors.add(
                &field,
                format!(
                    "{} is not among the titles being renewed",
                    change.publication
                ),
            );
            continue;
        };
        entry.format = change.format.unwrap_or(entry.format);
        entry.months = change.months.unwrap_or(entry.months);
        check_sold(
            catalogue,
            &entry.publication,
            entry.format,
            entry.months,
            &field,
            &mut errors,
        );
    }
    for (i, add) in changes.add.iter().enumerate() {
        let field = format!("add[{i}]");
        if planned.iter().any(|p| p.publication == add.publication) {
            errors.add(
                &field,
                format!(
                    "{} is already being renewed; use `change` to alter it",
                    add.publication
                ),
            );
            continue;
        }
        if !check_sold(
            catalogue,
            &add.publication,
            add.format,
            add.months,
            &field,
            &mut errors,
        ) {
            continue;
        }
        // Re-adding a title held before continues its chain of terms.
        let previous = latest
            .get(&add.publication)
            .filter(|(t, _)| t.cancellation.is_none());
        let start = match previous {
            Some((t, _)) if t.span().last >= fresh_start => {
                t.span().last.succ_opt().unwrap_or(NaiveDate::MAX)
            }
            _ => fresh_start,
        };
        let template = previous.map(|(t, _)| *t).or(most_recent);
        let channel = changes.channel.or(template.map(|t| t.channel));
        let payment_method = changes
            .payment_method
            .or(template.map(|t| t.payment_method));
        let (Some(channel), Some(payment_method)) = (channel, payment_method) else {
            errors.add(
                &field,
                "a first subscription needs `channel` and `payment_method`",
            );
            continue;
        };
        planned.push(PlannedTerm {
            publication: add.publication.clone(),
            format: add.format,
            months: add.months,
            start,
            renews: previous.map(|(t, _)| t.id),
            channel,
            payment_method,
            auto_renew: changes
                .auto_renew
                .or(template.map(|t| t.auto_renew))
                .unwrap_or(false),
        });
    }
    for p in &planned {
        if catalogue.get(&p.publication).is_some_and(|d| !d.on_sale) {
            errors.add(
                "drop",
                format!(
                    "{} is no longer sold; drop it (\"drop\": [\"{}\"]) or add another title",
                    p.publication, p.publication
                ),
            );
        }
    }
    if errors.is_empty() && planned.is_empty() {
        let message = if ahead.is_empty() {
            "there is nothing to renew: the reader holds no current title; name titles in `add`"
                .to_owned()
        } else {
            let renewed = ahead
                .iter()
                .map(|t| format!("{} until {}", t.publication, t.end))
                .collect::<Vec<_>>()
                .join(", ");
            format!("there is nothing to renew: already renewed ({renewed}); name titles in `add`")
        };
        errors.add("add", message);
    }
    errors.into_result(planned)
}

/// Whether the catalogue sells this format and length of the title; reports why not.
fn check_sold(
    catalogue: &BTreeMap<PublicationCode, PublicationDraft>,
    code: &PublicationCode,
    format: Format,
    months: u32,
    field: &str,
    errors: &mut FieldErrors,
) -> bool {
    match catalogue.get(code) {
        None => {
            errors.add(field, format!("there is no publication {code}"));
            false
        }
        Some(p) if !p.on_sale => {
            errors.add(field, format!("{code} is no longer sold"));
            false
        }
        Some(p) if !p.sells(format, months) => {
            errors.add(
                field,
                format!(
                    "{code} is not sold as {} for {months} months; it sells {} for {} months",
                    format.as_str(),
                    p.formats
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join("/"),
                    p.term_months
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join("/")
                ),
            );
            false
        }
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::money::{Currency, Money};
    use crate::domain::publication::PublicationKind;
    use crate::domain::term::{Cancellation, last_day};

    const GRACE: i64 = 30;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn code(s: &str) -> PublicationCode {
        PublicationCode::parse(s).unwrap()
    }

    fn catalogue() -> BTreeMap<PublicationCode, PublicationDraft> {
        ["DAILY", "WEEKLY", "MAG", "OLD"]
            .into_iter()
            .map(|c| {
                let draft = PublicationDraft {
                    code: code(c),
                    title: c.into(),
                    kind: PublicationKind::Daily,
                    formats: vec![Format::Print, Format::Digital],
                    term_months: vec![6, 12],
                    on_sale: c != "OLD",
                };
                (code(c), draft)
            })
            .collect()
    }

    fn term(id: i64, publication: &str, start: &str) -> Term {
        let eur = Currency::parse("EUR").unwrap();
        let start = date(start);
        Term {
            id,
            publication: code(publication),
            format: Format::Print,
            months: 12,
            start,
            end: last_day(start, 12),
            extension_days: 0,
            list_price: Money::new(12_000, eur),
            discounts: vec![],
            price_paid: Money::new(12_000, eur),
            channel: SalesChannel::Phone,
            payment_method: PaymentMethod::DirectDebit,
            auto_renew: false,
            renews: None,
            holds: vec![],
            cancellation: None,
            created_at: Utc.timestamp_opt(1_700_000_000 + id, 0).unwrap(),
        }
    }

    #[test]
    fn like_last_year_continues_each_current_title_the_day_after_it_ends() {
        let terms = [
            term(1, "DAILY", "2025-01-01"),
            term(2, "WEEKLY", "2025-03-01"),
        ];
        let planned = plan(
            &terms,
            &RenewalChanges::default(),
            &catalogue(),
            date("2025-12-01"),
            GRACE,
        )
        .unwrap();
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[0].start, date("2026-01-01"));
        assert_eq!(planned[0].renews, Some(1));
        assert_eq!(planned[1].start, date("2026-03-01"));
        assert_eq!(planned[1].channel, SalesChannel::Phone);
    }

    #[test]
    fn changes_add_drop_and_alter_titles() {
        let terms = [
            term(1, "DAILY", "2025-01-01"),
            term(2, "WEEKLY", "2025-03-01"),
        ];
        let changes = RenewalChanges {
            add: vec![TitleChoice {
                publication: code("MAG"),
                format: Format::Digital,
                months: 6,
            }],
            drop: vec![code("WEEKLY")],
            change: vec![TitleChange {
                publication: code("DAILY"),
                format: Some(Format::Digital),
                months: None,
            }],
            ..RenewalChanges::default()
        };
        let planned = plan(&terms, &changes, &catalogue(), date("2025-12-01"), GRACE).unwrap();
        let titles: Vec<_> = planned
            .iter()
            .map(|p| (p.publication.as_str(), p.format))
            .collect();
        assert_eq!(
            titles,
            vec![("DAILY", Format::Digital), ("MAG", Format::Digital)]
        );
        assert_eq!(planned[1].start, date("2025-12-01"));
        assert_eq!(planned[1].renews, None);
    }

    #[test]
    fn bad_changes_are_all_reported() {
        let terms = [term(1, "DAILY", "2025-01-01")];
        let changes = RenewalChanges {
            add: vec![
                TitleChoice {
                    publication: code("DAILY"),
                    format: Format::Print,
                    months: 12,
                },
                TitleChoice {
                    publication: code("NOPE"),
                    format: Format::Print,
                    months: 12,
                },
                TitleChoice {
                    publication: code("MAG"),
                    format: Format::Bundle,
                    months: 12,
                },
            ],
            drop: vec![code("WEEKLY")],
            ..RenewalChanges::default()
        };
        let errors = plan(&terms, &changes, &catalogue(), date("2025-12-01"), GRACE).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["drop[0]", "add[0]", "add[1]", "add[2]"]);
    }

    #[test]
    fn a_lapsed_reader_renews_what_they_held_from_today() {
        let terms = [
            term(1, "DAILY", "2020-01-01"),
            term(2, "WEEKLY", "2021-01-01"),
            term(3, "DAILY", "2021-01-01"),
        ];
        let planned = plan(
            &terms,
            &RenewalChanges::default(),
            &catalogue(),
            date("2024-05-01"),
            GRACE,
        )
        .unwrap();
        assert_eq!(planned.len(), 2);
        assert!(planned.iter().all(|p| p.start == date("2024-05-01")));
        assert_eq!(planned[0].renews, Some(3));
    }

    #[test]
    fn a_title_already_renewed_ahead_is_not_renewed_again() {
        let terms = [
            term(1, "DAILY", "2025-01-01"),
            term(2, "DAILY", "2026-01-01"),
        ];
        let errors = plan(
            &terms,
            &RenewalChanges::default(),
            &catalogue(),
            date("2025-12-01"),
            GRACE,
        )
        .unwrap_err();
        let message = &errors.iter().next().unwrap().message;
        assert!(
            message.contains("already renewed (DAILY until 2026-12-31)"),
            "{message}"
        );
    }

    #[test]
    fn a_discontinued_title_must_be_dropped_and_cannot_be_added() {
        let terms = [term(1, "OLD", "2025-01-01"), term(2, "DAILY", "2025-01-01")];
        let today = date("2025-12-01");
        let errors = plan(
            &terms,
            &RenewalChanges::default(),
            &catalogue(),
            today,
            GRACE,
        )
        .unwrap_err();
        assert!(
            errors
                .iter()
                .next()
                .unwrap()
                .message
                .contains("OLD is no longer sold")
        );
        let changes = RenewalChanges {
            drop: vec![code("OLD")],
            ..RenewalChanges::default()
        };
        let planned = plan(&terms, &changes, &catalogue(), today, GRACE).unwrap();
        assert_eq!(planned.len(), 1);
        let changes = RenewalChanges {
            add: vec![TitleChoice {
                publication: code("OLD"),
                format: Format::Print,
                months: 12,
            }],
            drop: vec![code("OLD"), code("DAILY")],
            ..RenewalChanges::default()
        };
        let errors = plan(&terms, &changes, &catalogue(), today, GRACE).unwrap_err();
        assert_eq!(errors.iter().next().unwrap().field, "add[0]");
    }

    #[test]
    fn cancelled_titles_are_not_renewed_and_nothing_left_is_an_error() {
        let mut cancelled = term(1, "DAILY", "2025-01-01");
        cancelled.cancellation = Some(Cancellation {
            effective: date("2025-06-01"),
            reason: "moved abroad".into(),
            refund: None,
            recorded_at: Utc::now(),
            recorded_by: "desk".into(),
        });
        let errors = plan(
            &[cancelled],
            &RenewalChanges::default(),
            &catalogue(),
            date("2025-07-01"),
            GRACE,
        )
        .unwrap_err();
        assert!(
            errors
                .iter()
                .next()
                .unwrap()
                .message
                .contains("nothing to renew")
        );
    }
}
