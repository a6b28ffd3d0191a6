/* test_tok_pretok.c - every pre-tokenizer (tokenizer.ggml.pre name) against reference splits.
 *
 * tests/golden/pretok/splits_<engine>.txt (tools/ref_pretok.py) hold, for each regex sequence,
 * its names, its regexes and the pieces of 14 test strings as computed by an independent
 * engine: `tokenizers` (Hugging Face's library, Oniguruma; the models' own pre-tokenizers) and
 * `regex` (Python's regex module). For each file present this checks:
 *   - terse's table holds the same regexes under every one of the names;
 *   - tok_pretok_split gives the same pieces (byte offsets) for every string;
 *   - every sequence other than gpt-2's splits at least one string differently from gpt-2
 *     (so each is really exercised on a string where it matters).
 * Plus: unknown names are refused with a message naming them.
 */
#include "harness.h"
#include "tok/vocab.h"

#include <stdlib.h>

enum { MAX_STR = 32, MAX_ENDS = 256, MAX_GROUPS = 64 };

typedef struct {
    char name[64];
    int n_ends[MAX_STR];           /* -1: no reference for that string */
    int ends[MAX_STR][MAX_ENDS];
} group;

typedef struct {
    char *str[MAX_STR];
    size_t len[MAX_STR];
    int n_str;
    group g[MAX_GROUPS];
    int n_groups;
} ref;

static int unhex(const char *h, char *out) {
    int n = 0;
    for (; h[0] && h[1] && h[0] != '\n'; h += 2) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1) break;
        out[n++] = (char)v;
    }
    out[n] = 0;
    return n;
}

static group *find_group(ref *r, const char *name) {
    for (int i = 0; i < r->n_groups; i++)
        if (!strcmp(r->g[i].name, name)) return &r->g[i];
    return NULL;
}

static int n_fail_regex, n_alias;

/* "N name alias ...": every alias resolves to the same regexes as name */
static void check_aliases(char *line) {
    char *save = NULL, *first = strtok_r(line + 2, " \n", &save);
    const char *const *re0 = NULL;
    int n0 = tok_pretok_regexes(first, &re0, NULL);
    CHECK(n0 > 0, "pre-tokenizer '%s' is not in terse's table", first);
    for (char *a = strtok_r(NULL, " \n", &save); a; a = strtok_r(NULL, " \n", &save)) {
        const char *const *re = NULL;
        int n = tok_pretok_regexes(a, &re, NULL);
        int same = n == n0;
        for (int k = 0; same && k < n; k++) same = !strcmp(re[k], re0[k]);
        CHECK(same, "alias '%s' of '%s' has other regexes in terse's table", a, first);
        n_alias++;
    }
}

/* "R name k hex": terse's regex k of name is the same string */
static void check_regex(const char *line) {
    char name[64], hex[8192];
    int k;
    if (sscanf(line, "R %63s %d %8191s", name, &k, hex) != 3) return;
    char want[4096];
    unhex(hex, want);
    const char *const *re = NULL;
    int n = tok_pretok_regexes(name, &re, NULL);
    int ok = n > k && !strcmp(re[k], want);
    if (!ok) n_fail_regex++;
    CHECK(ok, "%s: regex %d differs from the reference table:\n  terse: %s\n  ref:   %s", name, k,
          n > k ? re[k] : "(none)", want);
}

static int load(const char *path, ref *r) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    static char line[16384];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == 'S') {
            int i;
            char *sp = strchr(line + 2, ' ');
            if (sscanf(line, "S %d", &i) != 1 || i < 0 || i >= MAX_STR || !sp) continue;
            r->str[i] = malloc(strlen(sp));
            r->len[i] = (size_t)unhex(sp + 1, r->str[i]);
            if (i + 1 > r->n_str) r->n_str = i + 1;
        } else if (line[0] == 'N') {
            check_aliases(line);
        } else if (line[0] == 'R') {
            check_regex(line);
        } else if (line[0] == 'P' || line[0] == 'X') {
            char name[64];
            int i, off;
            if (sscanf(line + 2, "%63s %d%n", name, &i, &off) != 2 || i < 0 || i >= MAX_STR) continue;
            group *g = find_group(r, name);
            if (!g) {
                if (r->n_groups == MAX_GROUPS) continue;
                g = &r->g[r->n_groups++];
                snprintf(g->name, sizeof g->name, "%s", name);
                for (int s = 0; s < MAX_STR; s++) g->n_ends[s] = -1;
            }
            if (line[0] == 'X') continue;
            char *p = line + 2 + off;
            int n = 0, v, adv;
            while (n < MAX_ENDS && sscanf(p, "%d%n", &v, &adv) == 1) g->ends[i][n++] = v, p += adv;
            g->n_ends[i] = n;
        }
    }
    fclose(f);
    return 0;
}

static void check_engine(const char *engine) {
    char path[256];
    snprintf(path, sizeof path, "tests/golden/pretok/splits_%s.txt", engine);
    static ref r;
    memset(&r, 0, sizeof r);
    int fail0 = t_fail;
    n_fail_regex = n_alias = 0;
    if (load(path, &r)) {
        printf("SKIP %s: not found (run tools/ref_pretok.py --engine %s)\n", path, engine);
        return;
    }
    const group *gpt2 = find_group(&r, "gpt-2");
    CHECK(gpt2 != NULL, "%s: no gpt-2 reference", path);
    int n_cmp = 0, n_same = 0, n_missing = 0;
    for (int gi = 0; gi < r.n_groups; gi++) {
        const group *g = &r.g[gi];
        int differs = 0;
        for (int i = 0; i < r.n_str; i++) {
            if (g->n_ends[i] < 0) {
                n_missing++;
                continue;
            }
            tok_buf b = {0};
            int rc = tok_pretok_split(g->name, (const uint8_t *)r.str[i], r.len[i], &b);
            CHECK(rc == 0, "%s: split: %s", g->name, terse_last_error());
            int same = rc == 0 && b.n == g->n_ends[i];
            for (int64_t k = 0; same && k < b.n; k++)
                same = b.spans[k].end == g->ends[i][k] && (k == 0 ? b.spans[k].begin == 0
                                                                  : b.spans[k].begin == b.spans[k - 1].end);
            n_cmp++;
            n_same += same;
            if (!same) {
                printf("  %s string %d: terse %lld pieces:", g->name, i, (long long)b.n);
                for (int64_t k = 0; k < b.n; k++) printf(" %lld", (long long)b.spans[k].end);
                printf("\n  %s string %d: %s %d pieces:", g->name, i, engine, g->n_ends[i]);
                for (int k = 0; k < g->n_ends[i]; k++) printf(" %d", g->ends[i][k]);
                printf("\n");
            }
            CHECK(same, "%s: string %d splits differently from %s", g->name, i, engine);
            tok_buf_free(&b);
            if (gpt2 && gpt2->n_ends[i] >= 0) {
                int eq = gpt2->n_ends[i] == g->n_ends[i];
                for (int k = 0; eq && k < g->n_ends[i]; k++) eq = gpt2->ends[i][k] == g->ends[i][k];
                differs += !eq;
            }
        }
        if (g != gpt2)
            CHECK(differs > 0, "%s: no test string where its split differs from gpt-2's", g->name);
        if (g != gpt2) printf("  %-16s differs from gpt-2 on %2d of %d strings\n", g->name, differs, r.n_str);
    }
    printf("%s: %d regex sequences (%d aliases), %d splits compared, %d identical, %d without a "
           "reference, %d regex strings differ -> %s\n", engine, r.n_groups, n_alias, n_cmp,
           n_same, n_missing, n_fail_regex, t_fail == fail0 ? "ok" : "FAIL");
    for (int i = 0; i < r.n_str; i++) free(r.str[i]);
}

int main(void) {
    check_engine("tokenizers");
    check_engine("regex");

    /* unknown names: a precise refusal */
    tok_buf b = {0};
    int rc = tok_pretok_split("no-such-pre", (const uint8_t *)"x", 1, &b);
    CHECK(rc == TERSE_ERR_UNSUPPORTED && strstr(terse_last_error(), "no-such-pre"),
          "unknown pre-tokenizer: rc %d, '%s'", rc, terse_last_error());
    tok_buf_free(&b);

    /* superbpe: digit runs cut into threes from the right; the cuts are zero-width matches */
    rc = tok_pretok_split("superbpe", (const uint8_t *)"a 1234567 b", 11, &b);
    CHECK_OK(rc);
    int want[] = {2, 3, 6, 9, 11};
    int ok = b.n == 5;
    for (int k = 0; ok && k < 5; k++) ok = b.spans[k].end == want[k];
    CHECK(ok, "superbpe: 'a 1234567 b' split into %lld pieces", (long long)b.n);
    tok_buf_free(&b);
    return test_summary("tok_pretok");
}
