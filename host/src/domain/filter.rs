//! Segment filters: declarative conditions on one reader's facts, combined with `all`, `any`
//! and `not`, that decide whether the reader belongs to a segment on a day.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FieldErrors;
use super::club::is_code;
use super::consent::ConsentPurpose;
use super::contact::{CountryCode, normalize_postal_code};
use super::money::checked_sum;
use super::publication::{Format, PublicationCode};
use super::subscriber::RelationshipLevel;
use super::tenure::{SubscriptionStatus, status, tenure_on};
use super::term::{Span, TermFact};
use super::text;

/// Longest trailing window a spend condition may look back over.
const MAX_SPEND_MONTHS: i64 = 120;
/// Deepest nesting of `all`, `any` and `not`.
const MAX_DEPTH: usize = 8;
/// Longest region name a condition may list, as a stored address allows.
const MAX_REGION_CHARS: usize = 100;
/// Longest segment name, as stored segments allow.
const MAX_SEGMENT_NAME: usize = 64;

/// One condition on a reader, or a combination of conditions. Written as JSON with one key
/// naming the condition, e.g. `{"tenure": {"min_years": 10}}` or `{"not": {"consent":
/// {"purpose": "marketing_email"}}}`.
///
/// A filter is evaluated on a day (see [`Subject`]). For a past day ("as of"), terms that
/// start after the day are ignored by `status`, `tenure`, `titles`, `holds`, `spend` and
/// `revenue`; `age` counts years up to that day; `tier` reads the tiers the caller gives for
/// that day. Facts the service keeps only as they stand now are read as they stand now even
/// for a past day: `region`, `country`, `postal_code`, `consent`, `complaints`,
/// `relationship`, `attribute`, `segment` and `plugin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Filter {
    /// Every filter holds.
    All(Vec<Filter>),
    /// At least one filter holds.
    Any(Vec<Filter>),
    /// The filter does not hold.
    Not(Box<Filter>),
    /// The reader's status across all titles on the day is one of these.
    Status {
        #[serde(rename = "in")]
        values: Vec<SubscriptionStatus>,
    },
    /// Whole years of unbroken subscription to any title on the day, within the bounds.
    Tenure {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_years: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_years: Option<i64>,
    },
    /// The number of titles held (active or in grace) on the day, within the bounds.
    Titles {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// The title is held (active or in grace) on the day, in this format if one is named.
    Holds {
        publication: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<Format>,
    },
    /// Minor units paid less refunds for terms starting in the trailing `months` up to the
    /// day (and later ones, when the day is today), within the bounds: the club `spend` rule.
    Spend {
        months: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// Minor units paid less refunds for every term started on or before the day.
    Revenue {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// The main address's region is one of these, compared with case and accents folded.
    Region {
        #[serde(rename = "in")]
        values: Vec<String>,
    },
    /// The main address's country is one of these ISO 3166 codes, in any case.
    Country {
        #[serde(rename = "in")]
        values: Vec<String>,
    },
    /// The main address's postal code starts with this, spaces and dashes aside.
    PostalCode { prefix: String },
    /// Age in whole years on the day (the day's year less the birth year), within the bounds;
    /// a reader without a birth year never matches.
    Age {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// The reader's tier in the club on the day is `exactly` this one, or ranks `at_least` as
    /// high as this one; give exactly one of the two. The rank of the named tier is asked of
    /// the subject (`Subject::tier_rank`) when evaluating, so a filter stays valid while the
    /// club's tiers are reordered; a tier the club no longer has matches no one.
    Tier {
        club: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_least: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exactly: Option<String>,
    },
    /// The reader has granted this consent (as it stands now).
    Consent { purpose: ConsentPurpose },
    /// The reader has at least `min` (default 1) complaints in this state.
    Complaints {
        state: ComplaintState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
    },
    /// The reader's relationship level is this one and/or their relationship manager is this
    /// staff member; give at least one of the two.
    Relationship {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<RelationshipLevel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manager: Option<i64>,
    },
    /// A custom attribute compared with a value; see [`AttributeOp`].
    Attribute {
        key: String,
        op: AttributeOp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
    },
    /// The reader is a member of another stored segment.
    Segment { name: String },
    /// The segmenter plugin `id` gives the reader the segment key `key`; the caller reads it
    /// from the stored plugin segment.
    Plugin { id: String, key: String },
}

/// Which complaints a `complaints` condition counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintState {
    /// Not yet resolved.
    Open,
    /// Missed their SLA deadline.
    Breached,
}

/// How an `attribute` condition compares. Every operator but `exists` needs the attribute
/// to be present: `ne` matches a value that differs, not a missing one. `lt`, `le`, `gt` and
/// `ge` compare numbers with numbers and text with text; any other pair does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Exists,
}

/// A membership a filter asks the caller about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership<'a> {
    /// Of the stored segment with this name.
    Segment(&'a str),
    /// Of the segment key a segmenter plugin gives.
    Plugin { id: &'a str, key: &'a str },
}

/// A club tier a reader holds on the day, with its rank in the club (higher ranks higher).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldTier<'a> {
    /// The club's code.
    pub club: &'a str,
    /// The tier's code.
    pub tier: &'a str,
    /// The tier's place in the club's order, lowest first.
    pub rank: u8,
}

/// What a filter reads about one reader.
pub struct Subject<'a> {
    /// The day the filter is evaluated on.
    pub day: NaiveDate,
    /// The day is in the past: terms starting after it are ignored.
    pub as_of: bool,
    /// Gaps shorter than this many days do not break tenure.
    pub grace_days: i64,
    /// Every term of the reader, in any order.
    pub terms: &'a [TermFact<'a>],
    /// Of the main address, as stored.
    pub region: Option<&'a str>,
    /// Of the main address: an ISO 3166 code.
    pub country: Option<&'a str>,
    /// Of the main address, folded (see `normalize_postal_code`).
    pub postal_code: Option<&'a str>,
    pub birth_year: Option<i32>,
    /// The purposes consent is granted for, as they stand now.
    pub granted: &'a [ConsentPurpose],
    /// Complaints not yet resolved.
    pub open_complaints: u32,
    /// Complaints that missed their SLA deadline.
    pub breached_complaints: u32,
    pub relationship_level: RelationshipLevel,
    /// The staff id of the relationship manager.
    pub manager: Option<i64>,
    pub attributes: Option<&'a BTreeMap<String, Value>>,
    /// The tiers held on the day, one per club at most.
    pub tiers: &'a [HeldTier<'a>],
    /// The rank of a tier (club code, tier code) in its club, for `tier.at_least`; none for a
    /// tier the club does not have, which no reader then matches.
    pub tier_rank: &'a dyn Fn(&str, &str) -> Option<u8>,
    /// Whether the reader is in a segment or has a plugin's segment key.
    pub member: &'a dyn Fn(&Membership<'_>) -> bool,
}

impl<'a> Subject<'a> {
    /// The terms that count on the day: all of them today, those begun by the day as of it.
    fn terms(&self) -> impl Iterator<Item = &TermFact<'a>> {
        self.terms
            .iter()
            .filter(move |t| !self.as_of || t.start <= self.day)
    }

    fn spans(&self, keep: impl Fn(&TermFact<'a>) -> bool) -> Vec<Span> {
        self.terms().filter(|t| keep(t)).map(|t| t.span).collect()
    }

    /// The status on the day over the terms kept.
    fn status(&self, keep: impl Fn(&TermFact<'a>) -> bool) -> SubscriptionStatus {
        status(&self.spans(keep), self.day, self.grace_days)
    }

    /// The titles held (active or in grace) on the day.
    fn titles_held(&self) -> usize {
        let titles: BTreeSet<&str> = self.terms().map(|t| t.publication).collect();
        titles
            .into_iter()
            .filter(|p| self.status(|t| t.publication == *p).is_current())
            .count()
    }

    /// Paid less refunds for terms starting after the day `months` back. A sum past `i64`
    /// counts as the most there is, as the club rule counts it.
    fn spend(&self, months: i64) -> i64 {
        let months = u32::try_from(months).unwrap_or(0);
        let from = self
            .day
            .checked_sub_months(Months::new(months))
            .unwrap_or(NaiveDate::MIN);
        let revenue = self.terms().filter(|t| t.start > from).map(|t| t.revenue);
        checked_sum(revenue).unwrap_or(i64::MAX)
    }

    /// Paid less refunds for every term begun by the day.
    fn revenue(&self) -> i64 {
        let begun = self.terms.iter().filter(|t| t.start <= self.day);
        checked_sum(begun.map(|t| t.revenue)).unwrap_or(i64::MAX)
    }

    fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.and_then(|a| a.get(key))
    }
}

impl Filter {
    /// Checks bounds, codes and nesting, adding every problem to `errors` under `at`, the
    /// path of this filter in the request (e.g. `filter`).
    pub fn validate(&self, at: &str, errors: &mut FieldErrors) {
        self.validate_at(at, 0, errors);
    }

    fn validate_at(&self, at: &str, depth: usize, errors: &mut FieldErrors) {
        match self {
            Self::All(filters) | Self::Any(filters) => {
                let at = format!("{at}.{}", self.word());
                if filters.is_empty() {
                    errors.add(at.as_str(), "list at least one filter");
                }
                if too_deep(&at, depth, errors) {
                    return;
                }
                for (i, filter) in filters.iter().enumerate() {
                    filter.validate_at(&format!("{at}[{i}]"), depth + 1, errors);
                }
            }
            Self::Not(filter) => {
                let at = format!("{at}.not");
                if !too_deep(&at, depth, errors) {
                    filter.validate_at(&at, depth + 1, errors);
                }
            }
            Self::Status { values } => {
                non_empty(&format!("{at}.status.in"), values, errors);
            }
            Self::Tenure {
                min_years,
                max_years,
            } => Bounds::new(at, "tenure", ("min_years", "max_years"))
                .check(*min_years, *max_years, errors),
            Self::Titles { min, max } => Bounds::min_max(at, "titles").check(*min, *max, errors),
            Self::Holds { publication, .. } => {
                if let Err(e) = PublicationCode::parse(publication) {
                    errors.add(format!("{at}.holds.publication"), e);
                }
            }
            Self::Spend { months, min, max } => {
                if !(1..=MAX_SPEND_MONTHS).contains(months) {
                    errors.add(
                        format!("{at}.spend.months"),
                        format!("the window is 1 to {MAX_SPEND_MONTHS} months, not {months}"),
                    );
                }
                Bounds::min_max(at, "spend").check(*min, *max, errors);
            }
            Self::Revenue { min, max } => Bounds::min_max(at, "revenue").check(*min, *max, errors),
            Self::Region { values } => check_regions(&format!("{at}.region.in"), values, errors),
            Self::Country { values } => {
                check_countries(&format!("{at}.country.in"), values, errors);
            }
            Self::PostalCode { prefix } => {
                if normalize_postal_code(prefix).is_empty() {
                    errors.add(
                        format!("{at}.postal_code.prefix"),
                        "give the first letters or digits of the postal code",
                    );
                }
            }
            Self::Age { min, max } => Bounds::min_max(at, "age").check(*min, *max, errors),
            Self::Tier {
                club,
                at_least,
                exactly,
            } => check_tier(
                &format!("{at}.tier"),
                club,
                at_least.as_deref(),
                exactly.as_deref(),
                errors,
            ),
            Self::Consent { .. } => {}
            Self::Complaints { min, .. } => {
                if let Some(min) = min.filter(|m| *m < 1) {
                    errors.add(
                        format!("{at}.complaints.min"),
                        format!(
                            "must be 1 or more, not {min}; for readers without complaints, \
                             put this condition under `not`"
                        ),
                    );
                }
            }
            Self::Relationship { level, manager } => {
                let at = format!("{at}.relationship");
                if level.is_none() && manager.is_none() {
                    errors.add(at.as_str(), "give the level, the manager or both");
                }
                if let Some(id) = manager.filter(|m| *m < 1) {
                    errors.add(
                        format!("{at}.manager"),
                        format!("a manager is a staff id of 1 or more, not {id}"),
                    );
                }
            }
            Self::Attribute { key, op, value } => {
                check_attribute(&format!("{at}.attribute"), key, *op, value.as_ref(), errors);
            }
            Self::Segment { name } => {
                if !is_segment_name(name) {
                    errors.add(
                        format!("{at}.segment.name"),
                        format!(
                            "name a segment: 1 to {MAX_SEGMENT_NAME} lower-case letters, digits \
                             and dashes"
                        ),
                    );
                }
            }
            Self::Plugin { id, key } => {
                if id.trim().is_empty() {
                    errors.add(format!("{at}.plugin.id"), "name the segmenter plugin");
                }
                if key.trim().is_empty() {
                    errors.add(
                        format!("{at}.plugin.key"),
                        "name the segment key it returns",
                    );
                }
            }
        }
    }

    /// Whether the reader meets the filter on the subject's day.
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        match self {
            Self::All(filters) => filters.iter().all(|f| f.matches(subject)),
            Self::Any(filters) => filters.iter().any(|f| f.matches(subject)),
            Self::Not(filter) => !filter.matches(subject),
            Self::Status { values } => values.contains(&subject.status(|_| true)),
            Self::Tenure {
                min_years,
                max_years,
            } => {
                let spans = subject.spans(|_| true);
                let years = tenure_on(&spans, subject.day, subject.grace_days).years;
                within(i64::from(years), *min_years, *max_years)
            }
            Self::Titles { min, max } => within(count(subject.titles_held()), *min, *max),
            Self::Holds {
                publication,
                format,
            } => subject
                .status(|t| {
                    t.publication.eq_ignore_ascii_case(publication.trim())
                        && format.is_none_or(|f| t.format == f)
                })
                .is_current(),
            Self::Spend { months, min, max } => within(subject.spend(*months), *min, *max),
            Self::Revenue { min, max } => within(subject.revenue(), *min, *max),
            Self::Region { values } => subject.region.is_some_and(|region| {
                let region = text::fold(region.trim());
                values.iter().any(|v| text::fold(v.trim()) == region)
            }),
            Self::Country { values } => subject.country.is_some_and(|country| {
                values
                    .iter()
                    .any(|v| v.trim().eq_ignore_ascii_case(country.trim()))
            }),
            Self::PostalCode { prefix } => subject
                .postal_code
                .is_some_and(|code| code.starts_with(&normalize_postal_code(prefix))),
            Self::Age { min, max } => subject.birth_year.is_some_and(|born| {
                within(i64::from(subject.day.year()) - i64::from(born), *min, *max)
            }),
            Self::Tier {
                club,
                at_least,
                exactly,
            } => tier_matches(subject, club, at_least.as_deref(), exactly.as_deref()),
            Self::Consent { purpose } => subject.granted.contains(purpose),
            Self::Complaints { state, min } => {
                let held = match state {
                    ComplaintState::Open => subject.open_complaints,
                    ComplaintState::Breached => subject.breached_complaints,
                };
                i64::from(held) >= min.unwrap_or(1)
            }
            Self::Relationship { level, manager } => {
                level.is_none_or(|l| l == subject.relationship_level)
                    && manager.is_none_or(|m| subject.manager == Some(m))
            }
            Self::Attribute { key, op, value } => {
                attribute_matches(subject.attribute(key), *op, value.as_ref())
            }
            Self::Segment { name } => (subject.member)(&Membership::Segment(name)),
            Self::Plugin { id, key } => (subject.member)(&Membership::Plugin { id, key }),
        }
    }

    /// The stored segments this filter names, to check they exist and form no cycle.
    pub fn segments(&self) -> Vec<&str> {
        self.collect(|f| match f {
            Self::Segment { name } => Some(name.as_str()),
            _ => None,
        })
    }

    /// The segmenter plugins and segment keys this filter names, as (plugin id, key).
    pub fn plugins(&self) -> Vec<(&str, &str)> {
        self.collect(|f| match f {
            Self::Plugin { id, key } => Some((id.as_str(), key.as_str())),
            _ => None,
        })
    }

    /// The publications this filter names, to check they exist.
    pub fn publications(&self) -> Vec<&str> {
        self.collect(|f| match f {
            Self::Holds { publication, .. } => Some(publication.as_str()),
            _ => None,
        })
    }

    /// The clubs this filter names, to check they exist and to read their tiers.
    pub fn clubs(&self) -> Vec<&str> {
        self.collect(|f| match f {
            Self::Tier { club, .. } => Some(club.as_str()),
            _ => None,
        })
    }

    /// Every condition (not a combination) with the path it is written at under `at`, e.g.
    /// `filter.all[1]` for the second filter of an `all` at `filter`, in the order written.
    pub fn conditions<'a>(&'a self, at: &str) -> Vec<(String, &'a Filter)> {
        match self {
            Self::All(filters) | Self::Any(filters) => {
                let at = format!("{at}.{}", self.word());
                let parts = filters.iter().enumerate();
                parts
                    .flat_map(|(i, filter)| filter.conditions(&format!("{at}[{i}]")))
                    .collect()
            }
            Self::Not(filter) => filter.conditions(&format!("{at}.not")),
            other => vec![(at.to_owned(), other)],
        }
    }

    /// The key a combination is written with.
    fn word(&self) -> &'static str {
        match self {
            Self::All(_) => "all",
            Self::Any(_) => "any",
            _ => "not",
        }
    }

    /// Whether any condition is one that `is` picks (e.g. to know which facts to read).
    pub fn any_condition(&self, is: impl Fn(&Filter) -> bool + Copy) -> bool {
        !self.collect(|f| is(f).then_some(())).is_empty()
    }

    /// What `pick` takes from every condition, in the order written.
    fn collect<'a, T>(&'a self, pick: impl Fn(&'a Filter) -> Option<T> + Copy) -> Vec<T> {
        match self {
            Self::All(filters) | Self::Any(filters) => {
                filters.iter().flat_map(|f| f.collect(pick)).collect()
            }
            Self::Not(filter) => filter.collect(pick),
            other => pick(other).into_iter().collect(),
        }
    }
}

/// The cycle that saving segment `start` with `filter` would make, as the path of segment
/// names from `start` to the name met twice (e.g. `["a", "b", "a"]`); none when there is none.
/// `lookup` gives the stored filter of a segment, none for a plugin or unknown segment. A
/// cycle among stored segments that `start` reaches is reported too, as evaluating `start`
/// would run into it.
pub fn cycle(
    start: &str,
    filter: &Filter,
    lookup: impl Fn(&str) -> Option<Filter>,
) -> Option<Vec<String>> {
    let mut path = vec![start.to_owned()];
    let mut cleared = BTreeSet::new();
    find_cycle(filter, &mut path, &mut cleared, &lookup)
}

/// Depth first from `filter`, the segments on the way in `path`; `cleared` holds the
/// segments already seen to lead to no cycle.
fn find_cycle(
    filter: &Filter,
    path: &mut Vec<String>,
    cleared: &mut BTreeSet<String>,
    lookup: &impl Fn(&str) -> Option<Filter>,
) -> Option<Vec<String>> {
    for name in filter.segments() {
        if path.iter().any(|p| p == name) {
            let mut found = path.clone();
            found.push(name.to_owned());
            return Some(found);
        }
        if cleared.contains(name) {
            continue;
        }
        if let Some(next) = lookup(name) {
            path.push(name.to_owned());
            if let Some(found) = find_cycle(&next, path, cleared, lookup) {
                return Some(found);
            }
            path.pop();
        }
        cleared.insert(name.to_owned());
    }
    None
}

/// Reports a combination nested past the limit; its parts are then not checked.
fn too_deep(at: &str, depth: usize, errors: &mut FieldErrors) -> bool {
    let deep = depth >= MAX_DEPTH;
    if deep {
        errors.add(at, format!("filters nest at most {MAX_DEPTH} deep"));
    }
    deep
}

fn non_empty<T>(at: &str, values: &[T], errors: &mut FieldErrors) {
    if values.is_empty() {
        errors.add(at, "list at least one value");
    }
}

/// The lower and upper bound of one condition, by the names the JSON gives them.
struct Bounds<'a> {
    at: String,
    low: &'a str,
    high: &'a str,
}

impl<'a> Bounds<'a> {
    fn new(at: &str, condition: &str, (low, high): (&'a str, &'a str)) -> Self {
        Self {
            at: format!("{at}.{condition}"),
            low,
            high,
        }
    }

    fn min_max(at: &str, condition: &str) -> Self {
        Self::new(at, condition, ("min", "max"))
    }

    /// At least one bound, none negative, the lower not above the upper.
    fn check(&self, min: Option<i64>, max: Option<i64>, errors: &mut FieldErrors) {
        let (at, low, high) = (&self.at, self.low, self.high);
        if min.is_none() && max.is_none() {
            errors.add(at.as_str(), format!("give {low}, {high} or both"));
        }
        for (name, value) in [(low, min), (high, max)] {
            if let Some(value) = value.filter(|v| *v < 0) {
                errors.add(
                    format!("{at}.{name}"),
                    format!("must be 0 or more, not {value}"),
                );
            }
        }
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            errors.add(
                format!("{at}.{high}"),
                format!("must be at least {low} ({min}), not {max}"),
            );
        }
    }
}

fn check_regions(at: &str, values: &[String], errors: &mut FieldErrors) {
    non_empty(at, values, errors);
    for (i, value) in values.iter().enumerate() {
        let chars = value.trim().chars().count();
        if chars == 0 || chars > MAX_REGION_CHARS {
            errors.add(
                format!("{at}[{i}]"),
                format!("a region has 1 to {MAX_REGION_CHARS} characters"),
            );
        }
    }
}

fn check_countries(at: &str, values: &[String], errors: &mut FieldErrors) {
    non_empty(at, values, errors);
    for (i, value) in values.iter().enumerate() {
        if let Err(e) = CountryCode::parse(value) {
            errors.add(format!("{at}[{i}]"), e);
        }
    }
}

fn check_tier(
    at: &str,
    club: &str,
    at_least: Option<&str>,
    exactly: Option<&str>,
    errors: &mut FieldErrors,
) {
    const CODE: &str = "use 1 to 32 lowercase letters, digits or dashes, starting with a letter";
    if !is_code(club) {
        errors.add(format!("{at}.club"), format!("name a club code: {CODE}"));
    }
    match (at_least, exactly) {
        (Some(_), Some(_)) | (None, None) => {
            errors.add(at, "give exactly one of at_least and exactly");
        }
        _ => {}
    }
    for (name, tier) in [("at_least", at_least), ("exactly", exactly)] {
        if tier.is_some_and(|t| !is_code(t)) {
            errors.add(format!("{at}.{name}"), format!("name a tier code: {CODE}"));
        }
    }
}

fn check_attribute(
    at: &str,
    key: &str,
    op: AttributeOp,
    value: Option<&Value>,
    errors: &mut FieldErrors,
) {
    if !is_attribute_key(key) {
        errors.add(
            format!("{at}.key"),
            "attribute keys are 1 to 64 lower-case letters, digits or underscores, starting \
             with a letter",
        );
    }
    let at = format!("{at}.value");
    match (op, value) {
        (AttributeOp::Exists, None) => {}
        (AttributeOp::Exists, Some(_)) => errors.add(at, "exists compares no value; leave it out"),
        (_, None) => errors.add(at, "give the value to compare with"),
        (AttributeOp::Eq | AttributeOp::Ne, Some(v)) => {
            if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                errors.add(at, "compare with text, a number or true/false");
            }
        }
        (_, Some(v)) => {
            if !matches!(v, Value::String(_) | Value::Number(_)) {
                errors.add(at, "lt, le, gt and ge compare with text or a number");
            }
        }
    }
}

/// Custom attribute keys as subscribers store them.
fn is_attribute_key(key: &str) -> bool {
    key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Segment names as stored segments take them.
fn is_segment_name(name: &str) -> bool {
    (1..=MAX_SEGMENT_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn within(value: i64, min: Option<i64>, max: Option<i64>) -> bool {
    min.is_none_or(|m| value >= m) && max.is_none_or(|m| value <= m)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn tier_matches(
    subject: &Subject<'_>,
    club: &str,
    at_least: Option<&str>,
    exactly: Option<&str>,
) -> bool {
    let Some(held) = subject.tiers.iter().find(|t| t.club == club) else {
        return false;
    };
    match (at_least, exactly) {
        (_, Some(tier)) => held.tier == tier,
        (Some(tier), None) => (subject.tier_rank)(club, tier).is_some_and(|r| held.rank >= r),
        (None, None) => false,
    }
}

fn attribute_matches(held: Option<&Value>, op: AttributeOp, value: Option<&Value>) -> bool {
    let Some(held) = held.filter(|v| !v.is_null()) else {
        return false;
    };
    if op == AttributeOp::Exists {
        return true;
    }
    let Some(value) = value else {
        return false;
    };
    match op {
        AttributeOp::Eq => same(held, value),
        AttributeOp::Ne => !same(held, value),
        AttributeOp::Lt => order(held, value).is_some_and(|o| o.is_lt()),
        AttributeOp::Le => order(held, value).is_some_and(|o| o.is_le()),
        AttributeOp::Gt => order(held, value).is_some_and(|o| o.is_gt()),
        AttributeOp::Ge => order(held, value).is_some_and(|o| o.is_ge()),
        AttributeOp::Exists => true,
    }
}

/// Equal values, with numbers equal by value (`2` equals `2.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => order(a, b).is_some_and(|o| o.is_eq()),
        _ => a == b,
    }
}

/// Numbers ordered by value (whole numbers exactly), text by its characters; other pairs
/// have no order.
fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
        },
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::domain::term::last_day;

    const GRACE: i64 = 30;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn filter(json: &str) -> Filter {
        serde_json::from_str(json).expect("a filter")
    }

    fn term(
        publication: &'static str,
        format: Format,
        start: &str,
        months: u32,
        paid: i64,
    ) -> TermFact<'static> {
        let start = date(start);
        TermFact {
            publication,
            format,
            start,
            span: Span {
                start,
                last: last_day(start, months),
                cancelled: false,
            },
            revenue: paid,
        }
    }

    /// Cut short on `effective` with `refund` back.
    fn cancelled(mut term: TermFact<'static>, effective: &str, refund: i64) -> TermFact<'static> {
        let effective = date(effective);
        term.span.last = term.span.last.min(effective.pred_opt().unwrap());
        term.span.cancelled = true;
        term.revenue -= refund;
        term
    }

    /// One reader's stored facts, from which each test takes a subject.
    struct Reader {
        terms: Vec<TermFact<'static>>,
        granted: Vec<ConsentPurpose>,
        attributes: BTreeMap<String, Value>,
        tiers: Vec<HeldTier<'static>>,
        birth_year: Option<i32>,
    }

    /// Ten years of DAILY in print renewed today, WEEKLY digital since January, a magazine
    /// that lapsed in 2020, a cancelled bundle, a Gold tier and one granted consent.
    fn reader() -> Reader {
        Reader {
            terms: vec![
                term("DAILY", Format::Print, "2016-06-01", 120, 300_000),
                term("DAILY", Format::Print, "2026-06-01", 12, 30_000),
                term("WEEKLY", Format::Digital, "2026-01-01", 12, 5_000),
                term("MAG", Format::Print, "2020-01-01", 12, 4_000),
                cancelled(
                    term("SPORT", Format::Bundle, "2025-09-01", 12, 12_000),
                    "2026-03-01",
                    5_000,
                ),
            ],
            granted: vec![ConsentPurpose::MarketingEmail],
            attributes: [
                ("plan".to_owned(), Value::from("family")),
                ("children".to_owned(), Value::from(2)),
                ("vip".to_owned(), Value::from(true)),
            ]
            .into(),
            tiers: vec![HeldTier {
                club: "readers-club",
                tier: "gold",
                rank: 2,
            }],
            birth_year: Some(1970),
        }
    }

    fn rank(club: &str, tier: &str) -> Option<u8> {
        match (club, tier) {
            ("readers-club", "silver") => Some(1),
            ("readers-club", "gold") => Some(2),
            ("readers-club", "platinum") => Some(3),
            _ => None,
        }
    }

    fn member(membership: &Membership<'_>) -> bool {
        match membership {
            Membership::Segment(name) => *name == "loyal",
            Membership::Plugin { id, key } => *id == "churn" && *key == "high",
        }
    }

    impl Reader {
        fn on(&self, day: &str) -> Subject<'_> {
            Subject {
                day: date(day),
                as_of: false,
                grace_days: GRACE,
                terms: &self.terms,
                region: Some("Île-de-France"),
                country: Some("FR"),
                postal_code: Some("75011"),
                birth_year: self.birth_year,
                granted: &self.granted,
                open_complaints: 1,
                breached_complaints: 0,
                relationship_level: RelationshipLevel::Proactive,
                manager: Some(7),
                attributes: Some(&self.attributes),
                tiers: &self.tiers,
                tier_rank: &rank,
                member: &member,
            }
        }

        fn today(&self) -> Subject<'_> {
            self.on("2026-06-01")
        }

        fn as_of(&self, day: &str) -> Subject<'_> {
            Subject {
                as_of: true,
                ..self.on(day)
            }
        }
    }

    fn today(json: &str) -> bool {
        filter(json).matches(&reader().today())
    }

    /// The fields and messages of the errors in `json` validated under `filter`.
    fn errors(json: &str) -> Vec<(String, String)> {
        let mut errors = FieldErrors::default();
        filter(json).validate("filter", &mut errors);
        errors
            .iter()
            .map(|e| (e.field.clone(), e.message.clone()))
            .collect()
    }

    fn error_fields(json: &str) -> Vec<String> {
        errors(json).into_iter().map(|(field, _)| field).collect()
    }

    #[test]
    fn filters_read_as_json_and_refuse_unknown_fields_and_words() {
        let parsed = filter(
            r#"{"all": [{"status": {"in": ["active", "grace"]}},
                                        {"not": {"titles": {"min": 3}}}]}"#,
        );
        assert_eq!(
            parsed,
            Filter::All(vec![
                Filter::Status {
                    values: vec![SubscriptionStatus::Active, SubscriptionStatus::Grace]
                },
                Filter::Not(Box::new(Filter::Titles {
                    min: Some(3),
                    max: None
                })),
            ])
        );
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            r#"{"all":[{"status":{"in":["active","grace"]}},{"not":{"titles":{"min":3}}}]}"#
        );
        let unknown = serde_json::from_str::<Filter>(r#"{"tenure": {"min_yeers": 10}}"#);
        assert!(unknown.unwrap_err().to_string().contains("min_yeers"));
        let kind = serde_json::from_str::<Filter>(r#"{"height": {"min": 10}}"#);
        assert!(
            kind.unwrap_err()
                .to_string()
                .contains("unknown variant `height`")
        );
        let status = serde_json::from_str::<Filter>(r#"{"status": {"in": ["asleep"]}}"#);
        assert!(status.unwrap_err().to_string().contains("asleep"));
        let purpose = serde_json::from_str::<Filter>(r#"{"consent": {"purpose": "fax"}}"#);
        assert!(purpose.unwrap_err().to_string().contains("fax"));
    }

    #[test]
    fn status_matches_the_standing_across_all_titles_on_the_day() {
        assert!(today(r#"{"status": {"in": ["active"]}}"#));
        assert!(!today(r#"{"status": {"in": ["lapsed", "grace"]}}"#));
        let lapsed = Reader {
            terms: vec![term("MAG", Format::Print, "2020-01-01", 12, 4_000)],
            ..reader()
        };
        let f = filter(r#"{"status": {"in": ["lapsed"]}}"#);
        assert!(f.matches(&lapsed.today()));
        assert!(!f.matches(&lapsed.on("2020-06-01")));
    }

    #[test]
    fn tenure_counts_whole_years_of_unbroken_subscription_within_the_bounds() {
        assert!(today(r#"{"tenure": {"min_years": 10}}"#));
        assert!(!today(r#"{"tenure": {"min_years": 11}}"#));
        assert!(today(r#"{"tenure": {"min_years": 5, "max_years": 10}}"#));
        assert!(!today(r#"{"tenure": {"max_years": 9}}"#));
    }

    #[test]
    fn titles_count_only_the_titles_held_on_the_day() {
        // DAILY and WEEKLY are active; MAG lapsed and SPORT was cancelled.
        assert!(today(r#"{"titles": {"min": 2, "max": 2}}"#));
        assert!(!today(r#"{"titles": {"min": 3}}"#));
        assert!(!today(r#"{"titles": {"max": 1}}"#));
    }

    #[test]
    fn holds_needs_a_current_term_of_the_title_in_the_format_named() {
        assert!(today(r#"{"holds": {"publication": "daily"}}"#));
        assert!(today(
            r#"{"holds": {"publication": "DAILY", "format": "print"}}"#
        ));
        assert!(!today(
            r#"{"holds": {"publication": "DAILY", "format": "digital"}}"#
        ));
        assert!(!today(r#"{"holds": {"publication": "MAG"}}"#));
        assert!(!today(r#"{"holds": {"publication": "SPORT"}}"#));
    }

    #[test]
    fn spend_sums_paid_less_refunds_for_terms_begun_in_the_trailing_months() {
        // In twelve months: DAILY 30,000 + WEEKLY 5,000 + SPORT 12,000 less 5,000 refunded.
        assert!(today(
            r#"{"spend": {"months": 12, "min": 42000, "max": 42000}}"#
        ));
        assert!(!today(r#"{"spend": {"months": 12, "min": 42001}}"#));
        // Over 120 months the magazine counts too, but not the ten-year term begun exactly
        // 120 months ago.
        assert!(today(
            r#"{"spend": {"months": 120, "min": 46000, "max": 46000}}"#
        ));
    }

    #[test]
    fn revenue_sums_every_term_begun_by_the_day() {
        // 300,000 + 30,000 + 5,000 + 4,000 + 12,000 - 5,000.
        assert!(today(r#"{"revenue": {"min": 346000, "max": 346000}}"#));
        assert!(!today(r#"{"revenue": {"min": 346001}}"#));
        let before = filter(r#"{"revenue": {"max": 300000}}"#);
        assert!(before.matches(&reader().on("2016-06-01")));
    }

    #[test]
    fn region_country_and_postal_code_fold_case_accents_and_spaces() {
        assert!(today(
            r#"{"region": {"in": ["Bretagne", "ile-de-france"]}}"#
        ));
        assert!(!today(r#"{"region": {"in": ["Bretagne"]}}"#));
        assert!(today(r#"{"country": {"in": ["de", "fr"]}}"#));
        assert!(!today(r#"{"country": {"in": ["DE"]}}"#));
        assert!(today(r#"{"postal_code": {"prefix": "75"}}"#));
        assert!(today(r#"{"postal_code": {"prefix": "75 0"}}"#));
        assert!(!today(r#"{"postal_code": {"prefix": "13"}}"#));
        let unplaced = reader();
        let nowhere = Subject {
            region: None,
            country: None,
            postal_code: None,
            ..unplaced.today()
        };
        assert!(!filter(r#"{"country": {"in": ["FR"]}}"#).matches(&nowhere));
        assert!(!filter(r#"{"postal_code": {"prefix": "7"}}"#).matches(&nowhere));
    }

    #[test]
    fn age_counts_years_to_the_day_and_never_matches_without_a_birth_year() {
        assert!(today(r#"{"age": {"min": 56, "max": 56}}"#));
        assert!(!today(r#"{"age": {"max": 55}}"#));
        let f = filter(r#"{"age": {"max": 50}}"#);
        assert!(f.matches(&reader().as_of("2019-06-01")));
        let unknown = Reader {
            birth_year: None,
            ..reader()
        };
        assert!(!filter(r#"{"age": {"min": 0}}"#).matches(&unknown.today()));
    }

    #[test]
    fn tier_matches_exactly_the_tier_or_at_least_its_rank() {
        assert!(today(
            r#"{"tier": {"club": "readers-club", "exactly": "gold"}}"#
        ));
        assert!(!today(
            r#"{"tier": {"club": "readers-club", "exactly": "silver"}}"#
        ));
        assert!(today(
            r#"{"tier": {"club": "readers-club", "at_least": "silver"}}"#
        ));
        assert!(today(
            r#"{"tier": {"club": "readers-club", "at_least": "gold"}}"#
        ));
        assert!(!today(
            r#"{"tier": {"club": "readers-club", "at_least": "platinum"}}"#
        ));
        // A tier the club does not have, and a club the reader is not in, match no one.
        assert!(!today(
            r#"{"tier": {"club": "readers-club", "at_least": "bronze"}}"#
        ));
        assert!(!today(
            r#"{"tier": {"club": "wine-club", "exactly": "gold"}}"#
        ));
    }

    #[test]
    fn consent_matches_only_a_purpose_granted() {
        assert!(today(r#"{"consent": {"purpose": "marketing_email"}}"#));
        assert!(!today(r#"{"consent": {"purpose": "marketing_phone"}}"#));
        assert!(!today(
            r#"{"consent": {"purpose": "third_party_audiences"}}"#
        ));
    }

    #[test]
    fn complaints_count_open_or_breached_ones_from_one_by_default() {
        assert!(today(r#"{"complaints": {"state": "open"}}"#));
        assert!(!today(r#"{"complaints": {"state": "open", "min": 2}}"#));
        assert!(!today(r#"{"complaints": {"state": "breached"}}"#));
        let unhappy = reader();
        let late = Subject {
            breached_complaints: 2,
            ..unhappy.today()
        };
        assert!(filter(r#"{"complaints": {"state": "breached", "min": 2}}"#).matches(&late));
    }

    #[test]
    fn relationship_matches_the_level_and_the_manager_given() {
        assert!(today(r#"{"relationship": {"level": "proactive"}}"#));
        assert!(today(
            r#"{"relationship": {"level": "proactive", "manager": 7}}"#
        ));
        assert!(!today(r#"{"relationship": {"level": "partnership"}}"#));
        assert!(!today(r#"{"relationship": {"manager": 8}}"#));
    }

    #[test]
    fn attributes_compare_numbers_and_text_and_need_the_key_present() {
        assert!(today(
            r#"{"attribute": {"key": "plan", "op": "eq", "value": "family"}}"#
        ));
        assert!(today(
            r#"{"attribute": {"key": "plan", "op": "ne", "value": "solo"}}"#
        ));
        assert!(today(
            r#"{"attribute": {"key": "children", "op": "eq", "value": 2.0}}"#
        ));
        assert!(today(
            r#"{"attribute": {"key": "children", "op": "ge", "value": 2}}"#
        ));
        assert!(today(
            r#"{"attribute": {"key": "children", "op": "lt", "value": 2.5}}"#
        ));
        assert!(!today(
            r#"{"attribute": {"key": "children", "op": "gt", "value": 2}}"#
        ));
        assert!(today(
            r#"{"attribute": {"key": "plan", "op": "le", "value": "gold"}}"#
        ));
        assert!(!today(
            r#"{"attribute": {"key": "plan", "op": "lt", "value": 3}}"#
        ));
        assert!(today(
            r#"{"attribute": {"key": "vip", "op": "eq", "value": true}}"#
        ));
        assert!(today(r#"{"attribute": {"key": "vip", "op": "exists"}}"#));
        assert!(!today(r#"{"attribute": {"key": "pets", "op": "exists"}}"#));
        assert!(!today(
            r#"{"attribute": {"key": "pets", "op": "ne", "value": "cat"}}"#
        ));
        let bare = reader();
        let without = Subject {
            attributes: None,
            ..bare.today()
        };
        let f = filter(r#"{"attribute": {"key": "plan", "op": "exists"}}"#);
        assert!(!f.matches(&without));
    }

    #[test]
    fn segment_and_plugin_ask_the_caller_for_membership() {
        assert!(today(r#"{"segment": {"name": "loyal"}}"#));
        assert!(!today(r#"{"segment": {"name": "movers"}}"#));
        assert!(today(r#"{"plugin": {"id": "churn", "key": "high"}}"#));
        assert!(!today(r#"{"plugin": {"id": "churn", "key": "low"}}"#));
    }

    #[test]
    fn all_any_and_not_combine_conditions() {
        assert!(today(
            r#"{"all": [{"tenure": {"min_years": 10}}, {"titles": {"min": 2}}]}"#
        ));
        assert!(!today(
            r#"{"all": [{"tenure": {"min_years": 10}}, {"titles": {"min": 3}}]}"#
        ));
        assert!(today(
            r#"{"any": [{"tenure": {"min_years": 20}}, {"titles": {"min": 2}}]}"#
        ));
        assert!(!today(
            r#"{"any": [{"tenure": {"min_years": 20}}, {"titles": {"min": 3}}]}"#
        ));
        assert!(today(
            r#"{"not": {"consent": {"purpose": "marketing_phone"}}}"#
        ));
        assert!(!today(
            r#"{"not": {"consent": {"purpose": "marketing_email"}}}"#
        ));
    }

    #[test]
    fn as_of_a_past_day_ignores_the_terms_that_start_after_it() {
        let everything = reader();
        let day = "2025-06-01";
        let holds_weekly = filter(r#"{"holds": {"publication": "WEEKLY"}}"#);
        let status_pending = filter(r#"{"status": {"in": ["pending"]}}"#);
        let one_title = filter(r#"{"titles": {"min": 1, "max": 1}}"#);
        let spend = filter(r#"{"spend": {"months": 12, "max": 0}}"#);
        let revenue = filter(r#"{"revenue": {"min": 304000, "max": 304000}}"#);
        let tenure = filter(r#"{"tenure": {"min_years": 9, "max_years": 9}}"#);
        let as_of = everything.as_of(day);
        assert!(!holds_weekly.matches(&as_of));
        assert!(one_title.matches(&as_of));
        assert!(spend.matches(&as_of));
        assert!(revenue.matches(&as_of));
        assert!(tenure.matches(&as_of));
        // The same day seen from its own time: a WEEKLY subscriber whose term starts later is
        // pending there, and a later term's money counts in the trailing spend.
        let only_later = Reader {
            terms: vec![term("WEEKLY", Format::Digital, "2026-01-01", 12, 5_000)],
            ..reader()
        };
        assert!(status_pending.matches(&only_later.on(day)));
        assert!(!status_pending.matches(&only_later.as_of(day)));
        assert!(!spend.matches(&only_later.on(day)));
        assert!(spend.matches(&only_later.as_of(day)));
    }

    #[test]
    fn each_bad_condition_is_reported_at_its_path_with_what_to_send() {
        let cases: &[(&str, &str, &str)] = &[
            (r#"{"all": []}"#, "filter.all", "list at least one filter"),
            (r#"{"any": []}"#, "filter.any", "list at least one filter"),
            (
                r#"{"status": {"in": []}}"#,
                "filter.status.in",
                "list at least one value",
            ),
            (
                r#"{"tenure": {}}"#,
                "filter.tenure",
                "give min_years, max_years or both",
            ),
            (
                r#"{"tenure": {"min_years": -1}}"#,
                "filter.tenure.min_years",
                "must be 0 or more, not -1",
            ),
            (
                r#"{"titles": {"max": -2}}"#,
                "filter.titles.max",
                "must be 0 or more, not -2",
            ),
            (
                r#"{"holds": {"publication": "?"}}"#,
                "filter.holds.publication",
                "`?` is not a publication code; use 2 to 32 letters, digits or dashes, \
                 starting with a letter",
            ),
            (
                r#"{"spend": {"months": 121, "min": 1}}"#,
                "filter.spend.months",
                "the window is 1 to 120 months, not 121",
            ),
            (
                r#"{"spend": {"months": 12}}"#,
                "filter.spend",
                "give min, max or both",
            ),
            (
                r#"{"revenue": {"min": -5}}"#,
                "filter.revenue.min",
                "must be 0 or more, not -5",
            ),
            (
                r#"{"region": {"in": []}}"#,
                "filter.region.in",
                "list at least one value",
            ),
            (
                r#"{"region": {"in": ["Kent", " "]}}"#,
                "filter.region.in[1]",
                "a region has 1 to 100 characters",
            ),
            (
                r#"{"country": {"in": ["FR", "France"]}}"#,
                "filter.country.in[1]",
                "`France` is not a country code; use the two-letter ISO 3166 code such as GB or DE",
            ),
            (
                r#"{"postal_code": {"prefix": " - "}}"#,
                "filter.postal_code.prefix",
                "give the first letters or digits of the postal code",
            ),
            (r#"{"age": {}}"#, "filter.age", "give min, max or both"),
            (
                r#"{"tier": {"club": "readers-club"}}"#,
                "filter.tier",
                "give exactly one of at_least and exactly",
            ),
            (
                r#"{"tier": {"club": "Readers Club", "exactly": "gold"}}"#,
                "filter.tier.club",
                "name a club code: use 1 to 32 lowercase letters, digits or dashes, starting \
                 with a letter",
            ),
            (
                r#"{"tier": {"club": "readers-club", "at_least": "Gold"}}"#,
                "filter.tier.at_least",
                "name a tier code: use 1 to 32 lowercase letters, digits or dashes, starting \
                 with a letter",
            ),
            (
                r#"{"complaints": {"state": "open", "min": 0}}"#,
                "filter.complaints.min",
                "must be 1 or more, not 0; for readers without complaints, put this condition \
                 under `not`",
            ),
            (
                r#"{"relationship": {}}"#,
                "filter.relationship",
                "give the level, the manager or both",
            ),
            (
                r#"{"relationship": {"manager": 0}}"#,
                "filter.relationship.manager",
                "a manager is a staff id of 1 or more, not 0",
            ),
            (
                r#"{"attribute": {"key": "Plan", "op": "exists"}}"#,
                "filter.attribute.key",
                "attribute keys are 1 to 64 lower-case letters, digits or underscores, \
                 starting with a letter",
            ),
            (
                r#"{"attribute": {"key": "plan", "op": "eq"}}"#,
                "filter.attribute.value",
                "give the value to compare with",
            ),
            (
                r#"{"attribute": {"key": "plan", "op": "exists", "value": 1}}"#,
                "filter.attribute.value",
                "exists compares no value; leave it out",
            ),
            (
                r#"{"attribute": {"key": "plan", "op": "eq", "value": [1]}}"#,
                "filter.attribute.value",
                "compare with text, a number or true/false",
            ),
            (
                r#"{"attribute": {"key": "plan", "op": "gt", "value": true}}"#,
                "filter.attribute.value",
                "lt, le, gt and ge compare with text or a number",
            ),
            (
                r#"{"segment": {"name": "Loyal Readers"}}"#,
                "filter.segment.name",
                "name a segment: 1 to 64 lower-case letters, digits and dashes",
            ),
            (
                r#"{"plugin": {"id": " ", "key": "high"}}"#,
                "filter.plugin.id",
                "name the segmenter plugin",
            ),
            (
                r#"{"plugin": {"id": "churn", "key": ""}}"#,
                "filter.plugin.key",
                "name the segment key it returns",
            ),
        ];
        for (json, field, message) in cases {
            assert_eq!(
                errors(json),
                [(field.to_string(), message.to_string())],
                "{json}"
            );
        }
    }

    #[test]
    fn a_lower_bound_above_the_upper_is_reported_at_the_upper() {
        assert_eq!(
            errors(r#"{"tenure": {"min_years": 10, "max_years": 5}}"#),
            [(
                "filter.tenure.max_years".to_owned(),
                "must be at least min_years (10), not 5".to_owned()
            )]
        );
        assert_eq!(
            error_fields(r#"{"spend": {"months": 12, "min": 9, "max": 3}}"#),
            ["filter.spend.max"]
        );
        assert_eq!(
            error_fields(r#"{"age": {"min": 70, "max": 18}}"#),
            ["filter.age.max"]
        );
    }

    #[test]
    fn errors_inside_combinations_carry_their_whole_path() {
        let bad = r#"{"all": [{"titles": {"min": 1}},
                              {"any": [{"not": {"tenure": {"min_years": -1}}},
                                       {"holds": {"publication": "?"}}]}]}"#;
        assert_eq!(
            error_fields(bad),
            [
                "filter.all[1].any[0].not.tenure.min_years",
                "filter.all[1].any[1].holds.publication",
            ]
        );
        let good = r#"{"all": [{"status": {"in": ["active"]}},
                               {"not": {"segment": {"name": "movers"}}},
                               {"tier": {"club": "readers-club", "at_least": "gold"}},
                               {"attribute": {"key": "plan", "op": "ge", "value": "b"}}]}"#;
        assert!(errors(good).is_empty());
    }

    #[test]
    fn filters_nest_at_most_eight_deep() {
        let nested = |depth: usize| {
            let mut json = r#"{"consent": {"purpose": "marketing_email"}}"#.to_owned();
            for _ in 0..depth {
                json = format!(r#"{{"not": {json}}}"#);
            }
            json
        };
        assert!(errors(&nested(8)).is_empty());
        let deepest = format!("filter{}", ".not".repeat(9));
        assert_eq!(
            errors(&nested(9)),
            [(deepest, "filters nest at most 8 deep".to_owned())]
        );
    }

    #[test]
    fn a_filter_lists_the_segments_plugins_publications_and_clubs_it_names() {
        let f = filter(
            r#"{"any": [{"segment": {"name": "loyal"}},
                        {"not": {"all": [{"segment": {"name": "movers"}},
                                         {"plugin": {"id": "churn", "key": "high"}}]}},
                        {"holds": {"publication": "DAILY"}},
                        {"tier": {"club": "readers-club", "exactly": "gold"}}]}"#,
        );
        assert_eq!(f.segments(), ["loyal", "movers"]);
        assert_eq!(f.plugins(), [("churn", "high")]);
        assert_eq!(f.publications(), ["DAILY"]);
        assert_eq!(f.clubs(), ["readers-club"]);
    }

    #[test]
    fn saving_a_segment_that_reaches_itself_reports_the_cycle() {
        let stored = |name: &str| match name {
            "b" => Some(filter(r#"{"segment": {"name": "c"}}"#)),
            "c" => Some(filter(
                r#"{"any": [{"segment": {"name": "x"}}, {"segment": {"name": "a"}}]}"#,
            )),
            "loop" => Some(filter(r#"{"segment": {"name": "loop"}}"#)),
            _ => None,
        };
        let direct = filter(r#"{"segment": {"name": "a"}}"#);
        assert_eq!(
            cycle("a", &direct, stored),
            Some(vec!["a".into(), "a".into()])
        );
        let through = filter(r#"{"not": {"segment": {"name": "b"}}}"#);
        assert_eq!(
            cycle("a", &through, stored),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        let reaches_loop = filter(r#"{"segment": {"name": "loop"}}"#);
        assert_eq!(
            cycle("a", &reaches_loop, stored),
            Some(vec!["a".into(), "loop".into(), "loop".into()])
        );
    }

    #[test]
    fn a_segment_reaching_only_other_segments_has_no_cycle() {
        let stored = |name: &str| match name {
            "b" => Some(filter(r#"{"segment": {"name": "c"}}"#)),
            "d" => Some(filter(
                r#"{"all": [{"segment": {"name": "c"}}, {"segment": {"name": "c"}}]}"#,
            )),
            _ => None,
        };
        let f = filter(r#"{"all": [{"segment": {"name": "b"}}, {"segment": {"name": "d"}}]}"#);
        assert_eq!(cycle("a", &f, stored), None);
        assert_eq!(cycle("a", &filter(r#"{"age": {"min": 18}}"#), stored), None);
    }

    #[test]
    fn conditions_are_listed_with_the_paths_validation_reports_them_at() {
        let f = filter(
            r#"{"all": [{"age": {"min": 18}}, {"not": {"any": [{"holds": {"publication": "D"}},
                {"segment": {"name": "b"}}]}}]}"#,
        );
        let paths: Vec<String> = f
            .conditions("filter")
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        assert_eq!(
            paths,
            [
                "filter.all[0]",
                "filter.all[1].not.any[0]",
                "filter.all[1].not.any[1]"
            ]
        );
        let bad =
            filter(r#"{"all": [{"age": {"min": 1}}, {"not": {"any": [{"age": {"min": -1}}]}}]}"#);
        let mut errors = FieldErrors::default();
        bad.validate("filter", &mut errors);
        let reported: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(reported, ["filter.all[1].not.any[0].age.min"]);
        assert!(f.any_condition(|c| matches!(c, Filter::Segment { .. })));
        assert!(!f.any_condition(|c| matches!(c, Filter::Complaints { .. })));
    }
}
