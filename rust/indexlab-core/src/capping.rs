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
    let total: f64 = caps.iter().sum();
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
pub fn cap_weights(market_caps: &[f64], cap: f64, per_name: Option<&[f64]>) -> Result<Vec<f64>> {
    check_market_caps(market_caps)?;
    let caps = effective_caps(market_caps.len(), cap, per_name)?;
    check_feasible(&caps, cap, per_name.is_some())?;
    Ok(solve_capped(market_caps, &caps))
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
    let w = cap_weights(market_caps, cap, per_name)?;
    let ratios: Vec<f64> = w.iter().zip(market_caps).map(|(w, m)| w / m).collect();
    let top = ratios.iter().cloned().fold(f64::MIN, f64::max);
    Ok(ratios.iter().map(|r| (r / top).min(1.0)).collect())
}

/// Passes of breacher fixing before switching to the sort-based walk (realistic inputs need
/// two to five; adversarial geometric inputs would need one pass per name).
const MAX_PASSES: usize = 16;

/// The solver proper, on validated input with `sum(caps) >= 1`.
///
/// Fixing every name over the cap at its cap and rescaling the rest only ever raises `k`, so
/// names fixed once stay capped and the passes reach the exact fixed point; each pass is O(n)
/// with no sort, which beats sorting for the few passes real markets need.
fn solve_capped(m: &[f64], caps: &[f64]) -> Vec<f64> {
    let mut free: Vec<usize> = (0..m.len()).collect();
    let mut capped_total = 0.0;
    for _ in 0..MAX_PASSES {
        if free.is_empty() {
            break;
        }
        let mass: f64 = free.iter().map(|&i| m[i]).sum();
        let k = (1.0 - capped_total) / mass;
        let before = free.len();
        free.retain(|&i| {
            let breach = k * m[i] > caps[i];
            if breach {
                capped_total += caps[i];
            }
            !breach
        });
        if free.len() == before {
            let mut w = caps.to_vec();
            for &i in &free {
                w[i] = k * m[i];
            }
            return w;
        }
    }
    solve_sorted(m, caps)
}

/// Exact O(n log n) solve by walking the kinks `c_i / m_i` in increasing order.
fn solve_sorted(m: &[f64], caps: &[f64]) -> Vec<f64> {
    let n = m.len();
    // Names in the order they hit their cap as k grows: by c_i / m_i, ties by position so the
    // result never depends on sort stability.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| {
        (caps[a] / m[a])
            .total_cmp(&(caps[b] / m[b]))
            .then(a.cmp(&b))
    });

    // Suffix sums of market cap in that order, summed from the small end so that the mass of
    // the uncapped tail is exact rather than a long running difference.
    let mut rest_mass = vec![0.0; n + 1];
    for pos in (0..n).rev() {
        rest_mass[pos] = rest_mass[pos + 1] + m[order[pos]];
    }
    let mut capped_total = 0.0;
    let mut n_capped = 0;
    let mut k = 0.0;
    for (pos, &i) in order.iter().enumerate() {
        // Try: the first `pos` names in `order` sit at their caps, all others are uncapped.
        k = (1.0 - capped_total) / rest_mass[pos];
        if k * m[i] <= caps[i] {
            break;
        }
        capped_total += caps[i];
        n_capped += 1;
    }

    let mut w = vec![0.0; n];
    if n_capped == n {
        // Every name is at its cap: only possible when the caps sum to exactly 100%.
        let total: f64 = caps.iter().sum();
        for i in 0..n {
            w[i] = caps[i] / total;
        }
        return w;
    }
    for (pos, &i) in order.iter().enumerate() {
        w[i] = if pos < n_capped { caps[i] } else { k * m[i] };
    }
    w
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
        let w = solve_capped(&m, &caps);
        let reference = iterative(&m, 0.02);
        for (a, b) in w.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-12);
        }
        let sorted = solve_sorted(&m, &caps);
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
