//! Audiences advertisers measure: the breakdown dimensions, the settings a publisher chooses,
//! the tally of one release's cells, and those cells noised and thresholded for release.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldErrors;
use super::privacy::{self, Cell, Epsilon, NoNoise, Noise};

words! {
    /// What an audience's figures may be broken down by.
    Dimension {
        Region = "region",
        AgeBand = "age_band",
        ClubTier = "club_tier",
        Title = "title",
        Format = "format",
        TenureBand = "tenure_band",
        Relationship = "relationship",
    }
}

/// The value of a dimension a reader has no answer for (no region, no birth year).
pub const UNKNOWN: &str = "unknown";
/// The value for readers who hold nothing of the dimension (no title now, no club tier).
pub const NONE: &str = "none";

pub const AGE_BANDS: [&str; 7] = [
    "under_25", "25_34", "35_44", "45_54", "55_64", "65_plus", UNKNOWN,
];
pub const TENURE_BANDS: [&str; 6] = ["under_1", "1_2", "3_4", "5_9", "10_plus", NONE];
pub const FORMATS: [&str; 4] = ["print", "digital", "bundle", NONE];
pub const RELATIONSHIPS: [&str; 5] = [
    "basic",
    "reactive",
    "accountable",
    "proactive",
    "partnership",
];

/// The age band of someone born in `birth_year`, in the year `year`.
pub fn age_band(birth_year: Option<u16>, year: i32) -> &'static str {
    let Some(born) = birth_year else {
        return UNKNOWN;
    };
    match year - i32::from(born) {
        age if age < 0 => UNKNOWN,
        0..=24 => AGE_BANDS[0],
        25..=34 => AGE_BANDS[1],
        35..=44 => AGE_BANDS[2],
        45..=54 => AGE_BANDS[3],
        55..=64 => AGE_BANDS[4],
        _ => AGE_BANDS[5],
    }
}

/// The tenure band of an unbroken run of `years` whole years; `NONE` for a reader who holds
/// nothing now.
pub fn tenure_band(years: Option<u32>) -> &'static str {
    match years {
        None => NONE,
        Some(0) => TENURE_BANDS[0],
        Some(1..=2) => TENURE_BANDS[1],
        Some(3..=4) => TENURE_BANDS[2],
        Some(5..=9) => TENURE_BANDS[3],
        Some(_) => TENURE_BANDS[4],
    }
}

/// How an audience is released: what it may be cut by, what each release spends, and the
/// limits that keep small groups of readers from being singled out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The dimensions each release breaks the total down by, each alone.
    pub dimensions: Vec<Dimension>,
    /// The pairs of declared dimensions also released crossed with each other.
    #[serde(default)]
    #[schema(value_type = Vec<Vec<Dimension>>)]
    pub pairs: Vec<[Dimension; 2]>,
    /// What one release spends of the budget.
    #[schema(value_type = f64)]
    #[serde(default = "default_release_epsilon")]
    pub release_epsilon: Epsilon,
    /// What all the releases of one budget period may spend together.
    #[schema(value_type = f64)]
    #[serde(default = "default_budget")]
    pub budget: Epsilon,
    /// The length of a budget period, in days; the budget refills when one ends.
    #[serde(default = "default_budget_days")]
    pub budget_days: u32,
    /// The least time between two releases, in days.
    #[serde(default = "default_release_every_days")]
    pub release_every_days: u32,
    /// Cells whose noised count falls below this are suppressed.
    #[serde(default = "default_min_cell")]
    pub min_cell: i64,
    /// A pair is withheld when more than this share (in percent) of its grid are cells of
    /// 1 to `min_cell - 1` readers.
    #[serde(default = "default_max_sparse_percent")]
    pub max_sparse_percent: u8,
}

fn default_release_epsilon() -> Epsilon {
    Epsilon::from_thousandths(100)
}
fn default_budget() -> Epsilon {
    Epsilon::from_thousandths(3_000)
}
fn default_budget_days() -> u32 {
    30
}
fn default_release_every_days() -> u32 {
    1
}
fn default_min_cell() -> i64 {
    privacy::DEFAULT_MIN_CELL
}
fn default_max_sparse_percent() -> u8 {
    25
}

impl Settings {
    /// Every problem, under `at` (e.g. `settings`).
    pub fn validate(&self, at: &str, errors: &mut FieldErrors) {
        if self.dimensions.is_empty() {
            errors.add(
                format!("{at}.dimensions"),
                format!(
                    "name at least one dimension, from: {}",
                    Dimension::ALL.map(Dimension::as_str).join(", ")
                ),
            );
        }
        let distinct: BTreeSet<Dimension> = self.dimensions.iter().copied().collect();
        if distinct.len() != self.dimensions.len() {
            errors.add(
                format!("{at}.dimensions"),
                "name each dimension once".to_owned(),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, [a, b]) in self.pairs.iter().enumerate() {
            let field = format!("{at}.pairs[{i}]");
            if a == b {
                errors.add(&field, "a pair crosses two different dimensions");
            } else if !distinct.contains(a) || !distinct.contains(b) {
                errors.add(
                    &field,
                    "both dimensions of a pair must be among `dimensions`",
                );
            } else if !seen.insert((*a.min(b), *a.max(b))) {
                errors.add(&field, "this pair is named twice");
            }
        }
        if self.release_epsilon > self.budget {
            errors.add(
                format!("{at}.release_epsilon"),
                format!(
                    "one release cannot spend more than the budget of {}",
                    self.budget
                ),
            );
        }
        if !(1..=366).contains(&self.budget_days) {
            errors.add(
                format!("{at}.budget_days"),
                "a budget period lasts 1 to 366 days",
            );
        }
        if !(1..=366).contains(&self.release_every_days) {
            errors.add(
                format!("{at}.release_every_days"),
                "releases are 1 to 366 days apart",
            );
        }
        if self.min_cell < privacy::MIN_CELL_FLOOR || self.min_cell > 1_000_000 {
            errors.add(
                format!("{at}.min_cell"),
                format!(
                    "the minimum cell is {} to 1000000 readers",
                    privacy::MIN_CELL_FLOOR
                ),
            );
        }
        if self.max_sparse_percent > 100 {
            errors.add(format!("{at}.max_sparse_percent"), "a share is 0 to 100");
        }
    }

    /// The most one reader can move all of a release's counts by together (L1): one for the
    /// total, each dimension's most values per reader, and their products for the pairs.
    pub fn sensitivity(&self, domains: &Domains) -> u32 {
        let of = |d: &Dimension| domains.per_reader(*d);
        let dimensions: u32 = self.dimensions.iter().map(of).sum();
        let pairs: u32 = self.pairs.iter().map(|[a, b]| of(a) * of(b)).sum();
        1 + dimensions + pairs
    }
}

/// The values each dimension can take in a release, decided before any member is counted
/// (from fixed lists, the catalogue, the clubs and the whole readership, never from the
/// audience), so that which cells exist reveals nothing about its members.
#[derive(Debug, Clone, Default)]
pub struct Domains {
    pub regions: BTreeSet<String>,
    /// Publication codes.
    pub titles: Vec<String>,
    /// `club/tier`, for every tier of every club.
    pub tiers: Vec<String>,
    /// How many clubs there are: a reader holds a tier in each at most.
    pub clubs: u32,
}

impl Domains {
    /// Every value of `dimension`, in the order releases list them.
    pub fn values(&self, dimension: Dimension) -> Vec<String> {
        let fixed = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect();
        match dimension {
            Dimension::Region => {
                let mut values: Vec<String> = self.regions.iter().cloned().collect();
                values.push(UNKNOWN.to_owned());
                values
            }
            Dimension::AgeBand => fixed(&AGE_BANDS),
            Dimension::TenureBand => fixed(&TENURE_BANDS),
            Dimension::Format => fixed(&FORMATS),
            Dimension::Relationship => fixed(&RELATIONSHIPS),
            Dimension::Title => self.with_none(&self.titles),
            Dimension::ClubTier => self.with_none(&self.tiers),
        }
    }

    fn with_none(&self, values: &[String]) -> Vec<String> {
        let mut all = values.to_vec();
        all.push(NONE.to_owned());
        all
    }

    /// The most values of `dimension` one reader has at once.
    pub fn per_reader(&self, dimension: Dimension) -> u32 {
        match dimension {
            Dimension::Title => u32::try_from(self.titles.len()).unwrap_or(u32::MAX).max(1),
            Dimension::ClubTier => self.clubs.max(1),
            _ => 1,
        }
    }
}

/// The exact counts of one release: the total, each dimension's values, each pair's cells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: i64,
    /// By dimension, the count of each value.
    pub dimensions: Vec<HashMap<String, i64>>,
    /// By pair, the count of each pair of values joined by [`JOIN`].
    pub pairs: Vec<HashMap<String, i64>>,
}

/// Between the two values of a pair's key; no value contains it.
const JOIN: char = '\u{1f}';

impl Tally {
    pub fn new(settings: &Settings) -> Self {
        Self {
            total: 0,
            dimensions: vec![HashMap::new(); settings.dimensions.len()],
            pairs: vec![HashMap::new(); settings.pairs.len()],
        }
    }

    /// Counts one reader whose values are `values`, by dimension in the settings' order.
    /// `key` is a buffer kept between readers so that known cells cost no allocation.
    pub fn count(&mut self, settings: &Settings, values: &[Vec<&str>], key: &mut String) {
        self.total += 1;
        for (counts, values) in self.dimensions.iter_mut().zip(values) {
            for value in values {
                bump(counts, value);
            }
        }
        for (counts, [a, b]) in self.pairs.iter_mut().zip(&settings.pairs) {
            let (Some(i), Some(j)) = (position(settings, *a), position(settings, *b)) else {
                continue;
            };
            for left in &values[i] {
                for right in &values[j] {
                    key.clear();
                    key.push_str(left);
                    key.push(JOIN);
                    key.push_str(right);
                    bump(counts, key);
                }
            }
        }
    }

    /// Adds another page's tally of the same settings.
    pub fn merge(&mut self, other: Tally) {
        self.total += other.total;
        let parts = self.dimensions.iter_mut().zip(other.dimensions);
        let pairs = self.pairs.iter_mut().zip(other.pairs);
        for (mine, theirs) in parts.chain(pairs) {
            for (value, count) in theirs {
                *mine.entry(value).or_default() += count;
            }
        }
    }
}

fn bump(counts: &mut HashMap<String, i64>, value: &str) {
    match counts.get_mut(value) {
        Some(count) => *count += 1,
        None => {
            counts.insert(value.to_owned(), 1);
        }
    }
}

fn position(settings: &Settings, dimension: Dimension) -> Option<usize> {
    settings.dimensions.iter().position(|d| *d == dimension)
}

/// A release's figures, exact (for staff) or noised (for advertisers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures<C> {
    pub total: C,
    pub dimensions: Vec<DimensionFigures<C>>,
    pub pairs: Vec<PairFigures<C>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimensionFigures<C> {
    pub dimension: Dimension,
    pub cells: Vec<ValueCell<C>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCell<C> {
    pub value: String,
    #[serde(flatten)]
    pub cell: C,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairFigures<C> {
    pub dimensions: [Dimension; 2],
    /// Why the pair is not released, when it is not; its cells are then empty.
    pub withheld: Option<String>,
    pub cells: Vec<PairCell<C>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairCell<C> {
    pub values: [String; 2],
    #[serde(flatten)]
    pub cell: C,
}

/// An exact count, as staff see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exact {
    pub count: i64,
}

impl Figures<Exact> {
    /// The tally laid out over every value of every dimension, zeros included; a pair whose
    /// grid is too sparse is marked withheld.
    pub fn exact(settings: &Settings, domains: &Domains, tally: &Tally) -> Self {
        let count = |counts: &HashMap<String, i64>, key: &str| Exact {
            count: counts.get(key).copied().unwrap_or(0),
        };
        let dimensions = settings
            .dimensions
            .iter()
            .zip(&tally.dimensions)
            .map(|(dimension, counts)| DimensionFigures {
                dimension: *dimension,
                cells: domains
                    .values(*dimension)
                    .into_iter()
                    .map(|value| ValueCell {
                        cell: count(counts, &value),
                        value,
                    })
                    .collect(),
            })
            .collect();
        let pairs = settings
            .pairs
            .iter()
            .zip(&tally.pairs)
            .map(|([a, b], counts)| {
                let mut cells = Vec::new();
                for left in domains.values(*a) {
                    for right in domains.values(*b) {
                        let key = format!("{left}{JOIN}{right}");
                        cells.push(PairCell {
                            cell: count(counts, &key),
                            values: [left.clone(), right],
                        });
                    }
                }
                let sparse = cells
                    .iter()
                    .filter(|c| (1..settings.min_cell).contains(&c.cell.count))
                    .count();
                let share = sparse * 100 / cells.len().max(1);
                let withheld = (share > usize::from(settings.max_sparse_percent)).then(|| {
                    format!(
                        "{sparse} of its {} cells hold 1 to {} readers, more than the \
                         {} % allowed: crossing {a} with {b} would single readers out",
                        cells.len(),
                        settings.min_cell - 1,
                        settings.max_sparse_percent
                    )
                });
                PairFigures {
                    dimensions: [*a, *b],
                    withheld,
                    cells,
                }
            })
            .collect();
        Self {
            total: Exact { count: tally.total },
            dimensions,
            pairs,
        }
    }

    /// Every count with fresh noise, thresholded at `min_cell`; withheld pairs keep no cells.
    pub fn release(&self, noise: &Noise, min_cell: i64) -> Result<Figures<Cell>, NoNoise> {
        let cell = |exact: &Exact| -> Result<Cell, NoNoise> {
            Ok(Cell::release(noise.noised(exact.count)?, noise, min_cell))
        };
        let mut dimensions = Vec::with_capacity(self.dimensions.len());
        for figures in &self.dimensions {
            let mut cells = Vec::with_capacity(figures.cells.len());
            for c in &figures.cells {
                cells.push(ValueCell {
                    value: c.value.clone(),
                    cell: cell(&c.cell)?,
                });
            }
            dimensions.push(DimensionFigures {
                dimension: figures.dimension,
                cells,
            });
        }
        let mut pairs = Vec::with_capacity(self.pairs.len());
        for figures in &self.pairs {
            let mut cells = Vec::new();
            if figures.withheld.is_none() {
                for c in &figures.cells {
                    cells.push(PairCell {
                        values: c.values.clone(),
                        cell: cell(&c.cell)?,
                    });
                }
            }
            pairs.push(PairFigures {
                dimensions: figures.dimensions,
                withheld: figures.withheld.clone(),
                cells,
            });
        }
        Ok(Figures {
            total: cell(&self.total)?,
            dimensions,
            pairs,
        })
    }
}

impl Figures<Cell> {
    /// The figures as CSV rows: `part,dimension,value,dimension,value,count,low,high,suppressed`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "part,dimension_1,value_1,dimension_2,value_2,count,low,high,suppressed\n",
        );
        let mut row = |part: &str, first: [&str; 2], second: [&str; 2], cell: &Cell| {
            let (count, low, high) = match (cell.count, cell.interval) {
                (Some(count), Some([low, high])) => {
                    (count.to_string(), low.to_string(), high.to_string())
                }
                _ => Default::default(),
            };
            let fields: [&str; 8] = [
                part, first[0], first[1], second[0], second[1], &count, &low, &high,
            ];
            let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&quoted.join(","));
            out.push_str(if cell.suppressed {
                ",true\n"
            } else {
                ",false\n"
            });
        };
        row("total", ["", ""], ["", ""], &self.total);
        for figures in &self.dimensions {
            for c in &figures.cells {
                row(
                    "dimension",
                    [figures.dimension.as_str(), &c.value],
                    ["", ""],
                    &c.cell,
                );
            }
        }
        for figures in &self.pairs {
            let [a, b] = figures.dimensions;
            for c in &figures.cells {
                row(
                    "pair",
                    [a.as_str(), &c.values[0]],
                    [b.as_str(), &c.values[1]],
                    &c.cell,
                );
            }
        }
        out
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break, and kept from being
/// read as a formula by spreadsheets.
fn csv_field(text: &str) -> String {
    let guarded = match text.chars().next() {
        Some('=' | '+' | '-' | '@') if text.parse::<i64>().is_err() => format!("'{text}"),
        _ => text.to_owned(),
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// Sorted readers, stored compactly: each sequence as its distance from the one before, in
/// LEB128 bytes (a few bytes a reader), for comparing a release's members with another's.
pub fn pack_members(sequences: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sequences.len() * 2);
    let mut last = 0i64;
    for &sequence in sequences {
        let mut gap = u64::try_from(sequence - last).unwrap_or(0);
        last = sequence;
        loop {
            let byte = (gap & 0x7f) as u8;
            gap >>= 7;
            if gap == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// The readers [`pack_members`] stored, in order.
pub fn unpack_members(bytes: &[u8]) -> Vec<i64> {
    let mut out = Vec::new();
    let (mut last, mut gap, mut shift) = (0i64, 0u64, 0u32);
    for &byte in bytes {
        gap |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            last += i64::try_from(gap).unwrap_or(0);
            out.push(last);
            (gap, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    out
}

/// How many readers are in one of two sorted lists but not the other.
pub fn difference(a: &[i64], b: &[i64]) -> usize {
    let (mut i, mut j, mut differ) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => (i, differ) = (i + 1, differ + 1),
            std::cmp::Ordering::Greater => (j, differ) = (j + 1, differ + 1),
            std::cmp::Ordering::Equal => (i, j) = (i + 1, j + 1),
        }
    }
    differ + (a.len() - i) + (b.len() - j)
}

/// Whether two memberships are close enough that their figures, side by side, would tell
/// about the few readers between them: they differ, but by fewer than `min_cell`.
pub fn differences_too_few(differ: usize, min_cell: i64) -> bool {
    differ > 0 && (differ as i64) < min_cell
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dimensions: &[Dimension], pairs: &[[Dimension; 2]]) -> Settings {
        Settings {
            dimensions: dimensions.to_vec(),
            pairs: pairs.to_vec(),
            release_epsilon: default_release_epsilon(),
            budget: default_budget(),
            budget_days: 30,
            release_every_days: 1,
            min_cell: 10,
            max_sparse_percent: 25,
        }
    }

    #[test]
    fn bands_cover_every_age_and_tenure() {
        assert_eq!(age_band(Some(2000), 2024), "under_25");
        assert_eq!(age_band(Some(1999), 2024), "25_34");
        assert_eq!(age_band(Some(1959), 2024), "65_plus");
        assert_eq!(age_band(None, 2024), UNKNOWN);
        assert_eq!(age_band(Some(2030), 2024), UNKNOWN);
        assert_eq!(tenure_band(None), NONE);
        assert_eq!(tenure_band(Some(0)), "under_1");
        assert_eq!(tenure_band(Some(12)), "10_plus");
    }

    #[test]
    fn settings_name_what_is_wrong() {
        use Dimension::*;
        let mut bad = settings(&[Region, Region], &[[Region, Title], [AgeBand, AgeBand]]);
        bad.min_cell = 5;
        bad.release_epsilon = Epsilon::from_thousandths(4_000);
        let mut errors = FieldErrors::default();
        bad.validate("settings", &mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "settings.dimensions",
                "settings.pairs[0]",
                "settings.pairs[1]",
                "settings.release_epsilon",
                "settings.min_cell"
            ]
        );
        let mut errors = FieldErrors::default();
        settings(&[Region, Title], &[[Title, Region]]).validate("settings", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn sensitivity_counts_every_cell_one_reader_can_move() {
        use Dimension::*;
        let domains = Domains {
            titles: vec!["a".into(), "b".into(), "c".into()],
            clubs: 2,
            ..Domains::default()
        };
        // 1 (total) + 1 (region) + 3 (titles) + 2 (clubs) + 3 (region × title).
        let s = settings(&[Region, Title, ClubTier], &[[Region, Title]]);
        assert_eq!(s.sensitivity(&domains), 10);
    }

    #[test]
    fn tallies_lay_out_every_cell_and_withhold_sparse_pairs() {
        use Dimension::*;
        let s = settings(&[AgeBand, Format], &[[AgeBand, Format]]);
        let domains = Domains::default();
        let (mut tally, mut key) = (Tally::new(&s), String::new());
        for _ in 0..30 {
            tally.count(&s, &[vec!["25_34"], vec!["print"]], &mut key);
        }
        let mut other = Tally::new(&s);
        other.count(&s, &[vec!["65_plus"], vec!["digital"]], &mut key);
        tally.merge(other);
        let exact = Figures::exact(&s, &domains, &tally);
        assert_eq!(exact.total.count, 31);
        assert_eq!(exact.dimensions[0].cells.len(), AGE_BANDS.len());
        let young = &exact.dimensions[0].cells[1];
        assert_eq!((young.value.as_str(), young.cell.count), ("25_34", 30));
        assert_eq!(exact.pairs[0].cells.len(), AGE_BANDS.len() * FORMATS.len());
        // One sparse cell of 28 is under a quarter.
        assert_eq!(exact.pairs[0].withheld, None);
        let mut strict = s.clone();
        strict.max_sparse_percent = 0;
        let exact = Figures::exact(&strict, &domains, &tally);
        assert!(exact.pairs[0].withheld.is_some());
        let noise = Noise::new(Epsilon::from_thousandths(1_000), 1);
        let released = exact.release(&noise, 10).expect("noise");
        assert!(released.pairs[0].cells.is_empty());
        let csv = released.to_csv();
        assert!(csv.starts_with("part,dimension_1"));
        assert_eq!(csv.lines().count(), 1 + 1 + AGE_BANDS.len() + FORMATS.len());
    }

    /// Every noise of a release, as released minus exact, over all cells.
    fn noises(exact: &Figures<Exact>, released: &Figures<Cell>) -> Vec<i64> {
        let count = |c: &Cell| c.count.expect("nothing suppressed");
        let mut noises = vec![count(&released.total) - exact.total.count];
        let dimensions = exact.dimensions.iter().zip(&released.dimensions);
        for (e, r) in dimensions {
            for (e, r) in e.cells.iter().zip(&r.cells) {
                noises.push(count(&r.cell) - e.cell.count);
            }
        }
        for (e, r) in exact.pairs.iter().zip(&released.pairs) {
            for (e, r) in e.cells.iter().zip(&r.cells) {
                noises.push(count(&r.cell) - e.cell.count);
            }
        }
        noises
    }

    #[test]
    fn releases_noise_every_cell_as_the_settings_epsilon_and_sensitivity_say() {
        use Dimension::*;
        const RELEASES: usize = 1_000;
        let mut s = settings(&[AgeBand, Format], &[[AgeBand, Format]]);
        s.release_epsilon = Epsilon::from_thousandths(2_000);
        let domains = Domains::default();
        // 1 (total) + 1 + 1 + 1 (the pair): scale 4 / 2 = 2.
        assert_eq!(s.sensitivity(&domains), 4);
        let (mut tally, mut key) = (Tally::new(&s), String::new());
        for _ in 0..1_000 {
            tally.count(&s, &[vec!["25_34"], vec!["print"]], &mut key);
        }
        let exact = Figures::exact(&s, &domains, &tally);
        let noise = Noise::new(s.release_epsilon, s.sensitivity(&domains));
        let mut draws = Vec::new();
        for _ in 0..RELEASES {
            // A minimum far below zero suppresses nothing, so that every noise is seen.
            let released = exact.release(&noise, i64::MIN).expect("noise");
            draws.extend(noises(&exact, &released));
        }
        let n = draws.len() as f64;
        let variance = noise.variance();
        let mean = draws.iter().sum::<i64>() as f64 / n;
        assert!(mean.abs() < 6.0 * (variance / n).sqrt(), "mean {mean}");
        let spread = draws.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n;
        let error = (5.0 * variance * variance / n).sqrt();
        assert!(
            (spread - variance).abs() < 6.0 * error,
            "variance {spread}, the mechanism's {variance}"
        );
        let t = noise.half_width();
        let beyond = draws.iter().filter(|x| x.abs() > t).count() as f64 / n;
        let expected = noise.tail(t);
        let error = (expected * (1.0 - expected) / n).sqrt();
        assert!(
            (beyond - expected).abs() < 6.0 * error,
            "{beyond} beyond the 95 % half-width {t}, the mechanism's {expected}"
        );
    }

    #[test]
    fn members_pack_and_differ() {
        let members = [100_000, 100_001, 100_500, 9_000_000];
        assert_eq!(unpack_members(&pack_members(&members)), members);
        assert!(pack_members(&members).len() < 12);
        assert_eq!(difference(&[1, 2, 3], &[2, 3, 4, 5]), 3);
        assert!(differences_too_few(1, 10));
        assert!(!differences_too_few(0, 10));
        assert!(!differences_too_few(10, 10));
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("north, east"), "\"north, east\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("-3"), "-3");
    }
}
