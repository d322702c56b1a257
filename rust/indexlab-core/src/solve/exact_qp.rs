//! The generic path's exact solver for small quadratic programs: an instance whose cones are
//! only zero and nonnegative rows and whose `P` is positive definite (after presolve, a
//! tracking-error problem over the held names) is solved by the dual active-set method of
//! [`super::dual_active_set`] in a few dense steps instead of Clarabel's interior-point
//! iterations. Its answer is the exact optimum, which Clarabel's approaches to its tolerance,
//! checked here as a KKT point (every row held, multipliers of the right sign and complementary,
//! stationarity) before it is used.
//!
//! `P` positive definite makes the optimum unique. Its multipliers are unique too unless the
//! rows tight at it are dependent (a cap written twice, a sector floor of 0 where the sector's
//! weights all sit at their own floor of 0): there the method gives one valid set, a vertex of
//! the multipliers' face, where Clarabel ends somewhere inside it (where depends on its
//! iterations: an even share of a repeated cap only to about 1e-4). The fast path reports one
//! valid set in the same way. Anything else (another cone, a singular `P`, dependent
//! equalities, an infeasible or large instance, a point that fails the check) goes to
//! Clarabel, whose statuses and certificates are cvxpy's.

use std::time::Instant;

use super::conic::{Canonical, Cone, InstanceResult, Status};
use super::csr::Csr;
use super::dual_active_set::{self, DenseQp, Outcome};
use super::fastpath::linalg::dot;

/// Variables at most: each step costs `O(n²)` on dense `n x n` factors; larger programs are
/// left to Clarabel's sparse factorisation.
const MAX_VARIABLES: usize = 120;
/// Relative size of a KKT residual, a multiplier or a slack that counts as zero.
const TOL: f64 = 1e-9;

/// The instance's `P` dense (both triangles) and its rows by row; `None` when it is not for
/// this method: too large, a cone other than zero and nonnegative, or (not cvxpy's order) an
/// equality after an inequality.
struct Program {
    n: usize,
    p: Vec<f64>,
    /// `A` by rows, and by columns (`A'` by rows: the CSC arrays as they come).
    a: Csr,
    at: Csr,
    me: usize,
}

fn program(c: &Canonical) -> Option<Program> {
    let n = c.q.len();
    if n == 0 || n > MAX_VARIABLES {
        return None;
    }
    let mut me = 0;
    let mut seen_nonneg = false;
    for cone in &c.cones {
        match cone {
            Cone::Zero(d) if !seen_nonneg => me += d,
            Cone::Nonneg(_) => seen_nonneg = true,
            _ => return None,
        }
    }
    let mut p = vec![0.0; n * n];
    for col in 0..n {
        for k in c.p.colptr[col]..c.p.colptr[col + 1] {
            let (r, v) = (c.p.rowval[k], c.p.nzval[k]);
            p[r * n + col] += v;
            if r != col {
                p[col * n + r] += v;
            }
        }
    }
    let at = Csr::new(
        "A'",
        c.b.len(),
        c.a.colptr.clone(),
        c.a.rowval.clone(),
        c.a.nzval.clone(),
    )
    .ok()?;
    Some(Program {
        n,
        p,
        a: at.transpose(),
        at,
        me,
    })
}

/// Whether `(x, z)` is a KKT point, to [`TOL`] (`px` is `P x`): every row holds, every
/// inequality's multiplier is nonnegative (rounding below 0 is set to 0) and 0 where the row
/// is slack, and `P x + q + A'z = 0`.
fn kkt_point(d: &Program, c: &Canonical, x: &[f64], px: &[f64], z: &mut [f64]) -> bool {
    let zmax = z.iter().fold(0.0f64, |s, v| s.max(v.abs()));
    for (i, zi) in z.iter_mut().enumerate() {
        let (idx, val) = d.a.row(i);
        let (mut ax, mut size) = (0.0, c.b[i].abs());
        for (&j, &a) in idx.iter().zip(val) {
            ax += a * x[j];
            size += (a * x[j]).abs();
        }
        let (slack, tol) = (c.b[i] - ax, TOL * size.max(1.0));
        let ok = if i < d.me {
            slack.abs() <= tol
        } else if *zi != 0.0 {
            let active = *zi >= -TOL * zmax && slack.abs() <= tol;
            *zi = zi.max(0.0);
            active
        } else {
            slack >= -tol
        };
        if !ok {
            return false;
        }
    }
    // Stationarity, relative to the terms' size.
    let mut grad: Vec<f64> = c.q.iter().zip(px).map(|(q, p)| q + p).collect();
    let mut scale = c.q.iter().chain(px).fold(1.0f64, |s, v| s.max(v.abs()));
    let mut atz = Vec::new();
    d.at.mul_into(z, &mut atz);
    for (g, &a) in grad.iter_mut().zip(&atz) {
        *g += a;
        scale = scale.max(a.abs());
    }
    grad.iter().all(|g| g.abs() <= TOL * scale)
}

/// Solve `c` exactly if it is a small, strictly convex QP whose solution passes the KKT check
/// (see the module docs); `None` leaves it to Clarabel.
pub(crate) fn try_solve(c: &Canonical) -> Option<InstanceResult> {
    let started = Instant::now();
    let d = program(c)?;
    let qp = DenseQp {
        n: d.n,
        p: &d.p,
        q: &c.q,
        a: &d.a,
        b: &c.b,
        me: d.me,
    };
    let Outcome::Optimal { x, mut z, steps } =
        dual_active_set::solve(&qp, 10 * (d.n + c.b.len()) + 10)
    else {
        return None;
    };
    let n = d.n;
    let px: Vec<f64> = d.p.chunks_exact(n).map(|row| dot(row, &x)).collect();
    if !kkt_point(&d, c, &x, &px, &mut z) {
        return None;
    }
    let objective = c.offset
        + x.iter()
            .zip(&px)
            .zip(&c.q)
            .map(|((x, px), q)| x * (0.5 * px + q))
            .sum::<f64>();
    Some(InstanceResult {
        x,
        z,
        status: Status::Optimal,
        objective,
        iterations: u32::try_from(steps).unwrap_or(u32::MAX),
        solve_seconds: started.elapsed().as_secs_f64(),
        n_variables: n,
    })
}

#[cfg(test)]
mod tests {
    use super::super::conic::solve_canonical;
    use super::*;
    use clarabel::algebra::CscMatrix;

    /// CSC of the dense row-major `rows x cols` matrix (`upper`: its upper triangle only).
    fn csc(dense: &[f64], rows: usize, cols: usize, upper: bool) -> CscMatrix<f64> {
        let (mut colptr, mut rowval, mut nzval) = (vec![0], Vec::new(), Vec::new());
        for c in 0..cols {
            for r in 0..rows {
                let v = dense[r * cols + c];
                if v != 0.0 && (!upper || r <= c) {
                    rowval.push(r);
                    nzval.push(v);
                }
            }
            colptr.push(rowval.len());
        }
        CscMatrix::new(rows, cols, colptr, rowval, nzval)
    }

    /// A deterministic stream of numbers in [-1, 1).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    /// A random strictly convex QP: `me` dense equalities and `extra` dense inequalities
    /// through a random interior point, then the box `-1 <= x <= 1`.
    fn random(g: &mut Lcg, n: usize, me: usize, extra: usize) -> Canonical {
        let m_dense: Vec<f64> = (0..n * n).map(|_| g.next()).collect();
        let mut p = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                p[i * n + j] = (0..n)
                    .map(|t| m_dense[i * n + t] * m_dense[j * n + t])
                    .sum();
            }
            p[i * n + i] += 0.1;
        }
        let q: Vec<f64> = (0..n).map(|_| 3.0 * g.next()).collect();
        let inside: Vec<f64> = (0..n).map(|_| 0.5 * g.next()).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..me + extra {
            let row: Vec<f64> = (0..n).map(|_| g.next()).collect();
            let at: f64 = row.iter().zip(&inside).map(|(r, x)| r * x).sum();
            b.push(if i < me {
                at
            } else {
                at + 0.3 * (g.next() + 1.0)
            });
            a.extend(row);
        }
        for i in 0..2 * n {
            let mut row = vec![0.0; n];
            row[i / 2] = if i % 2 == 0 { 1.0 } else { -1.0 };
            a.extend(row);
            b.push(1.0);
        }
        let m = b.len();
        let mut cones = Vec::new();
        if me > 0 {
            cones.push(Cone::Zero(me));
        }
        cones.push(Cone::Nonneg(m - me));
        Canonical {
            p: csc(&p, n, n, true),
            q,
            a: csc(&a, m, n, false),
            b,
            offset: 0.5,
            cones,
        }
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
    }

    #[test]
    fn random_qps_match_clarabel() {
        let mut g = Lcg(7);
        let mut exact = 0;
        for case in 0..60 {
            let n = 2 + case % 9;
            let c = random(&mut g, n, case % 3, case % 5);
            let want = solve_canonical(&c);
            assert_eq!(want.status, Status::Optimal, "case {case}");
            let Some(got) = try_solve(&c) else { continue };
            exact += 1;
            assert!(
                close(&got.x, &want.x, 1e-6),
                "case {case}: {:?} {:?}",
                got.x,
                want.x
            );
            assert!(
                close(&got.z, &want.z, 1e-6),
                "case {case}: {:?} {:?}",
                got.z,
                want.z
            );
            let gap = (got.objective - want.objective).abs();
            assert!(
                gap <= 1e-7 * (1.0 + want.objective.abs()),
                "case {case}: gap {gap}"
            );
        }
        // Random data are rarely degenerate: nearly all are solved exactly.
        assert!(exact >= 55, "{exact} of 60 solved exactly");
    }

    /// min (x + 1)² + (y + 1)² over the rows -x <= 0, -y <= 0, -x - y <= 0 in `cone`.
    fn corner(cone: Cone) -> Canonical {
        Canonical {
            p: csc(&[2.0, 0.0, 0.0, 2.0], 2, 2, true),
            q: vec![2.0, 2.0],
            a: csc(&[-1.0, 0.0, 0.0, -1.0, -1.0, -1.0], 3, 2, false),
            b: vec![0.0, 0.0, 0.0],
            offset: 0.0,
            cones: vec![cone],
        }
    }

    #[test]
    fn degenerate_vertices_get_one_valid_set_of_multipliers() {
        // x, y >= 0 and x + y >= 0 all tight at the optimum (0, 0) of (x + 1)² + (y + 1)²:
        // the multipliers (z_x, z_y, z_s) of the three rows need only z_x + z_s = 2,
        // z_y + z_s = 2, all >= 0.
        let c = corner(Cone::Nonneg(3));
        let got = try_solve(&c).expect("solved exactly");
        let want = solve_canonical(&c);
        assert!(close(&got.x, &want.x, 1e-7), "{:?} {:?}", got.x, want.x);
        assert!((got.objective - want.objective).abs() < 1e-8);
        let z = &got.z;
        assert!(z.iter().all(|&v| v >= 0.0), "{z:?}");
        assert!(
            (z[0] + z[2] - 2.0).abs() < 1e-12 && (z[1] + z[2] - 2.0).abs() < 1e-12,
            "{z:?}"
        );
        // x <= 0.5 written twice (once times 2) at the optimum (0.5, 2) of (x - 2)² + (y - 2)²:
        // z_1 + 2 z_2 = 3.
        let twice = Canonical {
            a: csc(&[1.0, 0.0, 2.0, 0.0], 2, 2, false),
            b: vec![0.5, 1.0],
            q: vec![-4.0, -4.0],
            cones: vec![Cone::Nonneg(2)],
            ..c.clone()
        };
        let got = try_solve(&twice).expect("solved exactly");
        assert!(close(&got.x, &[0.5, 2.0], 1e-12), "{:?}", got.x);
        assert!(
            (got.z[0] + 2.0 * got.z[1] - 3.0).abs() < 1e-12,
            "{:?}",
            got.z
        );
    }

    #[test]
    fn other_cones_singular_p_and_infeasible_rows_go_to_clarabel() {
        let base = corner(Cone::Soc(3));
        assert!(try_solve(&base).is_none());
        let singular = Canonical {
            p: csc(&[1.0, 1.0, 1.0, 1.0], 2, 2, true),
            cones: vec![Cone::Nonneg(3)],
            ..base.clone()
        };
        assert!(try_solve(&singular).is_none());
        // x <= -1 and -x <= 0: infeasible; Clarabel's certificate is cvxpy's answer.
        let infeasible = Canonical {
            a: csc(&[1.0, 0.0, -1.0, 0.0], 2, 2, false),
            b: vec![-1.0, 0.0],
            cones: vec![Cone::Nonneg(2)],
            ..base
        };
        assert!(try_solve(&infeasible).is_none());
        assert_eq!(solve_canonical(&infeasible).status, Status::Infeasible);
    }
}
