/* gist_score.c - ROUGE-L of gist evaluation outputs (tools/gist_train.py --eval) against the
 * references, as the paper scores them (rouge-score's ROUGE-L F with the Porter stemmer, x100).
 *
 * Build: cc -O2 -std=c11 -Iinclude tools/gist_score.c build/libterse.a $(LIBS) -o build/gist_score
 *        (LIBS as the Makefile's LDLIBS)
 * Usage: gist_score MODEL.gguf EXAMPLES.txt OUTPUTS.gen
 *   EXAMPLES: "n first last n_prompt ids..." (terse finetune --examples); the reference is
 *   ids[n_prompt..n) without the final EOS. OUTPUTS: one line of generated ids per example
 *   (fewer lines than examples: only those are scored). Prints "items rougeL prompt_tokens
 *   instruction_tokens" (means).
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

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: gist_score MODEL EXAMPLES OUTPUTS\n"); return 2; }
    terse_model *m;
    if (terse_model_load(argv[1], terse_model_default_params(), &m)) {
        fprintf(stderr, "%s\n", terse_last_error());
        return 1;
    }
    const terse_vocab *v = terse_model_vocab(m);
    FILE *fe = fopen(argv[2], "r"), *fo = fopen(argv[3], "r");
    if (!fe || !fo) { perror("open"); return 1; }
    static char le[1 << 20], lo[1 << 20];
    static int32_t e[1 << 16], o[1 << 16];
    double sum = 0, sp = 0, si = 0;
    int items = 0;
    while (fgets(le, sizeof le, fe) && fgets(lo, sizeof lo, fo)) {
        int ne = read_ids(le, e, 1 << 16), no = read_ids(lo, o, 1 << 16);
        int n = e[0], first = e[1], n_prompt = e[3];
        int32_t *ids = e + 4;
        int nref = n - n_prompt;
        if (nref > 0 && ids[n - 1] == terse_vocab_eos(v)) nref--;
        (void)ne;
        char *ref = detok(v, ids + n_prompt, nref), *out = detok(v, o, no);
        terse_rouge r;
        if (terse_rouge_score(ref, out, 1, &r)) { fprintf(stderr, "%s\n", terse_last_error()); return 1; }
        sum += 100.0 * r.rougeL.f;
        sp += n_prompt, si += first >= 0 ? first : 0;
        items++;
        free(ref), free(out);
    }
    printf("%d\t%.2f\t%.1f\t%.1f\n", items, items ? sum / items : 0.0, items ? sp / items : 0.0,
           items ? si / items : 0.0);
    terse_model_free(m);
    return 0;
}
