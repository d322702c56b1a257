//! The review loop: screens, ranking with buffers, limits, quotas, fast entry, delistings and
//! capped weights, in time order. Each review sees only data up to its cut-off; the constituents
//! in force at the cut-off are the incumbents its buffer rule protects.

use crate::capping::cap_weights;
use crate::data_err;
use crate::error::{Error, Result};

/// Why a security is, or is not, a constituent after a review (one code per review and name).
/// The first screen a name fails is recorded; later screens are not evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    OutOfUniverse = 1,
    NotListed = 2,
    Suspended = 3,
    Seasoning = 4,
    Velocity = 5,
    MinFfMcap = 6,
    MinTurnover = 7,
    NoRankKey = 8,
    NotSelected = 9,
    IndustryLimit = 10,
    QuotaLimit = 11,
    Selected = 12,
    /// The name's series ended (no recorded delisting) too long before the cut-off: a coverage
    /// gap in the data, told apart from a suspension.
    NoData = 13,
}

const SCREEN_NAMES: [(Status, &str); 9] = [
    (Status::OutOfUniverse, "universe filter"),
    (Status::NotListed, "not listed at the cut-off"),
    (Status::NoData, "no data near the cut-off"),
    (Status::Suspended, "long suspension"),
    (Status::Seasoning, "listing history"),
    (Status::Velocity, "turnover velocity"),
    (Status::MinFfMcap, "minimum free-float market cap"),
    (Status::MinTurnover, "minimum average daily turnover"),
    (Status::NoRankKey, "no rank-key value"),
];

/// Why a constituent is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    Rank = 0,
    Buffer = 1,
    FastEntry = 2,
    Quota = 3,
}

/// What produced a set of weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    Review = 0,
    FastEntry = 1,
    Delisting = 2,
}

/// Plain arrays describing the market and the review calendar. `(T x N)` and `(R x N)` arrays
/// are row-major.
pub struct ReviewInput<'a> {
    pub n_days: usize,
    pub n_sec: usize,
    /// Security ids and day labels, used in error messages only.
    pub ids: &'a [String],
    pub days: &'a [String],
    /// `(T x N)` free-float market cap in HKD, forward-filled over suspensions.
    pub ff_mcap: &'a [f64],
    /// `(T x N)` full market cap in HKD, forward-filled (fast entry compares these).
    pub mcap: &'a [f64],
    /// Listing date as days since 1970-01-01.
    pub listing_day: &'a [i64],
    /// First day index with data (`>= n_days` if never).
    pub first_idx: &'a [i64],
    /// Last day index with data of a delisted name (`i64::MAX` if not delisted).
    pub delisting_idx: &'a [i64],
    /// `(R x N)` universe filter at each review's cut-off (classification known then).
    pub universe: &'a [bool],
    /// Universe filter on each name's first trading day (for fast entry).
    pub entry_universe: &'a [bool],
    /// `(R x N)` true where the name's data ended too long before the cut-off.
    pub no_data: &'a [bool],
    /// Industry code per name (small non-negative integers).
    pub industry: &'a [i64],
    /// Membership of the quota group (e.g. Hong Kong companies).
    pub quota_flag: &'a [bool],
    /// Per-name cap (the global cap combined with category caps by minimum).
    pub name_cap: &'a [f64],
    /// `(R x N)` multiplier of the free-float market cap in the weighting (1, or an AI-score
    /// tilt as known at each cut-off).
    pub weight_base: &'a [f64],
    /// Review calendar: cut-off, implementation (weights set at its close) and effective day
    /// indices. An implementation index `>= n_days` marks a pending review (last one only): its
    /// weights use cut-off prices.
    pub cutoff_idx: &'a [i64],
    pub impl_idx: &'a [i64],
    pub cutoff_day: &'a [i64],
    pub cutoff_month: &'a [i64],
    /// `(months x N)` monthly velocity (NaN = not available).
    pub velocity: &'a [f64],
    pub n_months: usize,
    /// `(R x N)` trading days since the last trade at each cut-off.
    pub days_since_trade: &'a [i64],
    /// `(R x N)` average daily turnover value in HKD (may be empty when the screen is off).
    pub adt: &'a [f64],
    /// One `(R x N)` rank key per selection sleeve (NaN = no value).
    pub keys: Vec<&'a [f64]>,
}

/// The rule parameters, already resolved to numbers.
#[derive(Debug, Clone)]
pub struct ReviewParams {
    /// Names per selection sleeve (one sleeve = plain selection; more = composite selection).
    pub sleeve_sizes: Vec<usize>,
    /// `(R x S)` sleeve sizes per review, row-major, for rules whose selection changes at a
    /// date (the December 2026 HSTECH: 30 by market cap, then 40 plus 10 by revenue growth); a
    /// sleeve of size 0 is skipped at that review. Empty: `sleeve_sizes` at every review.
    pub sizes_by_review: Vec<usize>,
    /// Buffer as a fraction of the sleeve size (0.2: incumbents kept to rank 36 of 30,
    /// newcomers need rank 24).
    pub buffer: f64,
    pub min_listing_days: i64,
    /// Monthly velocity threshold (0 disables the test).
    pub velocity_threshold: f64,
    pub velocity_window: usize,
    pub velocity_required: usize,
    pub velocity_recent: usize,
    pub incumbent_required: usize,
    pub incumbent_recent: usize,
    pub min_ff_mcap: f64,
    pub min_adt: f64,
    pub max_suspension_days: i64,
    /// Fast entry: first-day full market cap within the top K of constituents (0 disables).
    pub fast_entry_top: usize,
    /// Added after the close of this trading day of the new listing (10: its 10th day).
    pub fast_entry_days: usize,
    /// Maximum constituents per industry (0 = no limit).
    pub max_per_industry: usize,
    pub quota_min: usize,
    pub quota_max: usize,
    pub cap: f64,
    pub equal_weight: bool,
}

impl ReviewParams {
    /// The size of selection sleeve `s` at review `r`.
    pub fn sleeve_size(&self, r: usize, s: usize) -> usize {
        if self.sizes_by_review.is_empty() {
            self.sleeve_sizes[s]
        } else {
            self.sizes_by_review[r * self.sleeve_sizes.len() + s]
        }
    }
}

/// Events (one set of weights each) and constituent rows, plus per-review diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewOutput {
    pub event_kind: Vec<u8>,
    pub event_review: Vec<i64>,
    /// Day whose close sets the weights.
    pub event_ref_idx: Vec<i64>,
    pub row_event: Vec<i64>,
    pub row_sec: Vec<i64>,
    pub row_weight: Vec<f64>,
    pub row_cf: Vec<f64>,
    pub row_rank: Vec<i64>,
    pub row_reason: Vec<u8>,
    /// `(R x N)` diagnostics.
    pub status: Vec<u8>,
    pub rank: Vec<i64>,
    pub vel_pass: Vec<i64>,
    pub vel_avail: Vec<i64>,
}

#[derive(Debug, Clone)]
struct Member {
    sec: usize,
    /// Weight per unit of free-float market cap at the day the weights were set: weights on a
    /// later day are proportional to `ff_mcap * factor` (drift between reviews).
    factor: f64,
    cf: f64,
    rank: i64,
    reason: Reason,
}

struct Engine<'a> {
    inp: &'a ReviewInput<'a>,
    p: &'a ReviewParams,
    out: ReviewOutput,
    members: Vec<Member>,
    reviewed: bool,
    /// Pending checks and adds, processed in day order.
    checks: Vec<(i64, usize)>,
    delistings: Vec<(i64, usize)>,
    adds: Vec<(i64, usize, i64)>,
    next_check: usize,
    next_delisting: usize,
    /// Fast entries added since the last cut-off (kept by the next review).
    recent_adds: Vec<usize>,
    last_review: i64,
    /// Largest weight per unit of weighting base at the last review (the uncapped names').
    top_ratio: f64,
}

/// Run every review in order and the events between them.
pub fn run_reviews(inp: &ReviewInput<'_>, p: &ReviewParams) -> Result<ReviewOutput> {
    validate(inp, p)?;
    let (t, n) = (inp.n_days as i64, inp.n_sec);
    let mut checks: Vec<(i64, usize)> = Vec::new();
    let mut delistings: Vec<(i64, usize)> = Vec::new();
    for i in 0..n {
        if p.fast_entry_top > 0
            && inp.entry_universe[i]
            && inp.first_idx[i] > 0
            && inp.first_idx[i] < t
        {
            checks.push((inp.first_idx[i], i));
        }
        if inp.delisting_idx[i] < t - 1 {
            delistings.push((inp.delisting_idx[i], i));
        }
    }
    checks.sort_unstable();
    delistings.sort_unstable();
    let r_count = inp.cutoff_idx.len();
    let mut eng = Engine {
        inp,
        p,
        out: ReviewOutput {
            status: vec![0; r_count * n],
            rank: vec![0; r_count * n],
            vel_pass: vec![0; r_count * n],
            vel_avail: vec![0; r_count * n],
            ..Default::default()
        },
        members: Vec::new(),
        reviewed: false,
        checks,
        delistings,
        adds: Vec::new(),
        next_check: 0,
        next_delisting: 0,
        recent_adds: Vec::new(),
        last_review: -1,
        top_ratio: 0.0,
    };
    for r in 0..r_count {
        let cut = inp.cutoff_idx[r];
        let pending = inp.impl_idx[r] >= t;
        let reference = if pending { cut } else { inp.impl_idx[r] };
        eng.advance(cut + 1)?;
        let incumbents: Vec<bool> = {
            let mut v = vec![false; n];
            for m in &eng.members {
                v[m.sec] = true;
            }
            v
        };
        eng.recent_adds.clear();
        if !pending {
            eng.advance(reference)?;
        }
        eng.review(r, &incumbents, reference)?;
        if pending {
            return Ok(eng.out);
        }
    }
    eng.advance(t - 1)?;
    Ok(eng.out)
}

fn validate(inp: &ReviewInput<'_>, p: &ReviewParams) -> Result<()> {
    let (t, n) = (inp.n_days, inp.n_sec);
    let r = inp.cutoff_idx.len();
    // Sizes come from the caller: a product that overflows is a mismatch, not a wrapped match.
    let (t, r, months) = (
        size_or_err("n_days", t, n)?,
        size_or_err("reviews", r, n)?,
        size_or_err("n_months", inp.n_months, n)?,
    );
    if i64::try_from(t).is_err() {
        return data_err!("rules input n_days is {t}: too many days");
    }
    let checks: [(&str, usize, usize); 17] = [
        ("ids", inp.ids.len(), n),
        ("days", inp.days.len(), t),
        ("ff_mcap", inp.ff_mcap.len(), t * n),
        ("mcap", inp.mcap.len(), t * n),
        ("listing_day", inp.listing_day.len(), n),
        ("first_idx", inp.first_idx.len(), n),
        ("delisting_idx", inp.delisting_idx.len(), n),
        ("universe", inp.universe.len(), r * n),
        ("entry_universe", inp.entry_universe.len(), n),
        ("no_data", inp.no_data.len(), r * n),
        ("industry", inp.industry.len(), n),
        ("quota_flag", inp.quota_flag.len(), n),
        ("name_cap", inp.name_cap.len(), n),
        ("weight_base", inp.weight_base.len(), r * n),
        ("impl_idx", inp.impl_idx.len(), r),
        ("velocity", inp.velocity.len(), months * n),
        ("days_since_trade", inp.days_since_trade.len(), r * n),
    ];
    for (name, got, want) in checks {
        if got != want {
            return Err(Error::Data(format!(
                "rules input {name} has {got} values, expected {want}"
            )));
        }
    }
    if inp.cutoff_day.len() != r || inp.cutoff_month.len() != r {
        return Err(Error::Data(
            "cutoff_day and cutoff_month need one value per review".into(),
        ));
    }
    if !(inp.adt.is_empty() || inp.adt.len() == r * n) {
        return Err(Error::Data(format!(
            "rules input adt has {} values, expected 0 or {}",
            inp.adt.len(),
            r * n
        )));
    }
    if inp.keys.len() != p.sleeve_sizes.len() || inp.keys.is_empty() {
        return Err(Error::Data(format!(
            "{} rank keys for {} selection sleeves: give one key per sleeve",
            inp.keys.len(),
            p.sleeve_sizes.len()
        )));
    }
    if inp.keys.iter().any(|k| k.len() != r * n) {
        return Err(Error::Data(format!(
            "each rank key must have {} values",
            r * n
        )));
    }
    for k in 0..r {
        let (c, i) = (inp.cutoff_idx[k], inp.impl_idx[k]);
        if c < 0 || c as usize >= t || i < c {
            return Err(Error::Data(format!(
                "review {k}: cut-off index {c} and implementation index {i} must satisfy \
                 0 <= cut-off < {t} and cut-off <= implementation"
            )));
        }
        if k > 0 && inp.impl_idx[k - 1] >= c {
            return Err(Error::Data(format!(
                "review {k}: its cut-off (index {c}) must come after the previous review's \
                 implementation (index {})",
                inp.impl_idx[k - 1]
            )));
        }
        if i >= t as i64 && k + 1 != r {
            return Err(Error::Data(format!(
                "review {k} is implemented after the last date but is not the last review"
            )));
        }
    }
    if inp.industry.iter().any(|&c| c < 0) || inp.cutoff_month.iter().any(|&m| m < 0) {
        return Err(Error::Data(
            "industry codes and month numbers must be >= 0".into(),
        ));
    }
    if !(p.buffer >= 0.0 && p.buffer < 1.0) {
        return Err(Error::Data(format!(
            "buffer must be in [0, 1), got {}",
            p.buffer
        )));
    }
    if p.sleeve_sizes.contains(&0) {
        return Err(Error::Data(
            "every selection sleeve needs at least one name".into(),
        ));
    }
    let sleeves = p.sleeve_sizes.len();
    if !p.sizes_by_review.is_empty() {
        if p.sizes_by_review.len() != r * sleeves {
            return Err(Error::Data(format!(
                "sizes_by_review has {} values, expected {} ({r} reviews x {sleeves} sleeves)",
                p.sizes_by_review.len(),
                r * sleeves
            )));
        }
        if let Some(k) = (0..r).find(|&k| {
            p.sizes_by_review[k * sleeves..(k + 1) * sleeves]
                .iter()
                .all(|&x| x == 0)
        }) {
            return Err(Error::Data(format!(
                "review {k}: every selection sleeve has size 0; at least one name is needed"
            )));
        }
    }
    Ok(())
}

/// `count`, checked so that `count x n` values fit in memory's address space.
fn size_or_err(what: &str, count: usize, n: usize) -> Result<usize> {
    match count.checked_mul(n.max(1)) {
        Some(total) if total <= isize::MAX as usize / 8 => Ok(count),
        _ => data_err!("rules input {what} is {count}: {count} x {n} names is too large"),
    }
}

impl Engine<'_> {
    fn ff(&self, day: i64, i: usize) -> f64 {
        self.inp.ff_mcap[day as usize * self.inp.n_sec + i]
    }

    fn check_positive(&self, v: f64, i: usize, day: i64, what: &str) -> Result<f64> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(Error::Data(format!(
                "{what} of {} on {} is {v}: expected a finite value > 0",
                self.inp.ids[i], self.inp.days[day as usize]
            )))
        }
    }

    /// Process fast-entry checks, fast-entry additions and delistings on days `< until`.
    fn advance(&mut self, until: i64) -> Result<()> {
        loop {
            let next_check = self.checks.get(self.next_check).map(|c| c.0);
            let next_del = self.delistings.get(self.next_delisting).map(|d| d.0);
            let next_add = self.adds.first().map(|a| a.0);
            let day = [next_check, next_del, next_add].into_iter().flatten().min();
            let Some(day) = day else { return Ok(()) };
            if day >= until {
                return Ok(());
            }
            let mut changed_add = false;
            let mut changed_del = false;
            while self.checks.get(self.next_check).is_some_and(|c| c.0 == day) {
                let sec = self.checks[self.next_check].1;
                self.next_check += 1;
                self.fast_entry_check(day, sec);
            }
            while self.adds.first().is_some_and(|a| a.0 == day) {
                let (_, sec, rank) = self.adds.remove(0);
                if self.members.iter().all(|m| m.sec != sec) && self.inp.delisting_idx[sec] > day {
                    self.add_fast_entry(day, sec, rank)?;
                    changed_add = true;
                }
            }
            while self
                .delistings
                .get(self.next_delisting)
                .is_some_and(|d| d.0 == day)
            {
                let sec = self.delistings[self.next_delisting].1;
                self.next_delisting += 1;
                let before = self.members.len();
                self.members.retain(|m| m.sec != sec);
                changed_del |= self.members.len() != before;
            }
            if changed_add || changed_del {
                let kind = if changed_add {
                    EventKind::FastEntry
                } else {
                    EventKind::Delisting
                };
                self.emit(kind, self.last_review, day)?;
            }
        }
    }

    fn fast_entry_check(&mut self, day: i64, sec: usize) {
        if !self.reviewed || self.members.is_empty() {
            return;
        }
        let n = self.inp.n_sec;
        let d = day as usize;
        let own = self.inp.mcap[d * n + sec];
        if !own.is_finite() {
            return;
        }
        let bigger = self
            .members
            .iter()
            .filter(|m| self.inp.mcap[d * n + m.sec] > own)
            .count();
        if bigger < self.p.fast_entry_top {
            // Added after the close of the listing's `fast_entry_days`-th day. A count past the
            // panel (any size up to usize::MAX) means never, not a wrapped negative day; a count
            // of 0 is treated as 1 (the first day itself), never a day before the check.
            let add_day = i64::try_from(self.p.fast_entry_days.max(1) - 1)
                .ok()
                .and_then(|d| day.checked_add(d));
            let Some(add_day) = add_day else { return };
            if add_day + 1 < self.inp.n_days as i64 {
                let pos = self.adds.partition_point(|a| (a.0, a.1) <= (add_day, sec));
                self.adds.insert(pos, (add_day, sec, bigger as i64 + 1));
            }
        }
    }

    fn add_fast_entry(&mut self, day: i64, sec: usize, rank: i64) -> Result<()> {
        let x = self.check_positive(self.ff(day, sec), sec, day, "free-float market cap")?;
        let mut total = 0.0;
        for m in &self.members {
            total += self.ff(day, m.sec) * m.factor;
        }
        let count = self.members.len() as f64;
        // Natural weight: an equal share, or the entrant's weighting base at the factor of the
        // last review's uncapped names; then held at its cap.
        let row = self.last_review.max(0) as usize * self.inp.n_sec;
        let natural_factor = self.top_ratio * self.inp.weight_base[row + sec];
        let natural = if self.p.equal_weight {
            1.0 / (count + 1.0)
        } else {
            x * natural_factor / (total + x * natural_factor)
        };
        let target = natural.min(self.inp.name_cap[sec]).min(1.0 - 1e-12);
        let factor = target * total / ((1.0 - target) * x);
        let cf = if self.p.equal_weight || natural_factor <= 0.0 {
            1.0
        } else {
            (factor / natural_factor).min(1.0)
        };
        self.members.push(Member {
            sec,
            factor,
            cf,
            rank,
            reason: Reason::FastEntry,
        });
        self.recent_adds.push(sec);
        Ok(())
    }

    /// Record the members' weights at the close of `day` (drifted by free-float market cap).
    fn emit(&mut self, kind: EventKind, review: i64, day: i64) -> Result<()> {
        if self.out.event_ref_idx.last() == Some(&day) {
            // A later change on the same close replaces the earlier set of weights.
            let e = self.out.event_kind.len() as i64 - 1;
            let keep = self.out.row_event.partition_point(|&x| x < e);
            self.out.row_event.truncate(keep);
            self.out.row_sec.truncate(keep);
            self.out.row_weight.truncate(keep);
            self.out.row_cf.truncate(keep);
            self.out.row_rank.truncate(keep);
            self.out.row_reason.truncate(keep);
            let prev = self.out.event_kind.pop();
            self.out.event_review.pop();
            self.out.event_ref_idx.pop();
            let kind = if prev == Some(EventKind::Review as u8) {
                EventKind::Review
            } else {
                kind
            };
            return self.emit(kind, review, day);
        }
        if self.members.is_empty() {
            return Err(Error::Infeasible(format!(
                "no constituents left on {} after delistings",
                self.inp.days[day as usize]
            )));
        }
        let mut vals = Vec::with_capacity(self.members.len());
        for m in &self.members {
            let v =
                self.check_positive(self.ff(day, m.sec), m.sec, day, "free-float market cap")?;
            vals.push(v * m.factor);
        }
        let total: f64 = vals.iter().sum();
        let e = self.out.event_kind.len() as i64;
        self.out.event_kind.push(kind as u8);
        self.out.event_review.push(review);
        self.out.event_ref_idx.push(day);
        for (m, v) in self.members.iter().zip(&vals) {
            self.out.row_event.push(e);
            self.out.row_sec.push(m.sec as i64);
            self.out.row_weight.push(v / total);
            self.out.row_cf.push(m.cf);
            self.out.row_rank.push(m.rank);
            self.out.row_reason.push(m.reason as u8);
        }
        Ok(())
    }

    /// Velocity test: (months passed, months available, passes).
    fn velocity_test(&self, i: usize, month: i64, incumbent: bool) -> (i64, i64, bool) {
        let p = self.p;
        let n = self.inp.n_sec;
        let (required, recent) = if incumbent {
            (p.incumbent_required, p.incumbent_recent)
        } else {
            (p.velocity_required, p.velocity_recent)
        };
        let last = month.min(self.inp.n_months as i64 - 1);
        let first = (month + 1 - p.velocity_window as i64).max(0);
        let (mut passed, mut avail) = (0i64, 0i64);
        let mut recent_ok = true;
        let mut seen_recent = 0usize;
        let mut m = last;
        while m >= first {
            let v = self.inp.velocity[m as usize * n + i];
            if !v.is_nan() {
                avail += 1;
                let ok = v >= p.velocity_threshold;
                passed += ok as i64;
                if seen_recent < recent {
                    recent_ok &= ok;
                    seen_recent += 1;
                }
            }
            m -= 1;
        }
        let allowed_failures = p.velocity_window.saturating_sub(required) as i64;
        let ok = avail > 0 && avail - passed <= allowed_failures && recent_ok;
        (passed, avail, ok)
    }

    fn review(&mut self, r: usize, incumbent: &[bool], reference: i64) -> Result<()> {
        let inp = self.inp;
        let p = self.p;
        let n = inp.n_sec;
        let cut = inp.cutoff_idx[r];
        let row = r * n;
        let mut status = vec![Status::NotSelected; n];
        for i in 0..n {
            let inc = incumbent[i];
            let s = &mut status[i];
            if !inp.universe[row + i] {
                *s = Status::OutOfUniverse;
                continue;
            }
            if inp.first_idx[i] > cut || inp.delisting_idx[i] <= cut {
                *s = Status::NotListed;
                continue;
            }
            if inp.no_data[row + i] {
                *s = Status::NoData;
                continue;
            }
            if inp.days_since_trade[row + i] > p.max_suspension_days {
                *s = Status::Suspended;
                continue;
            }
            if !inc && inp.cutoff_day[r] - inp.listing_day[i] < p.min_listing_days {
                *s = Status::Seasoning;
                continue;
            }
            if p.velocity_threshold > 0.0 {
                let (passed, avail, ok) = self.velocity_test(i, inp.cutoff_month[r], inc);
                self.out.vel_pass[row + i] = passed;
                self.out.vel_avail[row + i] = avail;
                if !ok {
                    *s = Status::Velocity;
                    continue;
                }
            }
            let ffm = inp.ff_mcap[cut as usize * n + i];
            // NaN fails the screen too.
            if ffm.is_nan() || ffm < p.min_ff_mcap {
                *s = Status::MinFfMcap;
                continue;
            }
            if p.min_adt > 0.0
                && !inp.adt.is_empty()
                && (inp.adt[row + i].is_nan() || inp.adt[row + i] < p.min_adt)
            {
                *s = Status::MinTurnover;
                continue;
            }
            if inp.keys[0][row + i].is_nan() {
                *s = Status::NoRankKey;
            }
        }
        let eligible = status.iter().filter(|s| **s == Status::NotSelected).count();
        if eligible == 0 {
            let mut parts = Vec::new();
            for (code, name) in SCREEN_NAMES {
                let k = status.iter().filter(|s| **s == code).count();
                if k > 0 {
                    parts.push(format!("{name} removed {k}"));
                }
            }
            return Err(Error::Infeasible(format!(
                "review with cut-off {}: no eligible names left after the screens ({} names: {})",
                inp.days[cut as usize],
                n,
                parts.join(", ")
            )));
        }

        // Selection, sleeve by sleeve.
        let n_ind = inp.industry.iter().copied().max().unwrap_or(0) as usize + 1;
        let mut per_industry = vec![0usize; n_ind];
        let mut quota_count = 0usize;
        let mut chosen: Vec<(usize, i64, Reason)> = Vec::new();
        let mut taken = vec![false; n];
        for (s, key) in inp.keys.iter().enumerate() {
            let size = p.sleeve_size(r, s);
            if size == 0 {
                continue;
            }
            let mut cand: Vec<usize> = (0..n)
                .filter(|&i| {
                    status[i] == Status::NotSelected && !taken[i] && !key[row + i].is_nan()
                })
                .collect();
            cand.sort_by(|&a, &b| key[row + b].total_cmp(&key[row + a]).then(a.cmp(&b)));
            let upper = (size as f64 * (1.0 + p.buffer)).round() as i64;
            let lower = ((size as f64 * (1.0 - p.buffer)).round() as i64).max(1);
            let ranked: Vec<(usize, i64)> = cand
                .iter()
                .enumerate()
                .map(|(k, &i)| (i, k as i64 + 1))
                .collect();
            if s == 0 {
                for &(i, rk) in &ranked {
                    self.out.rank[row + i] = rk;
                }
            }
            let in_band = |&(i, rk): &(usize, i64)| {
                if incumbent[i] {
                    rk <= upper
                } else {
                    rk <= lower
                }
            };
            let first: Vec<(usize, i64)> = ranked.iter().copied().filter(in_band).collect();
            let rest: Vec<(usize, i64)> = ranked.iter().copied().filter(|x| !in_band(x)).collect();
            let mut got = 0usize;
            for (band, list) in [(true, &first), (false, &rest)] {
                for &(i, rk) in list.iter() {
                    if got == size {
                        break;
                    }
                    if taken[i] {
                        continue;
                    }
                    let ind = inp.industry[i] as usize;
                    if p.max_per_industry > 0 && per_industry[ind] >= p.max_per_industry {
                        status[i] = Status::IndustryLimit;
                        continue;
                    }
                    if inp.quota_flag[i] && quota_count >= p.quota_max {
                        status[i] = Status::QuotaLimit;
                        continue;
                    }
                    let reason = if band && incumbent[i] && rk > size as i64 {
                        Reason::Buffer
                    } else {
                        Reason::Rank
                    };
                    taken[i] = true;
                    per_industry[ind] += 1;
                    quota_count += inp.quota_flag[i] as usize;
                    chosen.push((i, rk, reason));
                    got += 1;
                }
            }
        }

        // Quota minimum: swap the worst-ranked names outside the group for the best-ranked
        // eligible names inside it (industry limits are not re-checked on swaps).
        if quota_count < p.quota_min {
            let key = inp.keys[0];
            let mut inside: Vec<usize> = (0..n)
                .filter(|&i| {
                    inp.quota_flag[i]
                        && !taken[i]
                        && matches!(
                            status[i],
                            Status::NotSelected | Status::IndustryLimit | Status::QuotaLimit
                        )
                        && !key[row + i].is_nan()
                })
                .collect();
            inside.sort_by(|&a, &b| key[row + b].total_cmp(&key[row + a]).then(a.cmp(&b)));
            let mut inside = inside.into_iter();
            while quota_count < p.quota_min {
                let worst = chosen
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !inp.quota_flag[c.0])
                    .max_by(|a, b| {
                        key[row + b.1 .0]
                            .total_cmp(&key[row + a.1 .0])
                            .then(a.1 .0.cmp(&b.1 .0))
                    })
                    .map(|(k, _)| k);
                let (Some(k), Some(add)) = (worst, inside.next()) else {
                    break;
                };
                let out = chosen.remove(k).0;
                taken[out] = false;
                status[out] = Status::NotSelected;
                taken[add] = true;
                quota_count += 1;
                chosen.push((add, self.out.rank[row + add], Reason::Quota));
            }
        }

        // Fast entries made since the cut-off stay in.
        for &sec in &self.recent_adds {
            if !taken[sec] && self.members.iter().any(|m| m.sec == sec) {
                taken[sec] = true;
                chosen.push((sec, 0, Reason::FastEntry));
            }
        }
        // Names delisted by the implementation day cannot be bought.
        chosen.retain(|c| {
            let gone = inp.delisting_idx[c.0] <= reference;
            if gone {
                status[c.0] = Status::NotListed;
            }
            !gone
        });
        for c in &chosen {
            status[c.0] = Status::Selected;
        }
        for (i, s) in status.iter().enumerate() {
            self.out.status[row + i] = *s as u8;
        }
        if chosen.is_empty() {
            return Err(Error::Infeasible(format!(
                "review with cut-off {}: every selected name was delisted before implementation",
                inp.days[cut as usize]
            )));
        }

        // Capped weights at the reference close.
        let mut base = Vec::with_capacity(chosen.len());
        let mut caps = Vec::with_capacity(chosen.len());
        for &(i, _, _) in &chosen {
            let ff =
                self.check_positive(self.ff(reference, i), i, reference, "free-float market cap")?;
            let b = if p.equal_weight {
                1.0
            } else {
                self.check_positive(
                    ff * inp.weight_base[row + i],
                    i,
                    reference,
                    "weighting base",
                )?
            };
            base.push(b);
            caps.push(inp.name_cap[i]);
        }
        // Without category caps, let the capping module phrase the error as `n x cap`.
        let per_name = if caps.iter().all(|&c| c >= p.cap) {
            None
        } else {
            Some(caps.as_slice())
        };
        let w = cap_weights(&base, p.cap, per_name).map_err(|e| match e {
            Error::Infeasible(msg) => Error::Infeasible(format!(
                "review with cut-off {} ({} constituents selected): {msg}",
                inp.days[cut as usize],
                chosen.len()
            )),
            other => other,
        })?;
        let ratios: Vec<f64> = w.iter().zip(&base).map(|(w, b)| w / b).collect();
        let top = ratios.iter().copied().fold(f64::MIN, f64::max);
        self.members = chosen
            .iter()
            .zip(w.iter().zip(&ratios))
            .map(|(&(sec, rank, reason), (&wi, &ratio))| Member {
                sec,
                factor: wi / self.ff(reference, sec),
                cf: (ratio / top).min(1.0),
                rank,
                reason,
            })
            .collect();
        self.top_ratio = if p.equal_weight { 0.0 } else { top };
        self.reviewed = true;
        self.last_review = r as i64;
        self.recent_adds.clear();
        self.emit(EventKind::Review, r as i64, reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Market {
        ids: Vec<String>,
        days: Vec<String>,
        ff: Vec<f64>,
        n_days: usize,
        n: usize,
    }

    /// `caps[k]` is the (constant) cap of name k before day `switch`, `after[k]` from it on.
    fn market(caps: &[f64], after: &[f64], n_days: usize, switch: usize) -> Market {
        let n = caps.len();
        let mut ff = vec![0.0; n_days * n];
        for d in 0..n_days {
            for i in 0..n {
                ff[d * n + i] = if d < switch { caps[i] } else { after[i] };
            }
        }
        Market {
            ids: (0..n).map(|i| format!("S{i}")).collect(),
            days: (0..n_days).map(|d| format!("day{d}")).collect(),
            ff,
            n_days,
            n,
        }
    }

    fn params(size: usize, buffer: f64, cap: f64) -> ReviewParams {
        ReviewParams {
            sleeve_sizes: vec![size],
            sizes_by_review: Vec::new(),
            buffer,
            min_listing_days: 0,
            velocity_threshold: 0.0,
            velocity_window: 12,
            velocity_required: 10,
            velocity_recent: 3,
            incumbent_required: 10,
            incumbent_recent: 0,
            min_ff_mcap: 0.0,
            min_adt: 0.0,
            max_suspension_days: 1000,
            fast_entry_top: 0,
            fast_entry_days: 10,
            max_per_industry: 0,
            quota_min: 0,
            quota_max: usize::MAX,
            cap,
            equal_weight: false,
        }
    }

    fn run(
        m: &Market,
        p: &ReviewParams,
        cut: &[i64],
        imp: &[i64],
        keys: &[f64],
    ) -> Result<ReviewOutput> {
        run_listed(m, p, cut, imp, keys, &vec![0i64; m.n])
    }

    /// [`run`] with each name's first day with data (`first_idx`).
    fn run_listed(
        m: &Market,
        p: &ReviewParams,
        cut: &[i64],
        imp: &[i64],
        keys: &[f64],
        first_idx: &[i64],
    ) -> Result<ReviewOutput> {
        let n = m.n;
        let r = cut.len();
        let zeros = vec![0i64; n];
        let never = vec![i64::MAX; n];
        let yes = vec![true; n];
        let yes_rn = vec![true; r * n];
        let no = vec![false; n];
        let no_rn = vec![false; r * n];
        let ones = vec![1.0; r * n];
        let caps = vec![p.cap; n];
        let dst = vec![0i64; r * n];
        let input = ReviewInput {
            n_days: m.n_days,
            n_sec: n,
            ids: &m.ids,
            days: &m.days,
            ff_mcap: &m.ff,
            mcap: &m.ff,
            listing_day: &zeros,
            first_idx,
            delisting_idx: &never,
            universe: &yes_rn,
            entry_universe: &yes,
            no_data: &no_rn,
            industry: &zeros,
            quota_flag: &no,
            name_cap: &caps,
            weight_base: &ones,
            cutoff_idx: cut,
            impl_idx: imp,
            cutoff_day: cut,
            cutoff_month: &vec![0; r],
            velocity: &[],
            n_months: 0,
            days_since_trade: &dst,
            adt: &[],
            keys: vec![keys],
        };
        run_reviews(&input, p)
    }

    fn selected(out: &ReviewOutput, event: i64) -> Vec<i64> {
        let mut v: Vec<i64> = (0..out.row_event.len())
            .filter(|&k| out.row_event[k] == event)
            .map(|k| out.row_sec[k])
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn buffer_keeps_incumbent_inside_band_and_weights_sum_to_one() {
        // 2 names of 5, buffer 0.5: incumbents stay to rank 3, newcomers need rank 1.
        // Review 0: S0, S1. Review 1: S2 overtakes S1 (S0 > S2 > S1): S1 ranks 3, kept.
        let before = [50.0, 40.0, 30.0, 20.0, 10.0];
        let after = [50.0, 35.0, 45.0, 20.0, 10.0];
        let m = market(&before, &after, 10, 4);
        let mut keys = before.to_vec();
        keys.extend_from_slice(&after);
        let out = run(&m, &params(2, 0.5, 1.0), &[2, 6], &[3, 7], &keys).unwrap();
        assert_eq!(selected(&out, 0), vec![0, 1]);
        assert_eq!(selected(&out, 1), vec![0, 1]);
        // Review 1 weights at day 7: 50 / 85 and 35 / 85.
        let w: Vec<f64> = (0..out.row_event.len())
            .filter(|&k| out.row_event[k] == 1)
            .map(|k| out.row_weight[k])
            .collect();
        assert!((w[0] - 50.0 / 85.0).abs() < 1e-15 && (w[1] - 35.0 / 85.0).abs() < 1e-15);
        assert_eq!(out.row_reason[3], Reason::Buffer as u8);
    }

    #[test]
    fn sleeve_sizes_can_change_between_reviews() {
        // One sleeve, 2 names at review 0 and 3 at review 1 (no buffer): S0 > S1 > S2 > S3.
        let caps = [50.0, 40.0, 30.0, 20.0];
        let m = market(&caps, &caps, 10, 4);
        let keys: Vec<f64> = caps.iter().chain(caps.iter()).copied().collect();
        let mut p = params(2, 0.0, 1.0);
        p.sizes_by_review = vec![2, 3];
        let out = run(&m, &p, &[2, 6], &[3, 7], &keys).unwrap();
        assert_eq!(selected(&out, 0), vec![0, 1]);
        assert_eq!(selected(&out, 1), vec![0, 1, 2]);
        // A wrong length, or a review with every sleeve empty, is a data error.
        p.sizes_by_review = vec![2];
        assert!(matches!(
            run(&m, &p, &[2, 6], &[3, 7], &keys),
            Err(Error::Data(_))
        ));
        p.sizes_by_review = vec![2, 0];
        let err = run(&m, &p, &[2, 6], &[3, 7], &keys).unwrap_err();
        assert!(err.to_string().contains("review 1"), "{err}");
    }

    #[test]
    fn fast_entry_days_past_the_panel_means_never() {
        // S2 lists on day 4 as the largest name; the review (cut-off 1, day 2) holds S0, S1.
        let before = [50.0, 40.0, f64::NAN];
        let after = [50.0, 40.0, 90.0];
        let m = market(&before, &after, 12, 4);
        let keys = [50.0, 40.0, f64::NAN];
        let first = [0, 0, 4];
        let with_days = |days: usize| {
            let mut p = params(2, 0.0, 1.0);
            p.fast_entry_top = 2;
            p.fast_entry_days = days;
            run_listed(&m, &p, &[1], &[2], &keys, &first)
        };
        let added = with_days(3).unwrap();
        assert!(added.event_kind.contains(&(EventKind::FastEntry as u8)));
        assert_eq!(
            added.event_ref_idx.last(),
            Some(&6),
            "added after its 3rd day"
        );
        // Days past the panel, up to usize::MAX (once cast to a negative day): never added.
        for days in [1_000_000_000, 1usize << 63, (1usize << 63) + 5, usize::MAX] {
            let out = with_days(days).unwrap();
            assert!(
                !out.event_kind.contains(&(EventKind::FastEntry as u8)),
                "{days}"
            );
            assert!(out.event_ref_idx.iter().all(|&d| (0..12).contains(&d)));
        }
    }

    #[test]
    fn overflowing_sizes_are_data_errors() {
        let caps = [4.0, 3.0];
        let mut m = market(&caps, &caps, 5, 0);
        m.n_days = usize::MAX / 2 + 1;
        let err = run(&m, &params(1, 0.0, 1.0), &[1], &[2], &caps).unwrap_err();
        assert!(matches!(err, Error::Data(_)), "{err:?}");
    }

    #[test]
    fn infeasible_cap_names_the_review() {
        let caps = [4.0, 3.0, 2.0, 1.0];
        let m = market(&caps, &caps, 5, 0);
        let err = run(&m, &params(4, 0.0, 0.2), &[1], &[2], &caps).unwrap_err();
        let Error::Infeasible(msg) = err else {
            panic!("expected Infeasible")
        };
        assert!(
            msg.contains("cut-off day1") && msg.contains("4 names x 20.0000% cap"),
            "{msg}"
        );
    }
}
