//! Hand-worked instances of the index shape, built as Python's recognition would build them.

use super::super::csr::Csr;
use super::*;

/// `rows x cols` from dense rows.
fn csr(rows: &[&[f64]], cols: usize) -> Csr {
    let (mut ptr, mut idx, mut val) = (vec![0], Vec::new(), Vec::new());
    for row in rows {
        for (c, &v) in row.iter().enumerate() {
            if v != 0.0 {
                idx.push(c);
                val.push(v);
            }
        }
        ptr.push(idx.len());
    }
    Csr::new("test", cols, ptr, idx, val).unwrap()
}

fn unit(len: usize, at: usize, v: f64) -> Vec<f64> {
    let mut row = vec![0.0; len];
    row[at] = v;
    row
}

/// Three weights, `theta = [s0, s1, s2, m0, m1, m2, 1]`: minimise `-s'w + 1/2 |w|^2` subject
/// to `sum w = 1`, `0 <= w <= 0.5 m`; the canonical variables are the weights.
fn capped_three() -> ShapeSpec {
    let nt = 7;
    let rows = |f: &dyn Fn(usize) -> Vec<f64>| {
        let r: Vec<Vec<f64>> = (0..3).map(f).collect();
        csr(&r.iter().map(Vec::as_slice).collect::<Vec<_>>(), nt)
    };
    let q = {
        let mut r: Vec<Vec<f64>> = (0..3).map(|j| unit(nt, j, -1.0)).collect();
        r.push(vec![0.0; nt]);
        csr(&r.iter().map(Vec::as_slice).collect::<Vec<_>>(), nt)
    };
    ShapeSpec {
        n: 3,
        n_theta: nt,
        weight_cols: vec![0, 1, 2],
        lo: BoundRows {
            map: rows(&|_| vec![0.0; nt]),
            weight: vec![0, 1, 2],
        },
        hi: Some(BoundRows {
            map: rows(&|j| unit(nt, 3 + j, 0.5)),
            weight: vec![0, 1, 2],
        }),
        c: rows(&|j| unit(nt, j, -1.0)),
        risk: Some(Risk {
            factors: 1,
            loadings: vec![0.0; 3],
            factor_cov: vec![1.0],
            specific_var: vec![1.0; 3],
        }),
        groups: None,
        turnover: None,
        aux: Auxiliaries {
            cols: vec![],
            from_weights: Csr::empty(3),
            from_theta: Csr::empty(nt),
        },
        p: csr(&[&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0], &[0.0, 0.0, 1.0]], 3),
        q_map: q,
        budget: None,
    }
}

fn solve(shape: &IndexShape, theta: &[f64]) -> (Vec<f64>, ShapeStats) {
    let b = theta.len() / shape.n_theta();
    let mut x = vec![0.0; b * shape.n()];
    let stats = shape
        .solve_range_into(&ThetaBatch::Rows(theta), 0, b, &mut x, None)
        .unwrap();
    (x, stats)
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} != {b:?}");
    }
}

#[test]
fn capped_instances_by_hand() {
    let shape = IndexShape::new(capped_three()).unwrap();
    let s = [0.9, 0.5, 0.1];
    let theta: Vec<f64> = [
        [s[0], s[1], s[2], 1.0, 1.0, 1.0, 1.0],
        // The third name out: the other two at their cap.
        [s[0], s[1], s[2], 1.0, 1.0, 0.0, 1.0],
        // One name of cap 0.5 cannot hold the index.
        [s[0], s[1], s[2], 1.0, 0.0, 0.0, 1.0],
    ]
    .concat();
    let (x, st) = solve(&shape, &theta);
    // Name 0 at its cap; names 1 and 2 free: w = s - nu with nu = 0.05.
    close(&x[0..3], &[0.5, 0.45, 0.05]);
    close(&x[3..6], &[0.5, 0.5, 0.0]);
    assert!(x[6..9].iter().all(|v| v.is_nan()));
    assert_eq!(
        st.status,
        [
            ShapeStatus::Optimal,
            ShapeStatus::Optimal,
            ShapeStatus::Infeasible
        ]
    );
    close(&st.objective[..2], &[-0.68 + 0.2275, -0.7 + 0.25]);
    assert!(st.objective[2].is_nan());
    assert_eq!(st.held, [3, 2, 1]);
    assert!(st.smallest_budget.is_empty());
}

#[test]
fn a_column_no_part_of_the_shape_writes_is_nan_and_the_others_are_all_written() {
    let shape = IndexShape::new(capped_three()).unwrap();
    assert!(shape.writes_every_column);
    let theta = [0.9, 0.5, 0.1, 1.0, 1.0, 1.0, 1.0];
    let mut x = vec![7.0; 3];
    shape
        .solve_range_into(&ThetaBatch::Rows(&theta), 0, 1, &mut x, None)
        .unwrap();
    close(&x, &[0.5, 0.45, 0.05]);
    // A fourth canonical column, with no term and no map: its value is unknown.
    let mut spec = capped_three();
    spec.n = 4;
    spec.p = csr(
        &[
            &[1.0, 0.0, 0.0, 0.0],
            &[0.0, 1.0, 0.0, 0.0],
            &[0.0, 0.0, 1.0, 0.0],
            &[0.0; 4],
        ],
        4,
    );
    let mut q: Vec<Vec<f64>> = (0..3).map(|j| unit(7, j, -1.0)).collect();
    q.extend([vec![0.0; 7], vec![0.0; 7]]);
    spec.q_map = csr(&q.iter().map(Vec::as_slice).collect::<Vec<_>>(), 7);
    let wider = IndexShape::new(spec).unwrap();
    assert!(!wider.writes_every_column);
    let mut x = vec![7.0; 4];
    let stats = wider
        .solve_range_into(&ThetaBatch::Rows(&theta), 0, 1, &mut x, None)
        .unwrap();
    close(&x[..3], &[0.5, 0.45, 0.05]);
    assert!(x[3].is_nan());
    assert_eq!(stats.status, [ShapeStatus::Optimal]);
}

#[test]
fn turnover_holds_a_weight_at_its_kink() {
    // prev = [0.5, 0.3, 0.2] from theta entries 6..9; cost 0.2 per unit on every name. At
    // prev, s - w = [0.4, 0.2, -0.1]; with nu = 0.1 names 1 and 2 need turnover multipliers
    // 0.1 and -0.2, within [-0.2, 0.2], and name 0 at its cap the rest: prev is optimal.
    let mut spec = capped_three();
    let nt = 10;
    let widen = |m: &Csr| {
        let rows: Vec<Vec<f64>> = (0..m.rows())
            .map(|r| {
                let mut row = vec![0.0; nt];
                let (idx, val) = m.row(r);
                for (&c, &v) in idx.iter().zip(val) {
                    row[if c == 6 { nt - 1 } else { c }] = v;
                }
                row
            })
            .collect();
        csr(&rows.iter().map(Vec::as_slice).collect::<Vec<_>>(), nt)
    };
    spec.n_theta = nt;
    spec.lo.map = widen(&spec.lo.map);
    let hi = spec.hi.as_mut().unwrap();
    hi.map = widen(&hi.map);
    spec.c = widen(&spec.c);
    spec.q_map = widen(&spec.q_map);
    spec.aux.from_theta = Csr::empty(nt);
    // Epigraph variables t_j = |w_j - prev_j| as canonical columns 3..6, objective 0.2 t.
    spec.n = 6;
    spec.p = csr(
        &[
            &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            &[0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
            &[0.0; 6],
            &[0.0; 6],
            &[0.0; 6],
        ],
        6,
    );
    let mut q: Vec<Vec<f64>> = (0..3).map(|j| unit(nt, j, -1.0)).collect();
    q.extend((0..3).map(|_| unit(nt, nt - 1, 0.2)));
    q.push(vec![0.0; nt]);
    spec.q_map = csr(&q.iter().map(Vec::as_slice).collect::<Vec<_>>(), nt);
    spec.turnover = Some(TurnoverRows {
        weights: vec![0, 1, 2],
        cols: vec![3, 4, 5],
        sigma: vec![1.0; 3],
        cost: vec![0.2; 3],
        prev: csr(
            &[&unit(nt, 6, 1.0), &unit(nt, 7, 1.0), &unit(nt, 8, 1.0)],
            nt,
        ),
    });
    let shape = IndexShape::new(spec).unwrap();
    let theta = [0.9, 0.5, 0.1, 1.0, 1.0, 1.0, 0.5, 0.3, 0.2, 1.0];
    let (x, st) = solve(&shape, &theta);
    close(&x, &[0.5, 0.3, 0.2, 0.0, 0.0, 0.0]);
    let plain = -(0.45 + 0.15 + 0.02) + 0.5 * (0.25 + 0.09 + 0.04);
    close(&st.objective, &[plain]);
}

/// Two weights, `theta = [s0, s1, b0, b1, budget, 1]`: maximise `s'w` subject to
/// `||w - b|| <= budget`, `sum w = 1`, `0 <= w <= hi`.
fn budget_two(hi: [f64; 2]) -> ShapeSpec {
    let nt = 6;
    let one = nt - 1;
    ShapeSpec {
        n: 2,
        n_theta: nt,
        weight_cols: vec![0, 1],
        lo: BoundRows {
            map: Csr::new("lo", nt, vec![0, 0, 0], vec![], vec![]).unwrap(),
            weight: vec![0, 1],
        },
        hi: Some(BoundRows {
            map: csr(&[&unit(nt, one, hi[0]), &unit(nt, one, hi[1])], nt),
            weight: vec![0, 1],
        }),
        c: csr(&[&unit(nt, 0, -1.0), &unit(nt, 1, -1.0)], nt),
        risk: None,
        groups: None,
        turnover: None,
        aux: Auxiliaries {
            cols: vec![],
            from_weights: Csr::empty(2),
            from_theta: Csr::empty(nt),
        },
        p: Csr::new("p", 2, vec![0, 0, 0], vec![], vec![]).unwrap(),
        q_map: csr(&[&unit(nt, 0, -1.0), &unit(nt, 1, -1.0), &[0.0; 6]], nt),
        budget: Some(TeBudget {
            m: csr(&[&[1.0, 0.0], &[0.0, 1.0]], 2),
            m_map: csr(&[&unit(nt, 2, -1.0), &unit(nt, 3, -1.0)], nt),
            budget: csr(&[&unit(nt, 4, 1.0)], nt),
            risk: Risk {
                factors: 1,
                loadings: vec![0.0; 2],
                factor_cov: vec![1.0],
                specific_var: vec![1.0; 2],
            },
            alpha: 0.0,
            var: None,
        }),
    }
}

#[test]
fn te_budget_met_exactly_by_hand() {
    let shape = IndexShape::new(budget_two([1.0, 1.0])).unwrap();
    // From b = (0.5, 0.5) along (1, -1): sqrt(2) (w0 - 0.5) = 0.1.
    let (x, st) = solve(&shape, &[1.0, 0.0, 0.5, 0.5, 0.1, 1.0]);
    let w0 = 0.5 + 0.1 / 2f64.sqrt();
    close(&x, &[w0, 1.0 - w0]);
    assert_eq!(st.status, [ShapeStatus::Optimal]);
    close(&st.objective, &[-w0]);
    close(&st.smallest_budget, &[0.0]);
    // A budget the linear optimum meets: the vertex w = (1, 0).
    let (x, _) = solve(&shape, &[1.0, 0.0, 0.5, 0.5, 1.0, 1.0]);
    close(&x, &[1.0, 0.0]);
}

#[test]
fn te_budget_below_the_smallest_is_infeasible_and_says_it() {
    // w0 <= 0.6 keeps w at least sqrt(2) * 0.3 from b = (0.9, 0.1).
    let shape = IndexShape::new(budget_two([0.6, 1.0])).unwrap();
    let (x, st) = solve(&shape, &[1.0, 0.0, 0.9, 0.1, 0.1, 1.0]);
    assert!(x.iter().all(|v| v.is_nan()));
    assert_eq!(st.status, [ShapeStatus::Infeasible]);
    close(&st.smallest_budget, &[0.3 * 2f64.sqrt()]);
}

#[test]
fn results_do_not_depend_on_threads() {
    let shape = IndexShape::new(capped_three()).unwrap();
    let mut theta = Vec::new();
    let mut state = 7u64;
    for _ in 0..64 {
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            theta.push((state % 1000) as f64 / 1000.0);
        }
        theta.extend([1.0, 1.0, 1.0, 1.0]);
    }
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| solve(&shape, &theta))
    };
    let (x1, s1) = run(1);
    let (x3, s3) = run(3);
    assert_eq!(
        x1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        x3.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(s1, s3);
}

#[test]
fn refuses_inconsistent_specs() {
    let mut spec = capped_three();
    spec.weight_cols = vec![0, 1, 7];
    let err = IndexShape::new(spec).err().unwrap().to_string();
    assert!(
        err.contains("weight_cols") && err.contains("index 7"),
        "{err}"
    );
    let mut spec = capped_three();
    spec.weight_cols.clear();
    let err = IndexShape::new(spec).err().unwrap().to_string();
    assert!(err.contains("at least one weight"), "{err}");
    let mut spec = capped_three();
    spec.c = Csr::empty(7);
    let err = IndexShape::new(spec).err().unwrap().to_string();
    assert!(err.contains("c map: expected 3 x 7"), "{err}");
    let shape = IndexShape::new(capped_three()).unwrap();
    let mut x = vec![0.0; 3];
    let err = shape
        .solve_range_into(&ThetaBatch::Rows(&[1.0; 8]), 0, 1, &mut x, None)
        .unwrap_err();
    assert!(err.to_string().contains("whole number of rows"), "{err}");
    // The constant rows are folded with theta's last entry 1: another value is refused.
    let theta = [
        0.9, 0.5, 0.1, 1.0, 1.0, 1.0, 1.0, 0.9, 0.5, 0.1, 1.0, 1.0, 1.0, 2.0,
    ];
    let mut x = vec![0.0; 6];
    let err = shape
        .solve_range_into(&ThetaBatch::Rows(&theta), 0, 2, &mut x, None)
        .unwrap_err();
    assert!(
        err.to_string().contains("instance 1") && err.to_string().contains("found 2"),
        "{err}"
    );
}

#[test]
fn piece_direction_by_hand() {
    // Three weights free inside their bounds, H = I (no factor), sum w = 1: the direction is
    // ds projected on sum v = 0, ds - mean(ds). With weight 2 at its upper bound it is fixed
    // (v = 0) and the other two share the projection.
    let spec = capped_three();
    let risk = spec.risk.clone().unwrap();
    let f_omega = vec![0.0; 3];
    let mut s = super::instance::Scratch::default();
    s.lo = vec![0.0; 3];
    s.hi = vec![0.5; 3];
    s.w = vec![0.3, 0.3, 0.4];
    let ds = [1.0, 0.0, 2.0];
    let mut piece = super::piece::Piece::default();
    assert!(piece.direction(&spec, &risk, &f_omega, &s, &ds));
    close(piece.v(), &[0.0, -1.0, 1.0]);
    s.w = vec![0.25, 0.25, 0.5];
    assert!(piece.direction(&spec, &risk, &f_omega, &s, &ds));
    close(piece.v(), &[0.5, -0.5, 0.0]);
    // Every weight at a bound: no piece.
    s.w = vec![0.5, 0.0, 0.5];
    assert!(!piece.direction(&spec, &risk, &f_omega, &s, &ds));
}

#[test]
fn parameter_arrays_give_the_rows_results() {
    let shape = IndexShape::new(capped_three()).unwrap();
    let scores = [0.9, 0.5, 0.1, 0.2, 0.7, 0.4];
    let masks = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0];
    let rows: Vec<f64> = (0..2)
        .flat_map(|i| [&scores[3 * i..3 * i + 3], &masks[3 * i..3 * i + 3], &[1.0]].concat())
        .collect();
    let (want, want_stats) = solve(&shape, &rows);
    let part = |col, values| ThetaPart {
        col,
        size: 3,
        values,
        rule: None,
    };
    let parts = ThetaBatch::Parts {
        batch: 2,
        parts: vec![part(3, &masks[..]), part(0, &scores[..])],
    };
    let mut got = vec![0.0; 6];
    let stats = shape
        .solve_range_into(&parts, 0, 2, &mut got, None)
        .unwrap();
    assert_eq!(got, want);
    assert_eq!(stats, want_stats);
    // The rows the workers read, kept when asked: the rows themselves.
    let mut kept = vec![f64::NAN; 14];
    shape
        .solve_range_into(&parts, 0, 2, &mut got, Some(&mut kept))
        .unwrap();
    assert_eq!(
        (got.as_slice(), kept.as_slice()),
        (want.as_slice(), rows.as_slice())
    );
    // Entries no part covers are 0 in the kept rows, whatever the buffer held.
    let scores_only = ThetaBatch::Parts {
        batch: 2,
        parts: vec![part(0, &scores[..])],
    };
    kept.fill(f64::NAN);
    shape
        .solve_range_into(&scores_only, 0, 2, &mut got, Some(&mut kept))
        .unwrap();
    let zero_masks: Vec<f64> = (0..2)
        .flat_map(|i| [&scores[3 * i..3 * i + 3], &[0.0; 3], &[1.0]].concat())
        .collect();
    assert_eq!(kept, zero_masks);
    // Overlapping parts, parts reaching the constant, short arrays: refused.
    for bad in [
        vec![part(0, &scores[..]), part(2, &masks[..])],
        vec![part(4, &masks[..])],
        vec![part(0, &scores[..4])],
    ] {
        let parts = ThetaBatch::Parts {
            batch: 2,
            parts: bad,
        };
        assert!(shape
            .solve_range_into(&parts, 0, 2, &mut got, None)
            .is_err());
    }
}

#[test]
fn sign_rules_read_the_extremes_and_refuse_what_is_not_finite() {
    let rule = |bits| SignRule::from_bits(bits).unwrap();
    let any = SignRule::default();
    assert!(row_admitted(&[-1.0, 0.0, 2.0], any));
    assert!(row_admitted(&[], rule(SignRule::POS)));
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(!row_admitted(&[1.0, bad, 2.0], any), "{bad}");
    }
    // -0.0 is nonnegative and nonpositive, as for numpy's comparisons; neither positive nor
    // negative.
    assert!(row_admitted(&[-0.0, 1.0], rule(SignRule::NONNEG)));
    assert!(!row_admitted(&[-0.0, 1.0], rule(SignRule::POS)));
    assert!(row_admitted(&[-2.0, 0.0], rule(SignRule::NONPOS)));
    assert!(!row_admitted(&[-2.0, 0.0], rule(SignRule::NEG)));
    assert!(!row_admitted(&[3.0, -1e-300], rule(SignRule::NONNEG)));
    assert!(!row_admitted(&[-3.0, 1e-300], rule(SignRule::NONPOS)));
    // Several attributes at once: only zero is both nonnegative and nonpositive.
    let zero = rule(SignRule::NONNEG | SignRule::NONPOS);
    assert!(row_admitted(&[0.0, 0.0], zero) && !row_admitted(&[0.0, 1e-9], zero));
    assert_eq!(SignRule::from_bits(16), None);
}

#[test]
fn rules_refuse_an_instance_naming_the_column() {
    let shape = IndexShape::new(capped_three()).unwrap();
    let scores = [0.9, 0.5, 0.1, 0.2, f64::INFINITY, 0.4];
    let mut masks = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0];
    let nonneg = SignRule::from_bits(SignRule::NONNEG);
    let refusal = |masks: &[f64], scores: &[f64], kept: Option<&mut [f64]>| {
        let parts = ThetaBatch::Parts {
            batch: 2,
            parts: vec![
                ThetaPart {
                    col: 3,
                    size: 3,
                    values: masks,
                    rule: nonneg,
                },
                ThetaPart {
                    col: 0,
                    size: 3,
                    values: scores,
                    rule: Some(SignRule::default()),
                },
            ],
        };
        let mut x = vec![0.0; 6];
        match shape.solve_range_into(&parts, 0, 2, &mut x, kept) {
            Err(Error::Data(m)) => m,
            other => panic!("{other:?}"),
        }
    };
    let m = refusal(&masks, &scores, None);
    assert!(
        m.contains("instance 1") && m.contains("theta column 0: expected finite values"),
        "{m}"
    );
    masks[1] = -0.5;
    let m = refusal(&masks, &scores, Some(&mut [0.0; 14]));
    assert!(
        m.contains("instance 0")
            && m.contains("theta column 3: expected finite values of its sign"),
        "{m}"
    );
}

#[test]
fn gather_rows_picks_the_indices_of_every_row() {
    let x: Vec<f64> = (0..8).map(f64::from).collect(); // 2 rows of 4
    let mut out = vec![0.0; 6];
    gather_rows(&x, 4, &[3, 0, 0], &mut out).unwrap();
    assert_eq!(out, [3.0, 0.0, 0.0, 7.0, 4.0, 4.0]);
    assert!(gather_rows(&x, 4, &[4], &mut out[..2]).is_err());
    assert!(gather_rows(&x, 4, &[1], &mut out).is_err());
    gather_rows(&x, 4, &[], &mut []).unwrap();
}

#[test]
fn a_scratch_lent_from_other_batches_changes_no_result() {
    // One worker thread: every batch borrows the scratch the one before it left, whatever
    // shape that was (other sizes, a budget's warm starts).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let capped = IndexShape::new(capped_three()).unwrap();
    let budget = IndexShape::new(budget_two([1.0, 1.0])).unwrap();
    let rows = [
        0.9, 0.5, 0.1, 1.0, 0.0, 1.0, 1.0, 0.2, 0.7, 0.4, 1.0, 1.0, 1.0, 1.0,
    ];
    let first = pool.install(|| solve(&capped, &rows));
    let budgeted = pool.install(|| solve(&budget, &[1.0, 0.0, 0.5, 0.5, 0.1, 1.0]));
    assert_eq!(budgeted.1.status, [ShapeStatus::Optimal]);
    let again = pool.install(|| solve(&capped, &rows));
    assert_eq!(first, again);
    // And as a fresh scratch on a fresh thread gives it.
    let fresh = std::thread::spawn(move || solve(&capped, &rows))
        .join()
        .unwrap();
    assert_eq!(first, fresh);
}
