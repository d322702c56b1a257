//! Property tests of the core's entry points on arbitrary inputs (the fuzz suite):
//! whatever the numbers, each call returns a result or an `Error`, never a panic, and a result
//! keeps the entry point's invariants. The case counts keep the whole file to a few seconds of
//! `cargo test --release`; raise `PROPTEST_CASES` for a longer run.

use indexlab_core::backtest::{backtest_batch, CostRate, Indices, Weights};
use indexlab_core::capping::cap_weights;
use indexlab_core::solve::fastpath::{capped_qp_batch, CappedQp, PerInstance, RiskModel, Status};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        // A fixed seed keeps CI deterministic; set PROPTEST_SEED to explore other cases.
        rng_seed: RngSeed::Fixed(
            std::env::var("PROPTEST_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0x1de8),
        ),
        ..Config::default()
    }
}

/// Any f64: ordinary values, the edges of the range, and the non-finite ones.
fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -10.0..10.0f64,
        2 => 1e-3..1e3f64,
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN_POSITIVE),
        1 => Just(5e-324),
        1 => any::<f64>(),
    ]
}

proptest! {
    #![proptest_config(config(400))]

    /// Capping never panics; valid weights are finite, within the cap and sum to 1.
    #[test]
    fn cap_weights_result_or_error(
        caps in prop::collection::vec(any_float(), 0..12),
        cap in any_float(),
    ) {
        if let Ok(w) = cap_weights(&caps, cap, None) {
            prop_assert_eq!(w.len(), caps.len());
            prop_assert!(w.iter().all(|x| x.is_finite() && *x >= 0.0), "{:?}", w);
        }
    }

    /// On moderate inputs the weights are exact: within the cap, summing to 1.
    #[test]
    fn cap_weights_moderate_inputs_sum_to_one(
        caps in prop::collection::vec(1e-3..1e6f64, 1..20),
        cap in 0.01..1.0f64,
    ) {
        if let Ok(w) = cap_weights(&caps, cap, None) {
            let total: f64 = w.iter().sum();
            prop_assert!((total - 1.0).abs() < 1e-9, "sum {}", total);
            prop_assert!(w.iter().all(|x| *x <= cap + 1e-12), "{:?}", w);
        }
    }

    /// Backtest of dense weights: never a panic, levels start at the base and have the shape.
    #[test]
    fn backtest_dense_result_or_error(
        t in 1usize..8,
        n in 1usize..4,
        k in 1usize..3,
        tr_seed in prop::collection::vec(any_float(), 32),
        w_seed in prop::collection::vec(any_float(), 96),
        rebalance in prop::collection::vec(-2i64..10, 0..4),
        cost in any_float(),
        base in any_float(),
        allow_short in any::<bool>(),
    ) {
        let tr: Vec<f64> = (0..t * n).map(|i| tr_seed[i % tr_seed.len()]).collect();
        let r = rebalance.len();
        let w: Vec<f64> = (0..k * r * n).map(|i| w_seed[i % w_seed.len()]).collect();
        let out = backtest_batch(
            &tr, t, n, &rebalance, &Weights::Dense(&w), CostRate::Scalar(cost), base, allow_short,
        );
        if let Ok(o) = out {
            prop_assert_eq!(o.levels.len(), k * t);
            prop_assert_eq!(o.turnover.len(), k * r);
        }
    }

    /// Backtest of CSR weights with arbitrary (possibly invalid) index arrays.
    #[test]
    fn backtest_csr_result_or_error(
        t in 1usize..6,
        n in 1usize..4,
        indptr in prop::collection::vec(-2i64..8, 0..6),
        indices in prop::collection::vec(-2i64..6, 0..8),
        data in prop::collection::vec(any_float(), 0..8),
        cost_rates in prop::collection::vec(any_float(), 0..4),
    ) {
        let tr: Vec<f64> = (0..t * n).map(|i| 100.0 + i as f64).collect();
        let rebalance = [0i64];
        let cost = if cost_rates.len() == n {
            CostRate::PerName(&cost_rates)
        } else {
            CostRate::Scalar(0.001)
        };
        let weights = Weights::Csr {
            indptr: Indices::I64(&indptr),
            indices: Indices::I64(&indices),
            data: &data,
        };
        let _ = backtest_batch(&tr, t, n, &rebalance, &weights, cost, 1000.0, false);
    }

    /// The capped-QP fast path: never a panic; an optimal instance's weights respect the
    /// bounds and sum to 1.
    #[test]
    fn fast_path_result_or_error(
        n in 1usize..6,
        batch in 1usize..3,
        scores in prop::collection::vec(any_float(), 12),
        lo in any_float(),
        hi in any_float(),
        gamma in prop_oneof![Just(0.0), 0.0..5.0f64, any_float()],
        with_risk in any::<bool>(),
        spec in prop::collection::vec(0.0..1.0f64, 6),
        load in prop::collection::vec(-1.0..1.0f64, 6),
        bench in prop::option::of(prop::collection::vec(any_float(), 0..8)),
    ) {
        let s: Vec<f64> = (0..batch * n).map(|i| scores[i % scores.len()]).collect();
        let fcov = [0.04];
        let risk = with_risk.then(|| RiskModel {
            factors: 1,
            loadings: &load[..n],
            factor_cov: &fcov,
            specific_var: &spec[..n],
        });
        let p = CappedQp {
            batch,
            names: n,
            scores: &s,
            // A shared benchmark row of any length: the wrong ones must be refused, not read.
            bench: bench.as_deref().map(PerInstance::Shared),
            risk,
            gamma,
            lo: PerInstance::Scalar(lo),
            hi: PerInstance::Scalar(hi),
            groups: None,
            turnover: None,
        };
        if let Ok(out) = capped_qp_batch(&p) {
            for (i, st) in out.status.iter().enumerate() {
                if *st == Status::Optimal {
                    let w = &out.weights[i * n..(i + 1) * n];
                    let total: f64 = w.iter().sum();
                    prop_assert!((total - 1.0).abs() < 1e-6, "sum {} of {:?}", total, w);
                    prop_assert!(
                        w.iter().all(|x| *x >= lo - 1e-9 && *x <= hi + 1e-9),
                        "{:?} outside [{}, {}]", w, lo, hi
                    );
                }
            }
        }
    }
}
