/* gemm.c - single-precision matrix product with packing and register-tile kernels (see
 * gemm.h). All of A is packed once (alpha folded in) into MR-row micro-panels per 256-deep K
 * slice; then the threads take chunks of C's columns (of every output, for several products of
 * the same A) in turn:
 *   jc: a chunk (<= 64 columns)   -> pc: KC-deep slice of K -> pack B slice (KC x chunk)
 *   ic: MC rows of A              -> jr: NR columns -> ir: MR rows
 *   -> kernel: C tile (MR x NR) += A micro-panel x B micro-panel over KC
 * With several threads and enough rows, A's rows are cut into one group per thread: thread t
 * packs group t's panels and takes group t's chunks (rows of the group, a chunk of columns)
 * first, then the other groups' remaining ones. So the activations a thread packs, and the C
 * rows it writes, are the rows the element-wise steps before and after give that thread: on
 * two cores, the products no longer pass A and C back and forth between the cores' caches
 * (llama-0.44b forward, T = 512: 1 -> 2 threads 1.70x before, 1.93x after; docs/quant.md),
 * and no thread waits between packing and products.
 * Packed layouts: an A micro-panel holds, for each k, MR values of consecutive rows; a B
 * micro-panel, for each k, NR values of consecutive columns (16 x 16 / 8 x 8 register
 * transposes of the source rows); both zero-padded at the edges, so the kernels always run
 * full tiles (an edge tile goes through a small buffer). Weights packed once at load
 * (NN_B_PACKED) skip the B packing: the kernels read their 32-row panels in place (a stride
 * of 32 for the narrower kernels), and fetch the next panel's slice into L2 as they go.
 * Why these sizes: a B micro-panel (KC x 32 floats = 32 KB) stays in L1 while the ir loop
 * sweeps MC rows of A (120 KB) from L2; KC = 256 is also one K-quant super-block, so
 * quantised rows dequantise in whole blocks straight into the panel. Chunks of at most 64
 * columns keep a chunk's C block (M x 64) in L2 across the K slices (measured on llama-shaped
 * layers: 512-column chunks cost ~10% more CPU time than 128, 64 ~4% less than 128;
 * prefetching the C tile in the kernel cost ~8% more).
 */
#include "nn/gemm.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/base.h"
#include "nn/nn.h"
#include "nn/quant.h"

#define KC 256
#define MC 120    /* multiple of every MR */
#define NC 512    /* multiple of every NR */
#define CHUNK_MAX 64  /* columns a thread takes at a time (its C block stays in L2) */
#define MR_MAX 12
#define GROUPS_MAX 16 /* row groups of a product (one per thread, up to this many) */
#define NR_MAX 32

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GEMM_X86 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma")))
#define AVX512_FN __attribute__((target("avx512f,avx2,fma")))
#else
#define GEMM_X86 0
#endif

/* mode: 0 C = acc, 1 C += acc, 2 C = beta C + acc */
/* pf: NULL, or kc / 2 cache lines from there to fetch into L2 while the tile is computed (the
 * next micro-panel of weights packed at load, which would otherwise come from memory) */
typedef void (*kernel_fn)(int64_t kc, const float *a, const float *b, int64_t bs, float *c,
                          int64_t ldc, int mode, float beta, const float *pf);

typedef struct {
    const char *name;
    int mr, nr;
    kernel_fn k;
    int tblk;        /* transpose block of the packing (16 AVX-512, 8 AVX2, 0 none) */
} kernel_desc;

/* ---------------------------------------------------------------------------------------- */
/* Kernels                                                                                   */

static void kernel_c(int64_t kc, const float *a, const float *b, int64_t bs, float *c, int64_t ldc,
                     int mode, float beta, const float *pf) {
    (void)pf;
    float acc[4][8] = {{0}};
    for (int64_t k = 0; k < kc; k++, a += 4, b += bs)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++) acc[i][j] += a[i] * b[j];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) {
            float *o = &c[i * ldc + j];
            *o = mode == 0 ? acc[i][j] : mode == 1 ? *o + acc[i][j] : beta * *o + acc[i][j];
        }
}

#if GEMM_X86
/* One register-tile kernel body, instantiated for AVX2 (6 x 16: two 8-lane vectors per row)
 * and AVX-512 (12 x 32: two 16-lane vectors per row): for each k, the B row's two vectors times
 * each of the MR broadcast A values, accumulated in 2 MR registers. */
#define KERNEL(NAME, FN, MR, W, VT, ZERO, LOAD, SET1, FMADD, ADD, STORE)                           \
    FN static void NAME(int64_t kc, const float *a, const float *b, int64_t bs, float *c,          \
                        int64_t ldc, int mode, float beta, const float *pf) {                       \
        VT acc[MR][2];                                                                              \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = ZERO();      \
        for (int64_t k = 0; k < kc; k++, a += MR, b += bs) {                                        \
            if (pf && !(k & 1)) __builtin_prefetch(pf + k * 8, 0, 2);                               \
            VT b0 = LOAD(b), b1 = LOAD(b + W);                                                      \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                 \
                VT ai = SET1(a[i]);                                                                 \
                acc[i][0] = FMADD(ai, b0, acc[i][0]);                                               \
                acc[i][1] = FMADD(ai, b1, acc[i][1]);                                               \
            }                                                                                       \
        }                                                                                           \
        VT vb = SET1(beta);                                                                         \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                       \
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {                                   \
                float *o = c + i * ldc + W * h;                                                     \
                VT v = acc[i][h];                                                                   \
                if (mode == 1) v = ADD(LOAD(o), v);                                                 \
                else if (mode == 2) v = FMADD(vb, LOAD(o), v);                                      \
                STORE(o, v);                                                                        \
            }                                                                                       \
    }

KERNEL(kernel_avx2, AVX2_FN, 6, 8, __m256, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps,
       _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps)
KERNEL(kernel_avx512, AVX512_FN, 12, 16, __m512, _mm512_setzero_ps, _mm512_loadu_ps,
       _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps)

/* 16 x 16 transposes: rows src[i] + k (i < 16), out[k * ld + i] for the lanes i in mask. */
AVX512_FN static void transpose16(const float *const *src, int64_t k, float *out, int64_t ld,
                                  unsigned mask) {
    const __mmask16 m = (__mmask16)mask;
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src[i] + k);
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {
        __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 2]);
        __m512d c = _mm512_castps_pd(t[4 * g + 1]), d = _mm512_castps_pd(t[4 * g + 3]);
        r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int c = 0; c < 4; c++) {
        __m512 v = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), w = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
        __m512 v2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        __m512 w2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
        _mm512_mask_storeu_ps(out + (c)*ld, m, _mm512_shuffle_f32x4(v, v2, 0x88));
        _mm512_mask_storeu_ps(out + (c + 8) * ld, m, _mm512_shuffle_f32x4(v, v2, 0xdd));
        _mm512_mask_storeu_ps(out + (c + 4) * ld, m, _mm512_shuffle_f32x4(w, w2, 0x88));
        _mm512_mask_storeu_ps(out + (c + 12) * ld, m, _mm512_shuffle_f32x4(w, w2, 0xdd));
    }
}

AVX2_FN static void transpose8(const float *const *src, int64_t k, float *out, int64_t ld,
                               unsigned mask) {
    const __m256i m = _mm256_cmpgt_epi32(
        _mm256_and_si256(_mm256_set1_epi32((int)mask), _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128)),
        _mm256_setzero_si256());
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src[i] + k);
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; g++) {
        r[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        r[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        r[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        r[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        _mm256_maskstore_ps(out + c * ld, m, _mm256_permute2f128_ps(r[c], r[4 + c], 0x20));
        _mm256_maskstore_ps(out + (c + 4) * ld, m, _mm256_permute2f128_ps(r[c], r[4 + c], 0x31));
    }
}
#endif

static const float zeros[KC]; /* rows past the edge of a panel read these */

/* out[k * ld + i] = src[i][k] for i < rows (the panel width), k < kc (<= KC); src[i] may be
 * `zeros`. Register transposes of blk x blk tiles (16 AVX-512, 8 AVX2) with masked stores for
 * a last partial group of rows, plain copies for the k tail. */
static void transpose_rows(const float *const *src, int rows, int64_t kc, float *out, int64_t ld,
                           int blk, const float *const *pf) {
    int64_t k = 0;
#if GEMM_X86
    if (blk == 8 || blk == 16) {
        const float *p[16];
        for (; k + blk <= kc; k += blk) {
            if (pf) /* the rows packed next, the same k, into L2 while these are transposed */
                for (int i = 0; i < rows; i++) __builtin_prefetch(pf[i] + k, 0, 2);
            for (int i = 0; i < rows; i += blk) {
                int n = rows - i < blk ? rows - i : blk;
                for (int j = 0; j < blk; j++) p[j] = j < n ? src[i + j] : zeros;
                if (blk == 16) transpose16(p, k, out + k * ld + i, ld, (1u << n) - 1);
                else transpose8(p, k, out + k * ld + i, ld, (1u << n) - 1);
            }
        }
    }
#endif
    if (pf)
        for (int i = 0; i < rows; i++) __builtin_prefetch(pf[i] + kc - 1, 0, 2);
    for (; k < kc; k++)
        for (int i = 0; i < rows; i++) out[k * ld + i] = src[i][k];
}

static const kernel_desc kernels[] = {
#if GEMM_X86
    {"avx512", 12, 32, kernel_avx512, 16},
    {"avx2", 6, 16, kernel_avx2, 8},
#endif
    {"scalar", 4, 8, kernel_c, 0},
};

static const kernel_desc *chosen;

static int cpu_has(const char *name) {
#if GEMM_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx512")) return __builtin_cpu_supports("avx512f");
    if (!strcmp(name, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return !strcmp(name, "scalar");
}

static const kernel_desc *pick(void) {
    if (!chosen)
        for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
            if (cpu_has(kernels[i].name)) {
                chosen = &kernels[i];
                break;
            }
    return chosen;
}

const char *nn_gemm_kernel(void) { return pick()->name; }

int nn_gemm_force(const char *name) {
    if (!name) {
        chosen = NULL;
        return 1;
    }
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (!strcmp(kernels[i].name, name) && cpu_has(name)) {
            chosen = &kernels[i];
            return 1;
        }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Packing                                                                                   */

/* A rows [i0, i0+mr) (zero past M), k [k0, k0+kc) -> one mr-row micro-panel, alpha folded
 * in: ap[k * mr + r]. */
static void pack_a_panel(float *ap, const float *A, int64_t lda, int64_t M, int64_t i0,
                         int64_t k0, int64_t kc, float alpha, int mr, int tblk) {
    const float *src[MR_MAX];
    for (int r = 0; r < mr; r++) src[r] = i0 + r < M ? A + (i0 + r) * lda + k0 : zeros;
    transpose_rows(src, mr, kc, ap, mr, tblk, NULL);
    if (alpha != 1.0f)
        for (int64_t i = 0; i < kc * mr; i++) ap[i] *= alpha;
}

/* B columns [j0, j0+nc), k [k0, k0+kc) -> bp: nr-column micro-panels. rows: nr * kc floats
 * of scratch for dequantised row slices. The transposition reads nr rows side by side and
 * writes each k's nr values contiguously. */
static void pack_b(float *bp, const nn_gemm_b *B, int64_t j0, int64_t nc, int64_t k0, int64_t kc,
                   int64_t K, int nr, int tblk, float *rows) {
    for (int64_t p = 0; p < nc; p += nr, bp += nr * kc) {
        int64_t w = nc - p < nr ? nc - p : nr;
        if (B->kind == NN_B_COLS) {
            for (int64_t k = 0; k < kc; k++) {
                const float *src = B->b + (k0 + k) * B->ldb + j0 + p;
                float *dst = bp + k * nr;
                memcpy(dst, src, (size_t)w * sizeof(float));
                for (int64_t j = w; j < nr; j++) dst[j] = 0.0f;
            }
            continue;
        }
        const float *src[NR_MAX], *next[NR_MAX], *const *pf = NULL;
        for (int64_t j = w; j < nr; j++) src[j] = zeros;
        for (int64_t j = 0; j < w; j++) {
            if (B->kind == NN_B_ROWS) {
                src[j] = B->b + (j0 + p + j) * B->ldb + k0;
            } else {
                const uint8_t *r = B->data + (size_t)(B->row0 + j0 + p + j) * B->row_bytes;
                dequantize_row(B->type, r + quant_row_bytes(B->type, k0), rows + j * kc, kc);
                src[j] = rows + j * kc;
            }
        }
        /* F32 rows (weights) come from memory, 16 or 32 rows side by side, which the hardware
         * prefetchers do not follow: fetch the next panel's rows (this slice's next panel, or
         * the next K slice's first) while this one is transposed */
        if (B->kind == NN_B_ROWS && (p + nr < nc || k0 + kc < K)) {
            int64_t r0 = p + nr < nc ? j0 + p + nr : j0, kn = p + nr < nc ? k0 : k0 + kc;
            int64_t nw = p + nr < nc ? (nc - p - nr < nr ? nc - p - nr : nr) : (nc < nr ? nc : nr);
            for (int64_t j = 0; j < nr; j++) next[j] = j < nw ? B->b + (r0 + j) * B->ldb + kn : zeros;
            pf = next;
        }
        transpose_rows(src, nr, kc, bp, nr, tblk, pf);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Driver                                                                                    */

typedef struct {
    int64_t M, K, lda, Mp;  /* Mp: M rounded up to MR */
    float alpha;
    const float *A;
    const nn_gemm_out *outs; /* the products of A: C_i = alpha A op(B_i) + beta_i C_i */
    int n_outs;
    int64_t first[GEMM_OUTS_MAX + 1]; /* chunks [first[i], first[i + 1]) are output i's */
    const kernel_desc *kd;
    float *apack;        /* all of A, packed once: slice pc at apack + pc * Mp */
    float *buf;          /* per thread: B slice, row scratch, edge tile */
    size_t per_thread;   /* floats */
    int n_parts;         /* threads at work, each with its own buffers */
    int64_t chunk;       /* columns per chunk (a multiple of NR, at most NC) */
    int64_t n_chunks;    /* of all outputs */
    int n_groups;        /* row groups: group g's rows are the A panels thread g packed */
    struct {
        _Alignas(64) atomic_int_fast64_t next; /* the group's next chunk of columns */
        atomic_int packed;                     /* the group's A panels are packed */
    } group[GROUPS_MAX];
} gemm_job;

/* Phase 1: A's micro-panels [p0, p1), every K slice. */
static void run_pack_a(void *arg, int64_t p0, int64_t p1) {
    const gemm_job *J = arg;
    const int mr = J->kd->mr;
    for (int64_t pc = 0; pc < J->K; pc += KC) {
        const int64_t kc = J->K - pc < KC ? J->K - pc : KC;
        for (int64_t p = p0; p < p1; p++)
            pack_a_panel(J->apack + pc * J->Mp + p * mr * kc, J->A, J->lda, J->M, p * mr, pc, kc,
                         J->alpha, mr, J->kd->tblk);
    }
}

/* Phase 2, one chunk: C rows [r0, r1) (whole micro-panels of A from r0), columns
 * [jc, jc + nc), all of K. bp, row, tile: the thread's buffers. */
static void run_chunk(const gemm_job *J, const nn_gemm_out *o, int64_t r0, int64_t r1,
                      int64_t jc, int64_t nc, float *bp, float *row, float *tile) {
    const nn_gemm_b *B = o->B;
    const int mr = J->kd->mr, nr = J->kd->nr, packed = B->kind == NN_B_PACKED;
    const int64_t bs = packed ? NN_PANEL : nr;
    for (int64_t pc = 0; pc < J->K; pc += KC) {
        const int64_t kc = J->K - pc < KC ? J->K - pc : KC;
        if (!packed) pack_b(bp, B, jc, nc, pc, kc, J->K, nr, J->kd->tblk, row);
        const int mode = pc > 0 ? 1 : o->beta == 0.0f ? 0 : o->beta == 1.0f ? 1 : 2;
        const float *ap = J->apack + pc * J->Mp;
        for (int64_t ic = r0; ic < r1; ic += MC) {
            const int64_t mc = r1 - ic < MC ? r1 - ic : MC;
            for (int64_t jr = 0; jr < nc; jr += nr)
                for (int64_t ir = 0; ir < mc; ir += mr) {
                    float *c = o->C + (ic + ir) * o->ldc + jc + jr;
                    const float *a = ap + (ic + ir) * kc, *b = bp + jr * kc;
                    const float *pf = NULL;
                    if (packed) {
                        const float *P = B->b;
                        const int64_t r = B->row0 + jc + jr, K = J->K, q = ir / mr;
                        b = P + r / NN_PANEL * NN_PANEL * K + pc * NN_PANEL + r % NN_PANEL;
                        /* while the first rows of A meet this micro-panel, fetch the next
                         * panel's slice (kc x 32 floats, 4 kernel calls' worth) into L2:
                         * this slice's next panel, or the next slice's first */
                        if (ic == r0 && q < 4) {
                            if (jr + nr < nc && (r + nr) / NN_PANEL != r / NN_PANEL)
                                pf = P + (r + nr) / NN_PANEL * NN_PANEL * K + pc * NN_PANEL;
                            else if (jr + nr >= nc && pc + KC < K)
                                pf = P + (B->row0 + jc) / NN_PANEL * NN_PANEL * K + (pc + KC) * NN_PANEL;
                            if (pf) pf += q * (kc / 2) * 16;
                        }
                    }
                    int64_t h = mc - ir < mr ? mc - ir : mr, w = nc - jr < nr ? nc - jr : nr;
                    if (h == mr && w == nr) {
                        J->kd->k(kc, a, b, bs, c, o->ldc, mode, o->beta, pf);
                        continue;
                    }
                    J->kd->k(kc, a, b, bs, tile, nr, 0, 0.0f, pf);
                    for (int64_t i = 0; i < h; i++)
                        for (int64_t j = 0; j < w; j++) {
                            float *d = c + i * o->ldc + j, v = tile[i * nr + j];
                            *d = mode == 0 ? v : mode == 1 ? *d + v : o->beta * *d + v;
                        }
                }
        }
    }
}

/* Phase 2: thread t's chunks, taken one at a time. With row groups, thread t first packs its
 * group's A panels and works on its group's rows (the C rows the element-wise steps around the
 * product give it too: nothing moves between the cores' caches), then helps with the other
 * groups' remaining chunks, once their panels are packed (a thread slowed down by other load
 * on the machine leaves them to the rest). No barrier between packing and products. */
static void run_part(void *arg, int64_t t0, int64_t t1) {
    gemm_job *J = arg;
    const int mr = J->kd->mr;
    const int64_t panels = J->Mp / mr, n = J->n_groups;
    for (int64_t t = t0; t < t1; t++) {
        float *bp = J->buf + (size_t)t * J->per_thread;
        float *row = bp + (size_t)NC * KC, *tile = row + (size_t)NR_MAX * KC;
        if (n > 1) {
            run_pack_a(J, panels * t / n, panels * (t + 1) / n);
            atomic_store_explicit(&J->group[t].packed, 1, memory_order_release);
        }
        for (int64_t k = 0; k < n; k++) {
            const int64_t g = (t + k) % n, r0 = panels * g / n * mr;
            const int64_t r1 = panels * (g + 1) / n * mr < J->M ? panels * (g + 1) / n * mr : J->M;
            if (k > 0 && !atomic_load_explicit(&J->group[g].packed, memory_order_acquire))
                continue; /* its owner has not started: it does the whole group itself */
            for (int64_t ch; (ch = atomic_fetch_add(&J->group[g].next, 1)) < J->n_chunks;) {
                int i = 0;
                while (ch >= J->first[i + 1]) i++;
                const nn_gemm_out *o = &J->outs[i];
                const int64_t jc = (ch - J->first[i]) * J->chunk;
                const int64_t nc = o->N - jc < J->chunk ? o->N - jc : J->chunk;
                run_chunk(J, o, r0, r1, jc, nc, bp, row, tile);
            }
        }
    }
}

#define PER_THREAD ((size_t)NC * KC + (size_t)NR_MAX * KC + (size_t)MR_MAX * NR_MAX + 16)

int64_t nn_gemm_workspace(int n_threads, int64_t M, int64_t K) {
    int64_t mp = (M + MR_MAX - 1) / MR_MAX * MR_MAX;
    return (int64_t)PER_THREAD * (n_threads < 1 ? 1 : n_threads) + mp * K + 16;
}

int nn_gemm_multi(int64_t M, int64_t K, float alpha, const float *A, int64_t lda,
                  const nn_gemm_out *outs, int n_outs, nn_pool *pool, float *work,
                  int64_t work_cap) {
    if (n_outs < 1 || n_outs > GEMM_OUTS_MAX)
        return terse_err(TERSE_ERR_INVALID, "gemm: %d outputs (1 to %d)", n_outs, GEMM_OUTS_MAX);
    const kernel_desc *kd = pick();
    double flops = 0;
    int64_t tiles = 0;
    int any_packed = 0;
    for (int i = 0; i < n_outs; i++) {
        const nn_gemm_out *o = &outs[i];
        if (o->B->kind == NN_B_PACKED && K != o->B->ldb)
            return terse_err(TERSE_ERR_INVALID, "gemm: packed depth %lld, product depth %lld",
                             (long long)o->B->ldb, (long long)K);
        if (o->B->kind == NN_B_PACKED && o->B->row0 % NN_PANEL)
            return terse_err(TERSE_ERR_INVALID, "gemm: packed rows from %lld, not a panel start",
                             (long long)o->B->row0);
        if (K <= 0) /* C = beta C */
            for (int64_t r = 0; r < M; r++)
                for (int64_t j = 0; j < o->N; j++) {
                    float *c = &o->C[r * o->ldc + j];
                    *c = o->beta == 0.0f ? 0.0f : o->beta * *c;
                }
        flops += (double)M * (double)(o->N > 0 ? o->N : 0) * (double)K;
        tiles += o->N > 0 ? (o->N + kd->nr - 1) / kd->nr : 0;
        any_packed |= o->B->kind == NN_B_PACKED;
    }
    if (M <= 0 || K <= 0 || tiles == 0) return TERSE_OK;
    gemm_job J = {M, K, lda, (M + kd->mr - 1) / kd->mr * kd->mr, alpha, A, outs, n_outs, {0}, kd,
                  NULL, NULL, PER_THREAD, 1, 0, 0, 1, {{0, 0}}};
    int threads = nn_pool_threads(pool);
    J.n_parts = threads;
    if (J.n_parts > tiles) J.n_parts = (int)tiles;
    if (flops < 262144.0) J.n_parts = 1;
    /* chunks: about four per thread (so that a thread held up by other load leaves its share
     * to the others), whole micro-panels (whole packed panels), at most CHUNK_MAX columns */
    J.chunk = (tiles + 4 * J.n_parts - 1) / (4 * J.n_parts) * kd->nr;
    if (J.chunk > CHUNK_MAX) J.chunk = CHUNK_MAX;
    if (any_packed) J.chunk = (J.chunk + NN_PANEL - 1) / NN_PANEL * NN_PANEL;
    for (int i = 0; i < n_outs; i++) {
        const int64_t N = outs[i].N > 0 ? outs[i].N : 0;
        J.first[i + 1] = J.first[i] + (N + J.chunk - 1) / J.chunk;
    }
    J.n_chunks = J.first[n_outs];
    size_t need = J.per_thread * (size_t)J.n_parts + (size_t)(J.Mp * K) + 16;
    float *own = NULL;
    if (work && work_cap >= (int64_t)need) {
        J.buf = work;
    } else {
        J.buf = own = malloc(need * sizeof(float));
        if (!J.buf) return terse_err(TERSE_ERR_NOMEM, "gemm: packing buffers (%zu floats)", need);
    }
    J.apack = J.buf + J.per_thread * (size_t)J.n_parts;
    const int64_t panels = J.Mp / kd->mr;
    /* row groups when every thread has a part (the pool gives thread t item t) and enough
     * rows of its own */
    if (J.n_parts == threads && J.n_parts <= GROUPS_MAX && panels >= 4 * (int64_t)J.n_parts)
        J.n_groups = J.n_parts;
    if (J.n_parts == 1) {
        run_pack_a(&J, 0, panels);
        run_part(&J, 0, 1);
    } else if (J.n_groups > 1) { /* each thread packs its own group's panels */
        nn_pool_run(pool, J.n_parts, 1, run_part, &J);
    } else {
        nn_pool_run(pool, panels, 2, run_pack_a, &J);
        nn_pool_run(pool, J.n_parts, 1, run_part, &J);
    }
    free(own);
    return TERSE_OK;
}

int nn_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
            const nn_gemm_b *B, float beta, float *C, int64_t ldc, nn_pool *pool, float *work,
            int64_t work_cap) {
    const nn_gemm_out o = {B, N, beta, C, ldc};
    return nn_gemm_multi(M, K, alpha, A, lda, &o, 1, pool, work, work_cap);
}

int nn_sgemm(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
             int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
             nn_pool *pool, float *work, int64_t work_cap) {
    nn_gemm_b b = {trans_b ? NN_B_ROWS : NN_B_COLS, B, ldb, 0, NULL, 0, 0};
    return nn_gemm(M, N, K, alpha, A, lda, &b, beta, C, ldc, pool, work, work_cap);
}

/* ---------------------------------------------------------------------------------------- */
/* Weights packed once                                                                       */

void *nn_alloc_big(size_t bytes, const char *what) {
    const size_t huge = (size_t)2 << 20;
    if (bytes < 2 * huge) return terse_malloc(bytes, what);
    size_t n = (bytes + huge - 1) & ~(huge - 1);
    void *p = aligned_alloc(huge, n);
    if (!p) {
        terse_err(TERSE_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE); /* a hint: without it the buffer is as good as malloc's */
#endif
    return p;
}

int64_t nn_gemm_packed_floats(int64_t N, int64_t K) {
    return (N + NN_PANEL - 1) / NN_PANEL * NN_PANEL * K;
}

/* Panels [p0, p1) of the job's matrix. */
typedef struct {
    const float *W;
    int64_t N, K;
    float *dst;
} pack_job;

static void run_pack_rows(void *arg, int64_t p0, int64_t p1) {
    const pack_job *j = arg;
    const int tb = cpu_has("avx512") ? 16 : cpu_has("avx2") ? 8 : 0; /* the CPU's best transpose */
    for (int64_t p = p0; p < p1; p++) {
        const float *src[NN_PANEL];
        for (int i = 0; i < NN_PANEL; i++)
            src[i] = p * NN_PANEL + i < j->N ? j->W + (p * NN_PANEL + i) * j->K : zeros;
        float *out = j->dst + p * NN_PANEL * j->K;
        for (int64_t k0 = 0; k0 < j->K; k0 += KC) {
            const int64_t kc = j->K - k0 < KC ? j->K - k0 : KC;
            const float *s2[NN_PANEL];
            for (int i = 0; i < NN_PANEL; i++) s2[i] = src[i] == zeros ? zeros : src[i] + k0;
            transpose_rows(s2, NN_PANEL, kc, out + k0 * NN_PANEL, NN_PANEL, tb, NULL);
        }
    }
}

void nn_gemm_pack_rows(const float *W, int64_t N, int64_t K, float *dst, nn_pool *pool) {
    pack_job j = {W, N, K, dst};
    nn_pool_run(pool, (N + NN_PANEL - 1) / NN_PANEL, 4, run_pack_rows, &j);
}

/* y (n, nrows; ldy) = beta y + x (n, K; ldx) W^T for rows [row0, row0 + nrows) of a packed W:
 * each panel's 32 rows are 32 lanes, one pass over the panel for all n rows of x. */
typedef struct {
    const float *x, *P;
    int64_t n, ldx, K, row0, nrows, ldy;
    float *y;
    float beta;
    const char *kernel;  /* nn_gemv_kernel(n), chosen once per call */
} gemv_job;

#define GEMV_MAX_N 4

static void gemv_store(const gemv_job *j, int64_t r, int64_t c0, const float *acc) {
    for (int64_t c = 0; c < NN_PANEL; c++) {
        const int64_t col = c0 + c - j->row0;
        if (col < 0 || col >= j->nrows) continue;
        float *o = j->y + r * j->ldy + col;
        *o = j->beta == 0.0f ? acc[c] : j->beta * *o + acc[c];
    }
}

static void gemv_panels_c(const gemv_job *j, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
        const float *w = j->P + p * NN_PANEL * j->K;
        for (int64_t r = 0; r < j->n; r++) {
            float acc[NN_PANEL] = {0};
            const float *x = j->x + r * j->ldx;
            for (int64_t k = 0; k < j->K; k++)
                for (int c = 0; c < NN_PANEL; c++) acc[c] += w[k * NN_PANEL + c] * x[k];
            gemv_store(j, r, p * NN_PANEL, acc);
        }
    }
}

#if GEMM_X86
/* A panel row's 32 lanes are 2 zmm registers. The accumulators are named registers (an array
 * indexed by a run-time row count is kept in memory): one row of x (decoding) runs four k at a
 * time into 8 independent chains; more rows go two at a time, two k each (8 chains), a third
 * or fourth row reading the panel again, from cache by then. */
AVX512_FN static void gemv_panel_avx512_1(const float *w, int64_t K, const float *x, float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
    int64_t k = 0;
    for (; k + 3 < K; k += 4) {
        const float *wk = w + k * NN_PANEL;
        __m512 xa = _mm512_set1_ps(x[k]), xb = _mm512_set1_ps(x[k + 1]),
               xc = _mm512_set1_ps(x[k + 2]), xd = _mm512_set1_ps(x[k + 3]);
        a0 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(wk), a0);
        a1 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(wk + 16), a1);
        b0 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(wk + 32), b0);
        b1 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(wk + 48), b1);
        c0 = _mm512_fmadd_ps(xc, _mm512_loadu_ps(wk + 64), c0);
        c1 = _mm512_fmadd_ps(xc, _mm512_loadu_ps(wk + 80), c1);
        d0 = _mm512_fmadd_ps(xd, _mm512_loadu_ps(wk + 96), d0);
        d1 = _mm512_fmadd_ps(xd, _mm512_loadu_ps(wk + 112), d1);
    }
    for (; k < K; k++) {
        const float *wk = w + k * NN_PANEL;
        __m512 xa = _mm512_set1_ps(x[k]);
        a0 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(wk), a0);
        a1 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(wk + 16), a1);
    }
    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_add_ps(a0, b0), _mm512_add_ps(c0, d0)));
    _mm512_storeu_ps(out + 16, _mm512_add_ps(_mm512_add_ps(a1, b1), _mm512_add_ps(c1, d1)));
}

AVX512_FN static void gemv_panel_avx512_2(const float *w, int64_t K, const float *x,
                                          const float *x2, float *out, float *out2) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
    int64_t k = 0;
    for (; k + 1 < K; k += 2) {
        const float *wk = w + k * NN_PANEL;
        __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16),
               w2 = _mm512_loadu_ps(wk + 32), w3 = _mm512_loadu_ps(wk + 48);
        __m512 xa = _mm512_set1_ps(x[k]), xb = _mm512_set1_ps(x[k + 1]),
               ya = _mm512_set1_ps(x2[k]), yb = _mm512_set1_ps(x2[k + 1]);
        a0 = _mm512_fmadd_ps(xa, w0, a0);
        a1 = _mm512_fmadd_ps(xa, w1, a1);
        b0 = _mm512_fmadd_ps(xb, w2, b0);
        b1 = _mm512_fmadd_ps(xb, w3, b1);
        c0 = _mm512_fmadd_ps(ya, w0, c0);
        c1 = _mm512_fmadd_ps(ya, w1, c1);
        d0 = _mm512_fmadd_ps(yb, w2, d0);
        d1 = _mm512_fmadd_ps(yb, w3, d1);
    }
    if (k < K) {
        const float *wk = w + k * NN_PANEL;
        __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16);
        __m512 xa = _mm512_set1_ps(x[k]), ya = _mm512_set1_ps(x2[k]);
        a0 = _mm512_fmadd_ps(xa, w0, a0);
        a1 = _mm512_fmadd_ps(xa, w1, a1);
        c0 = _mm512_fmadd_ps(ya, w0, c0);
        c1 = _mm512_fmadd_ps(ya, w1, c1);
    }
    _mm512_storeu_ps(out, _mm512_add_ps(a0, b0));
    _mm512_storeu_ps(out + 16, _mm512_add_ps(a1, b1));
    _mm512_storeu_ps(out2, _mm512_add_ps(c0, d0));
    _mm512_storeu_ps(out2 + 16, _mm512_add_ps(c1, d1));
}

/* 16 ymm registers: a panel row's 32 lanes are 4 of them. One row of x (decoding) keeps two
 * sets of 4 accumulators (even and odd k: 8 chains of FMAs in flight); more rows go two at a
 * time (8 accumulators), a third or fourth reading the panel again, from cache by then. */
AVX2_FN static void gemv_panel_avx2_1(const float *w, int64_t K, const float *x, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t k = 0;
    for (; k + 1 < K; k += 2) {
        const float *wk = w + k * NN_PANEL;
        __m256 xa = _mm256_set1_ps(x[k]), xb = _mm256_set1_ps(x[k + 1]);
        a0 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(wk), a0);
        a1 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(wk + 8), a1);
        a2 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(wk + 16), a2);
        a3 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(wk + 24), a3);
        b0 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(wk + 32), b0);
        b1 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(wk + 40), b1);
        b2 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(wk + 48), b2);
        b3 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(wk + 56), b3);
    }
    if (k < K) {
        const float *wk = w + k * NN_PANEL;
        __m256 xa = _mm256_set1_ps(x[k]);
        a0 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(wk), a0);
        a1 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(wk + 8), a1);
        a2 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(wk + 16), a2);
        a3 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(wk + 24), a3);
    }
    _mm256_storeu_ps(out, _mm256_add_ps(a0, b0));
    _mm256_storeu_ps(out + 8, _mm256_add_ps(a1, b1));
    _mm256_storeu_ps(out + 16, _mm256_add_ps(a2, b2));
    _mm256_storeu_ps(out + 24, _mm256_add_ps(a3, b3));
}

AVX2_FN static void gemv_panel_avx2_2(const float *w, int64_t K, const float *x, const float *x2,
                                      float *out, float *out2) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int64_t k = 0; k < K; k++) {
        const float *wk = w + k * NN_PANEL;
        __m256 w0 = _mm256_loadu_ps(wk), w1 = _mm256_loadu_ps(wk + 8), w2 = _mm256_loadu_ps(wk + 16),
               w3 = _mm256_loadu_ps(wk + 24);
        __m256 xa = _mm256_set1_ps(x[k]), xb = _mm256_set1_ps(x2[k]);
        a0 = _mm256_fmadd_ps(xa, w0, a0);
        a1 = _mm256_fmadd_ps(xa, w1, a1);
        a2 = _mm256_fmadd_ps(xa, w2, a2);
        a3 = _mm256_fmadd_ps(xa, w3, a3);
        b0 = _mm256_fmadd_ps(xb, w0, b0);
        b1 = _mm256_fmadd_ps(xb, w1, b1);
        b2 = _mm256_fmadd_ps(xb, w2, b2);
        b3 = _mm256_fmadd_ps(xb, w3, b3);
    }
    _mm256_storeu_ps(out, a0);
    _mm256_storeu_ps(out + 8, a1);
    _mm256_storeu_ps(out + 16, a2);
    _mm256_storeu_ps(out + 24, a3);
    _mm256_storeu_ps(out2, b0);
    _mm256_storeu_ps(out2 + 8, b1);
    _mm256_storeu_ps(out2 + 16, b2);
    _mm256_storeu_ps(out2 + 24, b3);
}

/* Panels [p0, p1): rows of x two at a time through panel2, an odd last one through panel1 (the
 * kernels above, one pair per instruction set). */
typedef void gemv_panel1_fn(const float *w, int64_t K, const float *x, float *out);
typedef void gemv_panel2_fn(const float *w, int64_t K, const float *x, const float *x2, float *out,
                            float *out2);

static void gemv_panels(const gemv_job *j, int64_t p0, int64_t p1, gemv_panel1_fn *panel1,
                        gemv_panel2_fn *panel2) {
    for (int64_t p = p0; p < p1; p++) {
        const float *w = j->P + p * NN_PANEL * j->K;
        int64_t r = 0;
        for (; r + 1 < j->n; r += 2) {
            float a[NN_PANEL], b[NN_PANEL];
            panel2(w, j->K, j->x + r * j->ldx, j->x + (r + 1) * j->ldx, a, b);
            gemv_store(j, r, p * NN_PANEL, a);
            gemv_store(j, r + 1, p * NN_PANEL, b);
        }
        if (r < j->n) {
            float a[NN_PANEL];
            panel1(w, j->K, j->x + r * j->ldx, a);
            gemv_store(j, r, p * NN_PANEL, a);
        }
    }
}
#endif

const char *nn_gemv_kernel(int64_t n) {
    const char *k = pick()->name;
    if (!strcmp(k, "avx512")) return n <= GEMV_MAX_N ? k : "avx2";
    return k;
}

static void run_gemv(void *arg, int64_t p0, int64_t p1) {
    const gemv_job *j = arg;
    const char *k = j->kernel;
#if GEMM_X86
    if (!strcmp(k, "avx512")) {
        gemv_panels(j, p0, p1, gemv_panel_avx512_1, gemv_panel_avx512_2);
        return;
    }
    if (!strcmp(k, "avx2")) {
        gemv_panels(j, p0, p1, gemv_panel_avx2_1, gemv_panel_avx2_2);
        return;
    }
#endif
    gemv_panels_c(j, p0, p1);
}

void nn_gemv_packed(const float *x, int64_t n, int64_t ldx, const float *P, int64_t K,
                    int64_t row0, int64_t nrows, float *y, int64_t ldy, float beta, nn_pool *pool) {
    if (n <= 0 || nrows <= 0) return;
    gemv_job j = {x, P, n, ldx, K, row0, nrows, ldy, y, beta, nn_gemv_kernel(n)};
    const int64_t p0 = row0 / NN_PANEL, p1 = (row0 + nrows + NN_PANEL - 1) / NN_PANEL;
    /* panels [p0, p1) as items 0.. of the pool */
    j.P = P + p0 * NN_PANEL * K;
    j.row0 = row0 - p0 * NN_PANEL;
    nn_pool_run(pool, p1 - p0, 8, run_gemv, &j);
}
