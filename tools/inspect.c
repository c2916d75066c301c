/* inspect.c — `lq inspect PATH [--json]`: a checkpoint's architecture, hyperparameters, tensors,
 * metadata and totals. Reading and validation live in the library; this file only formats.
 *
 * PATH is a GGUF file (shown through the GGUF reader, so vocabulary-only files with no tensors
 * work too), a .safetensors file or index, or a Hugging Face model directory (shown through the
 * model view: canonical GGUF names next to the names in the files). */
#include "cli.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CMD "inspect"
#define ARRAY_PREVIEW 3     /* array elements shown in text */
#define JSON_ARRAY_PREVIEW 8
#define TEXT_STRING_MAX 72  /* longer string values are cut in text output */

static const char usage[] =
    "usage: lq inspect PATH [--json]\n"
    "\n"
    "Shows a checkpoint: architecture and hyperparameters, every tensor (name, shape, type,\n"
    "bytes), metadata, and totals (parameters, bytes, bits per weight).\n"
    "\n"
    "PATH  a .gguf file (vocabulary-only files with no tensors too), a .safetensors file or\n"
    "      model.safetensors.index.json, or a Hugging Face model directory (config.json +\n"
    "      safetensors). Directories are shown through the model view: canonical GGUF tensor\n"
    "      names in GGUF dimension order (ne[0] = row length), with the names in the files.\n"
    "      Files are shown as stored; shapes of a bare .safetensors file are in its own order\n"
    "      (outermost first).\n"
    "\n"
    "Options:\n"
    "  --json   print one JSON object instead of text\n"
    "  --help   this text\n"
    "\n" LQ_EXIT_CODES_HELP
    "Errors are one line on stderr: \"lq inspect: <file>: <problem>\".\n";

/* One tensor row, whichever source it came from. */
typedef struct row {
    const char *name;
    const char *source; /* name in the file when it differs, else NULL */
    uint32_t n_dims;
    int64_t dims[LQ_MAX_DIMS];
    int type;
    uint64_t bytes;
} row;

typedef enum view_kind { VIEW_GGUF, VIEW_SAFETENSORS, VIEW_HF } view_kind;

typedef struct view {
    const char *path;
    view_kind kind;
    lq_gguf *gguf;          /* VIEW_GGUF */
    lq_safetensors *st;     /* VIEW_SAFETENSORS; for VIEW_HF the model's */
    lq_model *model;        /* NULL when the file is no loadable model */
    lq_error model_err;     /* why model is NULL */
    lq_hparams hp;          /* from the model, or from a GGUF's keys when the view fails */
    bool have_hp;
    row *rows;
    int64_t n_rows;
} view;

/* ---------------------------------------------------------------------------------------- */
/* Gathering rows                                                                             */

static lq_status rows_alloc(view *v, int64_t n, lq_error *err) {
    v->rows = calloc((size_t)(n > 0 ? n : 1), sizeof *v->rows);
    v->n_rows = n;
    if (v->rows) return LQ_OK;
    err->code = LQ_ERR_NOMEM;
    snprintf(err->msg, sizeof err->msg, "%s: out of memory for %" PRId64 " tensor rows", v->path, n);
    return LQ_ERR_NOMEM;
}

static lq_status rows_from_gguf(view *v, lq_error *err) {
    lq_status rc = rows_alloc(v, lq_gguf_n_tensors(v->gguf), err);
    for (int64_t i = 0; rc == LQ_OK && i < v->n_rows; i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(v->gguf, i);
        row *r = &v->rows[i];
        r->name = t->name;
        r->n_dims = t->n_dims ? t->n_dims : 1;
        memcpy(r->dims, t->ne, sizeof r->dims);
        r->type = t->type;
        r->bytes = t->nbytes;
    }
    return rc;
}

static lq_status rows_from_safetensors(view *v, lq_error *err) {
    lq_status rc = rows_alloc(v, lq_safetensors_n_tensors(v->st), err);
    for (int64_t i = 0; rc == LQ_OK && i < v->n_rows; i++) {
        const lq_st_tensor *t = lq_safetensors_tensor(v->st, i);
        row *r = &v->rows[i];
        r->name = t->name;
        r->n_dims = t->n_dims;
        memcpy(r->dims, t->shape, sizeof r->dims);
        r->type = t->type;
        r->bytes = t->nbytes;
    }
    return rc;
}

static lq_status rows_from_model(view *v, lq_error *err) {
    lq_status rc = rows_alloc(v, lq_model_n_tensors(v->model), err);
    for (int64_t i = 0; rc == LQ_OK && i < v->n_rows; i++) {
        const lq_tensor *t = lq_model_tensor(v->model, i);
        row *r = &v->rows[i];
        r->name = t->name;
        r->source = strcmp(t->name, t->source_name) ? t->source_name : NULL;
        r->n_dims = t->n_dims;
        memcpy(r->dims, t->ne, sizeof r->dims);
        r->type = t->type;
        r->bytes = t->nbytes;
    }
    return rc;
}

static bool has_gguf_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    bool yes = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f) fclose(f);
    return yes;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Opens PATH as the kind of thing it is; files get model info when the model view opens. */
static lq_status open_view(const char *path, view *v, lq_error *err) {
    memset(v, 0, sizeof *v);
    v->path = path;
    struct stat sb;
    if (stat(path, &sb) != 0 || S_ISDIR(sb.st_mode)) { /* the model view reports a missing path */
        v->kind = VIEW_HF;
        lq_status rc = lq_model_open(path, &v->model, err);
        if (rc != LQ_OK) return rc;
        v->hp = *lq_model_hparams(v->model);
        v->have_hp = true;
        v->st = (lq_safetensors *)lq_model_safetensors(v->model);
        return rows_from_model(v, err);
    }
    bool gguf = has_gguf_magic(path) || ends_with(path, ".gguf");
    v->kind = gguf ? VIEW_GGUF : VIEW_SAFETENSORS;
    lq_status rc = gguf ? lq_gguf_open(path, &v->gguf, err) : lq_safetensors_open(path, &v->st, err);
    if (rc != LQ_OK) return rc;
    lq_error_clear(&v->model_err);
    if (lq_model_open(path, &v->model, &v->model_err) == LQ_OK) {
        v->hp = *lq_model_hparams(v->model);
        v->have_hp = true;
    } else if (gguf) {
        lq_error ignored; /* the model view's error says more */
        v->have_hp = lq_hparams_from_gguf(v->gguf, &v->hp, &ignored) == LQ_OK;
    }
    return gguf ? rows_from_gguf(v, err) : rows_from_safetensors(v, err);
}

static void close_view(view *v) {
    lq_model_close(v->model);
    lq_gguf_close(v->gguf);
    if (v->kind == VIEW_SAFETENSORS) lq_safetensors_close(v->st);
    free(v->rows);
}

typedef struct totals {
    uint64_t params, bytes;
} totals;

static totals sum_rows(const view *v) {
    totals t = {0, 0};
    for (int64_t i = 0; i < v->n_rows; i++) {
        uint64_t n = 1;
        for (uint32_t d = 0; d < LQ_MAX_DIMS; d++) n *= (uint64_t)v->rows[i].dims[d];
        t.params += n;
        t.bytes += v->rows[i].bytes;
    }
    return t;
}

static const char *type_name(int type) {
    const lq_type_traits *t = lq_type_get(type);
    return t ? t->name : "?";
}

static const char *kv_type_name(lq_gguf_type t) {
    return t == LQ_GGUF_STRING ? "string" : lq_gguf_type_name(t);
}

static const char *rope_layout_name(lq_rope_layout l) {
    return l == LQ_ROPE_INTERLEAVED ? "interleaved (GGUF/Meta pairs 2i, 2i+1)" : "halves (HF rotate-half pairs i, i+hd/2)";
}

/* ---------------------------------------------------------------------------------------- */
/* Text output                                                                                */

static void print_escaped(const char *s, uint64_t len, uint64_t max) {
    uint64_t n = len < max ? len : max;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    if (n < len) printf("... (%" PRIu64 " bytes)", len);
}

static void print_quoted(lq_str s, uint64_t max) {
    putchar('"');
    print_escaped(s.ptr, s.len, max);
    putchar('"');
}

/* One scalar of a GGUF type from raw little-endian bytes. */
static void print_scalar(lq_gguf_type t, const void *p) {
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } v;
    memcpy(&v, p, lq_gguf_type_size(t));
    switch (t) {
    case LQ_GGUF_UINT8: printf("%u", v.u8); break;
    case LQ_GGUF_INT8: printf("%d", v.i8); break;
    case LQ_GGUF_UINT16: printf("%u", v.u16); break;
    case LQ_GGUF_INT16: printf("%d", v.i16); break;
    case LQ_GGUF_UINT32: printf("%" PRIu32, v.u32); break;
    case LQ_GGUF_INT32: printf("%" PRId32, v.i32); break;
    case LQ_GGUF_FLOAT32: printf("%g", v.f32); break;
    case LQ_GGUF_BOOL: printf("%s", v.u8 ? "true" : "false"); break;
    case LQ_GGUF_UINT64: printf("%" PRIu64, v.u64); break;
    case LQ_GGUF_INT64: printf("%" PRId64, v.i64); break;
    case LQ_GGUF_FLOAT64: printf("%g", v.f64); break;
    default: printf("?"); break;
    }
}

/* "[string × 32000] "<unk>", "<s>", "</s>", ..." */
static void print_array(const lq_gguf *g, int64_t i) {
    lq_gguf_type et = lq_gguf_arr_type(g, i);
    uint64_t n = lq_gguf_arr_n(g, i);
    printf("[%s × %" PRIu64 "]", kv_type_name(et), n);
    uint64_t shown = n < ARRAY_PREVIEW ? n : ARRAY_PREVIEW;
    const unsigned char *data = lq_gguf_kv_data(g, i);
    for (uint64_t j = 0; j < shown; j++) {
        fputs(j ? ", " : " ", stdout);
        if (et == LQ_GGUF_STRING)
            print_quoted(lq_gguf_arr_str(g, i, j), 32);
        else if (data && lq_gguf_type_size(et))
            print_scalar(et, data + j * lq_gguf_type_size(et));
    }
    if (shown < n) fputs(", ...", stdout);
}

static void print_gguf_kv(const lq_gguf *g, int64_t i, int key_width) {
    lq_str key = lq_gguf_key(g, i);
    lq_gguf_type t = lq_gguf_kv_type(g, i);
    printf("  ");
    print_escaped(key.ptr, key.len, 128);
    printf("%*s ", key.len < (uint64_t)key_width ? key_width - (int)key.len : 0, "");
    if (t == LQ_GGUF_STRING)
        print_quoted(lq_gguf_get_str(g, i), TEXT_STRING_MAX);
    else if (t == LQ_GGUF_ARRAY)
        print_array(g, i);
    else {
        print_scalar(t, lq_gguf_kv_data(g, i));
        printf(" (%s)", kv_type_name(t));
    }
    putchar('\n');
}

static void print_metadata_text(const view *v) {
    if (v->gguf) {
        int64_t n = lq_gguf_n_kv(v->gguf);
        int width = 0;
        for (int64_t i = 0; i < n; i++)
            if (lq_gguf_key(v->gguf, i).len > (uint64_t)width && lq_gguf_key(v->gguf, i).len < 48)
                width = (int)lq_gguf_key(v->gguf, i).len;
        printf("\nmetadata: %" PRId64 " key/value pairs\n", n);
        for (int64_t i = 0; i < n; i++) print_gguf_kv(v->gguf, i, width);
    } else if (v->st) {
        int64_t n = lq_safetensors_n_metadata(v->st);
        printf("\nmetadata (safetensors __metadata__): %" PRId64 " entries\n", n);
        for (int64_t i = 0; i < n; i++) {
            const char *k = lq_safetensors_metadata_key(v->st, i), *val = lq_safetensors_metadata_value(v->st, i);
            printf("  ");
            print_escaped(k, strlen(k), 128);
            printf(" = ");
            print_quoted((lq_str){val, strlen(val)}, TEXT_STRING_MAX);
            putchar('\n');
        }
    }
}

static void format_dims(const row *r, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (uint32_t d = 0; d < r->n_dims && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, d ? ", " : "", r->dims[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

static void print_tensors_text(const view *v) {
    const char *order = v->kind == VIEW_SAFETENSORS ? "shape as stored, outermost first" : "shape in GGUF order, ne[0] first";
    printf("\ntensors: %" PRId64 " (%s)\n", v->n_rows, order);
    if (v->n_rows == 0) return;
    int name_w = 4;
    for (int64_t i = 0; i < v->n_rows; i++)
        if ((int)strlen(v->rows[i].name) > name_w) name_w = (int)strlen(v->rows[i].name);
    bool any_source = false;
    for (int64_t i = 0; i < v->n_rows; i++) any_source |= v->rows[i].source != NULL;
    printf("  %-*s  %-22s %-8s %12s%s\n", name_w, "name", "shape", "type", "bytes", any_source ? "  source" : "");
    char dims[96];
    for (int64_t i = 0; i < v->n_rows; i++) {
        const row *r = &v->rows[i];
        format_dims(r, dims, sizeof dims);
        printf("  %-*s  %-22s %-8s %12" PRIu64 "%s%s\n", name_w, r->name, dims, type_name(r->type), r->bytes,
               r->source ? "  " : "", r->source ? r->source : "");
    }
}

static void print_hparams_text(const view *v) {
    const lq_hparams *hp = &v->hp;
    printf("\narchitecture: %s\n", hp->arch_name);
    printf("  vocabulary            %" PRId64 "\n", hp->n_vocab);
    printf("  embedding (hidden)    %" PRId64 "\n", hp->n_embd);
    printf("  layers                %" PRId64 "\n", hp->n_layer);
    printf("  heads / KV heads      %" PRId64 " / %" PRId64 "\n", hp->n_head, hp->n_head_kv);
    printf("  head dim              %" PRId64 "\n", hp->head_dim);
    printf("  feed-forward          %" PRId64 "\n", hp->n_ff);
    printf("  training context      %" PRId64 "\n", hp->n_ctx_train);
    printf("  rope theta            %g\n", hp->rope_theta);
    if (hp->rope_scaling == LQ_ROPE_SCALING_LLAMA3)
        printf("  rope scaling          llama3 (factor %g, low %g, high %g, original context %" PRId64 ")\n",
               hp->rope_factor, hp->rope_low_freq_factor, hp->rope_high_freq_factor, hp->rope_orig_ctx);
    else
        printf("  rope scaling          none\n");
    if (v->model) printf("  rope layout           %s\n", rope_layout_name(lq_model_rope_layout(v->model)));
    printf("  rms norm eps          %g\n", hp->rms_eps);
    if (v->model) { /* known from the tensors present, so only with a model view */
        printf("  tied embeddings       %s\n", hp->tie_embeddings ? "yes (token_embd serves as output)" : "no");
        printf("  biases                q/k/v %s, output %s, mlp %s\n", hp->attn_bias ? "yes" : "no",
               hp->attn_out_bias ? "yes" : "no", hp->mlp_bias ? "yes" : "no");
    }
    if (hp->sliding_window) printf("  sliding window        %" PRId64 "\n", hp->sliding_window);
    printf("  bos / eos token       %" PRId64 " / %" PRId64 "\n", hp->bos_token_id, hp->eos_token_id);
}

static void print_text(const view *v) {
    printf("%s: ", v->path);
    if (v->kind == VIEW_GGUF)
        printf("GGUF v%" PRIu32 ", %" PRId64 " tensors, %" PRId64 " key/value pairs, alignment %" PRIu32
               ", %" PRIu64 " bytes, tensor data from byte %" PRIu64 "\n",
               lq_gguf_version(v->gguf), lq_gguf_n_tensors(v->gguf), lq_gguf_n_kv(v->gguf), lq_gguf_alignment(v->gguf),
               lq_gguf_file_size(v->gguf), lq_gguf_data_offset(v->gguf));
    else if (v->kind == VIEW_SAFETENSORS)
        printf("safetensors, %" PRId64 " tensors\n", lq_safetensors_n_tensors(v->st));
    else
        printf("Hugging Face model directory, %" PRId64 " tensors in the model view\n", v->n_rows);
    if (v->kind == VIEW_HF) {
        const char *last = NULL;
        for (int64_t i = 0; i < lq_safetensors_n_tensors(v->st); i++) {
            const char *file = lq_safetensors_tensor(v->st, i)->file; /* tensors are grouped by file */
            if (file != last) printf("  weights    %s\n", file);
            last = file;
        }
        const char *tok = lq_model_tokenizer_json(v->model);
        printf("  tokenizer  %s\n", tok ? tok : "(no tokenizer.json)");
    }
    if (v->have_hp) print_hparams_text(v);
    if (!v->model) printf("\nmodel view: not available (%s)\n", v->model_err.msg);
    print_tensors_text(v);
    print_metadata_text(v);
    totals t = sum_rows(v);
    printf("\ntotals: %" PRIu64 " parameters, %" PRIu64 " bytes (%.2f MiB)", t.params, t.bytes,
           (double)t.bytes / (1024.0 * 1024.0));
    if (t.params) printf(", %.3f bits per weight", 8.0 * (double)t.bytes / (double)t.params);
    putchar('\n');
}

/* ---------------------------------------------------------------------------------------- */
/* JSON output                                                                                */

/* A JSON string from bytes that may not be valid UTF-8 (invalid bytes become '?'). */
static json_t *json_bytes(const char *s, uint64_t len) {
    json_t *j = json_stringn(s ? s : "", s ? (size_t)len : 0);
    if (j) return j;
    char *copy = malloc((size_t)len + 1);
    if (!copy) return json_null();
    for (uint64_t i = 0; i < len; i++) copy[i] = (unsigned char)s[i] < 0x80 && s[i] != 0 ? s[i] : '?';
    j = json_stringn(copy, (size_t)len);
    free(copy);
    return j ? j : json_null();
}

static json_t *json_scalar(lq_gguf_type t, const void *p) {
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } v;
    memcpy(&v, p, lq_gguf_type_size(t));
    switch (t) {
    case LQ_GGUF_UINT8: return json_integer(v.u8);
    case LQ_GGUF_INT8: return json_integer(v.i8);
    case LQ_GGUF_UINT16: return json_integer(v.u16);
    case LQ_GGUF_INT16: return json_integer(v.i16);
    case LQ_GGUF_UINT32: return json_integer(v.u32);
    case LQ_GGUF_INT32: return json_integer(v.i32);
    case LQ_GGUF_FLOAT32: return isfinite(v.f32) ? json_real(v.f32) : json_null();
    case LQ_GGUF_BOOL: return json_boolean(v.u8);
    case LQ_GGUF_UINT64: return v.u64 <= INT64_MAX ? json_integer((json_int_t)v.u64) : json_real((double)v.u64);
    case LQ_GGUF_INT64: return json_integer(v.i64);
    case LQ_GGUF_FLOAT64: return isfinite(v.f64) ? json_real(v.f64) : json_null();
    default: return json_null();
    }
}

/* Arrays are summarised: {"type": "array", "element_type", "count", "head": [first few]}. */
static json_t *json_gguf_value(const lq_gguf *g, int64_t i) {
    lq_gguf_type t = lq_gguf_kv_type(g, i);
    if (t == LQ_GGUF_STRING) {
        lq_str s = lq_gguf_get_str(g, i);
        return json_bytes(s.ptr, s.len);
    }
    if (t != LQ_GGUF_ARRAY) return json_scalar(t, lq_gguf_kv_data(g, i));
    lq_gguf_type et = lq_gguf_arr_type(g, i);
    uint64_t n = lq_gguf_arr_n(g, i), shown = n < JSON_ARRAY_PREVIEW ? n : JSON_ARRAY_PREVIEW;
    const unsigned char *data = lq_gguf_kv_data(g, i);
    json_t *head = json_array();
    for (uint64_t j = 0; j < shown; j++) {
        if (et == LQ_GGUF_STRING) {
            lq_str s = lq_gguf_arr_str(g, i, j);
            json_array_append_new(head, json_bytes(s.ptr, s.len));
        } else if (data && lq_gguf_type_size(et)) {
            json_array_append_new(head, json_scalar(et, data + j * lq_gguf_type_size(et)));
        }
    }
    return json_pack("{s:s, s:s, s:I, s:o}", "type", "array", "element_type", kv_type_name(et), "count",
                     (json_int_t)n, "head", head);
}

static json_t *json_metadata(const view *v) {
    json_t *meta = json_object();
    if (v->gguf) {
        for (int64_t i = 0; i < lq_gguf_n_kv(v->gguf); i++) {
            lq_str key = lq_gguf_key(v->gguf, i);
            json_t *k = json_bytes(key.ptr, key.len);
            if (json_is_string(k)) json_object_set_new(meta, json_string_value(k), json_gguf_value(v->gguf, i));
            json_decref(k);
        }
    } else if (v->st) {
        for (int64_t i = 0; i < lq_safetensors_n_metadata(v->st); i++)
            json_object_set_new(meta, lq_safetensors_metadata_key(v->st, i),
                                json_bytes(lq_safetensors_metadata_value(v->st, i),
                                           strlen(lq_safetensors_metadata_value(v->st, i))));
    }
    return meta;
}

static json_t *json_hparams(const view *v) {
    const lq_hparams *hp = &v->hp;
    json_t *o = json_object();
    json_object_set_new(o, "architecture", json_string(hp->arch_name));
    json_object_set_new(o, "n_vocab", json_integer(hp->n_vocab));
    json_object_set_new(o, "n_embd", json_integer(hp->n_embd));
    json_object_set_new(o, "n_layer", json_integer(hp->n_layer));
    json_object_set_new(o, "n_head", json_integer(hp->n_head));
    json_object_set_new(o, "n_head_kv", json_integer(hp->n_head_kv));
    json_object_set_new(o, "head_dim", json_integer(hp->head_dim));
    json_object_set_new(o, "n_ff", json_integer(hp->n_ff));
    json_object_set_new(o, "n_ctx_train", json_integer(hp->n_ctx_train));
    json_object_set_new(o, "rope_theta", json_real(hp->rope_theta));
    json_object_set_new(o, "rms_eps", json_real(hp->rms_eps));
    if (hp->rope_scaling == LQ_ROPE_SCALING_LLAMA3)
        json_object_set_new(o, "rope_scaling",
                            json_pack("{s:s, s:f, s:f, s:f, s:I}", "type", "llama3", "factor", (double)hp->rope_factor,
                                      "low_freq_factor", (double)hp->rope_low_freq_factor, "high_freq_factor",
                                      (double)hp->rope_high_freq_factor, "original_context",
                                      (json_int_t)hp->rope_orig_ctx));
    else
        json_object_set_new(o, "rope_scaling", json_null());
    if (v->model)
        json_object_set_new(o, "rope_layout", json_string(lq_model_rope_layout(v->model) == LQ_ROPE_INTERLEAVED
                                                              ? "interleaved"
                                                              : "halves"));
    else
        json_object_set_new(o, "rope_layout", json_null());
    /* Known from the tensors present, so only with a model view. */
    json_object_set_new(o, "tie_embeddings", v->model ? json_boolean(hp->tie_embeddings) : json_null());
    json_object_set_new(o, "attn_bias", v->model ? json_boolean(hp->attn_bias) : json_null());
    json_object_set_new(o, "attn_out_bias", v->model ? json_boolean(hp->attn_out_bias) : json_null());
    json_object_set_new(o, "mlp_bias", v->model ? json_boolean(hp->mlp_bias) : json_null());
    json_object_set_new(o, "sliding_window", json_integer(hp->sliding_window));
    json_object_set_new(o, "bos_token_id", json_integer(hp->bos_token_id));
    json_object_set_new(o, "eos_token_id", json_integer(hp->eos_token_id));
    const char *tok = v->model ? lq_model_tokenizer_json(v->model) : NULL;
    json_object_set_new(o, "tokenizer_json", tok ? json_string(tok) : json_null());
    return o;
}

static json_t *json_tensors(const view *v) {
    json_t *arr = json_array();
    for (int64_t i = 0; i < v->n_rows; i++) {
        const row *r = &v->rows[i];
        json_t *shape = json_array();
        for (uint32_t d = 0; d < r->n_dims; d++) json_array_append_new(shape, json_integer(r->dims[d]));
        json_t *t = json_pack("{s:s, s:o, s:s, s:I}", "name", r->name, "shape", shape, "type", type_name(r->type),
                              "bytes", (json_int_t)r->bytes);
        if (r->source) json_object_set_new(t, "source_name", json_string(r->source));
        json_array_append_new(arr, t);
    }
    return arr;
}

static const char *kind_name(view_kind k) {
    return k == VIEW_GGUF ? "gguf" : k == VIEW_SAFETENSORS ? "safetensors" : "hf";
}

static int print_json(const view *v) {
    json_t *o = json_object();
    json_object_set_new(o, "path", json_bytes(v->path, strlen(v->path)));
    json_object_set_new(o, "format", json_string(kind_name(v->kind)));
    json_object_set_new(o, "shape_order", json_string(v->kind == VIEW_SAFETENSORS ? "safetensors" : "gguf"));
    if (v->gguf)
        json_object_set_new(o, "gguf",
                            json_pack("{s:I, s:I, s:I, s:I}", "version", (json_int_t)lq_gguf_version(v->gguf),
                                      "alignment", (json_int_t)lq_gguf_alignment(v->gguf), "data_offset",
                                      (json_int_t)lq_gguf_data_offset(v->gguf), "file_size",
                                      (json_int_t)lq_gguf_file_size(v->gguf)));
    json_object_set_new(o, "hparams", v->have_hp ? json_hparams(v) : json_null());
    json_object_set_new(o, "model_view", json_boolean(v->model != NULL));
    if (!v->model) json_object_set_new(o, "model_error", json_bytes(v->model_err.msg, strlen(v->model_err.msg)));
    json_object_set_new(o, "tensors", json_tensors(v));
    json_object_set_new(o, "metadata", json_metadata(v));
    totals t = sum_rows(v);
    json_object_set_new(o, "totals",
                        json_pack("{s:I, s:I, s:I, s:o}", "tensors", (json_int_t)v->n_rows, "parameters",
                                  (json_int_t)t.params, "bytes", (json_int_t)t.bytes, "bits_per_weight",
                                  t.params ? json_real(8.0 * (double)t.bytes / (double)t.params) : json_null()));
    int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    putchar('\n');
    json_decref(o);
    return rc == 0 ? LQ_EXIT_OK : LQ_EXIT_IO;
}

/* ---------------------------------------------------------------------------------------- */
/* Command line                                                                               */

int lq_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return LQ_EXIT_OK;
        }
        if (!strcmp(argv[i], "--json"))
            as_json = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return lq_cli_usage_error(CMD, "unknown option '%s'", argv[i]);
        else if (path)
            return lq_cli_usage_error(CMD, "more than one PATH ('%s' and '%s')", path, argv[i]);
        else
            path = argv[i];
    }
    if (!path) return lq_cli_usage_error(CMD, "missing PATH");
    view v;
    lq_error err;
    lq_error_clear(&err);
    lq_status rc = open_view(path, &v, &err);
    int code = rc != LQ_OK ? lq_cli_report(CMD, &err) : as_json ? print_json(&v) : (print_text(&v), LQ_EXIT_OK);
    close_view(&v);
    if (code == LQ_EXIT_OK && fflush(stdout) != 0) code = LQ_EXIT_IO;
    return code;
}
