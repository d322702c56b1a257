//! Where a variable or a row sits in a working set, shared by both active-set methods.
//!
//! A variable `x_j` in `[lo_j, hi_j]` may carry a turnover kink: the term `cost_j |x_j - p_j|`
//! with `lo_j < p_j < hi_j` (a kink at or outside a bound is a constant shift of the linear
//! term, folded in before the solvers see it; a variable without a kink has `p_j = lo_j` and
//! `cost_j = 0`). Its range then has two segments, `[lo, p]` and `[p, hi]`, on each of which
//! the objective is smooth. A working set holds the variable at one of three points (`lo`,
//! `hi`, `p`) or lets it move inside one segment, with the linear coefficient of that segment:
//! `c + cost` below the kink (moving up reduces the turnover) and `c - cost` above it. (A kink
//! with `cost = 0` is a breakpoint only; phase 1 of the dense path keeps the kinks that way.)

/// Where a variable sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    Lower,
    Upper,
    /// Held at its turnover kink.
    Kink,
    /// Free in `[lo, p]` (only for a variable with a kink).
    Below,
    /// Free in `[p, hi]`, or in `[lo, hi]` for a variable without a kink.
    Above,
}

/// Which bound of a row is in the working set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Active {
    /// Not in the working set.
    No,
    Lower,
    Upper,
}

/// The box and the kink of one variable.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Range {
    pub lo: f64,
    pub hi: f64,
    /// The kink `p`; none unless `lo < p < hi`.
    pub kink: f64,
    /// The turnover cost, `>= 0`.
    pub cost: f64,
}

impl Place {
    pub fn is_free(self) -> bool {
        matches!(self, Place::Below | Place::Above)
    }
}

impl Range {
    pub fn has_kink(&self) -> bool {
        self.lo < self.kink && self.kink < self.hi
    }

    /// The value of a variable held at `place`; `None` when it is free there.
    pub fn value(&self, place: Place) -> Option<f64> {
        match place {
            Place::Lower => Some(self.lo),
            Place::Upper => Some(self.hi),
            Place::Kink => Some(self.kink),
            Place::Below | Place::Above => None,
        }
    }

    /// The linear coefficient of a variable free at `place` whose base coefficient is `c`.
    pub fn linear(&self, c: f64, place: Place) -> f64 {
        if place == Place::Below {
            c + self.cost
        } else {
            c - self.cost
        }
    }

    /// The segment a free variable may move in: `(low end, place there, high end, place there)`.
    pub fn segment(&self, place: Place) -> (f64, Place, f64, Place) {
        if !self.has_kink() {
            (self.lo, Place::Lower, self.hi, Place::Upper)
        } else if place == Place::Below {
            (self.lo, Place::Lower, self.kink, Place::Kink)
        } else {
            (self.kink, Place::Kink, self.hi, Place::Upper)
        }
    }

    /// How fast the objective falls per unit step when a variable held at `place` moves up and
    /// when it moves down (`-inf` where it cannot move). `glam` is the derivative of the smooth
    /// part of the Lagrangian (without the turnover term) with respect to the variable.
    pub fn release_gain(&self, place: Place, glam: f64) -> (f64, f64) {
        // Moving up from lo enters [lo, p], where the turnover falls: gain -glam + cost.
        match place {
            Place::Lower => (-glam + self.cost, f64::NEG_INFINITY),
            Place::Upper => (f64::NEG_INFINITY, glam + self.cost),
            Place::Kink => (-glam - self.cost, glam - self.cost),
            Place::Below | Place::Above => (f64::NEG_INFINITY, f64::NEG_INFINITY),
        }
    }

    /// The place a held variable is released into when it moves up (`true`) or down.
    pub fn released(&self, place: Place, up: bool) -> Place {
        match (place, up) {
            (Place::Lower, _) if self.has_kink() => Place::Below,
            (Place::Kink, false) => Place::Below,
            _ => Place::Above,
        }
    }

    /// The free place of a variable at `x` (below or above its kink).
    pub fn side_of(&self, x: f64) -> Place {
        if self.has_kink() && x < self.kink {
            Place::Below
        } else {
            Place::Above
        }
    }

    /// `x` clipped into the segment of `place` (a free place) or set to a held place's value.
    pub fn clip(&self, x: f64, place: Place) -> f64 {
        match self.value(place) {
            Some(v) => v,
            None => {
                let (a, _, b, _) = self.segment(place);
                x.clamp(a, b)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_gains_follow_the_turnover_signs() {
        // lo = 0, kink 0.3, hi = 1, cost 0.1; smooth derivative glam = 0.05 (pushes down).
        let r = Range {
            lo: 0.0,
            hi: 1.0,
            kink: 0.3,
            cost: 0.1,
        };
        // From lo, moving up lowers the turnover by 0.1 and raises the smooth part by 0.05.
        assert!((r.release_gain(Place::Lower, 0.05).0 - 0.05).abs() < 1e-15);
        // From hi, moving down lowers both.
        assert!((r.release_gain(Place::Upper, 0.05).1 - 0.15).abs() < 1e-15);
        // At the kink, moving either way costs 0.1 of turnover: down gains 0.05 - 0.1 < 0.
        let (up, down) = r.release_gain(Place::Kink, 0.05);
        assert!((up + 0.15).abs() < 1e-15 && (down + 0.05).abs() < 1e-15);
        assert_eq!(r.released(Place::Lower, true), Place::Below);
        assert_eq!(r.released(Place::Kink, true), Place::Above);
        assert_eq!(r.released(Place::Kink, false), Place::Below);
        assert_eq!(r.released(Place::Upper, false), Place::Above);
        assert_eq!(
            r.segment(Place::Below),
            (0.0, Place::Lower, 0.3, Place::Kink)
        );
    }
}
