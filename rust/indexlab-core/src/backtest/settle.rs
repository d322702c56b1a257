//! Settling a rebalance: turnover against the drifted weights, and its cost charged to the level.

use super::rows::Scratch;
use super::Prepared;

/// Two independent partial sums of traded value and of its cost, so the adds of a row do not
/// all wait on each other.
#[derive(Default)]
struct Sums {
    traded: [f64; 2],
    cost: [f64; 2],
}

impl Sums {
    /// One `(traded, rate)` pair into each lane.
    #[inline(always)]
    fn add(&mut self, (d0, rate0): (f64, f64), (d1, rate1): (f64, f64)) {
        self.traded[0] += d0;
        self.traded[1] += d1;
        self.cost[0] += rate0 * d0;
        self.cost[1] += rate1 * d1;
    }
}

impl Prepared {
    /// End of holding period `j` for the `c`-th candidate of the chunk, whose levels over the
    /// period are in `lv`: turnover `sum_i |w_{i,j+1} - d_i|` into `to[j + 1]`, and the level at
    /// `r_{j+1}` times `1 - sum_i rate_i |w_{i,j+1} - d_i|`.
    pub(super) fn settle(
        &self,
        j: usize,
        lv: &mut [f64],
        to: &mut [f64],
        s: &mut Scratch,
        c: usize,
    ) {
        let (r, n) = (self.rebalance.len(), self.n);
        if j + 1 >= r {
            return;
        }
        let (start, end) = (self.rebalance[j], self.rebalance[j + 1]);
        let Scratch {
            idx,
            val,
            off,
            drift,
            ..
        } = s;
        let (a, b, nb) = (off[c * r + j], off[c * r + j + 1], off[c * r + j + 2]);
        // Drifted weights d_i = w_i rel_i / growth, growth = level[end] / level[start] (pre-cost).
        let inv_growth = lv[start] / lv[end];
        let end_rel = &self.end_rel[j * n..(j + 1) * n];
        for (&i, &w) in idx[a..b].iter().zip(&val[a..b]) {
            drift[i as usize] = w * end_rel[i as usize] * inv_growth;
        }
        let rates = &self.rates[..n];
        // |w' - d| and the name's cost rate, clearing the drift so a name is counted once.
        let mut take = |i: u32, w: f64| {
            let i = i as usize;
            let diff = (w - drift[i]).abs();
            drift[i] = 0.0;
            (diff, rates[i])
        };
        let mut sums = Sums::default();
        // Names held next (d = 0 for a new name), two at a time ...
        let (next_idx, next_val) = (&idx[b..nb], &val[b..nb]);
        let (next_i2, next_w2) = (next_idx.chunks_exact(2), next_val.chunks_exact(2));
        if let (&[i], &[w]) = (next_i2.remainder(), next_w2.remainder()) {
            sums.add(take(i, w), (0.0, 0.0));
        }
        for (i, w) in next_i2.zip(next_w2) {
            sums.add(take(i[0], w[0]), take(i[1], w[1]));
        }
        // ... then names sold outright (w' = 0; a name also held next has d = 0 by now).
        let held = idx[a..b].chunks_exact(2);
        if let &[i] = held.remainder() {
            sums.add(take(i, 0.0), (0.0, 0.0));
        }
        for i in held {
            sums.add(take(i[0], 0.0), take(i[1], 0.0));
        }
        let traded = sums.traded[0] + sums.traded[1];
        let cost = match self.scalar_rate {
            Some(rate) => rate * traded,
            None => sums.cost[0] + sums.cost[1],
        };
        lv[end] *= 1.0 - cost;
        to[j + 1] = traded;
    }
}
