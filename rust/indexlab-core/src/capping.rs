//! Capped market-cap weighting, the fixed convention of docs/conventions.md, capping.
//!
//! With market caps `m_i > 0` and caps `c_i` (sum of caps >= 1), the weights are
//! `w_i = min(c_i, k * m_i)` with `k` chosen so that `sum(w) = 1`. Iterative redistribution of
//! the excess in proportion to the uncapped names converges to exactly this; we solve for `k`
//! directly instead: `f(k) = sum_i min(c_i, k m_i)` is piecewise linear and increasing, with a
//! kink at `k_i = c_i / m_i` where name `i` hits its cap. Sorting the kinks and walking them
//! finds `k` in O(n log n), with no iteration tolerance.

use crate::error::{Error, Result};

/// Slack allowed when checking that caps can reach 100% (floating-point sums of caps).
const FEASIBILITY_SLACK: f64 = 1e-12;

/// Validated per-name caps: `cap` combined with the optional per-name caps by minimum.
fn effective_caps(n: usize, cap: f64, per_name: Option<&[f64]>) -> Result<Vec<f64>> {
    if !(cap.is_finite() && cap > 0.0) {
        return Err(Error::Data(format!(
            "cap must be a finite number in (0, 1], got {cap}"
        )));
    }
    let mut caps = vec![cap.min(1.0); n];
    if let Some(pn) = per_name {
        if pn.len() != n {
            return Err(Error::Data(format!(
                "caps has {} entries but market_caps has {n}: give one cap per name",
                pn.len()
            )));
        }
        for (i, (&c, slot)) in pn.iter().zip(caps.iter_mut()).enumerate() {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::Data(format!(
                    "caps[{i}] is {c}: per-name caps must be finite and > 0"
                )));
            }
            *slot = slot.min(c);
        }
    }
    Ok(caps)
}

fn check_market_caps(market_caps: &[f64]) -> Result<()> {
    if market_caps.is_empty() {
        return Err(Error::Data(
            "market_caps is empty: capped weighting needs at least one name".into(),
        ));
    }
    for (i, &m) in market_caps.iter().enumerate() {
        if !(m.is_finite() && m > 0.0) {
            return Err(Error::Data(format!(
                "market_caps[{i}] is {m}: market caps must be finite and > 0"
            )));
        }
    }
    Ok(())
}

fn check_feasible(caps: &[f64], uniform_cap: f64, per_name_given: bool) -> Result<()> {
    let n = caps.len();
    let total = exact_sum(caps);
    if total < 1.0 - FEASIBILITY_SLACK {
        let msg = if per_name_given {
            format!(
                "infeasible caps: {n} names with caps summing to {:.4}% < 100%; \
                 raise the caps or add names",
                total * 100.0
            )
        } else {
            format!(
                "infeasible cap: {n} names x {:.4}% cap = {:.4}% < 100%; \
                 the cap must be at least {:.4}% (1/{n}) or you need at least {} names",
                uniform_cap * 100.0,
                total * 100.0,
                100.0 / n as f64,
                (1.0 / uniform_cap).ceil() as usize
            )
        };
        return Err(Error::Infeasible(msg));
    }
    Ok(())
}

/// Capped weights `w_i = min(c_i, k m_i)` summing to 1.
///
/// `cap` applies to every name; `per_name` (optional) gives each name its own cap, combined
/// with `cap` by minimum. Errors: empty input, non-finite or non-positive market caps or caps
/// ([`Error::Data`]), caps summing below 100% ([`Error::Infeasible`]).
///
/// Any finite positive market caps work, subnormal or near `f64::MAX`: only ratios of market
/// caps enter the weights, computed relative to the largest uncapped name (see
/// [`solve_capped`]), so scaling every market cap by the same factor gives the same weights.
pub fn cap_weights(market_caps: &[f64], cap: f64, per_name: Option<&[f64]>) -> Result<Vec<f64>> {
    check_market_caps(market_caps)?;
    let caps = effective_caps(market_caps.len(), cap, per_name)?;
    check_feasible(&caps, cap, per_name.is_some())?;
    Ok(solve_capped(market_caps, &caps).weights)
}

/// Hang Seng-style capping factors: `CF_i = capped_i / uncapped_i`, scaled so the largest is 1.
///
/// Uncapped names all share the largest factor (1); a capped name's factor is below 1 by the
/// share of its weight that the cap removed. Multiplying each name's free-float market cap by its
/// factor and renormalising gives back [`cap_weights`].
pub fn capping_factors(
    market_caps: &[f64],
    cap: f64,
    per_name: Option<&[f64]>,
) -> Result<Vec<f64>> {
    check_market_caps(market_caps)?;
    let caps = effective_caps(market_caps.len(), cap, per_name)?;
    check_feasible(&caps, cap, per_name.is_some())?;
    Ok(solve_capped(market_caps, &caps).factors(market_caps, &caps))
}

/// A positive number as `mant * 2^exp` with `mant` in `[0.5, 1)`: ratios of market caps and
/// caps (`c_i / m_i` spans about 2^2100 for finite inputs) without overflow or underflow.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Wide {
    mant: f64,
    exp: i32,
}

impl Wide {
    /// `x` (finite, >= 0) split into mantissa and exponent; zero is `0 * 2^0`.
    fn of(x: f64) -> Self {
        if x == 0.0 {
            return Self { mant: 0.0, exp: 0 };
        }
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        if biased == 0 {
            // Subnormal: scale into the normal range first (exact).
            let up = Self::of(x * TWO_POW_64);
            return Self {
                mant: up.mant,
                exp: up.exp - 64,
            };
        }
        let mant = f64::from_bits((bits & !(0x7ff_u64 << 52)) | (1022_u64 << 52));
        Self {
            mant,
            exp: biased - 1022,
        }
    }

    /// `a / b` for finite `a >= 0` and `b > 0` (one rounding, in the mantissa division).
    fn quotient(a: f64, b: f64) -> Self {
        let (a, b) = (Self::of(a), Self::of(b));
        let mut q = Self {
            mant: a.mant / b.mant,
            exp: a.exp - b.exp,
        };
        if q.mant >= 1.0 {
            q.mant *= 0.5;
            q.exp += 1;
        }
        q
    }

    /// `self / other` as an `f64` (`inf` for a zero `other`, 0 where it underflows).
    fn ratio(self, other: Self) -> f64 {
        if other.mant == 0.0 {
            return f64::INFINITY;
        }
        ldexp(self.mant / other.mant, self.exp - other.exp)
    }

    fn total_cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.mant == 0.0 || other.mant == 0.0 {
            return self.mant.total_cmp(&other.mant);
        }
        self.exp
            .cmp(&other.exp)
            .then(self.mant.total_cmp(&other.mant))
    }
}

const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// `x * 2^e` in steps, so that no power of two on the way overflows or underflows.
fn ldexp(mut x: f64, mut e: i32) -> f64 {
    let step = 2f64.powi(1000);
    while e > 1000 && x.is_finite() && x != 0.0 {
        x *= step;
        e -= 1000;
    }
    while e < -1000 && x != 0.0 {
        x /= step;
        e += 1000;
    }
    x * 2f64.powi(e)
}

/// An exact running sum of floats as non-overlapping partials (Shewchuk's algorithm, the one
/// behind Python's `math.fsum`): `1 - sum(capped caps)` can be far smaller than the caps, and a
/// rounded running difference would lose it (or turn it negative).
struct ExactSum {
    partials: Vec<f64>,
}

impl ExactSum {
    fn new(x: f64) -> Self {
        Self { partials: vec![x] }
    }

    fn add(&mut self, mut x: f64) {
        let mut kept = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
    }

    /// The sum, within one unit in the last place.
    fn value(&self) -> f64 {
        let mut hi = 0.0;
        for &p in self.partials.iter().rev() {
            let x = hi;
            hi = x + p;
            if p - (hi - x) != 0.0 {
                break;
            }
        }
        hi
    }
}

fn exact_sum(values: &[f64]) -> f64 {
    let mut s = ExactSum::new(0.0);
    for &x in values {
        s.add(x);
    }
    s.value()
}

/// Neumaier's compensated sum (error about 2 ulp, independent of the count for positive values).
fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut comp) = (0.0_f64, 0.0_f64);
    for x in values {
        let t = sum + x;
        comp += if sum.abs() >= x.abs() {
            (sum - t) + x
        } else {
            (x - t) + sum
        };
        sum = t;
    }
    sum + comp
}

/// A solved capping: the weights, which names sit at their cap, and `k` of the convention
/// (`w_i = k m_i` for the others; `None` when every name is at its cap).
struct Capped {
    weights: Vec<f64>,
    capped: Vec<bool>,
    k: Option<Wide>,
}

impl Capped {
    /// `CF_i = (w_i / m_i) / max_j (w_j / m_j)`: 1 for uncapped names, `c_i / (k m_i)` for
    /// capped ones; with every name capped, the kinks `c_i / m_i` over the largest kink.
    fn factors(&self, m: &[f64], caps: &[f64]) -> Vec<f64> {
        let kinks: Vec<Wide> = m
            .iter()
            .zip(caps)
            .map(|(&m, &c)| Wide::quotient(c, m))
            .collect();
        let top = match self.k {
            Some(k) => k,
            None => kinks
                .iter()
                .copied()
                .max_by(|a, b| a.total_cmp(b))
                .unwrap_or(Wide { mant: 0.5, exp: 1 }),
        };
        kinks
            .iter()
            .zip(&self.capped)
            .map(|(kink, &capped)| {
                if capped || self.k.is_none() {
                    kink.ratio(top).min(1.0)
                } else {
                    1.0
                }
            })
            .collect()
    }
}

/// Passes of breacher fixing before switching to the sort-based walk (realistic inputs need
/// two to five; adversarial geometric inputs would need one pass per name).
const MAX_PASSES: usize = 16;

/// The solver proper, on validated input with `sum(caps) >= 1`.
///
/// Fixing every name over the cap at its cap and rescaling the rest only ever raises `k`, so
/// names fixed once stay capped and the passes reach the exact fixed point; each pass is O(n)
/// with no sort, which beats sorting for the few passes real markets need.
///
/// Each pass works relative to the largest uncapped market cap `s` (`m_i / s` in (0, 1], their
/// sum in [1, n]), so nothing overflows near `f64::MAX` or vanishes among subnormals, and equal
/// inputs take exactly the same operations. `1 - sum(capped caps)` is summed exactly.
fn solve_capped(m: &[f64], caps: &[f64]) -> Capped {
    let n = m.len();
    let mut free: Vec<usize> = (0..n).collect();
    let mut capped = vec![false; n];
    let mut left = ExactSum::new(1.0);
    for _ in 0..MAX_PASSES {
        if free.is_empty() {
            break;
        }
        let scale = free.iter().map(|&i| m[i]).fold(0.0, f64::max);
        let mass = compensated_sum(free.iter().map(|&i| m[i] / scale));
        let k = left.value().max(0.0) / mass;
        let before = free.len();
        free.retain(|&i| {
            let breach = k * (m[i] / scale) > caps[i];
            if breach {
                left.add(-caps[i]);
                capped[i] = true;
            }
            !breach
        });
        if free.len() == before {
            let mut w = caps.to_vec();
            for &i in &free {
                w[i] = k * (m[i] / scale);
            }
            return Capped {
                weights: w,
                capped,
                k: Some(Wide::quotient(k, scale)),
            };
        }
    }
    solve_sorted(m, caps)
}

/// Exact O(n log n) solve by walking the kinks `c_i / m_i` in increasing order.
fn solve_sorted(m: &[f64], caps: &[f64]) -> Capped {
    let n = m.len();
    let kinks: Vec<Wide> = (0..n).map(|i| Wide::quotient(caps[i], m[i])).collect();
    // Names in the order they hit their cap as k grows: by c_i / m_i, ties by position so the
    // result never depends on sort stability.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| kinks[a].total_cmp(&kinks[b]).then(a.cmp(&b)));

    // For each position: the largest market cap from there on (`scale`) and the market caps
    // from there on relative to it (`mass`, in [1, n]), summed from the small end.
    let mut scale = vec![0.0_f64; n + 1];
    let mut mass = vec![0.0; n + 1];
    for pos in (0..n).rev() {
        let mi = m[order[pos]];
        let s = scale[pos + 1].max(mi);
        scale[pos] = s;
        mass[pos] = mass[pos + 1] * (scale[pos + 1] / s) + mi / s;
    }
    let mut left = ExactSum::new(1.0);
    let mut pos = 0;
    let mut k = 0.0;
    while pos < n {
        // Try: the first `pos` names in `order` sit at their caps, all others are uncapped.
        let i = order[pos];
        k = left.value().max(0.0) / mass[pos];
        if k * (m[i] / scale[pos]) <= caps[i] {
            break;
        }
        // Names with the same kink hit their caps together (equal inputs, equal weights).
        let kink = kinks[i];
        while pos < n && kinks[order[pos]].total_cmp(&kink).is_eq() {
            left.add(-caps[order[pos]]);
            pos += 1;
        }
    }

    let mut capped = vec![false; n];
    if pos == n {
        // Every name is at its cap: only possible when the caps sum to 100% (within the slack).
        let total = exact_sum(caps);
        return Capped {
            weights: caps.iter().map(|c| c / total).collect(),
            capped: vec![true; n],
            k: None,
        };
    }
    let mut w = vec![0.0; n];
    for (q, &i) in order.iter().enumerate() {
        if q < pos {
            w[i] = caps[i];
            capped[i] = true;
        } else {
            w[i] = k * (m[i] / scale[pos]);
        }
    }
    Capped {
        weights: w,
        capped,
        k: Some(Wide::quotient(k, scale[pos])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn no_cap_binds_gives_plain_weights() {
        let w = cap_weights(&[1.0, 2.0, 3.0, 4.0], 0.5, None).unwrap();
        for (wi, mi) in w.iter().zip([0.1, 0.2, 0.3, 0.4]) {
            assert!(close(*wi, mi));
        }
    }

    #[test]
    fn hand_worked_redistribution() {
        // m = 50, 30, 10, 10 with a 40% cap: the first name is capped at 0.4 and the
        // remaining 0.6 is split 30:10:10 -> 0.36, 0.12, 0.12. No second round is needed.
        let w = cap_weights(&[50.0, 30.0, 10.0, 10.0], 0.4, None).unwrap();
        let expected = [0.4, 0.36, 0.12, 0.12];
        for (a, b) in w.iter().zip(expected) {
            assert!(close(*a, b), "{w:?}");
        }
    }

    #[test]
    fn hand_worked_second_round() {
        // m = 60, 25, 10, 5, cap 30%: capping the first leaves 0.7 over 40 -> 25 gets 0.4375 >
        // 0.3, so it is capped too; 0.4 over 15 -> 10 gets 0.2667, 5 gets 0.1333.
        let w = cap_weights(&[60.0, 25.0, 10.0, 5.0], 0.3, None).unwrap();
        let expected = [0.3, 0.3, 0.4 * 10.0 / 15.0, 0.4 * 5.0 / 15.0];
        for (a, b) in w.iter().zip(expected) {
            assert!(close(*a, b), "{w:?}");
        }
    }

    #[test]
    fn exactly_full_caps() {
        let w = cap_weights(&[5.0, 1.0, 1.0, 1.0], 0.25, None).unwrap();
        assert!(w.iter().all(|x| close(*x, 0.25)));
    }

    #[test]
    fn per_name_caps_combine_by_minimum() {
        // Name 1 has its own 10% cap; the global cap of 50% binds nobody else.
        let w = cap_weights(&[30.0, 40.0, 30.0], 0.5, Some(&[1.0, 0.1, 1.0])).unwrap();
        assert!(close(w[1], 0.1));
        assert!(close(w[0], 0.45) && close(w[2], 0.45));
    }

    #[test]
    fn infeasible_message_names_the_numbers() {
        let err = cap_weights(&[1.0; 30], 0.03, None).unwrap_err();
        let Error::Infeasible(msg) = err else {
            panic!("expected Infeasible, got {err:?}")
        };
        assert!(
            msg.contains("30 names x 3.0000% cap = 90.0000% < 100%"),
            "{msg}"
        );
        assert!(msg.contains("34 names"), "{msg}");
    }

    #[test]
    fn bad_inputs_are_data_errors() {
        for bad in [f64::NAN, 0.0, -1.0, f64::INFINITY] {
            assert!(matches!(
                cap_weights(&[1.0, bad], 0.8, None),
                Err(Error::Data(_))
            ));
        }
        assert!(matches!(cap_weights(&[], 0.1, None), Err(Error::Data(_))));
        assert!(matches!(
            cap_weights(&[1.0, 2.0], -0.1, None),
            Err(Error::Data(_))
        ));
        assert!(matches!(
            cap_weights(&[1.0, 2.0], 0.8, Some(&[0.5])),
            Err(Error::Data(_))
        ));
    }

    #[test]
    fn capping_factors_hand_worked() {
        // From hand_worked_redistribution: uncapped weights 0.5, 0.3, 0.1, 0.1; capped 0.4,
        // 0.36, 0.12, 0.12. Ratios 0.8, 1.2, 1.2, 1.2 -> scaled by 1.2: 2/3, 1, 1, 1.
        let cf = capping_factors(&[50.0, 30.0, 10.0, 10.0], 0.4, None).unwrap();
        let expected = [2.0 / 3.0, 1.0, 1.0, 1.0];
        for (a, b) in cf.iter().zip(expected) {
            assert!(close(*a, b), "{cf:?}");
        }
    }

    #[test]
    fn sorted_walk_agrees_with_passes_on_adversarial_input() {
        // Geometric caps force one newly capped name per pass: the fallback path runs.
        let m: Vec<f64> = (0..60).map(|i| 0.7f64.powi(i)).collect();
        let caps = vec![0.02; 60];
        let w = solve_capped(&m, &caps).weights;
        let reference = iterative(&m, 0.02);
        for (a, b) in w.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-12);
        }
        let sorted = solve_sorted(&m, &caps).weights;
        for (a, b) in sorted.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn matches_iterative_redistribution() {
        // The convention says iterative redistribution converges to the same weights.
        let mut state = 7u64;
        for trial in 0..200 {
            let n = 5 + trial % 40;
            let m: Vec<f64> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 11) as f64 / (1u64 << 53) as f64).powi(3) * 1e3 + 1e-3
                })
                .collect();
            let cap = (1.0 / n as f64) * (1.0 + (trial % 7) as f64 * 0.3);
            let w = cap_weights(&m, cap, None).unwrap();
            let reference = iterative(&m, cap);
            for (a, b) in w.iter().zip(&reference) {
                assert!((a - b).abs() < 1e-10, "trial {trial}: {a} vs {b}");
            }
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(w.iter().all(|x| *x <= cap + 1e-15));
        }
    }

    #[test]
    fn extreme_market_caps_are_scale_invariant() {
        // Near f64::MAX the plain sum overflows; among subnormals 1 / sum overflows. The
        // weights depend only on ratios of market caps, so each scaling gives 0.4, 0.36, ...
        let base = [50.0, 30.0, 10.0, 10.0];
        let expected = [0.4, 0.36, 0.12, 0.12];
        for scale in [1e306, 3e306, f64::MIN_POSITIVE * 1e-10, 5e-324 / 10.0 * 2.0] {
            let m: Vec<f64> = base.iter().map(|x| x * scale).collect();
            if m.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                continue;
            }
            let exact_ratios = m.iter().zip(base).all(|(x, b)| *x / m[3] == b / 10.0);
            let w = cap_weights(&m, 0.4, None).unwrap();
            assert!(
                (w.iter().sum::<f64>() - 1.0).abs() < 1e-15,
                "{scale}: {w:?}"
            );
            if exact_ratios {
                for (a, b) in w.iter().zip(expected) {
                    assert!(close(*a, b), "{scale}: {w:?}");
                }
            }
        }
        let big = cap_weights(&[f64::MAX; 5], 0.5, None).unwrap();
        assert!(big.iter().all(|w| *w == 0.2), "{big:?}");
        let tiny = cap_weights(&[5e-324; 7], 0.5, None).unwrap();
        assert!(tiny.iter().all(|w| *w == tiny[0]), "{tiny:?}");
        assert!(close(tiny[0], 1.0 / 7.0));
    }

    #[test]
    fn the_whole_float_range_in_one_call() {
        // 1e308 and 1e-320 differ by more than f64 can represent as one ratio: the large names
        // are capped at 0.3 and the tiny ones share the remaining 0.4 equally.
        let m = [1e308, 1.7e308, 1e-320, 1e-320];
        let w = cap_weights(&m, 0.3, None).unwrap();
        assert_eq!(w, vec![0.3, 0.3, 0.2, 0.2]);
        let cf = capping_factors(&m, 0.3, None).unwrap();
        assert_eq!(&cf[2..], &[1.0, 1.0]);
        assert_eq!(
            &cf[..2],
            &[0.0, 0.0],
            "factors below the smallest float round to 0"
        );
        let sorted = solve_sorted(&m, &[0.3; 4]).weights;
        assert_eq!(sorted, vec![0.3, 0.3, 0.2, 0.2]);
    }

    #[test]
    fn equal_inputs_equal_weights_on_the_sorted_walk() {
        let mut m: Vec<f64> = (0..40).map(|i| 0.7f64.powi(i) * 1e300).collect();
        m.extend([1e-310; 5]);
        let caps = vec![0.03; m.len()];
        let w = solve_sorted(&m, &caps).weights;
        let tail = &w[40..];
        assert!(tail.iter().all(|x| *x == tail[0]), "{tail:?}");
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-14);
        let passes = solve_capped(&m, &caps).weights;
        for (a, b) in w.iter().zip(&passes) {
            assert!((a - b).abs() <= 1e-15, "{a} vs {b}");
        }
    }

    #[test]
    fn wide_ratios_do_not_overflow() {
        let a = Wide::quotient(0.5, 1e-320);
        let b = Wide::quotient(0.25, 1e-320);
        assert_eq!(b.ratio(a), 0.5);
        assert_eq!(Wide::of(5e-324).exp, -1073);
        assert_eq!(ldexp(1.0, -1074), 5e-324);
        assert_eq!(ldexp(1.0, 1023), 2f64.powi(1023));
    }

    /// The textbook algorithm: fix breachers at the cap, rescale the rest, repeat.
    fn iterative(m: &[f64], cap: f64) -> Vec<f64> {
        let n = m.len();
        let mut fixed = vec![false; n];
        loop {
            let free: f64 = (0..n).filter(|&i| !fixed[i]).map(|i| m[i]).sum();
            let left = 1.0 - cap * fixed.iter().filter(|f| **f).count() as f64;
            let w: Vec<f64> = (0..n)
                .map(|i| if fixed[i] { cap } else { m[i] / free * left })
                .collect();
            let mut changed = false;
            for i in 0..n {
                if !fixed[i] && w[i] > cap {
                    fixed[i] = true;
                    changed = true;
                }
            }
            if !changed {
                return w;
            }
        }
    }
}
