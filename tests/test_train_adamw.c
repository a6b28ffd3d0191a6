/* test_train_adamw.c - the optimiser (src/train/adamw.h): schedule, the first step by hand,
 * clipping, weight decay, and checkpoints: training a random gpt2 model (every weight
 * trainable, through nn/grad.h) for k steps, saving, resuming in a fresh process state
 * (new nn_grad, new optimiser) and finishing equals the uninterrupted run bit for bit;
 * truncated, corrupt and mismatched state files are refused without changing anything.
 */
#include "helpers.h"
#include "nn/grad.h"
#include "terse.h"
#include "train/adamw.h"

static void schedule(void) {
    train_adamw_params p = train_adamw_default_params();
    p.lr = 1.0f, p.min_lr = 0.1f, p.warmup_steps = 10, p.total_steps = 110;
    CHECK(train_adamw_lr(&p, 1) == 0.1f && train_adamw_lr(&p, 5) == 0.5f &&
          train_adamw_lr(&p, 10) == 1.0f, "linear warm-up");
    CHECK(fabsf(train_adamw_lr(&p, 60) - 0.55f) < 1e-6f, "cosine midpoint %g", train_adamw_lr(&p, 60));
    CHECK(train_adamw_lr(&p, 110) == 0.1f && train_adamw_lr(&p, 500) == 0.1f, "min_lr at the end");
    CHECK(train_adamw_lr(&p, 11) < 1.0f && train_adamw_lr(&p, 11) > 0.99f, "decay starts");
    p.total_steps = 0;
    CHECK(train_adamw_lr(&p, 1000) == 1.0f, "no decay");
}

static void by_hand(void) {
    float w[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.3f, -4.0f, 0.0f}, w2[1] = {2.0f}, g2[1] = {0.0f};
    train_tensor t[2] = {{w, g, 3, 0}, {w2, g2, 1, 1}};
    train_adamw_params p = train_adamw_default_params();
    p.lr = 0.1f, p.weight_decay = 0.5f;
    train_adamw *o = NULL;
    CHECK_OK(train_adamw_new(&p, t, 2, &o));
    double norm;
    float lr;
    CHECK_OK(train_adamw_step(o, &norm, &lr));
    /* first step: m^ = g, v^ = g^2, so w -= lr g / (|g| + eps), plus decay on tensor 2 */
    CHECK(fabs(norm - sqrt(0.09 + 16.0)) < 1e-6 && lr == 0.1f, "norm %g lr %g", norm, (double)lr);
    CHECK(fabsf(w[0] - 0.9f) < 1e-6f && fabsf(w[1] + 1.9f) < 1e-6f && w[2] == 0.5f,
          "first step %g %g %g", w[0], w[1], w[2]);
    CHECK(fabsf(w2[0] - (2.0f - 0.1f * 0.5f * 2.0f)) < 1e-6f, "decoupled decay %g", w2[0]);
    CHECK(train_adamw_steps(o) == 1, "step count");
    train_adamw_free(o);

    /* clipping: with clip 1 the moments see g / |g|, the first step is the same size */
    float a[2] = {0, 0}, ga[2] = {30.0f, 40.0f};
    train_tensor ta = {a, ga, 2, 0};
    p = train_adamw_default_params();
    p.clip_norm = 1.0f, p.lr = 1.0f, p.beta1 = 0.0f, p.beta2 = 0.0f;
    CHECK_OK(train_adamw_new(&p, &ta, 1, &o));
    CHECK_OK(train_adamw_step(o, &norm, NULL));
    CHECK(norm == 50.0 && fabsf(a[0] + 1.0f) < 1e-6f, "clipped step %g", a[0]);
    ga[0] = NAN;
    CHECK(train_adamw_step(o, NULL, NULL) == TERSE_ERR_RANGE && fabsf(a[0] + 1.0f) < 1e-6f,
          "NaN gradient refused");
    train_adamw_free(o);
    p.lr = 0;
    CHECK(train_adamw_new(&p, &ta, 1, &o) == TERSE_ERR_INVALID, "lr 0 refused");
    CHECK(train_adamw_new(&p, NULL, 0, &o) == TERSE_ERR_INVALID, "no tensors");
    train_adamw_free(NULL);
}

/* Training on a random gpt2 model: each step picks a window of the sequence with the
 * optimiser's random stream. Returns the last loss. */
enum { SEQ = 40, WIN = 16 };

typedef struct {
    nn_grad *g;
    train_adamw *o;
    train_tensor *tt;
    float *dl;
} trainer;

static int trainer_new(terse_model *m, trainer *tr) {
    memset(tr, 0, sizeof *tr);
    if (nn_grad_new(m, (nn_grad_params){.max_tokens = WIN, .weight_grads = 1, .n_threads = 1}, &tr->g))
        return -1;
    int n = 0;
    nn_grad_tensor *ts = nn_grad_tensors(tr->g, &n);
    tr->tt = calloc((size_t)n, sizeof *tr->tt);
    for (int i = 0; i < n; i++) tr->tt[i] = (train_tensor){ts[i].w, ts[i].g, ts[i].n, ts[i].decay};
    train_adamw_params p = train_adamw_default_params();
    p.lr = 3e-3f, p.warmup_steps = 2, p.total_steps = 8, p.min_lr = 3e-4f;
    p.weight_decay = 0.1f, p.clip_norm = 1.0f, p.seed = 77;
    tr->dl = malloc(sizeof(float) * WIN * m->n_vocab);
    return train_adamw_new(&p, tr->tt, n, &tr->o);
}

static void trainer_free(trainer *tr) {
    train_adamw_free(tr->o);
    nn_grad_free(tr->g);
    free(tr->tt), free(tr->dl);
}

static double train_steps(trainer *tr, const int32_t *seq, int n, int32_t V) {
    double loss = 0;
    for (int s = 0; s < n; s++) {
        int off = (int)(train_adamw_rand(tr->o) * (SEQ - WIN));
        const float *lg;
        nn_grad_zero(tr->g);
        if (nn_grad_forward(tr->g, seq + off, NULL, WIN - 1, NULL, &lg)) return NAN;
        loss = nn_loss_ce(lg, seq + off + 1, WIN - 1, V, tr->dl);
        if (nn_grad_backward(tr->g, tr->dl, NULL) || train_adamw_step(tr->o, NULL, NULL)) return NAN;
    }
    return loss;
}

static int same_weights(trainer *a, trainer *b) {
    int n = 0;
    nn_grad_tensor *ta = nn_grad_tensors(a->g, &n), *tb = nn_grad_tensors(b->g, NULL);
    for (int i = 0; i < n; i++)
        if (memcmp(ta[i].w, tb[i].w, sizeof(float) * (size_t)ta[i].n)) return 0;
    return 1;
}

static void resume(void) {
    terse_random_params rp = {"gpt2", 300, 64, 32, 2, 4, 0, 64, TERSE_TYPE_F32, 21, 0.1f, 0};
    char state[256];
    snprintf(state, sizeof state, "%s", test_tmp_path("adamw_state.bin"));
    terse_model *m = test_random_model("adamw_model.gguf", &rp);
    if (!m) return;
    int32_t seq[SEQ];
    for (int i = 0; i < SEQ; i++) seq[i] = (i * 37 + 11) % 50; /* a repeating pattern */

    trainer full, part, fresh;
    CHECK_OK(trainer_new(m, &full));
    double first = train_steps(&full, seq, 1, m->n_vocab);
    double last = train_steps(&full, seq, 7, m->n_vocab);
    printf("uninterrupted: loss %.4f after 1 step, %.4f after 8\n", first, last);
    CHECK(last < first, "training lowers the loss (%g -> %g)", first, last);

    CHECK_OK(trainer_new(m, &part));
    train_steps(&part, seq, 3, m->n_vocab);
    CHECK_OK(train_adamw_save(part.o, state));
    trainer_free(&part);
    CHECK_OK(trainer_new(m, &fresh));
    CHECK_OK(train_adamw_load(fresh.o, state));
    CHECK(train_adamw_steps(fresh.o) == 3, "step restored");
    double resumed = train_steps(&fresh, seq, 5, m->n_vocab);
    printf("resumed after 3: loss %.4f after 8 (%s)\n", resumed,
           same_weights(&full, &fresh) ? "bit-identical weights" : "DIFFERENT weights");
    CHECK(resumed == last && same_weights(&full, &fresh), "resume is bit-exact");

    /* hostile state files: nothing changes */
    size_t len = 0;
    char *bytes = test_read_file(state, &len);
    char bad[256];
    snprintf(bad, sizeof bad, "%s", test_tmp_path("adamw_bad.bin"));
    float w0 = fresh.tt[0].w[0];
    int64_t st0 = train_adamw_steps(fresh.o);
    for (int kind = 0; kind < 4 && bytes; kind++) {
        FILE *f = fopen(bad, "wb");
        if (kind == 0) fwrite(bytes, 1, len / 2, f);              /* truncated */
        if (kind == 1) { bytes[len / 2] ^= 1; fwrite(bytes, 1, len, f); bytes[len / 2] ^= 1; } /* flipped */
        if (kind == 2) fwrite("TRSADAMX", 1, 8, f);               /* wrong magic */
        if (kind == 3) { fwrite(bytes, 1, len, f); fputc(0, f); } /* trailing byte */
        fclose(f);
        int rc = train_adamw_load(fresh.o, bad);
        CHECK(rc == TERSE_ERR_FORMAT, "bad state %d -> %d (%s)", kind, rc, terse_last_error());
        CHECK(fresh.tt[0].w[0] == w0 && train_adamw_steps(fresh.o) == st0, "state %d changed nothing", kind);
    }
    CHECK(train_adamw_load(fresh.o, "/nonexistent/state") == TERSE_ERR_IO, "missing file");
    { /* another optimiser shape */
        float x[5] = {0}, gx[5] = {0};
        train_tensor t1 = {x, gx, 5, 0};
        train_adamw *o1 = NULL;
        train_adamw_params p = train_adamw_default_params();
        CHECK_OK(train_adamw_new(&p, &t1, 1, &o1));
        CHECK(train_adamw_load(o1, state) == TERSE_ERR_FORMAT, "tensor count mismatch refused");
        train_adamw_free(o1);
    }
    free(bytes);
    unlink(bad), unlink(state);
    trainer_free(&full), trainer_free(&fresh);
    terse_model_free(m);
}

int main(void) {
    schedule();
    by_hand();
    resume();
    return test_summary("test_train_adamw");
}
