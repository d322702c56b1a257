//! Hand-worked instances of each pass, checked against the KKT conditions of the full program
//! and, where its duals are unique, against an unreduced solve.

use super::*;
use crate::solve::conic::{solve_canonical, Cone};
use clarabel::algebra::CscMatrix;

/// Stationarity `P x + q + A' z = 0` and, on nonnegative rows, `z >= 0` and
/// complementary slackness.
fn assert_kkt(c: &Canonical, x: &[f64], z: &[f64]) {
    let n = c.q.len();
    let mut g = c.q.clone();
    for j in 0..n {
        for k in c.p.colptr[j]..c.p.colptr[j + 1] {
            let i = c.p.rowval[k];
            g[i] += c.p.nzval[k] * x[j];
            if i != j {
                g[j] += c.p.nzval[k] * x[i];
            }
        }
        for k in c.a.colptr[j]..c.a.colptr[j + 1] {
            g[j] += c.a.nzval[k] * z[c.a.rowval[k]];
        }
    }
    assert!(g.iter().all(|v| v.abs() < 1e-6), "stationarity {g:?}");
    let n_zero: usize = match c.cones.first() {
        Some(Cone::Zero(d)) => *d,
        _ => 0,
    };
    let mut s = c.b.clone();
    for (j, &xj) in x.iter().enumerate().take(n) {
        for k in c.a.colptr[j]..c.a.colptr[j + 1] {
            s[c.a.rowval[k]] -= c.a.nzval[k] * xj;
        }
    }
    for r in n_zero..c.b.len() {
        assert!(
            z[r] >= -1e-7 && (z[r] * s[r]).abs() < 1e-6,
            "row {r}: z {z:?} s {s:?}"
        );
    }
}

#[test]
fn reverse_gives_duals_of_bound_pairs() {
    // min (x0 - 1)^2 + (x1 - 2)^2 s.t. x0 + x1 <= 10, 0 <= x1 <= 0 (bound pair) -> x1 fixed
    // at 0 with reduced cost -4 on its upper bound row: z = 4 there.
    let p = CscMatrix::new(2, 2, vec![0, 1, 2], vec![0, 1], vec![2.0, 2.0]);
    // Rows: 0: x0 + x1 <= 10; 1: x1 <= 0; 2: -x1 <= 0.
    let a = CscMatrix::new(
        3,
        2,
        vec![0, 1, 4],
        vec![0, 0, 1, 2],
        vec![1.0, 1.0, 1.0, -1.0],
    );
    let c = Canonical {
        p,
        q: vec![-2.0, -4.0],
        a,
        b: vec![10.0, 0.0, 0.0],
        offset: 5.0,
        cones: vec![Cone::Nonneg(3)],
    };
    let red = Presolver::new(&c).unwrap();
    assert_eq!(red.kept_cols, vec![0]);
    let r = solve_canonical(red.reduced());
    let (x, z) = red.reverse(&c, &r.x, &r.z);
    assert!((x[0] - 1.0).abs() < 1e-7 && x[1] == 0.0);
    assert!(
        (z[1] - 4.0).abs() < 1e-7 && z[2] == 0.0 && z[0].abs() < 1e-7,
        "{z:?}"
    );
    assert_kkt(&c, &x, &z);
}

#[test]
fn presolve_substitutes_singleton_equalities() {
    // min x0^2 + x1^2 + x2^2 s.t. x0 + x1 + x2 = 1, x1 - x2 = 0 (zero rows), 0 <= x2 <= 0.
    // x2 = 0 (pass 1), then x1 = 0 (pass 2), leaving x0 = 1 from the sum: all fixed.
    // Instead keep x0 free by relaxing the sum: x0 + x1 + x2 >= 1 (nonneg row).
    let p = CscMatrix::new(3, 3, vec![0, 1, 2, 3], vec![0, 1, 2], vec![2.0, 2.0, 2.0]);
    // Rows: 0: x1 - x2 = 0.5 (zero); 1: -(x0 + x1 + x2) <= -1; 2: x2 <= 0; 3: -x2 <= 0.
    let a = CscMatrix::new(
        4,
        3,
        vec![0, 1, 3, 7],
        vec![1, 0, 1, 0, 1, 2, 3],
        vec![-1.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0],
    );
    let c = Canonical {
        p,
        q: vec![0.0, 1.0, 0.0],
        a,
        b: vec![0.5, -1.0, 0.0, 0.0],
        offset: 0.25,
        cones: vec![Cone::Zero(1), Cone::Nonneg(3)],
    };
    let red = Presolver::new(&c).unwrap();
    assert_eq!(red.kept_cols, vec![0]);
    assert_eq!(red.fixed_value, vec![0.0, 0.5, 0.0]);
    // Left: min x0^2 + (0.25 + 0.5) + 0.25 s.t. x0 >= 0.5 -> x0 = 0.5, objective 1.25.
    assert_eq!(red.reduced().b, vec![-0.5]);
    let r = solve_canonical(red.reduced());
    let f = solve_canonical(&c);
    assert!((r.objective - 1.25).abs() < 1e-7 && (f.objective - 1.25).abs() < 1e-7);
    let (x, z) = red.reverse(&c, &r.x, &r.z);
    assert!((x[0] - 0.5).abs() < 1e-7 && x[1] == 0.5 && x[2] == 0.0);
    assert_kkt(&c, &x, &z);
}

#[test]
fn presolve_fixes_absolute_value_auxiliaries_at_their_floor() {
    // min x0^2 - x0 + 0.5 t s.t. t >= x1 - 0.3, t >= 0.3 - x1 (t >= |x1 - 0.3|),
    // 0 <= x1 <= 0 (bound pair), x0 <= 10: x1 = 0 (pass 1), then t = 0.3 (pass 3), x0 = 1/2,
    // objective -1/4 + 0.15; the dual of t's active row is its cost 0.5.
    let p = CscMatrix::new(3, 3, vec![0, 1, 1, 1], vec![0], vec![2.0]);
    // Rows: 0: x1 - t <= 0.3; 1: -x1 - t <= -0.3; 2: x1 <= 0; 3: -x1 <= 0; 4: x0 <= 10.
    let a = CscMatrix::new(
        5,
        3,
        vec![0, 1, 5, 7],
        vec![4, 0, 1, 2, 3, 0, 1],
        vec![1.0, 1.0, -1.0, 1.0, -1.0, -1.0, -1.0],
    );
    let c = Canonical {
        p,
        q: vec![-1.0, 0.0, 0.5],
        a,
        b: vec![0.3, -0.3, 0.0, 0.0, 10.0],
        offset: 0.0,
        cones: vec![Cone::Nonneg(5)],
    };
    let red = Presolver::new(&c).unwrap();
    assert_eq!(red.kept_cols, vec![0]);
    assert_eq!(red.fixed_value[1..], [0.0, 0.3]);
    let r = solve_canonical(red.reduced());
    let f = solve_canonical(&c);
    assert!(
        (r.objective - (-0.25 + 0.15)).abs() < 1e-7,
        "{}",
        r.objective
    );
    assert!((f.objective - r.objective).abs() < 1e-7);
    let (x, z) = red.reverse(&c, &r.x, &r.z);
    assert!((x[0] - 0.5).abs() < 1e-7 && x[1] == 0.0 && (x[2] - 0.3).abs() < 1e-15);
    assert!((z[1] - 0.5).abs() < 1e-12 && z[0] == 0.0, "{z:?}");
    assert_kkt(&c, &x, &z);
}

#[test]
fn presolve_substitutes_residual_variables() {
    // min t^2 + x0 s.t. t - 2 x0 = -1 (zero row), x0 >= 0, x0 <= 5: t = 2 x0 - 1 gives
    // min (2 x0 - 1)^2 + x0 -> x0 = 3/8, objective 1/16 + 3/8 = 7/16.
    let p = CscMatrix::new(2, 2, vec![0, 0, 1], vec![1], vec![2.0]);
    let a = CscMatrix::new(
        3,
        2,
        vec![0, 3, 4],
        vec![0, 1, 2, 0],
        vec![-2.0, -1.0, 1.0, 1.0],
    );
    let c = Canonical {
        p,
        q: vec![1.0, 0.0],
        a,
        b: vec![-1.0, 0.0, 5.0],
        offset: 0.0,
        cones: vec![Cone::Zero(1), Cone::Nonneg(2)],
    };
    let red = Presolver::new(&c).unwrap();
    assert_eq!(red.kept_cols, vec![0]);
    assert_eq!(red.substituted.len(), 1);
    assert_eq!(red.reduced().p.nzval, vec![8.0]);
    let t = red.substituted[0];
    let r = solve_canonical(red.reduced());
    assert!((r.objective - 7.0 / 16.0).abs() < 1e-7);
    assert!((r.x[0] - 0.375).abs() < 1e-7);
    assert!(
        (t.beta - t.alpha * r.x[0] + 0.25).abs() < 1e-7,
        "t = 2 x0 - 1 = -1/4"
    );
    let (x, z) = red.reverse(&c, &r.x, &r.z);
    assert!((x[1] + 0.25).abs() < 1e-7);
    assert_kkt(&c, &x, &z);
    // The full problem's duals are unique here: compare with an unreduced solve.
    let f = solve_canonical(&c);
    for (a, b) in z.iter().zip(&f.z) {
        assert!((a - b).abs() < 1e-6, "{z:?} vs {:?}", f.z);
    }
}

/// min (x0 - 1)^2 + (x1 - 1)^2 + x2^2 over the rows
/// 0: x0 + x1 + x2 <= `cap` (a sector cap), 1: x0 <= 1.2, 2: x1 <= 1.2, 3: -x0 <= 0,
/// 4: -x1 <= 0, 5: x2 <= 0, 6: -x2 <= 0 (x2 fixed at 0: the instance is reduced),
/// 7: x0 + x1 <= 1.5 (binds: x = (0.75, 0.75), its dual 2 (1 - 0.75) = 0.5).
fn sector_cap_instance(cap: f64) -> Canonical {
    let p = CscMatrix::new(3, 3, vec![0, 1, 2, 3], vec![0, 1, 2], vec![2.0, 2.0, 2.0]);
    let a = CscMatrix::new(
        8,
        3,
        vec![0, 4, 8, 11],
        vec![0, 1, 3, 7, 0, 2, 4, 7, 0, 5, 6],
        vec![1.0, 1.0, -1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, -1.0],
    );
    Canonical {
        p,
        q: vec![-2.0, -2.0, 0.0],
        a,
        b: vec![cap, 1.2, 1.2, 0.0, 0.0, 0.0, 0.0, 1.5],
        offset: 2.0,
        cones: vec![Cone::Nonneg(8)],
    }
}

/// The reduced solve mapped back against an unreduced solve: same x, and the same z on every
/// row but x2's bound pair (whose split is not unique: both bounds hold x2 at 0).
fn assert_matches_unreduced(c: &Canonical, red: &Presolver) -> (Vec<f64>, Vec<f64>) {
    let r = solve_canonical(red.reduced());
    let f = solve_canonical(c);
    let (x, z) = red.reverse(c, &r.x, &r.z);
    assert_kkt(c, &x, &z);
    assert!((r.objective - f.objective).abs() < 1e-7);
    for (a, b) in x.iter().zip(&f.x) {
        assert!((a - b).abs() < 1e-6, "{x:?} vs {:?}", f.x);
    }
    for r in (0..c.b.len()).filter(|r| ![5, 6].contains(r)) {
        assert!((z[r] - f.z[r]).abs() < 1e-6, "row {r}: {z:?} vs {:?}", f.z);
    }
    (x, z)
}

#[test]
fn presolve_drops_a_row_the_bounds_keep_slack() {
    // The held names' caps add up to 2.4 < 3: the sector cap can never bind.
    let c = sector_cap_instance(3.0);
    let red = Presolver::new(&c).unwrap();
    assert_eq!(red.kept_cols, vec![0, 1]);
    assert_eq!(red.new_row[0], usize::MAX, "row 0 dropped");
    // Left: the two caps, the two floors and x0 + x1 <= 1.5.
    assert_eq!(red.reduced().b, vec![1.2, 1.2, 0.0, 0.0, 1.5]);
    let (x, z) = assert_matches_unreduced(&c, &red);
    assert!((x[0] - 0.75).abs() < 1e-7 && (x[1] - 0.75).abs() < 1e-7);
    assert!(z[0] == 0.0 && (z[7] - 0.5).abs() < 1e-7, "{z:?}");
}

#[test]
fn presolve_keeps_a_row_that_can_bind() {
    // 2.4 - 1e-9 is within the margin of the caps' sum: the row is kept (here it is slack at
    // the solution, but a row at its limit may share its dual with the bounds).
    let c = sector_cap_instance(2.4 - 1e-9);
    let red = Presolver::new(&c).unwrap();
    assert_ne!(red.new_row[0], usize::MAX, "row 0 kept");
    assert_eq!(red.reduced().b.len(), 6);
    assert_matches_unreduced(&c, &red);
    // Nor is a lower sector bound -x0 - x1 <= 0 implied by the floors dropped: it binds
    // exactly when both names are at 0.
    let mut c = sector_cap_instance(3.0);
    c.a.nzval[0] = -1.0;
    c.a.nzval[4] = -1.0;
    c.a.nzval[8] = -1.0;
    c.b[0] = 0.0;
    let red = Presolver::new(&c).unwrap();
    assert_ne!(red.new_row[0], usize::MAX, "row 0 kept");
    assert_matches_unreduced(&c, &red);
}

#[test]
fn presolve_leaves_an_instance_it_fixes_nothing_in_whole() {
    // Without x2's bound pair nothing is fixed: the redundant sector cap alone is no reason
    // to hand Clarabel a different program than cvxpy's.
    let mut c = sector_cap_instance(3.0);
    c.b[5] = 1.0;
    assert!(Presolver::new(&c).is_none());
}

/// `sector_cap_instance(3.0)` with a second cap on x0 (`x0 <= cap0`, row 8) next to row 1's
/// `x0 <= 1.2`.
fn two_caps_instance(cap0: f64) -> Canonical {
    let c = sector_cap_instance(3.0);
    let a = &c.a;
    let mut colptr = a.colptr.clone();
    let mut rowval = a.rowval.clone();
    let mut nzval = a.nzval.clone();
    // Column 0 gains row 8 at its end (rows stay sorted); later columns shift by one.
    rowval.insert(colptr[1], 8);
    nzval.insert(colptr[1], 1.0);
    for p in colptr.iter_mut().skip(1) {
        *p += 1;
    }
    let mut b = c.b.clone();
    b.push(cap0);
    Canonical {
        a: CscMatrix::new(9, 3, colptr, rowval, nzval),
        b,
        cones: vec![Cone::Nonneg(9)],
        ..c
    }
}

#[test]
fn presolve_drops_a_bound_a_tighter_bound_dominates() {
    // x0 <= 0.6 (row 8) binds; row 1's x0 <= 1.2 can never bind: dropped, dual 0.
    let c = two_caps_instance(0.6);
    let red = Presolver::new(&c).unwrap();
    assert_eq!(red.new_row[1], usize::MAX, "the looser cap is dropped");
    assert_ne!(red.new_row[8], usize::MAX, "the tighter cap stays");
    assert_ne!(red.new_row[2], usize::MAX, "x1's only cap stays");
    let r = solve_canonical(red.reduced());
    let (x, z) = red.reverse(&c, &r.x, &r.z);
    assert_kkt(&c, &x, &z);
    // x0 = 0.6 (its cap binds), x1 = 0.9 (x0 + x1 <= 1.5 binds): stationarity gives the
    // duals 2 (1 - 0.9) = 0.2 on row 7 and 2 (1 - 0.6) - 0.2 = 0.6 on row 8.
    assert!(
        (x[0] - 0.6).abs() < 1e-7 && (x[1] - 0.9).abs() < 1e-7,
        "{x:?}"
    );
    assert!(
        z[1] == 0.0 && (z[7] - 0.2).abs() < 1e-7 && (z[8] - 0.6).abs() < 1e-7,
        "{z:?}"
    );
    let f = solve_canonical(&c);
    assert!((r.objective - f.objective).abs() < 1e-7);
}

#[test]
fn presolve_keeps_equal_bounds() {
    // Two caps of 1.2 on x0: neither dominates by the margin, both stay.
    let c = two_caps_instance(1.2);
    let red = Presolver::new(&c).unwrap();
    assert_ne!(red.new_row[1], usize::MAX);
    assert_ne!(red.new_row[8], usize::MAX);
    assert_matches_unreduced(&c, &red);
}
