/* gen_ckpt.c — writes a Llama-shaped HF checkpoint (config.json, model-000NN-of-000MM.safetensors
 * shards, model.safetensors.index.json) of any size without materialising it: each shard is a
 * real safetensors file (header, offsets) whose data area is extended with ftruncate, so on disk
 * it is a sparse file whose weights read as zeros. Small checkpoints can instead be filled with
 * values (random, all-zero rows, tiny/huge magnitudes, one NaN/Inf) for the numerics tests.
 *
 *   gen_ckpt OUT_DIR [--shape 70b|small] [--layers N] [--vocab N] [--hidden N] [--ffn N]
 *                    [--heads N] [--kv-heads N] [--dtype bf16|f16|f32] [--shard-gb G]
 *                    [--fill zero|random|extreme] [--poison TENSOR:INDEX:nan|inf] [--seed S]
 *
 * 70b: hidden 8192, ffn 28672, 64 heads / 8 KV heads, vocab 128256, 80 layers (Llama-3-70B's
 * shape without its RoPE scaling, which lq quantize does not take from HF input yet).
 * small: hidden 64, ffn 128, 4/2 heads, vocab 256, 2 layers. Free disk is checked first. */
#include "libquant.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

typedef struct shape {
    int64_t vocab, hidden, ffn, heads, kv_heads, layers;
} shape;

typedef struct opts {
    const char *out;
    shape s;
    const char *dtype; /* safetensors dtype name */
    int esize;
    double shard_gb;
    const char *fill;
    char poison_name[128];
    int64_t poison_index;
    float poison_value;
    uint64_t seed;
} opts;

typedef struct tensor {
    char name[128];
    int64_t rows, cols; /* cols = 0: 1-D of rows elements */
    uint64_t nbytes;
    int shard;
    uint64_t offset; /* within its shard's data area */
} tensor;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gen_ckpt: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t next_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint16_t to_half_bits(float f, const char *dtype) {
    return !strcmp(dtype, "BF16") ? lq_fp32_to_bf16(f) : lq_fp32_to_fp16(f);
}

/* ---------------------------------------------------------------------------------------- */

static int n_tensors_of(const shape *s) { return 3 + 9 * (int)s->layers; }

static void add(tensor *t, int *n, const char *name, int64_t rows, int64_t cols, int esize) {
    tensor *x = &t[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->rows = rows;
    x->cols = cols;
    x->nbytes = (uint64_t)rows * (uint64_t)(cols ? cols : 1) * (uint64_t)esize;
}

/* HF order: embedding, layers, final norm, head. */
static int list_tensors(const opts *o, tensor *t) {
    const shape *s = &o->s;
    int64_t hd = s->hidden / s->heads;
    int n = 0;
    char name[128];
    add(t, &n, "model.embed_tokens.weight", s->vocab, s->hidden, o->esize);
    for (int64_t l = 0; l < s->layers; l++) {
        static const char *const lin[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                          "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
        int64_t rows[] = {s->heads * hd, s->kv_heads * hd, s->kv_heads * hd, s->hidden, s->ffn, s->ffn, s->hidden};
        int64_t cols[] = {s->hidden, s->hidden, s->hidden, s->heads * hd, s->hidden, s->hidden, s->ffn};
        for (int k = 0; k < 7; k++) {
            snprintf(name, sizeof name, "model.layers.%" PRId64 ".%s.weight", l, lin[k]);
            add(t, &n, name, rows[k], cols[k], o->esize);
        }
        snprintf(name, sizeof name, "model.layers.%" PRId64 ".input_layernorm.weight", l);
        add(t, &n, name, s->hidden, 0, o->esize);
        snprintf(name, sizeof name, "model.layers.%" PRId64 ".post_attention_layernorm.weight", l);
        add(t, &n, name, s->hidden, 0, o->esize);
    }
    add(t, &n, "model.norm.weight", s->hidden, 0, o->esize);
    add(t, &n, "lm_head.weight", s->vocab, s->hidden, o->esize);
    return n;
}

/* Shards of about shard_gb each, in tensor order; returns the shard count. */
static int assign_shards(tensor *t, int n, double shard_gb) {
    uint64_t limit = (uint64_t)(shard_gb * 1e9), used = 0;
    int shard = 0;
    for (int i = 0; i < n; i++) {
        if (used > 0 && used + t[i].nbytes > limit) {
            shard++;
            used = 0;
        }
        t[i].shard = shard;
        t[i].offset = used;
        used += t[i].nbytes;
    }
    return shard + 1;
}

static void shard_name(char *buf, size_t size, int shard, int n_shards) {
    if (n_shards == 1)
        snprintf(buf, size, "model.safetensors");
    else
        snprintf(buf, size, "model-%05d-of-%05d.safetensors", shard + 1, n_shards);
}

/* The shard's JSON header, padded with spaces to a multiple of 8 bytes (as the reference
 * writer does, so tensor data is aligned). */
static char *shard_header(const opts *o, const tensor *t, int n, int shard, size_t *len) {
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    for (int i = 0; i < n; i++) {
        if (t[i].shard != shard) continue;
        json_t *shp = t[i].cols ? json_pack("[I,I]", (json_int_t)t[i].rows, (json_int_t)t[i].cols)
                                : json_pack("[I]", (json_int_t)t[i].rows);
        json_object_set_new(h, t[i].name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", o->dtype, "shape", shp, "data_offsets",
                                      (json_int_t)t[i].offset, (json_int_t)(t[i].offset + t[i].nbytes)));
    }
    char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    size_t l = strlen(text), padded = (l + 7) / 8 * 8;
    text = realloc(text, padded + 1);
    memset(text + l, ' ', padded - l);
    text[padded] = '\0';
    *len = padded;
    return text;
}

/* Values for filled (non-sparse) checkpoints. extreme: rows cycle through all-zero, tiny
 * (1e-30), huge (6e4, within F16 and within what every fp16-scaled block can hold) and
 * ordinary magnitudes, so every codec meets each kind of row. */
static float value_at(const opts *o, const tensor *t, uint64_t i, uint64_t *rng) {
    float u = (float)((next_rand(rng) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    bool norm = t->cols == 0;
    if (norm) return 1.0f + 0.1f * u;
    if (!strcmp(o->fill, "extreme")) {
        uint64_t row = i / (uint64_t)t->cols;
        switch (row % 4) {
        case 0: return 0.0f;
        case 1: return 1e-30f * u;
        case 2: return 6e4f * u;
        default: return 0.05f * u;
        }
    }
    return 0.05f * u;
}

static void write_values(int fd, const opts *o, const tensor *t, uint64_t base, const char *path) {
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 1;
    for (const char *p = t->name; *p; p++) rng = (rng ^ (uint8_t)*p) * 0x100000001B3ull;
    if (!rng) rng = 1;
    uint64_t count = t->nbytes / (uint64_t)o->esize;
    bool poisoned = !strcmp(t->name, o->poison_name);
    if (poisoned && (o->poison_index < 0 || (uint64_t)o->poison_index >= count))
        die("%s: poison index %" PRId64 " outside the tensor's %" PRIu64 " elements", t->name, o->poison_index, count);
    enum { CHUNK = 1 << 16 };
    unsigned char *buf = malloc((size_t)CHUNK * 4);
    for (uint64_t i0 = 0; i0 < count; i0 += CHUNK) {
        uint64_t m = count - i0 < CHUNK ? count - i0 : CHUNK;
        for (uint64_t k = 0; k < m; k++) {
            float v = value_at(o, t, i0 + k, &rng);
            if (poisoned && i0 + k == (uint64_t)o->poison_index) v = o->poison_value;
            if (o->esize == 4) memcpy(buf + 4 * k, &v, 4);
            else {
                uint16_t h = to_half_bits(v, o->dtype);
                memcpy(buf + 2 * k, &h, 2);
            }
        }
        size_t bytes = (size_t)m * (size_t)o->esize;
        if (pwrite(fd, buf, bytes, (off_t)(base + i0 * (uint64_t)o->esize)) != (ssize_t)bytes)
            die("%s: write failed: %s", path, strerror(errno));
    }
    free(buf);
}

static uint64_t write_shard(const opts *o, const tensor *t, int n, int shard, int n_shards) {
    char name[64], path[4096];
    shard_name(name, sizeof name, shard, n_shards);
    snprintf(path, sizeof path, "%s/%s", o->out, name);
    size_t hlen;
    char *header = shard_header(o, t, n, shard, &hlen);
    uint64_t data = 0;
    for (int i = 0; i < n; i++)
        if (t[i].shard == shard) data = t[i].offset + t[i].nbytes;
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) die("%s: %s", path, strerror(errno));
    uint8_t le[8];
    for (int b = 0; b < 8; b++) le[b] = (uint8_t)((uint64_t)hlen >> (8 * b));
    if (write(fd, le, 8) != 8 || write(fd, header, hlen) != (ssize_t)hlen) die("%s: write failed", path);
    uint64_t base = 8 + hlen;
    if (ftruncate(fd, (off_t)(base + data)) != 0) die("%s: ftruncate: %s", path, strerror(errno));
    if (strcmp(o->fill, "zero") != 0)
        for (int i = 0; i < n; i++)
            if (t[i].shard == shard) write_values(fd, o, &t[i], base + t[i].offset, path);
    if (close(fd) != 0) die("%s: close: %s", path, strerror(errno));
    free(header);
    return data;
}

static void write_json_file(const char *dir, const char *name, json_t *j) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (json_dump_file(j, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) die("%s: cannot write", path);
    json_decref(j);
}

static void write_config(const opts *o) {
    const shape *s = &o->s;
    const char *torch = !strcmp(o->dtype, "BF16") ? "bfloat16" : !strcmp(o->dtype, "F16") ? "float16" : "float32";
    json_t *c = json_pack("{s:[s],s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:b,s:s,s:I,s:I}", "architectures",
                          "LlamaForCausalLM", "model_type", "llama", "vocab_size", (json_int_t)s->vocab,
                          "hidden_size", (json_int_t)s->hidden, "intermediate_size", (json_int_t)s->ffn,
                          "num_hidden_layers", (json_int_t)s->layers, "num_attention_heads",
                          (json_int_t)s->heads, "num_key_value_heads", (json_int_t)s->kv_heads,
                          "max_position_embeddings", (json_int_t)8192, "rms_norm_eps", 1e-5, "rope_theta",
                          500000.0, "tie_word_embeddings", 0, "torch_dtype", torch, "bos_token_id",
                          (json_int_t)1, "eos_token_id", (json_int_t)2);
    write_json_file(o->out, "config.json", c);
}

static void write_index(const opts *o, const tensor *t, int n, int n_shards, uint64_t total) {
    json_t *map = json_object();
    char name[64];
    for (int i = 0; i < n; i++) {
        shard_name(name, sizeof name, t[i].shard, n_shards);
        json_object_set_new(map, t[i].name, json_string(name));
    }
    json_t *idx = json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", map);
    write_json_file(o->out, "model.safetensors.index.json", idx);
}

/* ---------------------------------------------------------------------------------------- */

static void parse_poison(opts *o, const char *v) {
    const char *c1 = strchr(v, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || (size_t)(c1 - v) >= sizeof o->poison_name) die("--poison needs TENSOR:INDEX:nan|inf");
    memcpy(o->poison_name, v, (size_t)(c1 - v));
    o->poison_name[c1 - v] = '\0';
    o->poison_index = strtoll(c1 + 1, NULL, 10);
    if (!strcmp(c2 + 1, "nan")) o->poison_value = NAN;
    else if (!strcmp(c2 + 1, "inf")) o->poison_value = INFINITY;
    else if (!strcmp(c2 + 1, "-inf")) o->poison_value = -INFINITY;
    else die("--poison value is nan, inf or -inf");
}

static void parse_args(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->s = (shape){256, 64, 128, 4, 2, 2};
    o->dtype = "BF16";
    o->esize = 2;
    o->shard_gb = 5.0;
    o->fill = "random";
    o->seed = 1;
    int64_t layers = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            o->out = a;
            continue;
        }
        if (!v) die("%s needs a value", a);
        i++;
        if (!strcmp(a, "--shape")) {
            if (!strcmp(v, "70b")) {
                o->s = (shape){128256, 8192, 28672, 64, 8, 80};
                o->fill = "zero";
            } else if (strcmp(v, "small") != 0) {
                die("unknown shape '%s' (70b, small)", v);
            }
        } else if (!strcmp(a, "--layers")) layers = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--vocab")) o->s.vocab = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--hidden")) o->s.hidden = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--ffn")) o->s.ffn = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--heads")) o->s.heads = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--kv-heads")) o->s.kv_heads = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--dtype")) {
            o->dtype = !strcmp(v, "bf16") ? "BF16" : !strcmp(v, "f16") ? "F16" : !strcmp(v, "f32") ? "F32" : NULL;
            if (!o->dtype) die("--dtype is bf16, f16 or f32");
            o->esize = !strcmp(v, "f32") ? 4 : 2;
        } else if (!strcmp(a, "--shard-gb")) o->shard_gb = atof(v);
        else if (!strcmp(a, "--fill")) {
            if (strcmp(v, "zero") && strcmp(v, "random") && strcmp(v, "extreme")) die("--fill is zero, random or extreme");
            o->fill = v;
        } else if (!strcmp(a, "--poison")) parse_poison(o, v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else die("unknown option %s", a);
    }
    if (!o->out) die("usage: gen_ckpt OUT_DIR [--shape 70b|small] [--layers N] [--dtype bf16|f16|f32] "
                     "[--shard-gb G] [--fill zero|random|extreme] [--poison TENSOR:INDEX:nan|inf] [--seed S]");
    if (layers >= 1) o->s.layers = layers;
    const shape *d = &o->s;
    if (d->vocab < 1 || d->hidden < 1 || d->ffn < 1 || d->heads < 1 || d->kv_heads < 1 || d->hidden % d->heads ||
        d->heads % d->kv_heads || (d->hidden / d->heads) % 2)
        die("inconsistent shape (hidden divisible by heads, heads by KV heads, even head size)");
    if (!(o->shard_gb > 0)) die("--shard-gb must be positive");
}

int main(int argc, char **argv) {
    opts o;
    parse_args(argc, argv, &o);
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST) die("%s: %s", o.out, strerror(errno));
    int n_max = n_tensors_of(&o.s);
    tensor *t = calloc((size_t)n_max, sizeof *t);
    int n = list_tensors(&o, t);
    int n_shards = assign_shards(t, n, o.shard_gb);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += t[i].nbytes;
    /* Sparse shards need only their headers on disk; filled ones need all of it. */
    struct statvfs vfs;
    uint64_t need = strcmp(o.fill, "zero") ? total : (uint64_t)n_shards * (1u << 20);
    if (statvfs(o.out, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < need + (1ull << 30))
        die("%s: %" PRIu64 " bytes needed, only %" PRIu64 " free", o.out, need,
            (uint64_t)vfs.f_bavail * vfs.f_frsize);
    for (int s = 0; s < n_shards; s++) write_shard(&o, t, n, s, n_shards);
    if (n_shards > 1) write_index(&o, t, n, n_shards, total);
    write_config(&o);
    printf("%s: %d tensors, %d shard%s, %" PRIu64 " bytes of %s weights%s\n", o.out, n, n_shards,
           n_shards == 1 ? "" : "s", total, o.dtype, strcmp(o.fill, "zero") ? "" : " (sparse: reads as zeros)");
    free(t);
    return 0;
}
