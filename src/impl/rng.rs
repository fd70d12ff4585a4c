//! SplitMix64 (Steele, Lea, Flood 2014): the crate's one pseudo-random generator, behind the
//! synthetic workloads ([`Rng`]) and the seeded span ids of simulations.

use super::synth::LengthDist;

/// The increment of SplitMix64's state (the golden ratio in 64 bits).
pub(crate) const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: the 64 random bits for a state that was just advanced by
/// [`GAMMA`]. Shared with the span-id generator, whose state is atomic.
#[inline]
pub(crate) fn mix(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: a small, well-studied generator; plenty for workloads and fully reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi]` (`lo` when `hi <= lo`), also for the whole `u64` range.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        // In u128: `hi - lo + 1` is 2^64 for the whole range. The product shifted down is
        // below `span`, so the sum stays at most `hi`.
        let span = u128::from(hi - lo) + 1;
        lo + ((u128::from(self.next_u64()) * span) >> 64) as u64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponentially distributed with the given rate.
    pub fn exponential(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate.max(f64::MIN_POSITIVE)
    }

    /// A standard normal deviate (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A length from `d`.
    pub fn length(&mut self, d: &LengthDist) -> u64 {
        let x = (d.median.max(1.0).ln() + d.sigma * self.normal()).exp();
        (x.round() as u64).clamp(d.min.max(1), d.max.max(d.min.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws<T>(n: usize, mut f: impl FnMut() -> T) -> Vec<T> {
        (0..n).map(|_| f()).collect()
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        // Reference values of SplitMix64 (Steele, Lea, Flood 2014): seed 0 starts 0xe220a8397b1dcdaf.
        let mut r = Rng::new(0);
        assert_eq!((r.next_u64(), r.next_u64()), (0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4));
        let mut r = Rng::new(1);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [0x910a_2dec_8902_5cc1, 0xbeeb_8da1_658e_ec67, 0xf893_a2ee_fb32_555e]
        );
    }

    #[test]
    fn unit_is_uniform_on_zero_to_one() {
        let mut r = Rng::new(7);
        let v = draws(20_000, || r.unit());
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        assert!((mean(&v) - 0.5).abs() < 0.01, "{}", mean(&v));
        assert!(v.iter().any(|x| *x < 0.001) && v.iter().any(|x| *x > 0.999));
    }

    #[test]
    fn range_covers_both_ends_and_nothing_else() {
        let mut r = Rng::new(7);
        let v = draws(10_000, || r.range(3, 9));
        assert!(v.iter().all(|x| (3..=9).contains(x)));
        for x in 3..=9 {
            let share = v.iter().filter(|y| **y == x).count() as f64 / v.len() as f64;
            assert!((share - 1.0 / 7.0).abs() < 0.02, "{x}: {share}");
        }
        assert_eq!((r.range(5, 5), r.range(7, 3)), (5, 7));
    }

    #[test]
    fn range_over_the_whole_u64_range_does_not_overflow() {
        // `hi - lo + 1` overflowed here before the span was computed in u128.
        let mut r = Rng::new(7);
        let v = draws(1000, || r.range(0, u64::MAX));
        assert!(v.iter().any(|x| *x > u64::MAX / 2) && v.iter().any(|x| *x < u64::MAX / 2));
        assert!(draws(1000, || r.range(u64::MAX - 1, u64::MAX)).iter().all(|x| *x >= u64::MAX - 1));
    }

    #[test]
    fn chance_has_its_probability() {
        let mut r = Rng::new(7);
        assert!(draws(1000, || r.chance(0.0)).iter().all(|c| !c));
        assert!(draws(1000, || r.chance(1.0)).iter().all(|c| *c));
        let hits = draws(20_000, || r.chance(0.3)).iter().filter(|c| **c).count() as f64 / 20_000.0;
        assert!((hits - 0.3).abs() < 0.015, "{hits}");
    }

    #[test]
    fn exponential_and_normal_have_their_moments() {
        let mut r = Rng::new(7);
        let e = draws(40_000, || r.exponential(4.0));
        assert!(e.iter().all(|x| *x >= 0.0));
        assert!((mean(&e) - 0.25).abs() < 0.01, "{}", mean(&e));
        let n = draws(40_000, || r.normal());
        let m = mean(&n);
        let var = n.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n.len() as f64;
        assert!(m.abs() < 0.02 && (var - 1.0).abs() < 0.03, "mean {m}, variance {var}");
        assert!(n.iter().filter(|x| **x < -1.0).count() > 5_000, "both tails");
    }

    #[test]
    fn lengths_have_their_median_and_stay_in_bounds() {
        let mut r = Rng::new(7);
        let d = LengthDist { median: 100.0, sigma: 0.8, min: 5, max: 400 };
        let mut v = draws(20_001, || r.length(&d));
        v.sort_unstable();
        assert!((95..=105).contains(&v[10_000]), "median {}", v[10_000]);
        assert_eq!((v[0], v[20_000]), (5, 400), "clamped at both ends");
        let fixed = LengthDist { median: 42.0, sigma: 0.0, min: 1, max: 1000 };
        assert!(draws(100, || r.length(&fixed)).iter().all(|x| *x == 42));
    }
}
