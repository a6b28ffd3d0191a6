/* lingua_method.h - the LLMLingua-family driver shared by llmlingua.c and longllmlingua.c
 * (internal; lingua_method.c). */
#ifndef TERSE_LINGUA_METHOD_H
#define TERSE_LINGUA_METHOD_H

#include "compress/compress.h"

/* long_mode 0: LLMLingua (rank_method="llmlingua": coarse ranking by perplexity, question
 * ignored unless condition_compare); 1: LongLLMLingua (rank_method="longllmlingua").
 * Compat or default behaviour per j->p.compat. */
int lingua_method_run(cmp_job *j, int long_mode);

/* The restrictive statement LongLLMLingua appends to the question for coarse ranking. */
#define LINGUA_RESTRICT " We can get the answer to this question in the given documents."

#endif
