/* test_quant_write.c - terse's quantisers against llama-quantize's output (../shared/quant):
 * every matrix of llama-F32.gguf is quantised row by row with quantize_row and compared, block
 * by block, with the same tensor of the pure llama-<TYPE>.gguf file (no importance matrix:
 * llama-quantize runs the reference quantisers). Reported per type: blocks equal / total.
 * Required: every block equal, for every type (measured: 100% of 23552 legacy / Q8_0 blocks
 * and of 2944 blocks each of Q4_K, Q5_K, Q6_K).
 * Also: the Q4_K_M / Q5_K_M mixtures give every tensor llama-quantize's type; dequantised
 * round trips of each writable type stay within a block-scale-sized error.
 * Skips (passing) when ../shared/quant is absent.
 */
#include "gguf/gguf.h"
#include "harness.h"
#include "nn/quant.h"
#include "terse.h"

#define MIN_KQ_MATCH 1.0

static char qdir[512];

static void compare_type(const gguf_file *f32, const char *fix, uint32_t type, double min_match) {
    char path[700];
    snprintf(path, sizeof path, "%s/llama-%s.gguf", qdir, fix);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(path, 1, &g));
    if (!g) return;
    int64_t blocks = 0, same = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (t->type != type) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        const gguf_tensor *s = gguf_find_tensor(f32, name);
        CHECK(s && s->type == GGML_F32 && s->ne[0] == t->ne[0] && s->ne[1] == t->ne[1], "%s: %s",
              fix, name);
        if (!s) continue;
        size_t rb = quant_row_bytes(type, t->ne[0]);
        int64_t bb = quant_block_bytes(type), nb = (int64_t)rb / bb;
        uint8_t *out = malloc(rb);
        for (int64_t r = 0; r < t->ne[1]; r++) {
            CHECK_OK(quantize_row(type, (const float *)s->data + r * t->ne[0], out, t->ne[0]));
            const uint8_t *want = (const uint8_t *)t->data + r * rb;
            for (int64_t b = 0; b < nb; b++) same += memcmp(out + b * bb, want + b * bb, bb) == 0;
            blocks += nb;
        }
        free(out);
    }
    printf("%-5s blocks equal to llama-quantize's: %lld / %lld (%.4f%%)\n", fix, (long long)same,
           (long long)blocks, blocks ? 100.0 * same / blocks : 0.0);
    CHECK(blocks > 0 && same >= min_match * blocks, "%s: %lld of %lld blocks equal", fix,
          (long long)same, (long long)blocks);
    gguf_close(g);
}

static void check_mixture(const char *fix, uint32_t mix) {
    char path[700];
    snprintf(path, sizeof path, "%s/llama-%s.gguf", qdir, fix);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(path, 1, &g));
    if (!g) return;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (t->ne[1] <= 1) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        uint32_t mine = quant_pick_type(mix, name, t->ne[0], 1, 1);
        CHECK(mine == t->type, "%s: %s: terse picks %s, llama-quantize wrote %s", fix, name,
              gguf_type_name(mine), gguf_type_name(t->type));
    }
    uint32_t ft = 0;
    CHECK_OK(gguf_get_u32(g, "general.file_type", &ft));
    CHECK(ft == quant_file_type(mix), "%s: file_type %u vs %u", fix, ft, quant_file_type(mix));
    gguf_close(g);
}

static void round_trips(void) {
    const uint32_t types[] = {GGML_Q4_0, GGML_Q4_1, GGML_Q5_0, GGML_Q5_1, GGML_Q8_0,
                              GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
    const double bits[] = {4, 4, 5, 5, 8, 4, 5, 6};
    enum { N = 1024 };
    float x[N], y[N];
    uint8_t buf[N * 2];
    uint64_t r = 7;
    for (int i = 0; i < N; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5) * (i % 97 == 0 ? 8 : 1);
    }
    for (int i = 256; i < 512; i++) x[i] = 0.0f; /* a zero super-block */
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        CHECK_OK(quantize_row(types[t], x, buf, N));
        dequantize_row(types[t], buf, y, N);
        double e = 0, amax = 0;
        for (int i = 0; i < N; i++) {
            e = fmax(e, fabs((double)y[i] - x[i]));
            amax = fmax(amax, fabs(x[i]));
            if (i >= 256 && i < 512) CHECK(y[i] == 0.0f, "%s: zero block value %d = %g",
                                           quant_type_name(types[t]), i, y[i]);
        }
        /* a step of the coarsest scale, over the whole range (generous: K-quants' scales are
         * themselves quantised) */
        double lim = 2.0 * amax * 2 / (pow(2, bits[t]) - 1) + 1e-6;
        CHECK(e <= lim, "%s: round trip max error %g > %g", quant_type_name(types[t]), e, lim);
    }
}

int main(void) {
    round_trips();
    snprintf(qdir, sizeof qdir, "%s/quant", test_shared_dir());
    char path[600];
    snprintf(path, sizeof path, "%s/llama-F32.gguf", qdir);
    gguf_file *f32 = NULL;
    if (gguf_open(path, 1, &f32) != TERSE_OK) {
        printf("test_quant_write: %s not found, fixture comparisons skipped\n", path);
        return test_summary("test_quant_write");
    }
    compare_type(f32, "Q8_0", GGML_Q8_0, 1.0);
    compare_type(f32, "Q4_0", GGML_Q4_0, 1.0);
    compare_type(f32, "Q4_1", GGML_Q4_1, 1.0);
    compare_type(f32, "Q5_0", GGML_Q5_0, 1.0);
    compare_type(f32, "Q5_1", GGML_Q5_1, 1.0);
    compare_type(f32, "Q4_K", GGML_Q4_K, MIN_KQ_MATCH);
    compare_type(f32, "Q5_K", GGML_Q5_K, MIN_KQ_MATCH);
    compare_type(f32, "Q6_K", GGML_Q6_K, MIN_KQ_MATCH);
    check_mixture("Q4_K_M", QUANT_MIX_Q4_K_M);
    check_mixture("Q5_K_M", QUANT_MIX_Q5_K_M);
    gguf_close(f32);
    return test_summary("test_quant_write");
}
