/* Row statistics of log_softmax, the fused losses built on them, and their gradient, for
 * contiguous CPU tensors.
 *
 * The native backend of noisyloss.functional (see _LogSoftmaxStats there for the maths):
 * noisyloss/_native.py compiles this file with the system C compiler on first use and loads it with
 * ctypes.  Plain C99 with OpenMP: no Python or torch headers, so it builds in about a second.
 *
 * One entry point per floating type, nl_rows_f32 / nl_rows_f64.  For each row of x (n x c,
 * row-major), with t = x - max(x), s = sum_k exp(t_k), the statistics are
 *   column j < g         log p at idx[r, j] (with NL_COMP, column 0 is log(1 - p) instead)
 *   column g             log p at the row's argmax (the first of tied maxima), with NL_ARGMAX
 *   next column          S = sum_k log p_k                                     with NL_SUM
 *   next column          E = sum_k p_k log p_k                                 with NL_ENT
 * (k columns in all), and it runs in one of three modes:
 *   formula == NL_STATS, G == NULL   write the statistics to out (n x k)
 *   formula == NL_STATS, G != NULL   write dL/dx to grad, given G = dL/d(statistics) (n x k)
 *   formula >= 0                     a whole loss: the row losses L (reduction 0) or their mean (1)
 *                                    or sum (2) to res; with grad != NULL also scale * d(sum of
 *                                    the row losses)/dx to grad (scale: 1/n for a mean)
 * It returns -1, or, writing nothing, the position in idx of the first class index not in [0, c).
 * Nothing is kept between calls: a backward recomputes the row's statistics from x, and the
 * same code in the same order gives the same bits.  nl_peer_index and nl_comp_index build the
 * class indices of peer loss and negative learning.
 *
 * The gradient is dL/dx = p (a + b (log p - E)) + dS + sum_j dstat_j e_{idx_j}, with
 * a = -sum_j dstat_j - c dS over the gathered columns and b = dE; an NL_COMP row (which comes
 * alone, one gathered column) has dlog(1 - p_t)/dz_k = p_t q_k (k != t, q = softmax over the
 * classes other than t) and -p_t (k = t).
 *
 * Layout: rows are taken in blocks of NL_R.  Up to NL_SMALL classes a block is transposed (class
 * major) first, so that every loop, exp and log included, runs across the rows of the block in
 * vector lanes; with more classes the loops over a row's classes are long enough to vectorise.
 * Either way the per-row statistics, the loss formulas and the gradient's coefficients are arrays
 * over the block's rows (struct of arrays), in which the formulas vectorise too.  exp, expm1 and
 * log are vectorisable polynomials in float32 and libm's in float64.  Blocks do not depend on the
 * number of threads, and a reduction sums per-block partial sums in block order in double: the
 * results are the same on any number of threads.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* flags: which statistics (NL_COMP: the first gathered column is log(1 - p) instead of log p) */
#define NL_ARGMAX 1
#define NL_SUM 2
#define NL_ENT 4
#define NL_COMP 8
/* formulas: NL_STATS (the statistics themselves) or a fused row loss */
#define NL_STATS (-1)
#define NL_LINEAR 0   /* sum_j prm[j] o[j] */
#define NL_CE_RCE 1   /* prm = alpha, beta, A */
#define NL_NCE_RCE 2  /* prm = alpha, beta, A; o[1] = S */
#define NL_GCE 3      /* prm = q, truncated?, log k, (1 - k^q) / q */
#define NL_FOCAL 4    /* prm = gamma, smallest normal number */
#define NL_NEG 5      /* with NL_COMP */
#define NL_MAX_COLS 16
#define NL_R 64          /* rows per block (at most) */
#define NL_SMALL 12       /* up to this many classes a block is transposed (measured crossover) */
#define NL_BLOCK 2048    /* elements of a block of rows when not transposed: its scratch stays in L1 */
#define NL_GRAIN 32768   /* below this many elements one thread (torch's grain size) */
#define NL_LANES 8

/* exp(x) in float32 for x <= 0 (x = logit - max): 2^n * P(r), r = x - n ln 2, within 2 ulp of the
 * correctly rounded value; exp(x) = 0 below -87.3 (where it would be subnormal), NaN stays NaN. */
static inline float nl_expf(float x) {
    const float lo = -87.33654f;
    float xc = x < lo ? lo : x;
    float n = __builtin_rintf(xc * 1.44269504088896341f);
    float r = xc - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < lo ? 0.0f : p * scale;
}

/* expm1(x) in float32 for x <= 0 (x = log p): Taylor polynomial of degree 8 where |x| < ln2 / 2
 * (truncation below 1e-9 relative), else nl_expf(x) - 1 (|result| > 0.29, so within a few ulp).
 * Both are computed and one is selected, so that it vectorises (libm's expm1f: ~45 ns a call). */
static inline float nl_expm1f(float x) {
    float p = 1.0f / 40320;
    p = p * x + 1.0f / 5040;
    p = p * x + 1.0f / 720;
    p = p * x + 1.0f / 120;
    p = p * x + 1.0f / 24;
    p = p * x + 1.0f / 6;
    p = p * x + 0.5f;
    float small = x + x * x * p, big = nl_expf(x) - 1.0f;
    return x > -0.34657359f ? small : big;
}

/* log(x) in float32 for normal positive finite x (here: a sum of exponentials, >= 0.5), NaN
 * passed through: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log(1 + f) by Cephes' polynomial
 * (relative error below 1e-7), so that it vectorises. */
static inline float nl_logf(float x) {
    int32_t ix;
    memcpy(&ix, &x, sizeof ix);
    int32_t e = ((ix >> 23) & 0xff) - 126;
    ix = (ix & 0x007fffff) | 0x3f000000; /* m in [0.5, 1) */
    float m;
    memcpy(&m, &ix, sizeof m);
    int lt = m < 0.707106781186547524f;
    float fe = (float)(lt ? e - 1 : e);
    float f = lt ? m + m - 1.0f : m - 1.0f;
    float z = f * f;
    float y = 7.0376836292E-2f;
    y = y * f - 1.1514610310E-1f;
    y = y * f + 1.1676998740E-1f;
    y = y * f - 1.2420140846E-1f;
    y = y * f + 1.4249322787E-1f;
    y = y * f - 1.6668057665E-1f;
    y = y * f + 2.0000714765E-1f;
    y = y * f - 2.4999993993E-1f;
    y = y * f + 3.3333331174E-1f;
    y = y * f * z;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    float r = f + y + 0.693359375f * fe;
    return x != x ? x : r;
}


/* the position of the first of the m class indices that is not in [0, c), or -1 */
static int64_t nl_check_index(const int64_t *idx, int64_t m, int64_t c) {
    int any = 0;
    for (int64_t i = 0; i < m; i++) any |= (uint64_t)idx[i] >= (uint64_t)c; /* vectorises */
    if (any)
        for (int64_t i = 0; i < m; i++)
            if ((uint64_t)idx[i] >= (uint64_t)c) return i;
    return -1;
}


/* One copy of the kernels per floating type: T the type, S the suffix of the exported names. */
#define NL_DEFINE(T, S, EXP, LOG, EXPM1, POW)                                                      \
                                                                                                   \
/* the per-row arrays of a block: row r of the block at [r], statistic j of row r at [j * NL_R + r] */ \
typedef struct {                                                                                   \
    T m[NL_R], s[NL_R], logs[NL_R], inv[NL_R], st[NL_R], se[NL_R], lrest[NL_R], L[NL_R];           \
    T a[NL_R], dsum[NL_R], be[NL_R];                                                               \
    int64_t am[NL_R];                                                                              \
    T o[NL_MAX_COLS * NL_R], d[NL_MAX_COLS * NL_R]; /* the statistics and dL/d(statistics) */      \
    T *t, *e;          /* t = x - max and exp(t): class major (k * NL_R + r) or row major (r * c + k) */ \
    int64_t ks, rs;    /* their strides: element (r, k) at k * ks + r * rs */                      \
} nl_blk_##S;                                                                                      \
                                                                                                   \
/* row maximum and sums in NL_LANES independent lanes, so that the loops vectorise (the maximum   \
 * needs finite-math-only to become vmaxps: a NaN still reaches s through exp, as in torch) */     \
__attribute__((optimize("finite-math-only", "no-signed-zeros")))                                  \
static T nl_max_##S(const T *restrict x, int64_t c) {                                             \
    T acc[NL_LANES];                                                                               \
    int64_t k = 0;                                                                                 \
    T m = x[0];                                                                                    \
    if (c >= NL_LANES) {                                                                           \
        for (int l = 0; l < NL_LANES; l++) acc[l] = x[l];                                          \
        for (k = NL_LANES; k + NL_LANES <= c; k += NL_LANES)                                       \
            for (int l = 0; l < NL_LANES; l++) acc[l] = x[k + l] > acc[l] ? x[k + l] : acc[l];     \
        m = acc[0];                                                                                \
        for (int l = 1; l < NL_LANES; l++) m = acc[l] > m ? acc[l] : m;                            \
    }                                                                                              \
    for (; k < c; k++) m = x[k] > m ? x[k] : m;                                                    \
    return m;                                                                                      \
}                                                                                                  \
                                                                                                   \
static T nl_dot_##S(const T *restrict x, const T *restrict y, int64_t c) {                        \
    T acc[NL_LANES] = {0};                                                                         \
    int64_t k = 0;                                                                                 \
    for (; k + NL_LANES <= c; k += NL_LANES)                                                       \
        for (int l = 0; l < NL_LANES; l++) acc[l] += (y ? x[k + l] * y[k + l] : x[k + l]);         \
    T s = 0;                                                                                       \
    for (int l = 0; l < NL_LANES; l++) s += acc[l];                                                \
    for (; k < c; k++) s += y ? x[k] * y[k] : x[k];                                                \
    return s;                                                                                      \
}                                                                                                  \
                                                                                                   \
/* t, exp(t) and the sums over each row's classes (m, s, and st = sum t, se = sum e t as flags    \
 * ask) for the nr rows of x from row r0, class major (c <= NL_SMALL) */                          \
static void nl_sums_small_##S(nl_blk_##S *b, const T *restrict x, int64_t nr, int64_t c, int flags) { \
    T *restrict t = b->t, *restrict e = b->e, *restrict m = b->m, *restrict s = b->s;             \
    for (int64_t k = 0; k < c; k++)                                                               \
        for (int64_t r = 0; r < nr; r++) t[k * NL_R + r] = x[r * c + k];                            \
    for (int64_t r = 0; r < nr; r++) m[r] = t[r];                                                  \
    for (int64_t k = 1; k < c; k++)                                                                \
        for (int64_t r = 0; r < nr; r++) m[r] = t[k * NL_R + r] > m[r] ? t[k * NL_R + r] : m[r];   \
    for (int64_t r = 0; r < nr; r++) s[r] = 0;                                                     \
    for (int64_t k = 0; k < c; k++)                                                                \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            T v = t[k * NL_R + r] - m[r], ev = EXP(v);                                             \
            t[k * NL_R + r] = v;                                                                   \
            e[k * NL_R + r] = ev;                                                                  \
            s[r] += ev;                                                                            \
        }                                                                                          \
    if (flags & NL_SUM) {                                                                          \
        for (int64_t r = 0; r < nr; r++) b->st[r] = 0;                                             \
        for (int64_t k = 0; k < c; k++)                                                            \
            for (int64_t r = 0; r < nr; r++) b->st[r] += t[k * NL_R + r];                          \
    }                                                                                              \
    if (flags & NL_ENT) {                                                                          \
        for (int64_t r = 0; r < nr; r++) b->se[r] = 0;                                             \
        for (int64_t k = 0; k < c; k++)                                                            \
            for (int64_t r = 0; r < nr; r++) b->se[r] += e[k * NL_R + r] * t[k * NL_R + r];        \
    }                                                                                              \
    if (flags & NL_ARGMAX) { /* the first k with t == 0 (the last class if none: a NaN row) */     \
        for (int64_t r = 0; r < nr; r++) b->am[r] = c - 1;                                         \
        for (int64_t k = c - 2; k >= 0; k--)                                                       \
            for (int64_t r = 0; r < nr; r++) b->am[r] = t[k * NL_R + r] == 0 ? k : b->am[r];       \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* the same, row major (c > NL_SMALL) */                                                           \
static void nl_sums_rows_##S(nl_blk_##S *b, const T *restrict x, int64_t nr, int64_t c, int flags) { \
    T *restrict t = b->t, *restrict e = b->e;                                                      \
    for (int64_t r = 0; r < nr; r++) {                                                             \
        const T *xr = x + r * c;                                                                   \
        T mr = nl_max_##S(xr, c);                                                                  \
        for (int64_t k = 0; k < c; k++) t[r * c + k] = xr[k] - mr;                                 \
        b->m[r] = mr;                                                                              \
    }                                                                                              \
    for (int64_t j = 0; j < nr * c; j++) e[j] = EXP(t[j]);                                         \
    for (int64_t r = 0; r < nr; r++) {                                                             \
        const T *tr = t + r * c;                                                                   \
        b->s[r] = nl_dot_##S(e + r * c, 0, c);                                                     \
        if (flags & NL_SUM) b->st[r] = nl_dot_##S(tr, 0, c);                                       \
        if (flags & NL_ENT) b->se[r] = nl_dot_##S(e + r * c, tr, c);                               \
        if (flags & NL_ARGMAX) {                                                                   \
            int64_t a = 0;                                                                         \
            while (a < c - 1 && !(tr[a] == 0)) a++;                                                \
            b->am[r] = a;                                                                          \
        }                                                                                          \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* all statistics of the block's rows (o, class major), from its sums */                               \
static void nl_stats_##S(nl_blk_##S *b, const T *restrict x, int64_t r0, int64_t nr, int64_t c,   \
                         const int64_t *restrict idx, int64_t g, int flags) {                      \
    const T *xb = x + r0 * c;                                                                      \
    const int64_t *ib = idx + r0 * g;                                                              \
    int64_t ks = b->ks, rs = b->rs;                                                                \
    if (ks == NL_R) nl_sums_small_##S(b, xb, nr, c, flags);                                        \
    else nl_sums_rows_##S(b, xb, nr, c, flags);                                                    \
    for (int64_t r = 0; r < nr; r++) {                                                             \
        b->logs[r] = LOG(b->s[r]);                                                                 \
        b->inv[r] = (T)1 / b->s[r];                                                                \
    }                                                                                              \
    for (int64_t j = 0; j < g; j++) /* log p at the gathered classes (scalar loads of t) */        \
        for (int64_t r = 0; r < nr; r++) b->o[j * NL_R + r] = b->t[ib[r * g + j] * ks + r * rs] - b->logs[r]; \
    int64_t col = g;                                                                               \
    if (flags & NL_COMP) { /* log(1 - p_y) = log sum_{k != y} e^t_k - log s, exactly */           \
        for (int64_t r = 0; r < nr; r++) { /* where p_y <= 1/2: log(s - e_y); the others below */ \
            T ey = b->e[ib[r * g] * ks + r * rs];                                                  \
            b->lrest[r] = 2 * ey <= b->s[r] ? b->s[r] - ey : (T)1;                                 \
        }                                                                                          \
        for (int64_t r = 0; r < nr; r++) b->lrest[r] = LOG(b->lrest[r]);                           \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            int64_t y = ib[r * g];                                                                 \
            if (2 * b->e[y * ks + r * rs] <= b->s[r]) continue;                                    \
            T m2 = -INFINITY, s2 = 0;                                                              \
            for (int64_t k = 0; k < c; k++) if (k != y && b->t[k * ks + r * rs] > m2) m2 = b->t[k * ks + r * rs]; \
            for (int64_t k = 0; k < c; k++) if (k != y) s2 += EXP(b->t[k * ks + r * rs] - m2);    \
            b->lrest[r] = m2 + LOG(s2);                                                            \
        }                                                                                          \
        for (int64_t r = 0; r < nr; r++) b->o[r] = b->lrest[r] - b->logs[r];                       \
    }                                                                                              \
    if (flags & NL_ARGMAX) {                                                                       \
        for (int64_t r = 0; r < nr; r++)                                                           \
            b->o[col * NL_R + r] = b->t[b->am[r] * ks + r * rs] - b->logs[r];                      \
        col++;                                                                                     \
    }                                                                                              \
    if (flags & NL_SUM) {                                                                          \
        for (int64_t r = 0; r < nr; r++) b->o[col * NL_R + r] = b->st[r] - (T)c * b->logs[r];      \
        col++;                                                                                     \
    }                                                                                              \
    if (flags & NL_ENT)                                                                            \
        for (int64_t r = 0; r < nr; r++) b->o[col * NL_R + r] = b->se[r] * b->inv[r] - b->logs[r]; \
}                                                                                                  \
                                                                                                   \
/* the row loss L of a fused loss and dL/d(statistic) d, from the statistics o, over the block's  \
 * rows (see the formula ids above; each mirrors the torch code of its loss in functional.py) */   \
static void nl_formula_##S(int f, const T *prm, nl_blk_##S *b, int64_t nr, int64_t k) {           \
    T *restrict L = b->L, *restrict d0 = b->d, *restrict d1 = b->d + NL_R;                         \
    const T *restrict l = b->o, *restrict o1 = b->o + NL_R;                                        \
    for (int64_t j = 0; j < k * NL_R; j++) b->d[j] = 0;                                            \
    for (int64_t r = 0; r < nr; r++) L[r] = 0;                                                     \
    switch (f) {                                                                                   \
    case NL_LINEAR:                                                                                \
        for (int64_t j = 0; j < k; j++)                                                            \
            for (int64_t r = 0; r < nr; r++) { L[r] += prm[j] * b->o[j * NL_R + r]; b->d[j * NL_R + r] = prm[j]; } \
        break;                                                                                     \
    case NL_CE_RCE:  /* alpha (-l) + (beta A) expm1(l) */                                          \
    case NL_NCE_RCE: { /* alpha (l / S) + (beta A) expm1(l) */                                     \
        T al = prm[0], bA = prm[1] * prm[2];                                                       \
        if (al != 0 && f == NL_CE_RCE)                                                             \
            for (int64_t r = 0; r < nr; r++) { L[r] = al * -l[r]; d0[r] = -al; }                   \
        if (al != 0 && f == NL_NCE_RCE)                                                            \
            for (int64_t r = 0; r < nr; r++) {                                                     \
                T ratio = l[r] / o1[r];                                                            \
                L[r] = al * ratio; d0[r] = al / o1[r]; d1[r] = -al * ratio / o1[r];                \
            }                                                                                      \
        if (prm[1] != 0)                                                                           \
            for (int64_t r = 0; r < nr; r++) { L[r] += bA * EXPM1(l[r]); d0[r] += bA * EXP(l[r]); } \
        break;                                                                                     \
    }                                                                                              \
    case NL_GCE: { /* -expm1(q l) / q; with truncation (prm[1] != 0) prm[3] where l <= prm[2] */   \
        T q = prm[0], lk = prm[1] != 0 ? prm[2] : -INFINITY;                                       \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            int cut = l[r] <= lk;                                                                  \
            T v = -EXPM1(q * l[r]) / q, dv = -EXP(q * l[r]);                                       \
            L[r] = cut ? prm[3] : v;                                                               \
            d0[r] = cut ? (T)0 : dv;                                                               \
        }                                                                                          \
        break;                                                                                     \
    }                                                                                              \
    case NL_FOCAL: { /* -(1 - p)^gamma l, 1 - p = -expm1(l) kept >= tiny for 0 < gamma < 1 */     \
        T g = prm[0];                                                                              \
        if (g == 0)                                                                                \
            for (int64_t r = 0; r < nr; r++) { L[r] = -l[r]; d0[r] = -1; }                         \
        else if (g == 2)                                                                           \
            for (int64_t r = 0; r < nr; r++) {                                                     \
                T om = -EXPM1(l[r]);                                                               \
                L[r] = -(om * om) * l[r];                                                          \
                d0[r] = -(om * om) + 2 * om * EXP(l[r]) * l[r];                                    \
            }                                                                                      \
        else                                                                                       \
            for (int64_t r = 0; r < nr; r++) {                                                     \
                T om = -EXPM1(l[r]);                                                               \
                int clamped = g < 1 && om < prm[1];                                                \
                if (clamped) om = prm[1];                                                          \
                T pw = POW(om, g);                                                                 \
                L[r] = -pw * l[r];                                                                 \
                d0[r] = -pw + (clamped ? (T)0 : g * POW(om, g - 1) * EXP(l[r]) * l[r]);            \
            }                                                                                      \
        break;                                                                                     \
    }                                                                                              \
    case NL_NEG: /* -log(1 - p), o[0] = log(1 - p) from NL_COMP */                                 \
        for (int64_t r = 0; r < nr; r++) { L[r] = -l[r]; d0[r] = -1; }                             \
        break;                                                                                     \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* dL/dx of the block's rows into dst (row major, from row r0), given ds = dL/d(statistics) in b->d */ \
static void nl_grad_##S(nl_blk_##S *b, T *restrict dst, int64_t r0, int64_t nr, int64_t c,        \
                        const int64_t *restrict idx, int64_t g, int flags, int64_t k) {            \
    const int64_t *ib = idx + r0 * g;                                                              \
    int64_t ks = b->ks, rs = b->rs;                                                                \
    T *restrict e = b->e, *restrict t = b->t, *restrict a = b->a, *restrict dsum = b->dsum, *restrict be = b->be; \
    const T *ds = b->d;                                                                            \
    T *out = dst + r0 * c;                                                                         \
    if (flags & NL_COMP) { /* p_y q_k ds (k != y) and -p_y ds, q_k = e_k / sum_{j != y} e_j; where     \
                            * p_y > 1/2, q_k = exp(t_k - lrest), as e_k may have underflowed */      \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            int64_t y = ib[r * g] * ks + r * rs;                                                   \
            T *gr = out + r * c, coef = ds[r] * EXP(t[y] - b->logs[r]); /* ds p_y */               \
            if (2 * e[y] <= b->s[r]) {                                                             \
                T scale = coef / (b->s[r] - e[y]);                                                 \
                for (int64_t kk = 0; kk < c; kk++) gr[kk] = e[kk * ks + r * rs] * scale;           \
            } else {                                                                               \
                for (int64_t kk = 0; kk < c; kk++) gr[kk] = EXP(t[kk * ks + r * rs] - b->lrest[r]) * coef; \
            }                                                                                      \
            gr[ib[r * g]] = -coef;                                                                 \
        }                                                                                          \
        return;                                                                                    \
    }                                                                                              \
    int64_t gathered = g + ((flags & NL_ARGMAX) ? 1 : 0);                                          \
    for (int64_t r = 0; r < nr; r++) {                                                             \
        T acc = 0;                                                                                 \
        for (int64_t j = 0; j < gathered; j++) acc -= ds[j * NL_R + r];                            \
        dsum[r] = (flags & NL_SUM) ? ds[gathered * NL_R + r] : (T)0;                               \
        a[r] = acc - (T)c * dsum[r];                                                               \
    }                                                                                              \
    if (flags & NL_ENT) { /* p (a + be (log p - E)) = p (a - be (logs + E) + be t) */             \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            be[r] = ds[(k - 1) * NL_R + r];                                                        \
            a[r] -= be[r] * (b->logs[r] + b->o[(k - 1) * NL_R + r]);                               \
        }                                                                                          \
    }                                                                                              \
    if (ks == NL_R) { /* class major: the values in e, then scattered and stored row major */      \
        for (int64_t kk = 0; kk < c; kk++)                                                         \
            for (int64_t r = 0; r < nr; r++) {                                                     \
                T p = e[kk * NL_R + r] * b->inv[r];                                                \
                e[kk * NL_R + r] = (flags & NL_ENT) ? p * (a[r] + be[r] * t[kk * NL_R + r]) + dsum[r] \
                                                    : p * a[r] + dsum[r];                          \
            }                                                                                      \
        for (int64_t j = 0; j < g; j++)                                                            \
            for (int64_t r = 0; r < nr; r++) e[ib[r * g + j] * NL_R + r] += ds[j * NL_R + r];      \
        if (flags & NL_ARGMAX)                                                                     \
            for (int64_t r = 0; r < nr; r++) e[b->am[r] * NL_R + r] += ds[g * NL_R + r];           \
        for (int64_t r = 0; r < nr; r++)                                                           \
            for (int64_t kk = 0; kk < c; kk++) out[r * c + kk] = e[kk * NL_R + r];                 \
    } else {                                                                                       \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            const T *er = e + r * c, *tr = t + r * c;                                              \
            T *gr = out + r * c, ar = a[r], dr = dsum[r], ir = b->inv[r];                          \
            if (flags & NL_ENT) {                                                                  \
                T br = be[r];                                                                      \
                for (int64_t kk = 0; kk < c; kk++) gr[kk] = er[kk] * ir * (ar + br * tr[kk]) + dr; \
            } else {                                                                               \
                for (int64_t kk = 0; kk < c; kk++) gr[kk] = er[kk] * ir * ar + dr;                 \
            }                                                                                      \
            for (int64_t j = 0; j < g; j++) gr[ib[r * g + j]] += ds[j * NL_R + r];                 \
            if (flags & NL_ARGMAX) gr[b->am[r]] += ds[g * NL_R + r];                               \
        }                                                                                          \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
int64_t nl_rows_##S(const T *x, int64_t n, int64_t c, const int64_t *idx, int64_t g, int flags,   \
                    T *out, int64_t k, int formula, const T *prm, int reduction, T *res,          \
                    const T *G, T *grad, T scale, int nthreads) {                                  \
    int64_t bad = nl_check_index(idx, n * g, c);                                                   \
    if (bad >= 0) return bad;                                                                      \
    int small = c <= NL_SMALL;                                                                     \
    int64_t rows = small ? NL_R : (NL_BLOCK / c < 1 ? 1 : NL_BLOCK / c < NL_R ? NL_BLOCK / c : NL_R); \
    int64_t nblocks = (n + rows - 1) / rows;                                                       \
    int fused = formula != NL_STATS;                                                               \
    double *part = fused && reduction != 0 ? (double *)malloc(sizeof(double) * (size_t)(nblocks > 0 ? nblocks : 1)) : 0; \
    _Pragma("omp parallel num_threads(nthreads) if(n * c > NL_GRAIN)")                             \
    {                                                                                              \
        nl_blk_##S *b = (nl_blk_##S *)malloc(sizeof(nl_blk_##S) + 2 * sizeof(T) * (size_t)(rows * c)); \
        b->t = (T *)(b + 1);                                                                       \
        b->e = b->t + rows * c;                                                                    \
        b->ks = small ? NL_R : 1;                                                                  \
        b->rs = small ? 1 : c;                                                                     \
        _Pragma("omp for schedule(static)")                                                        \
        for (int64_t bi = 0; bi < nblocks; bi++) {                                                 \
            int64_t r0 = bi * rows, nr = r0 + rows < n ? rows : n - r0;                            \
            nl_stats_##S(b, x, r0, nr, c, idx, g, flags);                                          \
            if (!fused && !G) { /* the statistics */                                               \
                for (int64_t j = 0; j < k; j++)                                                    \
                    for (int64_t r = 0; r < nr; r++) out[(r0 + r) * k + j] = b->o[j * NL_R + r];   \
                continue;                                                                          \
            }                                                                                      \
            if (fused) {                                                                           \
                nl_formula_##S(formula, prm, b, nr, k);                                            \
                if (reduction == 0) for (int64_t r = 0; r < nr; r++) res[r0 + r] = b->L[r];        \
                else {                                                                             \
                    double acc = 0;                                                                \
                    for (int64_t r = 0; r < nr; r++) acc += b->L[r];                               \
                    part[bi] = acc;                                                                \
                }                                                                                  \
                if (!grad) continue;                                                               \
                for (int64_t j = 0; j < k * NL_R; j++) b->d[j] *= scale;                           \
            } else {                                                                               \
                for (int64_t j = 0; j < k; j++)                                                    \
                    for (int64_t r = 0; r < nr; r++) b->d[j * NL_R + r] = G[(r0 + r) * k + j];     \
            }                                                                                      \
            nl_grad_##S(b, grad, r0, nr, c, idx, g, flags, k);                                     \
        }                                                                                          \
        free(b);                                                                                   \
    }                                                                                              \
    if (part) { /* in block order, in double: the same on any number of threads */                 \
        double acc = 0;                                                                            \
        for (int64_t bi = 0; bi < nblocks; bi++) acc += part[bi];                                  \
        res[0] = (T)(reduction == 1 ? acc / (double)n : acc);                                      \
        free(part);                                                                                \
    }                                                                                              \
    return -1;                                                                                     \
}

NL_DEFINE(float, f32, nl_expf, nl_logf, nl_expm1f, powf)
NL_DEFINE(double, f64, exp, log, expm1, pow)

/* peer loss's (n, 2) index: row m holds (target[m], target[k[i]]) for the i with j[i] = m; returns
 * the position of the first target not in [0, c), or -1 */
int64_t nl_peer_index(const int64_t *target, const int64_t *j, const int64_t *k, int64_t n, int64_t c,
                      int64_t *out) {
    int64_t bad = nl_check_index(target, n, c);
    if (bad >= 0) return bad;
    for (int64_t i = 0; i < n; i++) {
        out[2 * i] = target[i];
        out[2 * j[i] + 1] = target[k[i]];
    }
    return -1;
}

/* negative learning's complementary labels (target + shift) mod c, shift in [1, c); returns the
 * position of the first target not in [0, c), or -1 */
int64_t nl_comp_index(const int64_t *target, const int64_t *shift, int64_t n, int64_t c, int64_t *out) {
    int64_t bad = nl_check_index(target, n, c);
    if (bad >= 0) return bad;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = target[i] + shift[i];
        out[i] = v >= c ? v - c : v;
    }
    return -1;
}

/* so that the loader can check it has the kernels of this source */
int nl_abi_version(void) { return 6; }
