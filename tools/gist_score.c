/* gist_score.c - ROUGE-L of gist evaluation outputs (tools/gist_train.py --eval) against the
 * references, as the paper scores them (rouge-score's ROUGE-L F with the Porter stemmer, x100).
 *
 * Build: cc -O2 -std=c11 -Iinclude tools/gist_score.c build/libterse.a $(LIBS) -o
 *        build/gist_score   (LIBS: the Makefile's LDLIBS)
 * Usage: gist_score [--items] MODEL.gguf EXAMPLES.txt OUTPUTS.gen [ONLY.txt]
 *   EXAMPLES: "n first last n_prompt ids..." (terse finetune --examples); the reference is
 *   ids[n_prompt..n) without the final EOS. OUTPUTS: one line per generated item, "index<TAB>
 *   ids..." (index = the example's line, from 0) or just "ids..." (then the line number is
 *   the index). ONLY: indices (whitespace-separated) to score, e.g. the items every model
 *   has; default all items of OUTPUTS. Prints "items rougeL prompt_tokens instruction_tokens"
 *   (means; instruction tokens = those before the first gist, BOS included); --items: first
 *   one line "index<TAB>rougeL" per scored item (for paired comparisons).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "terse.h"

static char *detok(const terse_vocab *v, const int32_t *ids, int64_t n) {
    int64_t need = terse_detokenize(v, ids, n, NULL, 0);
    char *s = malloc((size_t)(need > 0 ? need : 0) + 1);
    if (!s) exit(1);
    terse_detokenize(v, ids, n, s, need + 1);
    s[need > 0 ? need : 0] = 0;
    return s;
}

static int read_ids(char *line, int32_t *ids, int cap) {
    int n = 0;
    for (char *t = strtok(line, " \n"); t && n < cap; t = strtok(NULL, " \n")) ids[n++] = atoi(t);
    return n;
}

enum { MAX_ITEMS = 1 << 16, LINE = 1 << 20, IDS = 1 << 16 };

int main(int argc, char **argv) {
    int per_item = argc > 1 && !strcmp(argv[1], "--items");
    argc -= per_item, argv += per_item;
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: gist_score [--items] MODEL EXAMPLES OUTPUTS [ONLY]\n");
        return 2;
    }
    terse_model *m;
    if (terse_model_load(argv[1], terse_model_default_params(), &m)) {
        fprintf(stderr, "%s\n", terse_last_error());
        return 1;
    }
    const terse_vocab *v = terse_model_vocab(m);
    FILE *fe = fopen(argv[2], "r"), *fo = fopen(argv[3], "r");
    if (!fe || !fo) { perror("open"); return 1; }
    static char line[LINE];
    static char *ex[MAX_ITEMS], *gen[MAX_ITEMS];
    static unsigned char want[MAX_ITEMS];
    static int32_t e[IDS], o[IDS];
    int n_ex = 0;
    while (n_ex < MAX_ITEMS && fgets(line, sizeof line, fe)) ex[n_ex++] = strdup(line);
    for (int k = 0; fgets(line, sizeof line, fo); k++) {
        char *tab = strchr(line, '\t'), *ids = line;
        int i = k;
        if (tab) *tab = 0, i = atoi(line), ids = tab + 1;
        if (i < 0 || i >= n_ex) { fprintf(stderr, "output line %d: index %d of %d\n", k + 1, i, n_ex); return 1; }
        free(gen[i]);
        gen[i] = strdup(ids);
        want[i] = 1;
    }
    if (argc == 5) {
        FILE *fi = fopen(argv[4], "r");
        if (!fi) { perror(argv[4]); return 1; }
        memset(want, 0, sizeof want);
        int i;
        while (fscanf(fi, "%d", &i) == 1)
            if (i >= 0 && i < n_ex) want[i] = 1;
        fclose(fi);
    }
    double sum = 0, sp = 0, si = 0;
    int items = 0;
    for (int i = 0; i < n_ex; i++) {
        if (!want[i]) continue;
        if (!gen[i]) { fprintf(stderr, "item %d: no output\n", i); return 1; }
        read_ids(ex[i], e, IDS);
        int no = read_ids(gen[i], o, IDS);
        int n = e[0], first = e[1], n_prompt = e[3];
        int32_t *ids = e + 4;
        int nref = n - n_prompt;
        if (nref > 0 && ids[n - 1] == terse_vocab_eos(v)) nref--;
        char *ref = detok(v, ids + n_prompt, nref), *out = detok(v, o, no);
        terse_rouge r;
        if (terse_rouge_score(ref, out, 1, &r)) { fprintf(stderr, "%s\n", terse_last_error()); return 1; }
        sum += 100.0 * r.rougeL.f;
        if (per_item) printf("%d\t%.4f\n", i, 100.0 * r.rougeL.f);
        sp += n_prompt, si += first >= 0 ? first : 0;
        items++;
        free(ref), free(out);
    }
    printf("%d\t%.2f\t%.1f\t%.1f\n", items, items ? sum / items : 0.0, items ? sp / items : 0.0,
           items ? si / items : 0.0);
    for (int i = 0; i < n_ex; i++) free(ex[i]), free(gen[i]);
    fclose(fe), fclose(fo);
    terse_model_free(m);
    return 0;
}
