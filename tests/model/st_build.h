/* st_build.h — writes small safetensors files and HF model directories for the model tests
 * (an independent writer: it formats the header text itself, without libquant). */
#ifndef LQ_ST_BUILD_H
#define LQ_ST_BUILD_H

#include "test.h"

#include <ftw.h>
#include <stdarg.h>

typedef struct stb_tensor {
    char name[96];
    const char *dtype;     /* "F32", "F16", "BF16", ... */
    int n_dims;
    int64_t shape[4];
    size_t nbytes;
    unsigned char *data;   /* owned */
} stb_tensor;

typedef struct stb_file {
    stb_tensor t[128];
    int n;
    char metadata[512];    /* JSON object text for __metadata__, or "" */
} stb_file;

static inline size_t stb_dtype_size(const char *dtype) {
    return strcmp(dtype, "F32") == 0 ? 4 : 2;
}

/* Adds a tensor of deterministic pseudo-random values (F32 in [-1,1), or F16/BF16 bits of them). */
static inline stb_tensor *stb_add(stb_file *f, const char *name, const char *dtype, int n_dims,
                                  const int64_t *shape, uint64_t *seed) {
    stb_tensor *t = &f->t[f->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->n_dims = n_dims;
    size_t count = 1;
    for (int d = 0; d < n_dims; d++) {
        t->shape[d] = shape[d];
        count *= (size_t)shape[d];
    }
    size_t es = stb_dtype_size(dtype);
    t->nbytes = count * es;
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    for (size_t i = 0; i < count; i++) {
        float v = 2.0f * test_rand_uniform(seed) - 1.0f;
        if (es == 4) {
            memcpy(t->data + 4 * i, &v, 4);
        } else {
            uint16_t h = strcmp(dtype, "BF16") == 0 ? lq_fp32_to_bf16(v) : lq_fp32_to_fp16(v);
            memcpy(t->data + 2 * i, &h, 2);
        }
    }
    return t;
}

static inline void stb_free(stb_file *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].data);
    f->n = 0;
}

/* Header JSON for tensors [first, first+count) of f, offsets packed in that order. */
static inline size_t stb_header(const stb_file *f, int first, int count, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "{");
    if (f->metadata[0]) used += (size_t)snprintf(buf + used, size - used, "\"__metadata__\":%s,", f->metadata);
    size_t offset = 0;
    for (int i = first; i < first + count; i++) {
        const stb_tensor *t = &f->t[i];
        used += (size_t)snprintf(buf + used, size - used, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i > first ? "," : "",
                                 t->name, t->dtype);
        for (int d = 0; d < t->n_dims; d++)
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        used += (size_t)snprintf(buf + used, size - used, "],\"data_offsets\":[%zu,%zu]}", offset, offset + t->nbytes);
        offset += t->nbytes;
    }
    used += (size_t)snprintf(buf + used, size - used, "}");
    return used;
}

/* Serializes a header text plus data bytes into a malloc'd image: u64 length (padded to 8 with
 * spaces as the reference writer does), header, data. */
static inline unsigned char *stb_image_raw(const char *header, size_t header_len, const unsigned char *data,
                                           size_t data_len, size_t *size) {
    size_t padded = (header_len + 7) / 8 * 8;
    *size = 8 + padded + data_len;
    unsigned char *img = malloc(*size);
    uint64_t n = padded;
    for (int i = 0; i < 8; i++) img[i] = (unsigned char)(n >> (8 * i));
    memcpy(img + 8, header, header_len);
    memset(img + 8 + header_len, ' ', padded - header_len);
    if (data_len) memcpy(img + 8 + padded, data, data_len);
    return img;
}

static inline unsigned char *stb_image(const stb_file *f, int first, int count, size_t *size) {
    static char header[65536];
    size_t header_len = stb_header(f, first, count, header, sizeof header);
    size_t data_len = 0;
    for (int i = first; i < first + count; i++) data_len += f->t[i].nbytes;
    unsigned char *data = malloc(data_len ? data_len : 1), *p = data;
    for (int i = first; i < first + count; i++) {
        memcpy(p, f->t[i].data, f->t[i].nbytes);
        p += f->t[i].nbytes;
    }
    unsigned char *img = stb_image_raw(header, header_len, data, data_len, size);
    free(data);
    return img;
}

static inline int stb_write_bytes(const char *path, const void *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t w = size ? fwrite(data, 1, size, fp) : 0;
    fclose(fp);
    return w == size ? 0 : -1;
}

static inline int stb_write_text(const char *path, const char *text) {
    return stb_write_bytes(path, text, strlen(text));
}

static inline const char *stb_path(char *buf, size_t size, const char *dir, const char *name) {
    snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

/* A tiny Llama in HF naming: n_layer layers, hidden e, heads h/kv (head_dim e/h), ffn ff,
 * vocab v, untied unless tied. */
typedef struct stb_llama {
    int n_layer, e, h, kv, ff, v;
    bool tied, with_lm_head, with_embed;
    const char *dtype;
} stb_llama;

static inline void stb_llama_tensors(stb_file *f, const stb_llama *c, uint64_t *seed) {
    int hd = c->e / c->h;
    char name[96];
    if (c->with_embed) stb_add(f, "model.embed_tokens.weight", c->dtype, 2, (int64_t[]){c->v, c->e}, seed);
    for (int i = 0; i < c->n_layer; i++) {
#define L(suffix, nd, ...)                                                    \
    snprintf(name, sizeof name, "model.layers.%d.%s", i, suffix);             \
    stb_add(f, name, c->dtype, nd, (int64_t[]){__VA_ARGS__}, seed)
        L("input_layernorm.weight", 1, c->e);
        L("self_attn.q_proj.weight", 2, c->h * hd, c->e);
        L("self_attn.k_proj.weight", 2, c->kv * hd, c->e);
        L("self_attn.v_proj.weight", 2, c->kv * hd, c->e);
        L("self_attn.o_proj.weight", 2, c->e, c->h * hd);
        L("post_attention_layernorm.weight", 1, c->e);
        L("mlp.gate_proj.weight", 2, c->ff, c->e);
        L("mlp.up_proj.weight", 2, c->ff, c->e);
        L("mlp.down_proj.weight", 2, c->e, c->ff);
#undef L
    }
    stb_add(f, "model.norm.weight", c->dtype, 1, (int64_t[]){c->e}, seed);
    if (c->with_lm_head) stb_add(f, "lm_head.weight", c->dtype, 2, (int64_t[]){c->v, c->e}, seed);
}

static inline void stb_llama_config(const stb_llama *c, char *buf, size_t size) {
    snprintf(buf, size,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %d,"
             " \"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d,"
             " \"intermediate_size\": %d, \"vocab_size\": %d, \"rms_norm_eps\": 1e-05,"
             " \"rope_theta\": 10000.0, \"rope_scaling\": null, \"tie_word_embeddings\": %s,"
             " \"max_position_embeddings\": 128, \"bos_token_id\": 1, \"eos_token_id\": 2}",
             c->e, c->n_layer, c->h, c->kv, c->ff, c->v, c->tied ? "true" : "false");
}

/* Writes f as dir/model.safetensors plus dir/config.json. */
static inline int stb_write_model_dir(const char *dir, const stb_file *f, const stb_llama *c) {
    char path[4096], config[2048];
    mkdir(dir, 0755);
    size_t size;
    unsigned char *img = stb_image(f, 0, f->n, &size);
    int rc = stb_write_bytes(stb_path(path, sizeof path, dir, "model.safetensors"), img, size);
    free(img);
    stb_llama_config(c, config, sizeof config);
    if (rc == 0) rc = stb_write_text(stb_path(path, sizeof path, dir, "config.json"), config);
    return rc;
}

/* Writes f split into two shards at tensor index split, plus the index and config. */
static inline int stb_write_sharded_dir(const char *dir, const stb_file *f, int split, const stb_llama *c) {
    char path[4096], config[2048];
    static char index[65536];
    mkdir(dir, 0755);
    static const char *const shard_names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    int rc = 0;
    for (int s = 0; s < 2 && rc == 0; s++) {
        size_t size;
        unsigned char *img = s == 0 ? stb_image(f, 0, split, &size) : stb_image(f, split, f->n - split, &size);
        rc = stb_write_bytes(stb_path(path, sizeof path, dir, shard_names[s]), img, size);
        free(img);
    }
    size_t used = (size_t)snprintf(index, sizeof index, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (int i = 0; i < f->n; i++)
        used += (size_t)snprintf(index + used, sizeof index - used, "%s\"%s\": \"%s\"", i ? ", " : "", f->t[i].name,
                                 shard_names[i >= split]);
    snprintf(index + used, sizeof index - used, "}}");
    if (rc == 0) rc = stb_write_text(stb_path(path, sizeof path, dir, "model.safetensors.index.json"), index);
    stb_llama_config(c, config, sizeof config);
    if (rc == 0) rc = stb_write_text(stb_path(path, sizeof path, dir, "config.json"), config);
    return rc;
}

static inline int stb_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes a test's scratch directory (keep it with LQ_KEEP_TMP=1 to look at the files). */
static inline void stb_rmtree(const char *dir) {
    if (getenv("LQ_KEEP_TMP")) return;
    nftw(dir, stb_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
