/* tok_json.c — a tokenizer from a Hugging Face tokenizer.json. */
#include "tok_internal.h"

lq_status lq_tokenizer_from_json(const char *path, lq_tokenizer **out, lq_error *err) {
    *out = NULL;
    return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: not implemented yet", path);
}
