//! The instruction sets the kernels compile to, behind one small trait of *logical* vectors:
//! `V8` is 8 f64 lanes and `W16` is 16 f32 lanes on every level, whatever the register width
//! (one AVX-512 register, two AVX2 registers, or a plain array that the compiler maps onto
//! SSE2 or NEON registers). Kernels (kernels.rs) are written once against this trait.
//!
//! Why our own trait and not `pulp`: the kernels load float32 rows and compute in float64, and
//! pulp has no generic f32→f64 widening load; its vector width also changes with the level,
//! which would make every reduction's lane layout (and so its rounding) depend on the CPU,
//! and its scalar fallback calls libm's `fma` per element. With fixed logical widths the same
//! source gives the same fused operations in the same order on every level with hardware FMA.
//!
//! Every method is `#[inline(always)]` and carries no target features itself: it is inlined
//! into a `#[target_feature]` entry point (mod.rs), and only there do the intrinsics it calls
//! become single instructions.

/// Fused where the level has hardware FMA (all but the portable level on targets without it).
pub(crate) trait Isa: Copy {
    /// 8 f64 lanes.
    type V8: Copy;
    /// 16 f32 lanes.
    type W16: Copy;
    /// Rows × columns of the f64 dot tile (`kernels::dot_block`), sized to the register file.
    const DOT_TILE: (usize, usize);
    /// Rows × 16-center panels of the f32 center tile (`kernels::center_tile`).
    const CENTER_TILE: (usize, usize);
    /// 8-lane column blocks of the weighted-rows tile (`kernels::add_weighted_rows`) for 8, 4,
    /// 2 and 1 points: every element is one dependent chain over the rows, so a tile needs at
    /// least 8 native accumulators in flight to hide the multiply-add latency; more points per
    /// tile widen each row's load (and f32→f64 conversion) over more multiply-adds.
    const WEIGHTED_COLUMNS: [usize; 4];
    /// Most points per weighted-rows tile (8, 4, or 2 where 4 accumulator V8s would not fit).
    const WEIGHTED_POINTS: usize;
    /// 8-row panels × points of the panel dot tile (`kernels::panel_dots`); and, indexed by the
    /// number of points left over (fewer than the tile's), the panels taken with them: at least
    /// 8 native accumulators each, to cover the FMA latency.
    const PANEL_TILE: (usize, usize);
    const PANEL_REMAINDER: [usize; 8];
    /// Rows (dividing 8) × 8-column panels of the Gram tile (`kernels::gram_rows`): R·J
    /// accumulators, J panel registers and one broadcast.
    const GRAM_TILE: (usize, usize);

    fn zero(self) -> Self::V8;
    fn splat(self, x: f64) -> Self::V8;
    /// SAFETY: `p` points to 8 readable f64.
    unsafe fn load(self, p: *const f64) -> Self::V8;
    /// 8 f32 values widened to f64. SAFETY: `p` points to 8 readable f32.
    unsafe fn load_f32(self, p: *const f32) -> Self::V8;
    /// SAFETY: `p` points to 8 writable f64.
    unsafe fn store(self, p: *mut f64, v: Self::V8);
    fn add(self, a: Self::V8, b: Self::V8) -> Self::V8;
    fn sub(self, a: Self::V8, b: Self::V8) -> Self::V8;
    /// a·b + c.
    fn mul_add(self, a: Self::V8, b: Self::V8, c: Self::V8) -> Self::V8;
    fn lanes(self, v: Self::V8) -> [f64; 8];
    /// a·b + c on one f64, fused exactly when the vector form is.
    fn mul_add_f64(self, a: f64, b: f64, c: f64) -> f64;

    fn zero_w(self) -> Self::W16;
    fn splat_w(self, x: f32) -> Self::W16;
    /// SAFETY: `p` points to 16 readable f32.
    unsafe fn load_w(self, p: *const f32) -> Self::W16;
    /// SAFETY: `p` points to 16 writable f32.
    unsafe fn store_w(self, p: *mut f32, v: Self::W16);
    /// a·b + c.
    fn mul_add_w(self, a: Self::W16, b: Self::W16, c: Self::W16) -> Self::W16;
    /// Updates a running per-lane minimum kept in memory (16 f32 each at `best`, `index`,
    /// `second`) with 16 candidates: where `cand < best`, `second ← best`, `best ← cand`,
    /// `index ← ids`; else where `cand < second`, `second ← cand`. NaN candidates change nothing.
    /// A level may fold the 16 candidates into fewer lanes of the state (AVX2 uses 8: lane l
    /// then sees candidates l and l + 8, in that order), leaving the other lanes untouched:
    /// the state's overall minimum, its index (lowest among ties) and its runner-up are the same.
    /// SAFETY: the three pointers point to 16 readable and writable f32.
    unsafe fn track_min_w(
        self,
        cand: Self::W16,
        ids: Self::W16,
        best: *mut f32,
        index: *mut f32,
        second: *mut f32,
    );
}

/// Plain lane arrays. The compiler vectorises them with the target's baseline SIMD (SSE2 on
/// x86-64, NEON on aarch64). `FUSED` says whether multiply-adds are fused: true where the target
/// has FMA in its baseline (aarch64), so results equal the AVX2/AVX-512 levels'; false on x86-64,
/// where a fused multiply-add without the `fma` feature would be a libm call per element.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Portable<const FUSED: bool>;

impl<const FUSED: bool> Isa for Portable<FUSED> {
    type V8 = [f64; 8];
    type W16 = [f32; 16];
    // 16 SSE2 registers on x86-64, 32 NEON registers on aarch64.
    const DOT_TILE: (usize, usize) = if cfg!(target_arch = "aarch64") {
        (2, 2)
    } else {
        (2, 1)
    };
    const CENTER_TILE: (usize, usize) = if cfg!(target_arch = "aarch64") {
        (6, 1)
    } else {
        (2, 1)
    };
    // A V8 is 4 registers here: 2 points × 1 column block on x86-64's 16 SSE registers.
    const WEIGHTED_COLUMNS: [usize; 4] = [1, 1, 1, 2];
    const WEIGHTED_POINTS: usize = if cfg!(target_arch = "aarch64") { 4 } else { 2 };
    const PANEL_TILE: (usize, usize) = if cfg!(target_arch = "aarch64") {
        (1, 5)
    } else {
        (1, 2)
    };
    const PANEL_REMAINDER: [usize; 8] = if cfg!(target_arch = "aarch64") {
        [0, 4, 2, 1, 1, 1, 1, 1]
    } else {
        [0, 2, 1, 1, 1, 1, 1, 1]
    };
    // A V8 is 4 registers: 2 × 1 on x86-64's 16 SSE registers, 4 × 1 on aarch64's 32.
    const GRAM_TILE: (usize, usize) = if cfg!(target_arch = "aarch64") {
        (4, 1)
    } else {
        (2, 1)
    };

    #[inline(always)]
    fn zero(self) -> [f64; 8] {
        [0.0; 8]
    }
    #[inline(always)]
    fn splat(self, x: f64) -> [f64; 8] {
        [x; 8]
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f64) -> [f64; 8] {
        std::ptr::read_unaligned(p as *const [f64; 8])
    }
    #[inline(always)]
    unsafe fn load_f32(self, p: *const f32) -> [f64; 8] {
        let v = std::ptr::read_unaligned(p as *const [f32; 8]);
        v.map(|x| x as f64)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64, v: [f64; 8]) {
        std::ptr::write_unaligned(p as *mut [f64; 8], v)
    }
    #[inline(always)]
    fn add(self, a: [f64; 8], b: [f64; 8]) -> [f64; 8] {
        std::array::from_fn(|l| a[l] + b[l])
    }
    #[inline(always)]
    fn sub(self, a: [f64; 8], b: [f64; 8]) -> [f64; 8] {
        std::array::from_fn(|l| a[l] - b[l])
    }
    #[inline(always)]
    fn mul_add(self, a: [f64; 8], b: [f64; 8], c: [f64; 8]) -> [f64; 8] {
        std::array::from_fn(|l| self.mul_add_f64(a[l], b[l], c[l]))
    }
    #[inline(always)]
    fn lanes(self, v: [f64; 8]) -> [f64; 8] {
        v
    }
    #[inline(always)]
    fn mul_add_f64(self, a: f64, b: f64, c: f64) -> f64 {
        if FUSED {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }

    #[inline(always)]
    fn zero_w(self) -> [f32; 16] {
        [0.0; 16]
    }
    #[inline(always)]
    fn splat_w(self, x: f32) -> [f32; 16] {
        [x; 16]
    }
    #[inline(always)]
    unsafe fn load_w(self, p: *const f32) -> [f32; 16] {
        std::ptr::read_unaligned(p as *const [f32; 16])
    }
    #[inline(always)]
    unsafe fn store_w(self, p: *mut f32, v: [f32; 16]) {
        std::ptr::write_unaligned(p as *mut [f32; 16], v)
    }
    #[inline(always)]
    fn mul_add_w(self, a: [f32; 16], b: [f32; 16], c: [f32; 16]) -> [f32; 16] {
        std::array::from_fn(|l| {
            if FUSED {
                a[l].mul_add(b[l], c[l])
            } else {
                a[l] * b[l] + c[l]
            }
        })
    }
    #[inline(always)]
    unsafe fn track_min_w(
        self,
        cand: [f32; 16],
        ids: [f32; 16],
        best: *mut f32,
        index: *mut f32,
        second: *mut f32,
    ) {
        for l in 0..16 {
            let (b, s) = (&mut *best.add(l), &mut *second.add(l));
            let better = cand[l] < *b;
            let runner_up = cand[l] < *s;
            *s = if better {
                *b
            } else if runner_up {
                cand[l]
            } else {
                *s
            };
            if better {
                *b = cand[l];
                *index.add(l) = ids[l];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Isa;
    use std::arch::x86_64::*;

    /// AVX2 + FMA: a `V8` is two 256-bit registers. Only made by `mod.rs` after detection.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx2(());

    /// AVX-512F (+ AVX2, FMA): a `V8` is one 512-bit register. Only made after detection.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx512(());

    impl Avx2 {
        /// SAFETY: the CPU has AVX2 and FMA.
        pub(crate) unsafe fn new_unchecked() -> Self {
            Avx2(())
        }
    }

    impl Avx512 {
        /// SAFETY: the CPU has AVX-512F, AVX2 and FMA.
        pub(crate) unsafe fn new_unchecked() -> Self {
            Avx512(())
        }
    }

    // SAFETY (every `unsafe` block below): an `Avx2` exists only on a CPU with AVX2 and FMA.
    impl Isa for Avx2 {
        type V8 = [__m256d; 2];
        type W16 = [__m256; 2];
        // 16 registers: 2×2 accumulator pairs + 2 + 2 operand halves.
        const DOT_TILE: (usize, usize) = (2, 2);
        // 6 rows × 16 centers: 12 accumulators, 2 panel registers, 1 broadcast.
        const CENTER_TILE: (usize, usize) = (6, 1);
        const WEIGHTED_COLUMNS: [usize; 4] = [1, 1, 2, 4];
        const WEIGHTED_POINTS: usize = 4;
        // 10 accumulators, 2 panel registers, 1 broadcast; alone: 8 accumulators.
        const PANEL_TILE: (usize, usize) = (1, 5);
        const PANEL_REMAINDER: [usize; 8] = [0, 4, 2, 1, 1, 1, 1, 1];
        // 8 accumulator registers, 2 panel registers, 1 broadcast.
        const GRAM_TILE: (usize, usize) = (4, 1);

        #[inline(always)]
        fn zero(self) -> Self::V8 {
            unsafe { [_mm256_setzero_pd(); 2] }
        }
        #[inline(always)]
        fn splat(self, x: f64) -> Self::V8 {
            unsafe { [_mm256_set1_pd(x); 2] }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f64) -> Self::V8 {
            [_mm256_loadu_pd(p), _mm256_loadu_pd(p.add(4))]
        }
        #[inline(always)]
        unsafe fn load_f32(self, p: *const f32) -> Self::V8 {
            [
                _mm256_cvtps_pd(_mm_loadu_ps(p)),
                _mm256_cvtps_pd(_mm_loadu_ps(p.add(4))),
            ]
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64, v: Self::V8) {
            _mm256_storeu_pd(p, v[0]);
            _mm256_storeu_pd(p.add(4), v[1]);
        }
        #[inline(always)]
        fn add(self, a: Self::V8, b: Self::V8) -> Self::V8 {
            unsafe { [_mm256_add_pd(a[0], b[0]), _mm256_add_pd(a[1], b[1])] }
        }
        #[inline(always)]
        fn sub(self, a: Self::V8, b: Self::V8) -> Self::V8 {
            unsafe { [_mm256_sub_pd(a[0], b[0]), _mm256_sub_pd(a[1], b[1])] }
        }
        #[inline(always)]
        fn mul_add(self, a: Self::V8, b: Self::V8, c: Self::V8) -> Self::V8 {
            unsafe {
                [
                    _mm256_fmadd_pd(a[0], b[0], c[0]),
                    _mm256_fmadd_pd(a[1], b[1], c[1]),
                ]
            }
        }
        #[inline(always)]
        fn lanes(self, v: Self::V8) -> [f64; 8] {
            let mut out = [0.0; 8];
            unsafe { self.store(out.as_mut_ptr(), v) };
            out
        }
        #[inline(always)]
        fn mul_add_f64(self, a: f64, b: f64, c: f64) -> f64 {
            // Inlined into an `fma` function: one vfmadd instruction.
            a.mul_add(b, c)
        }

        #[inline(always)]
        fn zero_w(self) -> Self::W16 {
            unsafe { [_mm256_setzero_ps(); 2] }
        }
        #[inline(always)]
        fn splat_w(self, x: f32) -> Self::W16 {
            unsafe { [_mm256_set1_ps(x); 2] }
        }
        #[inline(always)]
        unsafe fn load_w(self, p: *const f32) -> Self::W16 {
            [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]
        }
        #[inline(always)]
        unsafe fn store_w(self, p: *mut f32, v: Self::W16) {
            _mm256_storeu_ps(p, v[0]);
            _mm256_storeu_ps(p.add(8), v[1]);
        }
        #[inline(always)]
        fn mul_add_w(self, a: Self::W16, b: Self::W16, c: Self::W16) -> Self::W16 {
            unsafe {
                [
                    _mm256_fmadd_ps(a[0], b[0], c[0]),
                    _mm256_fmadd_ps(a[1], b[1], c[1]),
                ]
            }
        }
        #[inline(always)]
        unsafe fn track_min_w(
            self,
            cand: Self::W16,
            ids: Self::W16,
            best: *mut f32,
            index: *mut f32,
            second: *mut f32,
        ) {
            // An 8-lane state, both halves folded in: a stored value is never a single blend of
            // the loaded one, which LLVM would turn into a masked store (microcoded on AMD).
            let (mut b, mut i, mut s) = (
                _mm256_loadu_ps(best),
                _mm256_loadu_ps(index),
                _mm256_loadu_ps(second),
            );
            for h in 0..2 {
                let better = _mm256_cmp_ps::<_CMP_LT_OQ>(cand[h], b);
                let runner_up = _mm256_cmp_ps::<_CMP_LT_OQ>(cand[h], s);
                // A new best pushes the old best to second place; else it may be a new second.
                s = _mm256_blendv_ps(_mm256_blendv_ps(s, cand[h], runner_up), b, better);
                b = _mm256_blendv_ps(b, cand[h], better);
                i = _mm256_blendv_ps(i, ids[h], better);
            }
            _mm256_storeu_ps(best, b);
            _mm256_storeu_ps(index, i);
            _mm256_storeu_ps(second, s);
        }
    }

    // SAFETY (every `unsafe` block below): an `Avx512` exists only on a CPU with AVX-512F, AVX2
    // and FMA.
    impl Isa for Avx512 {
        type V8 = __m512d;
        type W16 = __m512;
        // 32 registers: 16 accumulators + 4 + 4 operands.
        const DOT_TILE: (usize, usize) = (4, 4);
        // 8 rows × 48 centers: 24 accumulators, 3 panel registers, 1 broadcast (measured on a
        // Sapphire Rapids: faster than 8 × 32, 12 × 32 and 6 × 64).
        const CENTER_TILE: (usize, usize) = (8, 3);
        // 8 points × 3 column blocks: 24 accumulators, 3 row registers, 1 broadcast; each
        // row's load and conversion then feeds 8 multiply-adds (the descent runs 8 points).
        const WEIGHTED_COLUMNS: [usize; 4] = [3, 2, 4, 8];
        const WEIGHTED_POINTS: usize = 8;
        // 2 panels × 8 points: 16 accumulators, 2 panel registers, 1 broadcast (measured on a
        // Sapphire Rapids: faster than 3 × 8 and 4 × 6 at 8 points; each panel load and
        // conversion feeds 8 multiply-adds).
        const PANEL_TILE: (usize, usize) = (2, 8);
        const PANEL_REMAINDER: [usize; 8] = [0, 8, 4, 3, 2, 2, 2, 2];
        // 8 rows × 24 columns: 24 accumulators, 3 panel registers, 1 broadcast.
        const GRAM_TILE: (usize, usize) = (8, 3);

        #[inline(always)]
        fn zero(self) -> __m512d {
            unsafe { _mm512_setzero_pd() }
        }
        #[inline(always)]
        fn splat(self, x: f64) -> __m512d {
            unsafe { _mm512_set1_pd(x) }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f64) -> __m512d {
            _mm512_loadu_pd(p)
        }
        #[inline(always)]
        unsafe fn load_f32(self, p: *const f32) -> __m512d {
            _mm512_cvtps_pd(_mm256_loadu_ps(p))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64, v: __m512d) {
            _mm512_storeu_pd(p, v)
        }
        #[inline(always)]
        fn add(self, a: __m512d, b: __m512d) -> __m512d {
            unsafe { _mm512_add_pd(a, b) }
        }
        #[inline(always)]
        fn sub(self, a: __m512d, b: __m512d) -> __m512d {
            unsafe { _mm512_sub_pd(a, b) }
        }
        #[inline(always)]
        fn mul_add(self, a: __m512d, b: __m512d, c: __m512d) -> __m512d {
            unsafe { _mm512_fmadd_pd(a, b, c) }
        }
        #[inline(always)]
        fn lanes(self, v: __m512d) -> [f64; 8] {
            let mut out = [0.0; 8];
            unsafe { _mm512_storeu_pd(out.as_mut_ptr(), v) };
            out
        }
        #[inline(always)]
        fn mul_add_f64(self, a: f64, b: f64, c: f64) -> f64 {
            a.mul_add(b, c)
        }

        #[inline(always)]
        fn zero_w(self) -> __m512 {
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        fn splat_w(self, x: f32) -> __m512 {
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load_w(self, p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store_w(self, p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        fn mul_add_w(self, a: __m512, b: __m512, c: __m512) -> __m512 {
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn track_min_w(
            self,
            cand: __m512,
            ids: __m512,
            best: *mut f32,
            index: *mut f32,
            second: *mut f32,
        ) {
            let (b, i, s) = (
                _mm512_loadu_ps(best),
                _mm512_loadu_ps(index),
                _mm512_loadu_ps(second),
            );
            let better = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(cand, b);
            let runner_up = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(cand, s);
            // mask_blend(k, a, b) takes b where k is set.
            let s = _mm512_mask_blend_ps(better, _mm512_mask_blend_ps(runner_up, s, cand), b);
            _mm512_storeu_ps(best, _mm512_mask_blend_ps(better, b, cand));
            _mm512_storeu_ps(index, _mm512_mask_blend_ps(better, i, ids));
            _mm512_storeu_ps(second, s);
        }
    }
}
