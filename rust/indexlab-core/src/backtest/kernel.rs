//! The hot loop: a block of days of every candidate of a chunk,
//! `level[d] = level[r_j] * sum_i w_i rel[d, i]`, accumulated in registers over the held names.

/// Days per block of relative prices (eight 256-bit register accumulators).
pub(super) const BLOCK: usize = 32;

/// One name's relative prices over a block of days, on whole cache lines (a 256-byte block
/// straddling lines would cost a fifth line and split loads).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Days(pub(super) [f64; BLOCK]);

/// The rows of a chunk's candidates: names, weights, row offsets (`off[c * R + j]`), `R`, the
/// current rebalance `j` and its day `r_j`.
pub(super) type Rows<'a> = (&'a [u32], &'a [f64], &'a [usize], usize, usize, usize);

/// Wheels target plain x86-64 (SSE2); pick the AVX2 build of the hot loop at run time.
pub(super) fn block_sums(
    lv: &mut [f64],
    t: usize,
    rows: Rows<'_>,
    blk: &[Days],
    d0: usize,
    width: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { block_sums_avx2(lv, t, rows, blk, d0, width) };
        return;
    }
    block_sums_generic(lv, t, rows, blk, d0, width)
}

/// Portable version: `acc[q] += (w * level[r_j]) * rel[q]`, name by name in row order.
#[inline(always)]
fn block_sums_generic(
    lv: &mut [f64],
    t: usize,
    rows: Rows<'_>,
    blk: &[Days],
    d0: usize,
    width: usize,
) {
    let (all_idx, all_val, off, r, j, start) = rows;
    for (c, row_l) in lv.chunks_mut(t).enumerate() {
        let (a, b) = (off[c * r + j], off[c * r + j + 1]);
        // Weights in index points: the level at `r_j` times each weight.
        let anchor = row_l[start];
        let mut acc = [0.0_f64; BLOCK];
        for (&i, &w) in all_idx[a..b].iter().zip(&all_val[a..b]) {
            let x: &[f64; BLOCK] = &blk[i as usize].0;
            let w = w * anchor;
            // Indexing fixed-size arrays keeps `acc` in registers.
            #[allow(clippy::needless_range_loop)]
            for q in 0..BLOCK {
                acc[q] += w * x[q];
            }
        }
        row_l[d0..d0 + width].copy_from_slice(&acc[..width]);
    }
}

/// The same loop with explicit 256-bit vectors: eight independent accumulators per candidate
/// (32 days), so the adds are not serialised on one register. Plain multiplies and adds (no
/// FMA), lane by lane in the same order as [`block_sums_generic`]: bit-identical results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_sums_avx2(
    lv: &mut [f64],
    t: usize,
    rows: Rows<'_>,
    blk: &[Days],
    d0: usize,
    width: usize,
) {
    use std::arch::x86_64::*;
    const _: () = assert!(BLOCK == 32);
    let (all_idx, all_val, off, r, j, start) = rows;
    for (c, row_l) in lv.chunks_mut(t).enumerate() {
        let (a, b) = (off[c * r + j], off[c * r + j + 1]);
        let anchor = row_l[start];
        let mut acc = [_mm256_setzero_pd(); 8];
        for (&i, &w) in all_idx[a..b].iter().zip(&all_val[a..b]) {
            let x: &[f64; BLOCK] = &blk[i as usize].0;
            let wv = _mm256_set1_pd(w * anchor);
            let p = x.as_ptr();
            for (q, a) in acc.iter_mut().enumerate() {
                // SAFETY: `x` holds BLOCK = 32 doubles, so lanes 4q..4q+4 (q < 8) are in bounds.
                let v = unsafe { _mm256_loadu_pd(p.add(4 * q)) };
                *a = _mm256_add_pd(*a, _mm256_mul_pd(wv, v));
            }
        }
        // One vector store per four days, masked for the last few days of a period's final
        // block. A variable count of plain stores here became a spill plus a call to
        // `memcpy` per candidate and block.
        let out = &mut row_l[d0..d0 + width];
        let lanes = _mm256_set_epi64x(3, 2, 1, 0);
        for (q, &a) in acc.iter().enumerate() {
            let at = 4 * q;
            if at + 4 <= width {
                // SAFETY: lanes at..at+4 lie inside `out`.
                unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(at), a) };
            } else if at < width {
                let mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x((width - at) as i64), lanes);
                // SAFETY: only lanes at..width are written (the mask), all inside `out`.
                unsafe { _mm256_maskstore_pd(out.as_mut_ptr().add(at), mask, a) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_block_sums_match_generic_bit_for_bit() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let n = 5;
        let blk: Vec<Days> = (0..n)
            .map(|i| {
                Days(std::array::from_fn(|q| {
                    1.0 + ((i * 37 + q * 11) % 17) as f64 / 7.0
                }))
            })
            .collect();
        let idx = [0, 2, 3, 1, 4, 0, 3];
        let val = [0.1, 0.3, 0.6, 0.25, 0.75, 0.2, 0.8];
        let off = [0, 3, 5, 7];
        let (t, start, d0) = (40, 3, 4);
        for width in [BLOCK, 31, 29, 5, 4, 1] {
            let mut a = vec![0.0; 3 * t];
            for c in 0..3 {
                a[c * t + start] = 1000.0 + c as f64 / 3.0;
            }
            let mut b = a.clone();
            block_sums_generic(&mut a, t, (&idx, &val, &off, 1, 0, start), &blk, d0, width);
            // SAFETY: AVX2 is available, checked above.
            unsafe { block_sums_avx2(&mut b, t, (&idx, &val, &off, 1, 0, start), &blk, d0, width) };
            assert_eq!(a, b, "width {width}");
            assert!(a[d0 + width - 1] > 0.0 && a[d0 + width] == 0.0);
        }
    }
}
