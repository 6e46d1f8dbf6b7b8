//! Differential privacy for the figures advertisers see: discrete Laplace noise sampled
//! exactly, in integer and rational arithmetic, from OpenSSL's cryptographic generator
//! (OpenDP's CKS20 sampler), the 95 % interval of a noised count, and small cells suppressed.

use std::fmt;

use dashu::integer::IBig;
use dashu::rational::RBig;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The mechanism every released count is noised by, as answers name it.
pub const MECHANISM: &str = "discrete_laplace";
/// The least minimum cell size a publisher may set: a smaller one singles readers out.
pub const MIN_CELL_FLOOR: i64 = 10;
/// The minimum cell size unless the publisher sets another.
pub const DEFAULT_MIN_CELL: i64 = 50;
/// The most one release or one period's budget may spend.
pub const MAX_EPSILON: Epsilon = Epsilon(10_000);
/// How sure each cell's interval is.
pub const CONFIDENCE: f64 = 0.95;

/// A privacy-loss parameter, kept in thousandths so that budgets add and subtract exactly.
/// Written as a decimal number, e.g. `0.5` (in API types: `#[schema(value_type = f64)]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epsilon(u32);

impl Epsilon {
    /// `value` to the nearest thousandth: more than 0 and at most [`MAX_EPSILON`].
    pub fn parse(value: f64) -> Result<Self, String> {
        let most = MAX_EPSILON.as_f64();
        if !value.is_finite() || value <= 0.0 || value > most {
            return Err(format!(
                "must be more than 0 and at most {most}, not {value}"
            ));
        }
        let thousandths = (value * 1000.0).round();
        if thousandths < 1.0 {
            return Err(format!("must be at least 0.001, not {value}"));
        }
        // In range: at most MAX_EPSILON's thousandths, checked above.
        Ok(Self(thousandths as u32))
    }

    pub const fn from_thousandths(thousandths: u32) -> Self {
        Self(thousandths)
    }

    pub fn thousandths(self) -> u32 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// What is left after spending `spent`, or nothing when it would overdraw.
    pub fn checked_sub(self, spent: Self) -> Option<Self> {
        self.0.checked_sub(spent.0).map(Self)
    }

    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Epsilon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

impl Serialize for Epsilon {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Epsilon {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// The generator could not give the randomness a sample needs; nothing may be released.
#[derive(Debug, thiserror::Error)]
#[error("no noise could be sampled: {0}")]
pub struct NoNoise(String);

/// Discrete Laplace noise for counts a reader can move by at most `sensitivity` in all (L1),
/// spending `epsilon`: scale `sensitivity / epsilon`, so `P(x) ∝ exp(-|x| / scale)`.
#[derive(Debug, Clone)]
pub struct Noise {
    scale: RBig,
    /// `exp(-1 / scale)`, for the interval (public parameters only, so floating point
    /// leaks nothing here).
    decay: f64,
}

impl Noise {
    pub fn new(epsilon: Epsilon, sensitivity: u32) -> Self {
        let scale = RBig::from_parts(
            IBig::from(u64::from(sensitivity.max(1)) * 1000),
            epsilon.thousandths().max(1).into(),
        );
        let scale_f = f64::from(sensitivity.max(1)) / epsilon.as_f64().max(0.001);
        Self {
            scale,
            decay: (-1.0 / scale_f).exp(),
        }
    }

    /// `count` with fresh noise added.
    pub fn noised(&self, count: i64) -> Result<i64, NoNoise> {
        let sample = opendp::traits::samplers::sample_discrete_laplace(self.scale.clone())
            .map_err(|e| NoNoise(e.to_string()))?;
        let noise = i64::try_from(sample).map_err(|e| NoNoise(e.to_string()))?;
        Ok(count.saturating_add(noise))
    }

    /// The least `t` such that the noise falls within `-t..=t` with at least
    /// [`CONFIDENCE`]: `P(|X| > t) = 2 q^(t+1) / (1 + q)` with `q = exp(-1 / scale)`.
    pub fn half_width(&self) -> i64 {
        let q = self.decay;
        if q <= 0.0 {
            return 0;
        }
        let tail = (1.0 - CONFIDENCE) / 2.0;
        let t = ((tail * (1.0 + q)).ln() / q.ln()).ceil() - 1.0;
        // A count's noise never needs more than i64 to state.
        t.clamp(0.0, 1e15) as i64
    }

    /// The probability that the noise is more than `t` away from zero.
    pub fn tail(&self, t: i64) -> f64 {
        let q = self.decay;
        let exponent = i32::try_from(t.saturating_add(1)).unwrap_or(i32::MAX);
        2.0 * q.powi(exponent) / (1.0 + q)
    }

    /// The noise's variance, `2q / (1 - q)^2`.
    pub fn variance(&self) -> f64 {
        let q = self.decay;
        2.0 * q / (1.0 - q).powi(2)
    }
}

/// One released cell: a noised count with its interval, or suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cell {
    /// The noised count; absent when suppressed.
    pub count: Option<i64>,
    /// The 95 % interval around the noised count, never below 0; absent when suppressed.
    pub interval: Option<[i64; 2]>,
    /// The noised count fell below the minimum cell size, so it is not shown.
    pub suppressed: bool,
}

impl Cell {
    /// `noised` (a count with noise from `noise` already added) as released under
    /// `min_cell`. Deciding on the noised count, never the exact one, keeps the choice
    /// itself private.
    pub fn release(noised: i64, noise: &Noise, min_cell: i64) -> Self {
        if noised < min_cell {
            return Self {
                count: None,
                interval: None,
                suppressed: true,
            };
        }
        let width = noise.half_width();
        Self {
            count: Some(noised),
            interval: Some([
                noised.saturating_sub(width).max(0),
                noised.saturating_add(width),
            ]),
            suppressed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epsilon(value: f64) -> Epsilon {
        Epsilon::parse(value).expect("an epsilon")
    }

    #[test]
    fn epsilon_is_kept_in_thousandths_and_refuses_what_is_no_budget() {
        assert_eq!(epsilon(0.5).thousandths(), 500);
        assert_eq!(epsilon(0.1234).thousandths(), 123);
        assert_eq!(epsilon(1.0).to_string(), "1");
        for bad in [0.0, -1.0, 0.0004, 10.5, f64::NAN, f64::INFINITY] {
            assert!(Epsilon::parse(bad).is_err(), "{bad} was taken");
        }
        let budget = epsilon(1.0);
        assert_eq!(budget.checked_sub(epsilon(0.3)), Some(epsilon(0.7)));
        assert_eq!(epsilon(0.3).checked_sub(budget), None);
        let read: Epsilon = serde_json::from_str("0.25").unwrap();
        assert_eq!(serde_json::to_string(&read).unwrap(), "0.25");
        assert!(serde_json::from_str::<Epsilon>("0").is_err());
    }

    #[test]
    fn the_interval_covers_the_stated_share_of_the_noise() {
        // Scale 1: q = 1/e, P(|X| > 3) = 2 q^4 / (1 + q) = 0.027, P(|X| > 2) = 0.073.
        let unit = Noise::new(epsilon(1.0), 1);
        assert_eq!(unit.half_width(), 3);
        for (budget, sensitivity) in [(0.1, 1), (0.5, 7), (2.0, 1), (9.0, 1)] {
            let noise = Noise::new(epsilon(budget), sensitivity);
            let t = noise.half_width();
            assert!(noise.tail(t) <= 1.0 - CONFIDENCE, "epsilon {budget}");
            assert!(
                t == 0 || noise.tail(t - 1) > 1.0 - CONFIDENCE,
                "epsilon {budget}"
            );
        }
    }

    #[test]
    fn small_noised_cells_are_suppressed_and_intervals_stay_above_zero() {
        let noise = Noise::new(epsilon(1.0), 1);
        let small = Cell::release(49, &noise, DEFAULT_MIN_CELL);
        assert!(small.suppressed);
        assert_eq!((small.count, small.interval), (None, None));
        let shown = Cell::release(50, &noise, DEFAULT_MIN_CELL);
        assert!(!shown.suppressed);
        assert_eq!(shown.count, Some(50));
        let [low, high] = shown.interval.unwrap();
        assert_eq!(50 - low, high - 50);
        let floor = Cell::release(2, &Noise::new(epsilon(0.01), 1), 0);
        assert_eq!(floor.interval.unwrap()[0], 0);
    }

    /// The noise matches the discrete Laplace distribution it claims: mean, variance, the
    /// share beyond the 95 % half-width, and each value's frequency near zero, over 40,000
    /// draws at two budgets. The bounds are about six standard errors wide, so a correct
    /// sampler fails them less than once in a hundred million runs; the draws come from the
    /// cryptographic generator, which takes no seed.
    #[test]
    fn the_noise_has_the_discrete_laplace_distribution_it_claims() {
        const DRAWS: usize = 40_000;
        for (budget, sensitivity) in [(0.5, 1), (1.0, 4)] {
            let noise = Noise::new(epsilon(budget), sensitivity);
            let draws: Vec<i64> = (0..DRAWS)
                .map(|_| noise.noised(0).expect("a sample"))
                .collect();
            let n = DRAWS as f64;
            let variance = noise.variance();
            let mean = draws.iter().sum::<i64>() as f64 / n;
            assert!(
                mean.abs() < 6.0 * (variance / n).sqrt(),
                "mean {mean} at epsilon {budget}"
            );
            let spread = draws.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n;
            // The fourth moment of a Laplace-like law is about 6 variance^2.
            let error = (5.0 * variance * variance / n).sqrt();
            assert!(
                (spread - variance).abs() < 6.0 * error,
                "variance {spread} against {variance} at epsilon {budget}"
            );
            let t = noise.half_width();
            let share = draws.iter().filter(|x| x.abs() > t).count() as f64 / n;
            let expected = noise.tail(t);
            let error = (expected * (1.0 - expected) / n).sqrt();
            assert!(
                (share - expected).abs() < 6.0 * error,
                "tail {share} against {expected} at epsilon {budget}"
            );
            let q = noise.decay;
            for value in -3..=3_i64 {
                let p = (1.0 - q) / (1.0 + q) * q.powi(value.abs() as i32);
                let seen = draws.iter().filter(|&&x| x == value).count() as f64 / n;
                let error = (p * (1.0 - p) / n).sqrt();
                assert!(
                    (seen - p).abs() < 6.0 * error,
                    "P({value}) {seen} against {p} at epsilon {budget}"
                );
            }
        }
    }
}
