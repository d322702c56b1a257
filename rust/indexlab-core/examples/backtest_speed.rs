//! Times the batch backtest core on the issue-4 case (K candidates x 30 of 300 names x 1,250 days
//! x 20 rebalances), without Python: `cargo run --release -p indexlab-core --example
//! backtest_speed -- [K] [threads]`.

use indexlab_core::backtest::{CostRate, Indices, Prepared, Weights};
use std::time::Instant;

/// SplitMix64: a tiny deterministic generator, enough for a timing case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("arguments: [K] [threads]"))
        .collect();
    let k = args.first().copied().unwrap_or(10_000);
    let threads = args.get(1).copied().unwrap_or(0);
    let n: usize = std::env::var("N")
        .map(|v| v.parse().unwrap())
        .unwrap_or(300);
    let (t, r, held) = (1_250, 20, 30);
    let mut rng = Rng(7);
    let mut tr = vec![0.0; t * n];
    for i in 0..n {
        let mut p = 100.0;
        for day in 0..t {
            p *= 1.0 + 0.04 * (rng.unit() - 0.5);
            tr[day * n + i] = p;
        }
    }
    let reb: Vec<i64> = (0..r).map(|j| (j * t / r) as i64).collect();
    let (mut indptr, mut indices, mut data) = (vec![0i64], Vec::new(), Vec::new());
    for _ in 0..k * r {
        let mut names: Vec<i64> = Vec::with_capacity(held);
        while names.len() < held {
            let i = (rng.next() % n as u64) as i64;
            if !names.contains(&i) {
                names.push(i);
            }
        }
        names.sort_unstable();
        let w: Vec<f64> = (0..held).map(|_| rng.unit() + 0.1).collect();
        let s: f64 = w.iter().sum();
        indices.extend(names);
        data.extend(w.iter().map(|x| x / s));
        indptr.push(indices.len() as i64);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let weights = Weights::Csr {
        indptr: Indices::I64(&indptr),
        indices: Indices::I64(&indices),
        data: &data,
    };
    // Fresh output buffers (page faults included, as in a real call) and reused ones (compute only).
    let (mut fresh, mut reused) = (f64::INFINITY, f64::INFINITY);
    let mut levels = vec![0.0; k * t];
    let mut turnover = vec![0.0; k * r];
    let reuse_only = std::env::var_os("REUSE_ONLY").is_some();
    for _ in 0..15 {
        let t0 = Instant::now();
        let prep = Prepared::new(&tr, t, n, &reb, CostRate::Scalar(0.001), 1000.0, false).unwrap();
        if reuse_only {
            drop(prep);
        } else {
            let mut lv = vec![0.0; k * t];
            let mut to = vec![0.0; k * r];
            pool.install(|| prep.run(&weights, 0, &mut lv, &mut to))
                .unwrap();
            std::hint::black_box(&lv);
            fresh = fresh.min(t0.elapsed().as_secs_f64());
        }
        let t0 = Instant::now();
        let prep = Prepared::new(&tr, t, n, &reb, CostRate::Scalar(0.001), 1000.0, false).unwrap();
        pool.install(|| prep.run(&weights, 0, &mut levels, &mut turnover))
            .unwrap();
        std::hint::black_box(&levels);
        reused = reused.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "K={k} threads={}: best {:.1} ms with fresh outputs, {:.1} ms reusing them",
        pool.current_num_threads(),
        fresh * 1e3,
        reused * 1e3
    );
}
