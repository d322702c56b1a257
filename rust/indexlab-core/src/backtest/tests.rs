//! Engine tests against a straight transcription of docs/conventions.md, backtest levels.
use super::*;
use crate::error::Error;

/// Straight transcription of docs/conventions.md, backtest levels over dense weights, day by day.
fn reference(
    tr: &[f64],
    t: usize,
    n: usize,
    reb: &[usize],
    w: &[f64],
    rate: f64,
) -> (Vec<f64>, Vec<f64>) {
    let r = reb.len();
    let k = w.len() / (r * n);
    let mut ctr = tr.to_vec();
    for day in 1..t {
        for i in 0..n {
            if ctr[day * n + i].is_nan() {
                ctr[day * n + i] = ctr[(day - 1) * n + i];
            }
        }
    }
    let mut levels = vec![0.0; k * t];
    let mut turn = vec![0.0; k * r];
    for c in 0..k {
        let lv = &mut levels[c * t..(c + 1) * t];
        lv[0] = 1000.0;
        for j in 0..r {
            let wj = &w[(c * r + j) * n..(c * r + j + 1) * n];
            let end = if j + 1 < r { reb[j + 1] } else { t - 1 };
            for day in reb[j] + 1..=end {
                let s: f64 = (0..n)
                    .filter(|&i| wj[i] != 0.0)
                    .map(|i| wj[i] * ctr[day * n + i] / ctr[reb[j] * n + i])
                    .sum();
                lv[day] = lv[reb[j]] * s;
            }
            if j + 1 < r {
                let wn = &w[(c * r + j + 1) * n..(c * r + j + 2) * n];
                let g: Vec<f64> = (0..n)
                    .map(|i| {
                        if wj[i] != 0.0 {
                            wj[i] * ctr[end * n + i] / ctr[reb[j] * n + i]
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let tot: f64 = g.iter().sum();
                let traded: f64 = (0..n).map(|i| (wn[i] - g[i] / tot).abs()).sum();
                lv[end] *= 1.0 - rate * traded;
                turn[c * r + j + 1] = traded;
            }
        }
    }
    (levels, turn)
}

/// The error of a dense, cost-free backtest on [`market`] that must fail.
fn dense_error(w: &[f64], rebalance: &[i64]) -> Error {
    let (tr, t, n) = market();
    backtest_batch(
        &tr,
        t,
        n,
        rebalance,
        &Weights::Dense(w),
        CostRate::Scalar(0.0),
        1000.0,
        false,
    )
    .unwrap_err()
}

fn market() -> (Vec<f64>, usize, usize) {
    // 6 days x 3 names; name 2 lists on day 2, name 1 suspended on days 3-4.
    let nan = f64::NAN;
    let tr = vec![
        10.0, 20.0, nan, //
        11.0, 19.0, nan, //
        12.0, 21.0, 5.0, //
        11.5, nan, 5.5, //
        12.5, nan, 6.0, //
        13.0, 22.0, 5.8,
    ];
    (tr, 6, 3)
}

#[test]
fn matches_reference_dense_and_csr() {
    let (tr, t, n) = market();
    let reb = [0_i64, 2, 4];
    let w = vec![
        0.5, 0.5, 0.0, 0.2, 0.3, 0.5, 0.0, 0.6, 0.4, // candidate 0
        1.0, 0.0, 0.0, 0.4, 0.4, 0.2, 0.1, 0.1, 0.8, // candidate 1
    ];
    let (lv, to) = reference(&tr, t, n, &[0, 2, 4], &w, 0.01);
    let out = backtest_batch(
        &tr,
        t,
        n,
        &reb,
        &Weights::Dense(&w),
        CostRate::Scalar(0.01),
        1000.0,
        false,
    )
    .unwrap();
    for (a, b) in out.levels.iter().zip(&lv) {
        assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
    }
    for (a, b) in out.turnover.iter().zip(&to) {
        assert!((a - b).abs() <= 1e-12, "{a} vs {b}");
    }
    // The same weights as CSR.
    let (mut indptr, mut indices, mut data) = (vec![0_i64], vec![], vec![]);
    for row in w.chunks(n) {
        for (i, &x) in row.iter().enumerate() {
            if x != 0.0 {
                indices.push(i as i64);
                data.push(x);
            }
        }
        indptr.push(indices.len() as i64);
    }
    let csr = Weights::Csr {
        indptr: Indices::I64(&indptr),
        indices: Indices::I64(&indices),
        data: &data,
    };
    let out2 =
        backtest_batch(&tr, t, n, &reb, &csr, CostRate::Scalar(0.01), 1000.0, false).unwrap();
    assert_eq!(out.levels, out2.levels);
    assert_eq!(out.turnover, out2.turnover);
}

#[test]
fn errors_name_candidate_and_rebalance() {
    let w = vec![0.5, 0.0, 0.5, 0.5, 0.5, 0.0];
    let err = dense_error(&w, &[0, 2]);
    let Error::Data(msg) = err else {
        panic!("wrong variant")
    };
    assert!(
        msg.contains("candidate 0, rebalance 0") && msg.contains("name 2"),
        "{msg}"
    );
    let w = vec![0.5, 0.5, 0.0, 0.5, 0.6, 0.0];
    let err = dense_error(&w, &[0, 2]);
    assert!(
        err.to_string().contains("candidate 0, rebalance 1"),
        "{err}"
    );
    let err = dense_error(&w, &[1, 2]);
    assert!(err.to_string().contains("expected 0"), "{err}");
}

#[test]
fn first_error_is_by_rebalance_then_candidate() {
    // Candidate 0 is bad at rebalance 1, candidate 1 at rebalance 0: rebalance 0 first.
    let w = vec![
        0.5, 0.5, 0.0, 0.5, 0.6, 0.0, // candidate 0
        0.5, 0.4, 0.0, 0.5, 0.5, 0.0, // candidate 1
    ];
    let err = dense_error(&w, &[0, 2]);
    assert!(
        err.to_string().contains("candidate 1, rebalance 0"),
        "{err}"
    );
}

#[test]
fn bad_sparse_indices_are_named_in_either_width() {
    let (tr, t, n) = market();
    let run = |indices: Indices<'_>, indptr: Indices<'_>| {
        let w = Weights::Csr {
            indptr,
            indices,
            data: &[0.5, 0.5],
        };
        backtest_batch(&tr, t, n, &[0], &w, CostRate::Scalar(0.0), 1000.0, false)
            .unwrap_err()
            .to_string()
    };
    for (bad, what) in [
        ([0, 3], "index 3 is out of range"),
        ([1, 0], "index 0 is out"),
    ] {
        let wide: Vec<i64> = bad.iter().map(|&i| i as i64).collect();
        let narrow: Vec<i32> = bad.to_vec();
        for msg in [
            run(Indices::I64(&wide), Indices::I64(&[0, 2])),
            run(Indices::I32(&narrow), Indices::I32(&[0, 2])),
        ] {
            assert!(
                msg.contains("candidate 0, rebalance 0") && msg.contains(what),
                "{msg}"
            );
        }
    }
}
