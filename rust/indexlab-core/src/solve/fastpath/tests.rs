//! Unit tests of the fast path: hand-worked instances, the turnover term against the split
//! formulation, and an ignored timing run.

// Dense linear algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::*;

fn linear(scores: &[f64], hi: f64) -> CappedQp<'_> {
    CappedQp {
        batch: 1,
        names: scores.len(),
        scores,
        bench: None,
        risk: None,
        gamma: 0.0,
        lo: PerInstance::Scalar(0.0),
        hi: PerInstance::Scalar(hi),
        groups: None,
        turnover: None,
    }
}

/// Three names, `0.5 |w|^2 - s'w` (one zero factor, unit specific variances), `0 <= w <= 1`:
/// the hand-worked cases below.
fn unit_diagonal(scores: &[f64]) -> CappedQp<'_> {
    const LOADINGS: [f64; 3] = [0.0; 3];
    const SPECIFIC: [f64; 3] = [1.0; 3];
    let mut p = linear(scores, 1.0);
    p.gamma = 1.0;
    p.risk = Some(RiskModel {
        factors: 1,
        loadings: &LOADINGS,
        factor_cov: &[0.0],
        specific_var: &SPECIFIC,
    });
    p
}

#[test]
fn linear_is_greedy_fill() {
    let s = [0.1, 0.9, 0.5, 0.3];
    let out = capped_qp_batch(&linear(&s, 0.4)).unwrap();
    let w = &out.weights;
    assert!((w[1] - 0.4).abs() < 1e-15 && (w[2] - 0.4).abs() < 1e-15);
    assert!((w[3] - 0.2).abs() < 1e-15 && w[0] == 0.0);
    assert_eq!(out.status, vec![Status::Optimal]);
}

#[test]
fn infeasible_caps_do_not_stop_the_batch() {
    let s = [0.1, 0.9, 0.5];
    let out = capped_qp_batch(&linear(&s, 0.3)).unwrap();
    assert_eq!(out.status, vec![Status::Infeasible]);
    assert!(out.weights.iter().all(|v| v.is_nan()));
}

#[test]
fn diagonal_qp_matches_hand_solution() {
    // min 0.5 * sum w_i^2 - s'w, sum w = 1, 0 <= w <= 1: w_i = s_i - nu, clipped.
    // s = (1, 0.5, -1): w = (0.75, 0.25, 0) with nu = 0.25.
    let s = [1.0, 0.5, -1.0];
    let out = capped_qp_batch(&unit_diagonal(&s)).unwrap();
    let w = &out.weights;
    assert!((w[0] - 0.75).abs() < 1e-14 && (w[1] - 0.25).abs() < 1e-14 && w[2] == 0.0);
}

#[test]
fn zero_factor_model_matches_hand_solution() {
    // The same diagonal problem with k = 0 factors (empty loadings): same hand solution.
    let s = [1.0, 0.5, -1.0];
    let d = [1.0, 1.0, 1.0];
    let mut p = linear(&s, 1.0);
    p.gamma = 1.0;
    p.risk = Some(RiskModel {
        factors: 0,
        loadings: &[],
        factor_cov: &[],
        specific_var: &d,
    });
    let out = capped_qp_batch(&p).unwrap();
    let w = &out.weights;
    assert_eq!(out.status, vec![Status::Optimal]);
    assert!((w[0] - 0.75).abs() < 1e-14 && (w[1] - 0.25).abs() < 1e-14 && w[2] == 0.0);
}

#[test]
fn group_bound_binds_in_linear_case() {
    // Names 0, 1 in one group capped at 30%: best is 0.3 on name 0 (score 0.9), rest on 2.
    let s = [0.9, 0.8, 0.5, 0.1];
    let g = [1.0, 1.0, 0.0, 0.0];
    let mut p = linear(&s, 0.6);
    p.groups = Some(Groups {
        rows: 1,
        matrix: &g,
        lo: PerInstance::Scalar(f64::NEG_INFINITY),
        hi: PerInstance::Scalar(0.3),
    });
    let out = capped_qp_batch(&p).unwrap();
    let w = &out.weights;
    assert!((w[0] - 0.3).abs() < 1e-14 && w[1].abs() < 1e-14, "{w:?}");
    assert!(
        (w[2] - 0.6).abs() < 1e-14 && (w[3] - 0.1).abs() < 1e-14,
        "{w:?}"
    );
}

/// A plain 8-name instance (test market seed 1, N = 40, 3 factors, γ = 20, cap 0.2) on
/// which the primal method used to add a bound that made its working set rank deficient
/// and stopped with `Singular`. Clarabel solves it as optimal.
#[test]
fn degenerate_working_set_is_not_singular() {
    const LOADINGS: [f64; 120] = [
        0.345584192064786,
        0.8216181435011584,
        0.33043707618338714,
        -1.303157231604361,
        0.9053558666731177,
        0.4463745723640113,
        -0.5369532353602852,
        0.5811181041963531,
        0.36457239618607573,
        0.294132496655526,
        0.02842224131579679,
        0.5467129866124469,
        -0.7364540870016669,
        -0.16290994799305278,
        -0.48211931267997826,
        0.5988462126346276,
        0.03972210748165899,
        -0.2924567509650886,
        -0.7819084623568421,
        -0.2571922406188707,
        0.008142180518343508,
        -0.2756029052993704,
        1.2940638143982073,
        1.0067243153057943,
        -2.7111624789659685,
        -1.8890132459676727,
        -0.17477209205516195,
        -0.42219041157635356,
        0.2136429974986111,
        0.21732193102256359,
        2.1178387550510482,
        -1.1120207626922813,
        -0.37760500712699807,
        2.0427716074923303,
        0.6467029962018469,
        0.6630633723762617,
        -0.5140063716874629,
        -1.6480751708556527,
        0.16746474422274113,
        0.10901408782154753,
        -1.2273520542445742,
        -0.6832266617805622,
        -0.07204367972722743,
        -0.9447516230607774,
        -0.09826996785221727,
        0.09548302746945433,
        0.03558623705548571,
        -0.5062916583143148,
        0.5937480717858228,
        0.8911669542823284,
        0.3208483045665637,
        -0.818230227390307,
        0.7316522837854408,
        -0.5014400184670523,
        0.8791606182879853,
        -1.0717874168774442,
        0.9144672031287812,
        -0.02006345461548042,
        -1.2487488903344155,
        -0.31389947196684775,
        0.05410227877154389,
        0.27279133916445375,
        -0.9821881249409777,
        -1.107373047165193,
        0.19958453284708083,
        -0.46674961687980204,
        0.23550561173022522,
        0.7595195224783792,
        -1.6487873663509485,
        0.2543881165176173,
        1.2246469675357323,
        -0.2975268443704732,
        -0.8108145832375699,
        0.7522438271795928,
        0.25344651620814146,
        0.8958830707775604,
        -0.3452157100512797,
        -1.4818182737222112,
        -0.11001076471125099,
        -0.4458281530112322,
        0.7753238220475741,
        0.1936328483771538,
        -1.6308492324351012,
        -1.1951630801031998,
        0.8837890365872553,
        0.6797650174178466,
        -0.6402433659084887,
        -0.001048796567280681,
        0.4455735537761861,
        0.4684043358472779,
        0.8762421961143501,
        0.256485627221562,
        -0.09482833896849817,
        -0.25884806478784556,
        1.0557428005332512,
        -2.2508542750785376,
        -0.13865532509133732,
        0.03300010398406011,
        -1.4253489608701877,
        0.33281361313804664,
        -0.651281012443394,
        0.8624447963157468,
        -0.1255920840343272,
        0.6691532407894528,
        1.2188436051712233,
        0.3829295827134724,
        -0.8757211434228455,
        -1.5143186317046384,
        1.7533841175163727,
        -0.11129219318751944,
        -0.6885649476343216,
        0.14425708806082496,
        -0.19141133048264922,
        0.8521422642126877,
        0.03392818243710029,
        0.013749583618419497,
        -0.7145797210329641,
        0.4695680987474934,
        -1.0338667223549824,
        0.6658894397639671,
    ];
    const FACTOR_COV: [f64; 9] = [
        0.1172933967984475,
        -0.004761494291503653,
        -0.0073056273355528185,
        -0.004761494291503653,
        0.08874173229793651,
        0.015706041474725874,
        -0.0073056273355528185,
        0.015706041474725874,
        0.03617937078033959,
    ];
    const SPECIFIC: [f64; 40] = [
        0.02252191435279751,
        0.033067988650118084,
        0.04886759902479019,
        0.04098656539694928,
        0.041645357926912215,
        0.040370740021583196,
        0.03387950922095026,
        0.04670769028683651,
        0.03758520621788324,
        0.030014257229474837,
        0.01308335234002155,
        0.029537969083420955,
        0.018513239813613372,
        0.01530785190187149,
        0.030242596901174916,
        0.041403411703878366,
        0.02180025771222078,
        0.040750870396366656,
        0.031025180926490162,
        0.015961920934828504,
        0.04859870975918943,
        0.0260654489555407,
        0.02180937022650783,
        0.04387993482534919,
        0.014978413300619194,
        0.03934361844294814,
        0.017512989702618734,
        0.025699671040503295,
        0.01927599513848554,
        0.04364911970769548,
        0.02560298207759447,
        0.048987712515291576,
        0.03501045937660427,
        0.037744913388116606,
        0.0308610048852967,
        0.02235872796302365,
        0.02582225684209715,
        0.04763736750647607,
        0.01804812802898658,
        0.04952875604880849,
    ];
    const SCORES: [f64; 40] = [
        0.7583058620038184,
        0.35978692649261024,
        0.6415135895056033,
        0.38098153929308753,
        0.38149293263992,
        0.5038029501945296,
        0.016722821635377083,
        0.4935715599433962,
        0.971598413446888,
        0.28546522878557845,
        0.7482179590766121,
        0.44278889007049504,
        0.20928104261778546,
        0.9050025708181295,
        0.016827284680212995,
        0.3035089265995107,
        0.9990258823239375,
        0.2621467961899895,
        0.849044521859272,
        0.6056831486557043,
        0.8060357075271236,
        0.6303177554434782,
        0.3626968570578484,
        0.7607887845834825,
        0.026484548903972338,
        0.4468129517344519,
        0.371854569870106,
        0.4770740056373495,
        0.1276206864960696,
        0.22250686594627245,
        0.5620515900997094,
        0.38776911565595396,
        0.7916562055903406,
        0.6051365892775145,
        0.8612666847869941,
        0.7323608373256045,
        0.601823447758565,
        0.2876156021959957,
        0.7827604679261685,
        0.2512675781710818,
    ];
    const BENCH: [f64; 40] = [
        0.00641644907435837,
        0.14717867940509177,
        0.008630671647666177,
        0.016918674726071982,
        0.0375616946326027,
        0.011904793829456105,
        0.01790695904026884,
        0.012946972717102996,
        0.01990639596544108,
        0.007056570757668664,
        0.014680407249943968,
        0.018497006635633705,
        0.016293656111151054,
        0.024075429440084287,
        0.01696919465044958,
        0.048313607447152414,
        0.016466136101332796,
        0.019843018728361448,
        0.011701540551799613,
        0.013436662792197235,
        0.006423794902693965,
        0.03821724146753484,
        0.00725712556371174,
        0.010790276904812234,
        0.03258156026303118,
        0.034024307857991584,
        0.01524706597133236,
        0.0030199371796706545,
        0.034640209358800286,
        0.029490415112729755,
        0.005540698770995613,
        0.04914739887521755,
        0.011284183328715966,
        0.007376606611088973,
        0.02503394117728112,
        0.019030280266738885,
        0.027858157758935007,
        0.0045665307543468975,
        0.1393142198724604,
        0.012451526498076279,
    ];
    let mask = [0usize, 7, 13, 23, 28, 34, 37, 38];
    let mut hi = [0.0; 40];
    for &j in &mask {
        hi[j] = 0.2;
    }
    let p = CappedQp {
        batch: 1,
        names: 40,
        scores: &SCORES,
        bench: Some(PerInstance::Shared(&BENCH)),
        risk: Some(RiskModel {
            factors: 3,
            loadings: &LOADINGS,
            factor_cov: &FACTOR_COV,
            specific_var: &SPECIFIC,
        }),
        gamma: 20.0,
        lo: PerInstance::Scalar(0.0),
        hi: PerInstance::Shared(&hi),
        groups: None,
        turnover: None,
    };
    let out = capped_qp_batch(&p).unwrap();
    assert_eq!(out.status, vec![Status::Optimal]);
    // cvxpy + Clarabel (tol_gap_abs = tol_gap_rel = tol_feas = 1e-10) on the same data.
    let clarabel = [
        0.2,
        0.0,
        0.2,
        0.19460138673231975,
        0.0,
        0.2,
        0.005398613268357762,
        0.2,
    ];
    for (t, &j) in mask.iter().enumerate() {
        let w = out.weights[j];
        assert!(
            (w - clarabel[t]).abs() < 1e-9,
            "name {j}: {w} vs {}",
            clarabel[t]
        );
    }
    assert!(
        (out.objective[0] - -0.6250259940950551).abs() < 1e-10,
        "{:?}",
        out.objective
    );
    let sum: f64 = out.weights.iter().sum();
    assert!((sum - 1.0).abs() < 1e-14, "{sum}");
}

#[test]
fn nan_scores_name_instance() {
    let s = [0.1, f64::NAN];
    let err = capped_qp_batch(&linear(&s, 1.0)).unwrap_err();
    assert!(err.to_string().contains("instance 0, name 1"), "{err}");
}

/// `0.5 |w|² - s'w + 0.1 |w - prev|` over three names (a zero factor model, `d = 1`),
/// `prev = (0.6, 0.3, 0.1)`. Without turnover the optimum is `(0.75, 0.25, 0)`. By hand: name
/// 0 sits above its kink (`w_0 = 1 - ν - 0.1`), name 2 at zero (its gradient `0.9 + ν > 0`),
/// and name 1 would sit below its kink at `0.6 - ν`, which the budget puts at 0.35 > 0.3: so it
/// is held at its kink, `w_0 = 0.7`, `ν = 0.2`, and its multiplier `0.5 - ν - 0.3 = 0` lies in
/// `[-0.1, 0.1]`. Objective `0.5 (0.49 + 0.09) - 0.85 + 0.1 (0.1 + 0.1) = -0.54`.
#[test]
fn turnover_kink_binds_in_hand_case() {
    let s = [1.0, 0.5, -1.0];
    let prev = [0.6, 0.3, 0.1];
    let mut p = unit_diagonal(&s);
    p.turnover = Some(Turnover {
        prev: PerInstance::Shared(&prev),
        cost: PerInstance::Scalar(0.1),
    });
    let out = capped_qp_batch(&p).unwrap();
    let w = &out.weights;
    assert_eq!(out.status, vec![Status::Optimal]);
    assert!(
        (w[0] - 0.7).abs() < 1e-14 && w[1] == 0.3 && w[2] == 0.0,
        "{w:?}"
    );
    assert!(
        (out.objective[0] + 0.54).abs() < 1e-14,
        "{:?}",
        out.objective
    );
}

/// The linear case: scores (0.9, 0.5, 0.1, 0.3), caps 0.4, `prev = (0.4, 0.4, 0.1, 0.1)`.
/// Moving weight from name 2 to name 3 gains 0.2 per unit in score and costs twice the
/// turnover cost: it pays at a cost of 0.05 (objective `-0.62 + 0.05 * 0.2 = -0.61`), not at
/// 0.3 (the previous weights stay, objective -0.6).
#[test]
fn turnover_in_linear_case_matches_hand_solution() {
    let s = [0.9, 0.5, 0.1, 0.3];
    let prev = [0.4, 0.4, 0.1, 0.1];
    for (cost, want, obj) in [
        (0.05, [0.4, 0.4, 0.0, 0.2], -0.61),
        (0.3, [0.4, 0.4, 0.1, 0.1], -0.6),
    ] {
        let mut p = linear(&s, 0.4);
        p.turnover = Some(Turnover {
            prev: PerInstance::Shared(&prev),
            cost: PerInstance::Scalar(cost),
        });
        let out = capped_qp_batch(&p).unwrap();
        for (a, b) in out.weights.iter().zip(want) {
            assert!((a - b).abs() < 1e-14, "cost {cost}: {:?}", out.weights);
        }
        assert!(
            (out.objective[0] - obj).abs() < 1e-14,
            "{:?}",
            out.objective
        );
    }
}

#[test]
fn bad_turnover_inputs_name_argument_and_instance() {
    let s = [0.1, 0.2, 0.3, 0.4];
    let prev = [0.0, f64::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let mut batch = s.to_vec();
    batch.extend_from_slice(&s);
    let mut p = linear(&batch, 0.5);
    p.batch = 2;
    p.names = 4;
    p.turnover = Some(Turnover {
        prev: PerInstance::Rows(&prev),
        cost: PerInstance::Scalar(0.1),
    });
    let err = capped_qp_batch(&p).unwrap_err().to_string();
    assert!(err.contains("prev is NaN at instance 0, name 1"), "{err}");
    let cost = [0.1, 0.1, 0.1, -0.2];
    p.turnover = Some(Turnover {
        prev: PerInstance::Scalar(0.25),
        cost: PerInstance::Shared(&cost),
    });
    let err = capped_qp_batch(&p).unwrap_err().to_string();
    assert!(
        err.contains("turnover_cost is -0.2 at instance 0, name 3"),
        "{err}"
    );
    p.turnover = Some(Turnover {
        prev: PerInstance::Scalar(0.25),
        cost: PerInstance::Shared(&cost[..3]),
    });
    let err = capped_qp_batch(&p).unwrap_err().to_string();
    assert!(err.contains("turnover_cost has 3 values"), "{err}");
}

/// Random batches with turnover (prev inside and outside the boxes, some costs zero, masks
/// fixing names at zero, two group rows), each instance solved by the fast path and, as an
/// independent check, by the dense primal method on the split-variable form
/// `w = lo + a + b` (see `active_set::tests::split`), which has no kinks at all.
#[test]
fn turnover_matches_the_split_formulation() {
    for (seed, gamma) in [(1u64, 5.0), (2, 0.0), (3, 40.0), (4, 1.0)] {
        let mut rnd = rng(seed);
        let (b, n, k, m) = (25usize, 24usize, 3usize, 2usize);
        let f: Vec<f64> = (0..n * k).map(|_| rnd() - 0.5).collect();
        let om: Vec<f64> = (0..k * k)
            .map(|t| if t % (k + 1) == 0 { 0.05 } else { 0.0 })
            .collect();
        let d: Vec<f64> = (0..n).map(|_| 0.01 + 0.05 * rnd()).collect();
        let s: Vec<f64> = (0..b * n).map(|_| 0.05 * rnd()).collect();
        let mut hi = vec![0.0; b * n];
        let mut prev = vec![0.0; b * n];
        let mut cost = vec![0.0; b * n];
        for i in 0..b {
            for j in 0..n {
                let t = i * n + j;
                hi[t] = if rnd() < 0.7 { 0.15 } else { 0.0 };
                prev[t] = match (rnd() * 4.0) as u32 {
                    0 => 0.0,
                    1 => 0.2,
                    _ => 0.12 * rnd(),
                };
                cost[t] = if rnd() < 0.2 { 0.0 } else { 0.01 * rnd() };
            }
        }
        let g: Vec<f64> = (0..m * n)
            .map(|t| if (t / n + t % n) % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let glo = [0.1, f64::NEG_INFINITY];
        let ghi = [0.5, 0.3];
        let p = CappedQp {
            batch: b,
            names: n,
            scores: &s,
            bench: None,
            risk: Some(RiskModel {
                factors: k,
                loadings: &f,
                factor_cov: &om,
                specific_var: &d,
            }),
            gamma,
            lo: PerInstance::Scalar(0.0),
            hi: PerInstance::Rows(&hi),
            groups: Some(Groups {
                rows: m,
                matrix: &g,
                lo: PerInstance::Shared(&glo),
                hi: PerInstance::Shared(&ghi),
            }),
            turnover: Some(Turnover {
                prev: PerInstance::Rows(&prev),
                cost: PerInstance::Rows(&cost),
            }),
        };
        let out = capped_qp_batch(&p).unwrap();
        let prep = reduce::prepare(&p).unwrap();
        let mut ws = Workspace::default();
        let mut checked = 0;
        for i in 0..b {
            let mut w = vec![0.0; n];
            if !ws.reduce(&p, &prep, i, &mut w) {
                assert_eq!(out.status[i], Status::Infeasible);
                continue;
            }
            let q = dense::dense_hessian(&p, &prep, &ws.free);
            let (split, second) = active_set::tests::split(&active_set::Qp {
                q,
                p: ws.qp.clone(),
            });
            let start = dense::greedy_vertex(&split.p);
            let solved = dense::phase1_then_solve(i, &split.p, &split.q, start, 100_000, true);
            let Some((x, _)) = solved.unwrap() else {
                assert_eq!(
                    out.status[i],
                    Status::Infeasible,
                    "seed {seed}, instance {i}"
                );
                continue;
            };
            assert_eq!(out.status[i], Status::Optimal, "seed {seed}, instance {i}");
            for (a, &j) in ws.free.iter().enumerate() {
                w[j] = x[a] + second[a].map_or(0.0, |t| x[t]);
            }
            for j in 0..n {
                let got = out.weights[i * n + j];
                assert!(
                    (got - w[j]).abs() < 1e-9,
                    "seed {seed}, instance {i}, name {j}: {got} vs split {}",
                    w[j]
                );
            }
            let split_obj = objective(&p, &prep, i, &w, &mut ws);
            let rel = (out.objective[i] - split_obj).abs() / split_obj.abs().max(1.0);
            assert!(rel < 1e-12, "seed {seed}, instance {i}: {rel}");
            checked += 1;
        }
        assert!(checked > b / 2, "seed {seed}: only {checked} feasible");
    }
}

/// A xorshift generator for the random tests.
pub(super) fn rng(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

mod timing {
    use super::*;

    /// `cargo test --release -p indexlab-core fastpath_timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn fastpath_timing() {
        let (b, n, k) = (2000usize, 300usize, 10usize);
        let mut seed = 12345u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let f: Vec<f64> = (0..n * k).map(|_| rnd() - 0.5).collect();
        let mut om = vec![0.0; k * k];
        for a in 0..k {
            om[a * k + a] = 0.02;
        }
        let d: Vec<f64> = (0..n).map(|_| 0.01 + 0.05 * rnd()).collect();
        let s: Vec<f64> = (0..b * n).map(|_| 0.02 * rnd()).collect();
        let mut hi = vec![0.0; b * n];
        for i in 0..b {
            let mut cnt = 0;
            while cnt < 30 {
                let j = (rnd() * n as f64) as usize % n;
                if hi[i * n + j] == 0.0 {
                    hi[i * n + j] = 0.08;
                    cnt += 1;
                }
            }
        }
        for gamma in [0.0, 5.0] {
            let p = CappedQp {
                batch: b,
                names: n,
                scores: &s,
                bench: None,
                risk: Some(RiskModel {
                    factors: k,
                    loadings: &f,
                    factor_cov: &om,
                    specific_var: &d,
                }),
                gamma,
                lo: PerInstance::Scalar(0.0),
                hi: PerInstance::Rows(&hi),
                groups: None,
                turnover: None,
            };
            let t0 = std::time::Instant::now();
            validate::validate(&p, 0, b).unwrap();
            let prep = reduce::prepare(&p).unwrap();
            let t1 = t0.elapsed().as_secs_f64();
            let t0 = std::time::Instant::now();
            let mut row = vec![0.0; n];
            let mut ws = Workspace::default();
            for i in 0..b {
                solve_one(&p, &prep, i, &mut row, &mut ws).unwrap();
            }
            let t2 = t0.elapsed().as_secs_f64();
            println!(
                "validate+prepare {:.2} us, serial {:.2} us",
                t1 / b as f64 * 1e6,
                t2 / b as f64 * 1e6
            );
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let t0 = std::time::Instant::now();
            let out = pool.install(|| capped_qp_batch(&p)).unwrap();
            let dt = t0.elapsed().as_secs_f64();
            let its: u32 = out.iterations.iter().sum();
            println!(
                "gamma {gamma}: {:.2} us/instance, {:.1} iterations",
                dt / b as f64 * 1e6,
                its as f64 / b as f64
            );
        }
    }
}

/// 40 names, 3 factors, caps of 8%: solved cold, then again and a nearby problem (scores
/// moved a little, as the next penalty of a budget search moves them) from the first one's
/// working set.
#[test]
fn warm_start_reaches_the_same_optimum() {
    let n = 40;
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let loadings: Vec<f64> = (0..n * 3).map(|_| next() - 0.5).collect();
    let specific: Vec<f64> = (0..n).map(|_| 0.01 + 0.05 * next()).collect();
    let cov = [0.4, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.1];
    let scores: Vec<f64> = (0..n).map(|_| next()).collect();
    let moved: Vec<f64> = scores.iter().map(|s| s + 0.01 * (next() - 0.5)).collect();
    let problem = |s: &'static [f64], hi: &'static [f64]| CappedQp {
        batch: 1,
        names: n,
        scores: s,
        bench: None,
        risk: Some(RiskModel {
            factors: 3,
            loadings: Box::leak(loadings.clone().into_boxed_slice()),
            factor_cov: &cov,
            specific_var: Box::leak(specific.clone().into_boxed_slice()),
        }),
        gamma: 20.0,
        lo: PerInstance::Scalar(0.0),
        hi: PerInstance::Rows(hi),
        groups: None,
        turnover: None,
    };
    let leak = |v: Vec<f64>| -> &'static [f64] { Box::leak(v.into_boxed_slice()) };
    let (scores, moved) = (leak(scores), leak(moved));
    let caps = leak(vec![0.08; n]);
    let prep = SharedPrep::new(&problem(scores, caps)).unwrap();
    let solve = |s, hi, scratch: &mut Scratch, warm: bool| {
        let mut w = vec![0.0; n];
        if warm {
            scratch.warm_start_next();
        }
        let (status, its) = solve_instance(&problem(s, hi), &prep, &mut w, scratch).unwrap();
        assert_eq!(status, Status::Optimal);
        (w, its)
    };
    let mut scratch = Scratch::default();
    let (first, first_its) = solve(scores, caps, &mut scratch, false);
    assert!(first_its > 1, "the cold start needs {first_its} solve(s)");
    // The same problem again from its own working set: settled at the first KKT solve.
    let (again, again_its) = solve(scores, caps, &mut scratch, true);
    assert_eq!(again_its, 1);
    for (a, b) in again.iter().zip(&first) {
        assert!((a - b).abs() < 1e-14, "{again:?} vs {first:?}");
    }
    // The nearby problem: the same optimum as a cold start (the start only changes the path).
    let (cold, _) = solve(moved, caps, &mut Scratch::default(), false);
    let (warm, _) = solve(moved, caps, &mut scratch, true);
    for (a, b) in warm.iter().zip(&cold) {
        assert!((a - b).abs() < 1e-12, "{warm:?} vs {cold:?}");
    }
    // Another free set (one name capped at 0): the warm start does not fit and is not used.
    let mut other = vec![0.08; n];
    other[3] = 0.0;
    let other = leak(other);
    let (want, want_its) = solve(moved, other, &mut Scratch::default(), false);
    let (got, got_its) = solve(moved, other, &mut scratch, true);
    assert_eq!((got, got_its), (want, want_its));
}

/// A warm start asked for across two quadratics over the same names keeps the working set as
/// a guess but not the factor form's sums (built from the other quadratic): the optimum is the
/// cold start's.
#[test]
fn warm_start_across_quadratics_rebuilds_the_sums() {
    let n = 40;
    let mut next = rng(11);
    let leak = |v: Vec<f64>| -> &'static [f64] { Box::leak(v.into_boxed_slice()) };
    let loadings = leak((0..n * 3).map(|_| next() - 0.5).collect());
    let steeper = leak(loadings.iter().map(|x| 1.5 * x).collect());
    let specific = leak((0..n).map(|_| 0.01 + 0.05 * next()).collect());
    let scores = leak((0..n).map(|_| next()).collect());
    let cov: &'static [f64] = &[0.4, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.1];
    let problem = |u: &'static [f64]| CappedQp {
        batch: 1,
        names: n,
        scores,
        bench: None,
        risk: Some(RiskModel {
            factors: 3,
            loadings: u,
            factor_cov: cov,
            specific_var: specific,
        }),
        gamma: 20.0,
        lo: PerInstance::Scalar(0.0),
        hi: PerInstance::Scalar(0.3),
        groups: None,
        turnover: None,
    };
    let (flat, steep) = (problem(loadings), problem(steeper));
    let (prep_flat, prep_steep) = (
        SharedPrep::new(&flat).unwrap(),
        SharedPrep::new(&steep).unwrap(),
    );
    let solve = |p: &CappedQp, prep: &SharedPrep, scratch: &mut Scratch| {
        let mut w = vec![0.0; n];
        let (status, its) = solve_instance(p, prep, &mut w, scratch).unwrap();
        assert_eq!(status, Status::Optimal);
        (w, its)
    };
    let (cold, cold_its) = solve(&steep, &prep_steep, &mut Scratch::default());
    // More names strictly inside their bounds than factors: the factor form (and its sums)
    // solves the working sets.
    let inside = cold.iter().filter(|&&w| w > 1e-9 && w < 0.3 - 1e-9).count();
    assert!(inside > 3, "{inside} names inside their bounds");
    let mut scratch = Scratch::default();
    let (first, _) = solve(&flat, &prep_flat, &mut scratch);
    assert!(first.iter().zip(&cold).any(|(a, b)| (a - b).abs() > 1e-6));
    scratch.warm_start_next();
    let (warm, warm_its) = solve(&steep, &prep_steep, &mut scratch);
    // Settled by the primal-dual iterations from the kept working set: stale sums make them
    // fail, and the dense method's fallback takes tens of steps.
    assert!(
        warm_its <= cold_its,
        "warm {warm_its} vs cold {cold_its} steps"
    );
    for (a, b) in warm.iter().zip(&cold) {
        assert!((a - b).abs() < 1e-12, "{warm:?} vs {cold:?}");
    }
}
