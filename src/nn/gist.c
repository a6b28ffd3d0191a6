/* gist.c - the gist, positive-control and negative-control attention masks (see gist.h). */
#include <string.h>

#include "base/base.h"
#include "nn/gist.h"

int gist_mask_build(gist_mask_kind kind, int32_t T, int32_t first, int32_t last, uint8_t *mask) {
    if (!mask || T < 1)
        return terse_err(TERSE_ERR_INVALID, "gist mask: T = %d", (int)T);
    if (kind != GIST_MASK_GIST && kind != GIST_MASK_POS && kind != GIST_MASK_NEG)
        return terse_err(TERSE_ERR_INVALID, "gist mask: unknown kind %d", (int)kind);
    int none = first == -1 && last == -1;
    if (!none && !(0 <= first && first <= last && last < T))
        return terse_err(TERSE_ERR_INVALID,
                               "gist mask: gist tokens at [%d, %d] outside a sequence of %d",
                               (int)first, (int)last, (int)T);
    for (int32_t i = 0; i < T; i++) {
        uint8_t *row = mask + (size_t)i * T;
        memset(row, 0, (size_t)T);
        int32_t lo = 0;                              /* first visible column */
        if (!none && i > last) {
            if (kind == GIST_MASK_GIST) lo = first;
            else if (kind == GIST_MASK_NEG) lo = last + 1;
        }
        memset(row + lo, 1, (size_t)(i + 1 - lo));
    }
    return TERSE_OK;
}

int gist_mask_kind_parse(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "gist")) return GIST_MASK_GIST;
    if (!strcmp(name, "pos")) return GIST_MASK_POS;
    if (!strcmp(name, "neg")) return GIST_MASK_NEG;
    return -1;
}
