/* llmlingua.c - LLMLingua (Jiang et al., EMNLP'23): a budget controller that keeps whole
 * demonstrations by perplexity, then iterative token-level pruning over windows conditioned on
 * what was already kept. The stages live in lingua_method.c (driver) and lingua_core.c
 * (engines); this file is the method's entry: rank_method "llmlingua" (coarse ranking by each
 * context's own perplexity; the question only matters with condition_compare). */
#include "compress/compress.h"
#include "compress/lingua_method.h"

int llmlingua_run(cmp_job *j) { return lingua_method_run(j, 0); }
