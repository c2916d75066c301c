/*
 * libquant.h — the one public header of libquant.
 *
 * Flow: checkpoint (formats: GGUF, safetensors, HF config) → model view → calibration
 * statistics → pass (RTN, GPTQ, AWQ, SmoothQuant) → block codec → GGUF writer.
 *
 * Conventions
 *  - Every fallible function returns an lq_status (LQ_OK == 0) and, on failure, fills the
 *    caller's lq_error with a one-line message naming the file/tensor/position. Nothing in the
 *    library prints or calls exit().
 *  - Shapes follow GGUF: ne[0] is the contiguous (innermost) dimension, i.e. a row.
 *  - Type ids are ggml's type ids, so they can be written to GGUF as they are.
 */
#ifndef LIBQUANT_H
#define LIBQUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LQ_VERSION_MAJOR 0
#define LQ_VERSION_MINOR 1
#define LQ_VERSION_PATCH 0
#define LQ_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------- */
typedef enum lq_status {
    LQ_OK = 0,
    LQ_ERR_INVALID = 1,     /* bad argument from the caller (wrong shape, bad option) */
    LQ_ERR_IO = 2,          /* open/read/write/rename/fsync failed */
    LQ_ERR_FORMAT = 3,      /* malformed input file (truncated, lying header, bad JSON) */
    LQ_ERR_UNSUPPORTED = 4, /* valid but not supported (architecture, dtype, option) */
    LQ_ERR_NOMEM = 5,
    LQ_ERR_NUMERIC = 6,     /* NaN/Inf in data, non-finite result */
    LQ_ERR_INTERRUPTED = 7, /* SIGINT/SIGTERM observed */
} lq_status;

#define LQ_ERROR_MSG_MAX 1024
typedef struct lq_error {
    lq_status code;
    char msg[LQ_ERROR_MSG_MAX];
} lq_error;

/* Short name of a status ("format error", ...). */
const char *lq_status_name(lq_status s);
/* Clears an error record (code = LQ_OK, empty message). */
void lq_error_clear(lq_error *err);

/* ------------------------------------------------------------------------------------------
 * Build information
 * ---------------------------------------------------------------------------------------- */
const char *lq_version(void);
/* Human-readable list of compiled-in features, e.g. "cuda=yes blas=openblas simd=avx512". */
const char *lq_build_features(void);
/* Best SIMD level usable on this CPU at run time: "scalar", "avx2", "avx512", "avx512vnni". */
const char *lq_cpu_simd_level(void);

/* CUDA devices visible to this build (0 when built without CUDA or none present). */
int lq_cuda_device_count(void);
const char *lq_cuda_device_name(int index);

/* ------------------------------------------------------------------------------------------
 * Tensor types (ggml type ids) and their traits
 * ---------------------------------------------------------------------------------------- */
typedef enum lq_type {
    LQ_TYPE_F32 = 0,
    LQ_TYPE_F16 = 1,
    LQ_TYPE_Q4_0 = 2,
    LQ_TYPE_Q4_1 = 3,
    LQ_TYPE_Q5_0 = 6,
    LQ_TYPE_Q5_1 = 7,
    LQ_TYPE_Q8_0 = 8,
    LQ_TYPE_Q8_1 = 9,
    LQ_TYPE_Q2_K = 10,
    LQ_TYPE_Q3_K = 11,
    LQ_TYPE_Q4_K = 12,
    LQ_TYPE_Q5_K = 13,
    LQ_TYPE_Q6_K = 14,
    LQ_TYPE_Q8_K = 15,
    LQ_TYPE_IQ2_XXS = 16,
    LQ_TYPE_IQ2_XS = 17,
    LQ_TYPE_IQ3_XXS = 18,
    LQ_TYPE_IQ1_S = 19,
    LQ_TYPE_IQ4_NL = 20,
    LQ_TYPE_IQ3_S = 21,
    LQ_TYPE_IQ2_S = 22,
    LQ_TYPE_IQ4_XS = 23,
    LQ_TYPE_I8 = 24,
    LQ_TYPE_I16 = 25,
    LQ_TYPE_I32 = 26,
    LQ_TYPE_I64 = 27,
    LQ_TYPE_F64 = 28,
    LQ_TYPE_IQ1_M = 29,
    LQ_TYPE_BF16 = 30,
    LQ_TYPE_TQ1_0 = 34,
    LQ_TYPE_TQ2_0 = 35,
    LQ_TYPE_COUNT = 39
} lq_type;

typedef struct lq_type_traits {
    const char *name;   /* ggml's name: "f32", "q4_0", "q4_K", "iq4_xs", ... */
    int id;             /* == the lq_type value */
    int block_size;     /* elements per block (1 for plain types) */
    size_t block_bytes; /* bytes per block */
    double bpw;         /* bits per weight = 8 * block_bytes / block_size */
    bool is_quantized;  /* block format */
    bool has_codec;     /* libquant can encode and decode it */
    bool activation_only; /* Q8_1, Q8_K: never stored in files */
} lq_type_traits;

/* NULL for ids that are not a valid (known, non-removed) ggml type. */
const lq_type_traits *lq_type_get(int type_id);
/* Case-insensitive lookup by ggml name ("Q4_K", "q4_k", "F16"); -1 if unknown. */
int lq_type_from_name(const char *name);
/* Bytes of one row of n_per_row elements; 0 if n_per_row is not a multiple of the block size
 * or the type is unknown. */
size_t lq_row_size(lq_type type, int64_t n_per_row);

/* ------------------------------------------------------------------------------------------
 * Half-precision conversion (round to nearest even; scalar reference + F16C/AVX-512 paths
 * picked at run time)
 * ---------------------------------------------------------------------------------------- */
uint16_t lq_fp32_to_fp16(float f);
float lq_fp16_to_fp32(uint16_t h);
uint16_t lq_fp32_to_bf16(float f);
float lq_bf16_to_fp32(uint16_t h);
void lq_convert_fp16_to_fp32(const uint16_t *src, float *dst, size_t n);
void lq_convert_fp32_to_fp16(const float *src, uint16_t *dst, size_t n);
void lq_convert_bf16_to_fp32(const uint16_t *src, float *dst, size_t n);
void lq_convert_fp32_to_bf16(const float *src, uint16_t *dst, size_t n);

/* ------------------------------------------------------------------------------------------
 * GGUF v3 reader (mmapped; every count, length and offset validated against the file size)
 * ---------------------------------------------------------------------------------------- */
typedef enum lq_gguf_type {
    LQ_GGUF_UINT8 = 0,
    LQ_GGUF_INT8 = 1,
    LQ_GGUF_UINT16 = 2,
    LQ_GGUF_INT16 = 3,
    LQ_GGUF_UINT32 = 4,
    LQ_GGUF_INT32 = 5,
    LQ_GGUF_FLOAT32 = 6,
    LQ_GGUF_BOOL = 7,
    LQ_GGUF_STRING = 8,
    LQ_GGUF_ARRAY = 9,
    LQ_GGUF_UINT64 = 10,
    LQ_GGUF_INT64 = 11,
    LQ_GGUF_FLOAT64 = 12,
    LQ_GGUF_TYPE_COUNT = 13
} lq_gguf_type;

#define LQ_GGUF_DEFAULT_ALIGNMENT 32
#define LQ_MAX_DIMS 4
#define LQ_MAX_NAME 64 /* GGML_MAX_NAME: names are < 64 bytes */

typedef struct lq_str {
    const char *ptr; /* not NUL-terminated when it points into a mapped file */
    uint64_t len;
} lq_str;

typedef struct lq_gguf lq_gguf;

typedef struct lq_gguf_tensor_info {
    char name[LQ_MAX_NAME]; /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[LQ_MAX_DIMS]; /* trailing dims are 1 */
    lq_type type;
    uint64_t offset;  /* relative to the data section */
    uint64_t nbytes;
    const void *data; /* into the mapping */
} lq_gguf_tensor_info;

/* Accepts versions 3 and 2 (same layout); others give LQ_ERR_UNSUPPORTED. Malformed files give
 * LQ_ERR_FORMAT with one line "<path>: <item>: <problem> [at offset N]"; open/mmap failures
 * LQ_ERR_IO. Tensors may be stored in any order but must be aligned, inside the file and not
 * overlap. A file without tensors may end right after its kv block. */
lq_status lq_gguf_open(const char *path, lq_gguf **out, lq_error *err);
/* Parses a GGUF image held in memory (not copied; must outlive the handle). Used by fuzzers. */
lq_status lq_gguf_open_memory(const void *data, size_t size, const char *name, lq_gguf **out,
                              lq_error *err);
void lq_gguf_close(lq_gguf *g);

const char *lq_gguf_path(const lq_gguf *g);
uint32_t lq_gguf_version(const lq_gguf *g);
uint32_t lq_gguf_alignment(const lq_gguf *g);
uint64_t lq_gguf_data_offset(const lq_gguf *g); /* file offset of the data section */
uint64_t lq_gguf_file_size(const lq_gguf *g);

int64_t lq_gguf_n_kv(const lq_gguf *g);
int64_t lq_gguf_find_key(const lq_gguf *g, const char *key); /* -1 if absent; O(log n) */
lq_str lq_gguf_key(const lq_gguf *g, int64_t i);
lq_gguf_type lq_gguf_kv_type(const lq_gguf *g, int64_t i);
/* For arrays: element type and count (LQ_GGUF_TYPE_COUNT / 0 for non-arrays). */
lq_gguf_type lq_gguf_arr_type(const lq_gguf *g, int64_t i);
uint64_t lq_gguf_arr_n(const lq_gguf *g, int64_t i);
/* Raw little-endian element data of a scalar or a non-string array (NULL for strings). It
 * points into the file and may be unaligned: memcpy the values out. */
const void *lq_gguf_kv_data(const lq_gguf *g, int64_t i);
/* String value of a STRING kv, or element j of a string array (O(1)); {NULL, 0} for another
 * type or j out of range. */
lq_str lq_gguf_get_str(const lq_gguf *g, int64_t i);
lq_str lq_gguf_arr_str(const lq_gguf *g, int64_t i, uint64_t j);
/* Typed scalar getters; each widens any integer/float/bool scalar that fits and returns
 * LQ_ERR_FORMAT (with a message naming the key) when the kv has another type. Precisely:
 * u64 takes unsigned ints, bool, and signed ints >= 0; i64 takes signed ints, bool, and unsigned
 * ints <= INT64_MAX; f64 takes every integer, float and bool; bool takes bool and integers
 * equal to 0 or 1. Floats are never converted to integers. Strings/arrays: LQ_ERR_FORMAT. */
lq_status lq_gguf_get_u64(const lq_gguf *g, int64_t i, uint64_t *v, lq_error *err);
lq_status lq_gguf_get_i64(const lq_gguf *g, int64_t i, int64_t *v, lq_error *err);
lq_status lq_gguf_get_f64(const lq_gguf *g, int64_t i, double *v, lq_error *err);
lq_status lq_gguf_get_bool(const lq_gguf *g, int64_t i, bool *v, lq_error *err);
/* Size in bytes of one value of a scalar gguf type (0 for STRING/ARRAY). */
size_t lq_gguf_type_size(lq_gguf_type t);
const char *lq_gguf_type_name(lq_gguf_type t);

int64_t lq_gguf_n_tensors(const lq_gguf *g);
const lq_gguf_tensor_info *lq_gguf_tensor(const lq_gguf *g, int64_t i);
int64_t lq_gguf_find_tensor(const lq_gguf *g, const char *name); /* -1 if absent; O(log n) */

/* ------------------------------------------------------------------------------------------
 * GGUF v3 writer: metadata in memory, tensor data streamed in info order, written to a
 * temporary file in the destination directory, fsynced and renamed by lq_gguf_writer_finish.
 * ---------------------------------------------------------------------------------------- */
typedef struct lq_gguf_writer lq_gguf_writer;

/* Creates "<path>.tmp.XXXXXX" at once (LQ_ERR_IO naming path when the directory is missing or
 * not writable). Argument errors (LQ_ERR_INVALID) leave the writer usable; after an I/O error or
 * an over-long write the temporary file is removed and every later call returns that error.
 * Either way the caller ends with lq_gguf_writer_finish or lq_gguf_writer_abort. Setting
 * general.alignment (u32, nonzero power of two; anything else is refused) changes the layout. */
lq_status lq_gguf_writer_open(const char *path, lq_gguf_writer **out, lq_error *err);
/* Setting a key twice replaces its value (order of first insertion is kept). Metadata and
 * tensors are fixed once the first lq_gguf_writer_write (which writes the header) happened. */
lq_status lq_gguf_writer_set_scalar(lq_gguf_writer *w, const char *key, lq_gguf_type type,
                                    const void *value, lq_error *err);
lq_status lq_gguf_writer_set_u32(lq_gguf_writer *w, const char *key, uint32_t v, lq_error *err);
lq_status lq_gguf_writer_set_f32(lq_gguf_writer *w, const char *key, float v, lq_error *err);
lq_status lq_gguf_writer_set_bool(lq_gguf_writer *w, const char *key, bool v, lq_error *err);
lq_status lq_gguf_writer_set_str(lq_gguf_writer *w, const char *key, const char *s, uint64_t len,
                                 lq_error *err);
/* Array of scalar elements (little-endian, elem_type size each). */
lq_status lq_gguf_writer_set_arr(lq_gguf_writer *w, const char *key, lq_gguf_type elem_type,
                                 const void *data, uint64_t n, lq_error *err);
lq_status lq_gguf_writer_set_arr_str(lq_gguf_writer *w, const char *key, const lq_str *strs,
                                     uint64_t n, lq_error *err);
/* Copies kv i of a reader (any type) under its own key. */
lq_status lq_gguf_writer_copy_kv(lq_gguf_writer *w, const lq_gguf *src, int64_t i, lq_error *err);
/* LQ_OK also when the key is absent; LQ_ERR_INVALID once data was written. */
lq_status lq_gguf_writer_remove_key(lq_gguf_writer *w, const char *key);
/* Declares a tensor; offsets follow declaration order. */
lq_status lq_gguf_writer_add_tensor(lq_gguf_writer *w, const char *name, uint32_t n_dims,
                                    const int64_t *ne, lq_type type, lq_error *err);
/* Appends bytes of the current tensor (tensors in declaration order; a tensor may be written in
 * several pieces; when its byte count is reached the writer pads and moves to the next, so one
 * piece may also span several tensors). The header is written on the first call. Bytes beyond
 * the last declared tensor are an error. Tensor data is never held in memory. */
lq_status lq_gguf_writer_write(lq_gguf_writer *w, const void *data, size_t n, lq_error *err);
/* Checks every tensor was written completely, fsyncs, renames into place (mode 0644, replacing
 * an existing file atomically), frees w. On any failure nothing is left at path or beside it. */
lq_status lq_gguf_writer_finish(lq_gguf_writer *w, lq_error *err);
/* Removes the temporary file and frees w (safe on NULL). */
void lq_gguf_writer_abort(lq_gguf_writer *w);

/* ------------------------------------------------------------------------------------------
 * safetensors (single file or sharded via model.safetensors.index.json; mmapped)
 * ---------------------------------------------------------------------------------------- */
typedef struct lq_safetensors lq_safetensors;

typedef struct lq_st_tensor {
    const char *name;      /* NUL-terminated, owned by the handle */
    const char *file;      /* shard path it lives in */
    lq_type type;          /* F32, F16 or BF16 */
    uint32_t n_dims;
    int64_t shape[LQ_MAX_DIMS]; /* safetensors (row-major, outermost first) order */
    uint64_t nbytes;
    const void *data;      /* into the mapping; 8-byte aligned only when the file's header length
                            * is a multiple of 8 (the reference writer pads it; not required) */
} lq_st_tensor;

/* path: a .safetensors file, an index .json, or a directory holding either. */
lq_status lq_safetensors_open(const char *path, lq_safetensors **out, lq_error *err);
lq_status lq_safetensors_open_memory(const void *data, size_t size, const char *name,
                                     lq_safetensors **out, lq_error *err);
void lq_safetensors_close(lq_safetensors *st);
int64_t lq_safetensors_n_tensors(const lq_safetensors *st);
const lq_st_tensor *lq_safetensors_tensor(const lq_safetensors *st, int64_t i);
const lq_st_tensor *lq_safetensors_find(const lq_safetensors *st, const char *name);
/* __metadata__ entries (string → string) of the first shard; NULL when absent. */
int64_t lq_safetensors_n_metadata(const lq_safetensors *st);
const char *lq_safetensors_metadata_key(const lq_safetensors *st, int64_t i);
const char *lq_safetensors_metadata_value(const lq_safetensors *st, int64_t i);

/* ------------------------------------------------------------------------------------------
 * Model description (architecture + hyperparameters), from HF config.json or GGUF keys
 * ---------------------------------------------------------------------------------------- */
typedef enum lq_arch { LQ_ARCH_LLAMA = 0, LQ_ARCH_MISTRAL = 1, LQ_ARCH_QWEN2 = 2 } lq_arch;
typedef enum lq_rope_scaling { LQ_ROPE_SCALING_NONE = 0, LQ_ROPE_SCALING_LLAMA3 = 1 } lq_rope_scaling;
/* How Q/K output rows are ordered for RoPE: HF "rotate-half" (pairs i, i+hd/2) or GGUF/Meta
 * interleaved (pairs 2i, 2i+1). */
typedef enum lq_rope_layout { LQ_ROPE_HALVES = 0, LQ_ROPE_INTERLEAVED = 1 } lq_rope_layout;

typedef struct lq_hparams {
    lq_arch arch;
    char arch_name[32];    /* "llama", "mistral", "qwen2" as given by the source */
    int64_t n_vocab;
    int64_t n_embd;        /* hidden_size */
    int64_t n_layer;
    int64_t n_head;
    int64_t n_head_kv;
    int64_t head_dim;
    int64_t n_ff;          /* intermediate_size */
    int64_t n_ctx_train;   /* max_position_embeddings */
    float rope_theta;
    float rms_eps;
    lq_rope_scaling rope_scaling;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int64_t rope_orig_ctx;
    bool tie_embeddings;
    bool attn_bias;        /* q/k/v biases (qwen2) */
    bool attn_out_bias;
    bool mlp_bias;
    int64_t sliding_window; /* mistral; 0 = none */
    int64_t bos_token_id, eos_token_id; /* -1 when unknown */
} lq_hparams;

/* Parses a config.json text (name is used in messages). */
lq_status lq_hparams_from_config_json(const char *json, size_t len, const char *name,
                                      lq_hparams *hp, lq_error *err);
lq_status lq_hparams_from_gguf(const lq_gguf *g, lq_hparams *hp, lq_error *err);

/* ------------------------------------------------------------------------------------------
 * Model view: a checkpoint (HF directory or GGUF file) seen as canonical GGUF-named tensors
 * (token_embd.weight, blk.N.attn_q.weight, ...) with GGUF ne order, mmapped, never copied.
 * ---------------------------------------------------------------------------------------- */
typedef struct lq_model lq_model;

typedef struct lq_tensor {
    char name[LQ_MAX_NAME];     /* canonical GGUF name */
    const char *source_name;    /* name in the source file (HF name for safetensors) */
    const char *file;           /* file the bytes live in */
    lq_type type;
    uint32_t n_dims;
    int64_t ne[LQ_MAX_DIMS];    /* GGUF order: ne[0] = row length */
    uint64_t nbytes;
    const void *data;
    int layer;                  /* block index for blk.N.*, else -1 */
} lq_tensor;

typedef enum lq_model_source { LQ_SOURCE_HF = 0, LQ_SOURCE_GGUF = 1 } lq_model_source;

/* path: an HF directory (config.json + model.safetensors or its index; tokenizer.json optional),
 * a .safetensors/.index.json file with config.json beside it, or a GGUF file (any tensor types).
 * Every tensor that the hyperparameters imply must exist with the implied shape (else
 * LQ_ERR_FORMAT naming tensor, actual and expected shape); HF checkpoints may hold nothing else,
 * GGUF files may add non-block tensors (rope_freqs.weight). Tied embeddings: an HF checkpoint
 * storing only lm_head.weight serves it as token_embd.weight (tie_embeddings set); a tied one
 * storing both keeps token_embd only; output.weight is absent whenever tie_embeddings is set.
 * Tensors are ordered token_embd, blocks by layer, output_norm, output (HF) or as in the file
 * (GGUF). */
lq_status lq_model_open(const char *path, lq_model **out, lq_error *err);
void lq_model_close(lq_model *m);
lq_model_source lq_model_source_kind(const lq_model *m);
const char *lq_model_path(const lq_model *m);
const lq_hparams *lq_model_hparams(const lq_model *m);
/* Q/K rows as stored in the source: LQ_ROPE_HALVES for HF, LQ_ROPE_INTERLEAVED for GGUF llama
 * and mistral files (the converter permuted them). qwen2 uses NEOX RoPE, which pairs i with
 * i + hd/2 in both HF and GGUF files, so a qwen2 model reports LQ_ROPE_HALVES from either source
 * (and a GGUF writer must not permute qwen2 rows). */
lq_rope_layout lq_model_rope_layout(const lq_model *m);
int64_t lq_model_n_tensors(const lq_model *m);
const lq_tensor *lq_model_tensor(const lq_model *m, int64_t i);
const lq_tensor *lq_model_find(const lq_model *m, const char *name);
const lq_gguf *lq_model_gguf(const lq_model *m);                /* NULL for HF */
const lq_safetensors *lq_model_safetensors(const lq_model *m);  /* NULL for GGUF */
/* tokenizer.json path of an HF directory (NULL when absent or for GGUF). */
const char *lq_model_tokenizer_json(const lq_model *m);
/* Scans every tensor's values (any type, decoded) for NaN/Inf: LQ_ERR_NUMERIC naming the first
 * tensor and element found, LQ_OK when all are finite. Reads the whole model: for diagnosis
 * after a non-finite result, not for every run. */
lq_status lq_model_check_finite(const lq_model *m, lq_error *err);

/* Maps an HF tensor name to its canonical GGUF name; LQ_ERR_UNSUPPORTED for unknown names.
 * Buffers that hold no weights (model.layers.N.self_attn.rotary_emb.inv_freq) give LQ_OK with
 * out set to "": callers skip them. */
lq_status lq_hf_to_gguf_name(const char *hf_name, char out[LQ_MAX_NAME], lq_error *err);

/* ------------------------------------------------------------------------------------------
 * Block codecs. One implementation per format, shared by the row quantizers, GPTQ and the
 * CUDA kernels: fit (block parameters from values + importance), round (values → integer
 * codes on that fixed grid), encode (codes + parameters → block bytes), decode.
 * ---------------------------------------------------------------------------------------- */

/* Parameters of one block (legacy formats, IQ4_NL: 32 elements) or super-block (K-quants,
 * IQ4_XS: 256 elements) after fitting. Holds both the values the reference encoder keeps
 * using (unrounded float scale and its inverse) and what is stored (fp16 bits, 6-bit codes). */
#define LQ_GRID_MAX_SUB 16
typedef struct lq_grid {
    int type;            /* lq_type */
    int n;               /* elements covered: block_size of the type */
    int n_sub;           /* sub-blocks with their own scale (1 for legacy formats) */
    int sub_size;        /* elements per sub-block */
    int qmin, qmax;      /* code range produced by round() */
    /* Effective dequantization per sub-block: x ≈ scale[s] * value(code) - min[s], where
     * value(code) is the code itself, or the IQ4 codebook entry for IQ4 types. */
    float scale[LQ_GRID_MAX_SUB];
    float min[LQ_GRID_MAX_SUB];
    /* Encoder state (meaning is per format; see libquant/codecs/). */
    float d, dmin, id;
    uint16_t d_bits, dmin_bits;      /* fp16 bits as stored */
    uint8_t sc[LQ_GRID_MAX_SUB];     /* stored sub-block scale codes */
    uint8_t mn[LQ_GRID_MAX_SUB];     /* stored sub-block min codes */
    int8_t sc_signed[LQ_GRID_MAX_SUB]; /* Q6_K int8 scales, Q3_K signed scales */
    /* K-quants: the codes the search left. Where a sub-block's stored scale d̂·sc is 0,
     * llama.cpp stores these unchanged instead of requantizing (with an imatrix they depend on
     * the importance values, which round() does not see). */
    uint8_t keep[256];
} lq_grid;

/* Fits the grid of one block/super-block. x: grid->n values. importance: per-element importance
 * (imatrix column values) or NULL; sigma2: mean square of the whole row (used by the legacy
 * imatrix weightings as llama.cpp does; IQ4 and K-quants weight with their own block's mean
 * square and ignore it). Returns LQ_ERR_UNSUPPORTED for types without a codec, and
 * LQ_ERR_NUMERIC when a stored scale is not finite in fp16 (values too large for the type,
 * e.g. |x| > ~8.3e6 for Q8_0): such a grid must not be encoded. */
lq_status lq_grid_fit(lq_type type, const float *x, const float *importance, float sigma2,
                      lq_grid *grid);
/* Rounds x[first .. first+n-1] (x is the whole block) onto the fixed grid, writing
 * codes[first .. first+n-1]: the same rounding the reference encoder performs after fitting.
 * Codes are always in [qmin, qmax], also for values outside the fitted range (they clamp to
 * the nearest end). A range outside the block does nothing. */
void lq_grid_round(const lq_grid *grid, const float *x, int first, int n, int32_t *codes);
/* The dequantized value of code 'code' at element e of the block, exactly as the decoder
 * computes it; NaN for e outside the block or a code outside [qmin, qmax]. */
float lq_grid_value(const lq_grid *grid, int e, int32_t code);
/* Packs codes (grid->n of them) with the grid's parameters into one block. */
void lq_grid_encode(const lq_grid *grid, const int32_t *codes, void *block);

/* Quantizes n_rows rows of n_per_row floats, block by block through fit → round → encode
 * (F32/F16/BF16: conversion). importance: n_per_row per-column weights (the imatrix row) or
 * NULL; Q8_0 ignores it, as llama.cpp does. Errors: LQ_ERR_NUMERIC for NaN/Inf input (naming
 * row and column), |x| > 1e15 for fp16-scaled types (no such block can hold it; naming row and
 * column), NaN/Inf importance, or a block whose fp16 scale would overflow (naming row and
 * block; llama-quantize refuses such rows too; F16 values beyond 65504 likewise);
 * LQ_ERR_INVALID for a width that is not a multiple of the block size (naming type and width),
 * negative importance or bad shapes; LQ_ERR_UNSUPPORTED for types without a codec. The error
 * names the first failing row at any thread count; dst is unspecified after a failure. */
lq_status lq_quantize_rows(lq_type type, const float *src, void *dst, int64_t n_rows,
                           int64_t n_per_row, const float *importance, lq_error *err);
/* Same, rows split over n_threads (0 = all cores); output identical to single-threaded. */
lq_status lq_quantize_rows_mt(lq_type type, const float *src, void *dst, int64_t n_rows,
                              int64_t n_per_row, const float *importance, int n_threads,
                              lq_error *err);
/* Decodes n_rows rows (any codec type with a decoder, and F32/F16/BF16). A block that decodes
 * to Inf/NaN (its stored scale is not finite) is LQ_ERR_FORMAT naming row, block and column. */
lq_status lq_dequantize_rows(lq_type type, const void *src, float *dst, int64_t n_rows,
                             int64_t n_per_row, lq_error *err);

/* Error helpers over a row: weighted MSE Σw(a−b)²/Σw (weights NULL = plain MSE; 0 when Σw = 0)
 * and max |a-b|. */
double lq_row_mse(const float *a, const float *b, int64_t n, const float *weights);
double lq_row_max_err(const float *a, const float *b, int64_t n);

/* ------------------------------------------------------------------------------------------
 * CPU kernels (runtime-dispatched: scalar reference, AVX2, AVX-512/VNNI)
 * ---------------------------------------------------------------------------------------- */
typedef enum lq_simd { LQ_SIMD_SCALAR = 0, LQ_SIMD_AVX2 = 1, LQ_SIMD_AVX512 = 2 } lq_simd;
/* Force a SIMD level (tests compare every path with the scalar reference); levels above what
 * the CPU supports are clamped. Returns the level in effect. */
lq_simd lq_kernels_set_simd(lq_simd level);
lq_simd lq_kernels_simd(void);
/* Dequantize one row of any codec type (and F32/F16/BF16) to floats: bit-identical to
 * llama.cpp's to_float on every path. */
void lq_kernel_dequant_row(lq_type type, const void *src, float *dst, int64_t n);
/* Dot product of one quantized row with float activations. */
float lq_kernel_dot_f32(lq_type type, const void *row, const float *x, int64_t n);
/* The activation type a weight type is multiplied with, as llama.cpp pairs them: Q8_0 for
 * Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1 (its s = d·Σq carries the min term), Q8_K for the
 * K-quants and IQ4_XS, the type itself for F32/F16/BF16. LQ_TYPE_COUNT for types without
 * kernels. */
lq_type lq_kernel_vec_dot_type(lq_type type);
/* Quantizes activations to that vec-dot type (n multiple of its block size; x finite): the
 * bytes are identical to llama.cpp's quantize_row_q8_0/q8_1/q8_K reference on every path. */
void lq_kernel_quantize_act(lq_type act_type, const float *x, void *dst, int64_t n);
/* Dot product of a quantized weight row with activations from lq_kernel_quantize_act
 * (llama.cpp's vec_dot: exact integer sum per block, then scaled). Unknown types or n not a
 * multiple of the block size give NaN (lq_kernel_dequant_row then writes NaNs). */
float lq_kernel_dot_q(lq_type type, const void *row, const void *act, int64_t n);
/* Matrix × vector: out[r] = lq_kernel_dot_q(type, w + r·row_stride, act, n) for r < n_rows,
 * bit for bit, with rows split over n_threads (0 = all cores; contiguous ranges) and the
 * activation side shared between pairs of rows. Unknown types or bad n give NaNs. */
void lq_kernel_matvec_q(lq_type type, const void *w, size_t row_stride, int64_t n_rows,
                        const void *act, int64_t n, float *out, int n_threads);
/* The same for rows [r0, r1) on the calling thread (out[r] for r in that range): what a
 * caller's own thread pool runs per share of rows. */
void lq_kernel_matvec_q_rows(lq_type type, const void *w, size_t row_stride, int64_t r0, int64_t r1,
                             const void *act, int64_t n, float *out);
/* Rows × tokens (a batch's product, on the calling thread): y[t·y_stride + r] =
 * lq_kernel_dot_q(type, w + r·row_stride, act + t·act_stride, n) bit for bit, for r < n_rows and
 * t < n_tok. Where a path has a kernel for the type, each block of a tile of rows is unpacked
 * once for several tokens; otherwise rows are taken 16 at a time (kept in cache while the
 * tokens pass). Unknown types or bad n give NaNs. */
void lq_kernel_gemm_q(lq_type type, const void *w, size_t row_stride, int64_t n_rows, const void *act,
                      size_t act_stride, int64_t n_tok, int64_t n, float *y, int64_t y_stride);

/* Codec and kernel benchmark (`lq bench codecs`). Every figure is the best of `passes` timed
 * passes after one untimed pass. */
typedef struct lq_bench_opts {
    int n_threads;        /* threads for the multi-threaded figures (0 = all cores) */
    size_t weight_bytes;  /* weights streamed by the dot-product test (make it >> caches) */
    int passes;
    int64_t encode_rows;  /* rows of 4096 floats for the encode test (0 = 64) */
    bool encode;          /* run the encode test (lq_quantize_rows / lq_quantize_rows_mt) */
} lq_bench_opts;
/* A throughput measured two ways: bytes per wall-clock second, and bytes per second of the
 * process's CPU time divided by the threads used — the rate the code reaches while it runs,
 * which stays meaningful on a machine shared with other work (time slicing). */
typedef struct lq_bench_rate {
    double wall, cpu;
} lq_bench_rate;
typedef struct lq_codec_bench {
    lq_type type;
    lq_bench_rate encode_1t, encode_mt; /* f32 input bytes/s; wall < 0: codec refused (note) */
    lq_bench_rate decode;               /* f32 output bytes/s of lq_kernel_dequant_row, 1 thread */
    lq_bench_rate dot_1t, dot_mt;       /* weight bytes/s of lq_kernel_dot_q × vec-dot activations */
    lq_bench_rate matvec_1t, matvec_mt; /* weight bytes/s of lq_kernel_matvec_q */
    lq_bench_rate read_bw;              /* plain streaming read of the same weights, n_threads,
                                         * passes interleaved with the n_threads dot passes */
    size_t weight_bytes;                /* bytes of weights the dot test streamed */
    char note[256];
} lq_codec_bench;
/* Streaming read of a bytes-sized buffer (make it >> the last-level cache) on n_threads
 * threads: the best of `passes` timed passes after an untimed one, with the widest loads the
 * kernels use and software prefetch. */
typedef struct lq_pool lq_pool;
lq_status lq_bench_read_bandwidth(size_t bytes, int n_threads, int passes, lq_bench_rate *rate,
                                  lq_error *err);
/* The same probe keeping its buffer (allocated and written once), so that it can run again
 * and again between timed runs, on a given pool (the runtime's, so the bandwidth is measured
 * by the threads that run the model; see lq_runtime_bench): lq_bw_probe_run gives the best of
 * `passes` timed passes. */
typedef struct lq_bw_probe lq_bw_probe;
lq_status lq_bw_probe_create(size_t bytes, lq_bw_probe **out, lq_error *err);
lq_bench_rate lq_bw_probe_run(lq_bw_probe *p, lq_pool *pool, int n_threads, int passes);
void lq_bw_probe_free(lq_bw_probe *p);
lq_status lq_bench_codec(lq_type type, const lq_bench_opts *o, lq_codec_bench *out,
                         lq_error *err);

/* ------------------------------------------------------------------------------------------
 * Thread pool (row-parallel work); deterministic: work is split by index, not by timing.
 * ---------------------------------------------------------------------------------------- */
typedef void (*lq_parallel_fn)(void *ctx, int64_t begin, int64_t end, int thread_index);
int lq_n_cpus(void);
/* Runs fn over [0, n) split into contiguous chunks on n_threads threads (0 = all cores). */
void lq_parallel_for(int64_t n, int n_threads, lq_parallel_fn fn, void *ctx);
/* Persistent workers for fine-grained loops (spin briefly, then sleep). lq_pool_run splits
 * [0, n) exactly as lq_parallel_for over min(n_threads, workers + 1) threads, the caller
 * included. lq_pool_create returns NULL on failure; lq_pool_run(NULL, ...) runs on the caller.
 * One caller thread at a time per pool. */
typedef struct lq_pool lq_pool;
lq_pool *lq_pool_create(int n_threads);
void lq_pool_run(lq_pool *p, int64_t n, int n_threads, lq_parallel_fn fn, void *ctx);
/* [0, n) in chunks of grain indices (the last may be shorter), each run exactly once by
 * whichever of min(n_threads, workers + 1) threads is free to claim it, the caller included:
 * when a thread is held up (a busy machine) the others take its share. Which thread runs a
 * chunk depends on timing, so fn's results must depend on the indices alone (thread_index
 * only picks per-thread scratch, < n_threads). */
void lq_pool_run_chunks(lq_pool *p, int64_t n, int64_t grain, int n_threads, lq_parallel_fn fn, void *ctx);
/* The same with chunks that start near n / (2·threads) and shrink, in multiples of grain, as
 * the work runs out (guided scheduling): few claims, and the threads finish within about one
 * grain of each other. The chunk boundaries depend on (n, grain, threads) alone. */
void lq_pool_run_guided(lq_pool *p, int64_t n, int64_t grain, int n_threads, lq_parallel_fn fn, void *ctx);
void lq_pool_free(lq_pool *p);

/* ------------------------------------------------------------------------------------------
 * Tokenizers (SentencePiece-style BPE and byte-level BPE), from GGUF keys or tokenizer.json
 *
 * GGUF: tokenizer.ggml.model "llama" (merges by token score, byte fallback <0xXX>, spaces as
 * U+2581, add_space_prefix) or "gpt2" (byte-to-unicode mapping, merges by rank, the
 * pre-tokenizer regexes of tokenizer.ggml.pre: default, gpt-2, llama-bpe/llama3, qwen2,
 * falcon, mpt, starcoder, refact, smollm, deepseek-llm, deepseek-coder, deepseek-v3, ...);
 * ids as llama.cpp's tokenizer gives them, with llama.cpp's defaults for absent keys.
 * tokenizer.json: model.type "BPE" either SentencePiece-style (byte_fallback, normalizer
 * Prepend "▁" + Replace " " → "▁") or byte-level (ByteLevel pre-tokenizer, optionally after
 * Split(regex) / Digits); ids as Hugging Face tokenizers gives them; added_tokens are special
 * tokens (control when "special", else user-defined); BOS/EOS/add_bos from the sibling
 * tokenizer_config.json, else from the post-processor template.
 * Special tokens are cut out of the text first, longest first: user-defined tokens always,
 * control/unknown tokens only when parse_special. A character without a token and without
 * byte tokens becomes the unknown token (consecutive ones fused into one, as HF does; llama.cpp
 * aborts there). Tokenizers are immutable after loading: lq_tokenize may run concurrently on
 * one tokenizer from several threads.
 * ---------------------------------------------------------------------------------------- */
typedef struct lq_tokenizer lq_tokenizer;

lq_status lq_tokenizer_from_gguf(const lq_gguf *g, lq_tokenizer **out, lq_error *err);
lq_status lq_tokenizer_from_json(const char *tokenizer_json_path, lq_tokenizer **out,
                                 lq_error *err);
void lq_tokenizer_free(lq_tokenizer *t);
int64_t lq_tokenizer_n_vocab(const lq_tokenizer *t);
int32_t lq_tokenizer_bos(const lq_tokenizer *t); /* -1 if none */
int32_t lq_tokenizer_eos(const lq_tokenizer *t);
bool lq_tokenizer_add_bos(const lq_tokenizer *t);
/* Tokenizes text[0..len). add_special: prepend BOS (append EOS) when the vocabulary asks for
 * it; parse_special: recognise control tokens in the text. *out is malloc'd (never NULL on
 * success, even for 0 tokens). Invalid UTF-8 is accepted (byte-level: each bad byte reads as
 * U+FFFD, as llama.cpp does; SentencePiece-style: byte fallback). */
lq_status lq_tokenize(const lq_tokenizer *t, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t **out, int64_t *n_out, lq_error *err);
/* The text of one token as it appears in output (bytes; not NUL-terminated; empty for unused
 * tokens and ids out of range). Concatenated pieces give the text back (SentencePiece-style:
 * with the added leading space). */
lq_str lq_token_piece(const lq_tokenizer *t, int32_t id);
/* Writes the tokenizer.ggml.* keys for t (model, pre, tokens, scores, token_type, merges,
 * special ids, add_bos/add_eos/add_space_prefix) so that llama.cpp and lq_tokenizer_from_gguf
 * rebuild a tokenizer giving the same ids. A SentencePiece-style tokenizer.json gets scores
 * -rank for merge products (llama.cpp's score order then follows the merge order).
 * LQ_ERR_UNSUPPORTED for byte-level pre-tokenizers llama.cpp has no name for. */
lq_status lq_tokenizer_write_gguf(const lq_tokenizer *t, lq_gguf_writer *w, lq_error *err);

/* ------------------------------------------------------------------------------------------
 * Reference runtime (Llama family: llama, mistral, qwen2): see libquant/runtime/
 *
 * fp32 activations; weights stay as stored (mmapped, possibly quantized) and are multiplied
 * through the CPU kernels. Results do not depend on the thread count.
 * ---------------------------------------------------------------------------------------- */
typedef struct lq_runtime lq_runtime;
typedef enum lq_act_int8 {
    LQ_ACT_INT8_NONE = 0,
    LQ_ACT_INT8_PER_TOKEN = 1,
    LQ_ACT_INT8_PER_TENSOR = 2,
} lq_act_int8;
typedef struct lq_runtime_opts {
    int n_threads;   /* 0 = all cores */
    int n_ctx;       /* KV-cache capacity in tokens (0 = 512) */
    int n_batch;     /* tokens per prompt-processing batch (0 = 512) */
    /* Multiply quantized weights with fp32 activations (lq_kernel_dot_f32) instead of
     * quantizing the activations to the vec-dot type (llama.cpp's way): slower, exact up to
     * float rounding, for checks against a plain forward pass. */
    bool f32_activations;
    /* W8A8 evaluation: round every linear layer's input to int8 (symmetric, scale
     * max|x|/127) per token or per tensor (one scale per linear input and evaluated batch)
     * before the product, which then runs on those values exactly (as with f32_activations).
     * With Q8_0 weights this is int8 × int8 arithmetic, as a W8A8 deployment computes it. */
    lq_act_int8 act_int8;
} lq_runtime_opts;

/* Called with the input of each linear layer (before the matmul) when set: name is the
 * weight's canonical name, x is n_tokens × n_in row-major. */
typedef void (*lq_linear_hook)(void *ctx, const char *weight_name, const float *x,
                               int64_t n_tokens, int64_t n_in);

lq_status lq_runtime_create(const lq_model *m, const lq_runtime_opts *opts, lq_runtime **out,
                            lq_error *err);
void lq_runtime_free(lq_runtime *rt);
void lq_runtime_set_hook(lq_runtime *rt, lq_linear_hook hook, void *ctx);
/* Runs the linear layers' products on an opened device (NULL: the CPU again). Products there
 * use fp32 activations (compare with f32_activations); types without a device kernel stay on
 * the CPU. d must outlive the runtime's use of it. */
typedef struct lq_device_ctx lq_device_ctx; /* "CUDA backend / devices" below */
void lq_runtime_set_device(lq_runtime *rt, lq_device_ctx *d);
void lq_runtime_reset(lq_runtime *rt); /* clears the KV cache */
/* Evaluates n_tokens tokens at positions n_past.. (appending to the KV cache); writes logits
 * for every token (n_tokens × n_vocab) when logits != NULL, else only computes the cache.
 * Fails (LQ_ERR_INVALID) when the cache would overflow n_ctx or a token id is out of range. */
lq_status lq_runtime_eval(lq_runtime *rt, const int32_t *tokens, int64_t n_tokens, float *logits,
                          lq_error *err);
int64_t lq_runtime_n_vocab(const lq_runtime *rt);
int64_t lq_runtime_n_embd(const lq_runtime *rt);
int64_t lq_runtime_n_layer(const lq_runtime *rt);
int64_t lq_runtime_n_past(const lq_runtime *rt);
/* Bytes of weight data one token's forward pass reads (every linear matrix once, the output
 * head, norms and biases, one embedding row): the numerator of the memory-bandwidth bound of
 * token generation. */
uint64_t lq_runtime_weight_bytes(const lq_runtime *rt);
/* llama-bench's tests: n_tokens random tokens (the first = bos when bos >= 0) evaluated as one
 * prompt (gen false: pp), or generated one at a time (gen true: tg), from an empty cache; one
 * untimed run, then reps timed ones: ts[rep] = tokens per second. The KV cache must hold
 * n_tokens. With read_bw non-NULL, the runtime's threads also measure the read bandwidth
 * (lq_bw_probe over read_bw_bytes, best of 2 passes) right before the first timed run and
 * after each one: read_bw[rep] (bytes/s) is the mean of the probes on either side of run rep,
 * so the bandwidth bound of each run is taken in the same minute as the run itself. */
lq_status lq_runtime_bench(lq_runtime *rt, bool gen, int n_tokens, int reps, int32_t bos, double *ts,
                           double *read_bw, size_t read_bw_bytes, lq_error *err);
void lq_bench_mean_stddev(const double *x, int n, double *mean, double *stddev);

/* Layer at a time (calibration, GPTQ's sequential propagation). hidden holds n_seq sequences
 * of n_tokens rows of n_embd floats, back to back; each sequence is an independent causal
 * context at positions 0..n_tokens-1. These calls neither read nor change the KV cache.
 *  embed:  hidden = token embeddings of tokens[0 .. n_rows-1]
 *  layer:  hidden = decoder layer 'layer' applied to hidden (in place; hooks fire)
 *  logits: logits (n_rows × n_vocab) = output head (final norm + lm head) of hidden */
lq_status lq_runtime_embed(lq_runtime *rt, const int32_t *tokens, int64_t n_rows, float *hidden,
                           lq_error *err);
lq_status lq_runtime_layer(lq_runtime *rt, int64_t layer, float *hidden, int64_t n_seq,
                           int64_t n_tokens, lq_error *err);
lq_status lq_runtime_logits(lq_runtime *rt, const float *hidden, int64_t n_rows, float *logits,
                            lq_error *err);
/* Replaces the data of one weight matrix (canonical name, same shape) by caller-owned data of
 * any type, e.g. a layer's weights after quantization; data must outlive the runtime or the
 * next replacement. */
lq_status lq_runtime_set_weight(lq_runtime *rt, const char *name, lq_type type, const void *data,
                                lq_error *err);

/* Scoring helpers shared by `lq ppl` (llama-perplexity's definitions). */
/* Negative log-likelihood of target under softmax(logits) (max-shifted, double sum). */
double lq_nll(const float *logits, int64_t n_vocab, int32_t target);
/* llama.cpp's KL-divergence base row: n_vocab u16 log-probabilities over
 * [max_log_p - 16, max_log_p] plus (scale, min_log_prob) as two floats in the first 4 u16;
 * row length lq_kld_row_u16(n_vocab). Returns the NLL of target. */
size_t lq_kld_row_u16(int64_t n_vocab);
double lq_kld_encode_row(const float *logits, int64_t n_vocab, int32_t target, uint16_t *row);
/* Compares logits with a base row: KL(base || q) over entries with log p_base > -16,
 * NLL of target under both, whether the argmaxes agree, p(target) - p_base(target). */
typedef struct lq_kld_token {
    double kld, nll, nll_base, p_diff;
    bool same_top;
} lq_kld_token;
lq_kld_token lq_kld_score_row(const float *logits, int64_t n_vocab, int32_t target,
                              const uint16_t *base_row);

/* ------------------------------------------------------------------------------------------
 * Evaluation: perplexity and KL divergence (libquant/eval.c; llama-perplexity's method)
 *
 * The tokens are cut into chunks of n_ctx; each chunk is evaluated from an empty KV cache with
 * its first token replaced by BOS (when the vocabulary adds BOS), and only its second half is
 * scored: positions n_ctx/2 .. n_ctx-2 predicting the next token, n_ctx - 1 - n_ctx/2 tokens
 * per chunk, NLL accumulated in double. A KL-divergence base file (llama.cpp's logits file of
 * --kl-divergence-base) holds the scored tokens' log-probabilities: "_logits_", u32 n_ctx,
 * i32 n_vocab, i32 n_chunk, n_chunk·n_ctx i32 tokens, then one lq_kld_row_u16(n_vocab) row per
 * scored token. Comparing with it gives llama.cpp's KL-divergence statistics.
 * ---------------------------------------------------------------------------------------- */

/* A base file, mapped read-only. Every count is checked against the file size and every token
 * id against n_vocab; LQ_ERR_FORMAT "<path>: <problem>" for a truncated or lying file, LQ_ERR_IO
 * when it cannot be opened. Fields are read-only; rows of chunk c: rows + c·rows_per_chunk·row_u16. */
typedef struct lq_kld_base {
    int n_ctx;
    int32_t n_vocab, n_chunk;
    int rows_per_chunk;        /* n_ctx - 1 - n_ctx/2 */
    size_t row_u16;            /* lq_kld_row_u16(n_vocab) */
    const int32_t *tokens;     /* n_chunk × n_ctx */
    const uint16_t *rows;
    char *path;                /* private from here */
    void *map;
    size_t map_size;
} lq_kld_base;
lq_status lq_kld_base_open(const char *path, lq_kld_base *out, lq_error *err);
void lq_kld_base_close(lq_kld_base *b); /* zeroed or opened: both fine */

/* Writes a base file atomically: header and tokens (n_chunk × n_ctx) at open, then one row
 * per scored token in order (lq_kld_encode_row's output), all into PATH.tmp, which finish
 * syncs and renames to PATH (LQ_ERR_INVALID when the row count is not n_chunk·(n_ctx - 1 -
 * n_ctx/2)). finish and abort free w; abort removes PATH.tmp. */
typedef struct lq_kld_writer lq_kld_writer;
lq_status lq_kld_writer_open(const char *path, int n_ctx, int64_t n_vocab, int n_chunk,
                             const int32_t *tokens, lq_kld_writer **out, lq_error *err);
lq_status lq_kld_writer_add(lq_kld_writer *w, const uint16_t *row, lq_error *err);
lq_status lq_kld_writer_finish(lq_kld_writer *w, lq_error *err);
void lq_kld_writer_abort(lq_kld_writer *w);

/* The token stream to score and the token that replaces each chunk's first token. */
typedef struct lq_ppl_tokens {
    int32_t *tokens;           /* malloc'd; lq_ppl_tokens_free */
    int64_t n_tokens;
    int32_t bos;               /* -1: the first token stays */
    char *source;              /* the text or base file, for messages */
} lq_ppl_tokens;
/* A text file tokenized whole by the model's tokenizer (GGUF keys, or tokenizer.json beside an
 * HF checkpoint; LQ_ERR_FORMAT without one), BOS prepended when the vocabulary adds it. */
lq_status lq_ppl_tokens_from_text(const lq_model *m, const char *text_path, lq_ppl_tokens *out,
                                  lq_error *err);
/* A base file's tokens (LQ_ERR_INVALID when its n_vocab is not the model's). BOS from the
 * model's tokenizer; a model without one takes the file's first token as BOS. */
lq_status lq_ppl_tokens_from_kld(const lq_model *m, const lq_kld_base *base, lq_ppl_tokens *out,
                                 lq_error *err);
void lq_ppl_tokens_free(lq_ppl_tokens *t);

typedef struct lq_ppl_opts {
    int n_ctx;                 /* tokens per chunk, >= 4 (with kld_base: 0 or the file's) */
    int n_chunks;              /* score the first n_chunks chunks (0 = all there are) */
    const lq_kld_base *kld_base;  /* compare with this base (tokens from lq_ppl_tokens_from_kld) */
    const char *kld_base_out;  /* or save the scored log-probabilities as a base file here */
} lq_ppl_opts;

/* A mean and its standard error (0 below 11 samples, as llama.cpp prints it). */
typedef struct lq_mean_unc {
    double mean, unc;
} lq_mean_unc;

/* llama-perplexity's KL-divergence statistics (Q = the evaluated model). */
typedef struct lq_kld_stats {
    lq_mean_unc ppl, ppl_base;        /* PPL(Q), PPL(base) (the base's from its stored rows) */
    double cor;                       /* Cor(ln PPL(Q), ln PPL(base)) */
    lq_mean_unc log_ratio;            /* ln(PPL(Q)/PPL(base)) */
    lq_mean_unc ratio, diff;          /* PPL(Q)/PPL(base), PPL(Q) - PPL(base) */
    lq_mean_unc kld;                  /* per-token KL(base || Q) */
    lq_mean_unc p_diff, p_diff_rms;   /* Δp = Q(target) - base(target), and its RMS */
    lq_mean_unc same_top;             /* fraction of tokens whose top tokens agree */
    const float *kld_sorted;          /* n_scored per-token KLDs, ascending (final result only) */
    const float *p_diff_sorted;       /* n_scored Δp, ascending (final result only) */
} lq_kld_stats;

typedef struct lq_ppl_result {
    int n_ctx, n_chunk;        /* chunks scored */
    int64_t n_tokens;          /* tokens of the input (text or base file) */
    int64_t n_scored;          /* n_chunk · (n_ctx - 1 - n_ctx/2) */
    double mean_nll;           /* ln PPL */
    double nll_variance;       /* Σnll²/n - mean² (rounding can make it <= 0 for tiny runs) */
    lq_mean_unc log_ppl;       /* mean NLL and its standard error (0 below 11 tokens) */
    double ppl;                /* exp(mean_nll) */
    double ppl_unc;            /* llama-perplexity's final ±: ppl·sqrt(var/(n-1)) (0 if var <= 0) */
    double seconds;            /* evaluation time so far */
    bool has_kld;              /* opts.kld_base was given: kld holds the statistics */
    lq_kld_stats kld;
    float *values_;            /* private: the per-token KLDs and Δp */
} lq_ppl_result;
void lq_ppl_result_free(lq_ppl_result *r);
/* Linear interpolation between the two nearest order statistics of sorted[0..n) (fraction in
 * [0,1]; 0.5 = median). */
double lq_ppl_percentile(const float *sorted, int64_t n, double fraction);

/* Called after each chunk (1-based) with the running figures (kld_sorted/p_diff_sorted NULL). */
typedef void (*lq_ppl_progress_fn)(void *ctx, int chunk, int n_chunk, const lq_ppl_result *so_far);

/* The chunk count a run will score (validates opts against the tokens: without a base, at
 * least 2·n_ctx tokens, LQ_ERR_INVALID naming the source otherwise). */
lq_status lq_ppl_n_chunk(const lq_ppl_tokens *in, const lq_ppl_opts *opts, int *n_chunk,
                         lq_error *err);
/* Scores in->tokens with rt (created from m with n_ctx >= opts->n_ctx; its KV cache is reset
 * per chunk). Non-finite logits: the first non-finite weight of m (lq_model_check_finite), else
 * LQ_ERR_NUMERIC naming the chunk. A corrupt base row (non-finite scale) is LQ_ERR_FORMAT.
 * *res is filled on success (free with lq_ppl_result_free) and zeroed on failure. */
lq_status lq_ppl_run(const lq_model *m, lq_runtime *rt, const lq_ppl_tokens *in,
                     const lq_ppl_opts *opts, lq_ppl_progress_fn progress, void *progress_ctx,
                     lq_ppl_result *res, lq_error *err);

/* ------------------------------------------------------------------------------------------
 * Calibration statistics (calib/): per linear-layer input channel Σx² with token counts (the
 * importance matrix), Σ|x| and max|x| (AWQ, SmoothQuant). Files: llama.cpp's GGUF imatrix
 * layout (<weight>.in_sum2, <weight>.counts, imatrix.* keys) with our extra statistics as
 * additional tensors (<weight>.in_sum_abs, <weight>.in_max_abs); llama.cpp's legacy .dat too.
 *
 * llama.cpp's GGUF imatrix readers (llama-quantize, llama-imatrix --in-file) pick tensors by
 * the suffixes ".in_sum2", ".counts" (and, newer, ".in_sum") and ignore every other tensor, so
 * the extra tensors do not disturb them. Counts are token rows: every token of every chunk as
 * evaluated (BOS included), as llama-imatrix counts them.
 * ---------------------------------------------------------------------------------------- */
typedef struct lq_stats lq_stats;
typedef struct lq_stats_entry {
    const char *name;      /* canonical weight name, e.g. "blk.0.attn_q.weight" */
    int64_t n_in;          /* input channels (ne[0] of the weight) */
    int64_t n_experts;     /* 1 for dense layers */
    const float *sum_x2;   /* n_experts × n_in */
    const float *counts;   /* n_experts token counts (legacy .dat: the file's ncall divisor) */
    const float *sum_abs;  /* n_experts × n_in, or NULL (files from llama.cpp have none) */
    const float *max_abs;  /* n_experts × n_in, or NULL */
    bool legacy;           /* from a legacy .dat: counts = {ncall}, sum_x2 = mean x² · ncall */
} lq_stats_entry;

typedef enum lq_stats_format {
    LQ_STATS_GGUF = 0,       /* GGUF imatrix (ours or llama.cpp's) */
    LQ_STATS_LEGACY_DAT = 1, /* llama.cpp's legacy imatrix.dat */
} lq_stats_format;

/* File-level metadata (imatrix.* keys; for a legacy .dat: last_call and the dataset name). */
typedef struct lq_stats_meta {
    int64_t n_datasets;
    const char *const *datasets; /* imatrix.datasets: calibration text files */
    int64_t chunk_count;         /* imatrix.chunk_count (legacy: last_call; -1 when absent) */
    int64_t chunk_size;          /* imatrix.chunk_size (0 when absent, always for legacy) */
} lq_stats_meta;

/* Reads our GGUF statistics, llama.cpp's GGUF imatrix or its legacy .dat (by content: the GGUF
 * magic, else the legacy layout). Every count, length and shape is checked against the file;
 * non-finite or negative sums/counts, mismatched shapes, a .in_sum2 without .counts (or the
 * reverse) are LQ_ERR_FORMAT naming file and tensor. Entries are sorted by name. Legacy entries
 * have n_experts = 1 (the file does not say how MoE rows split) and counts = {ncall}. */
lq_status lq_stats_read(const char *path, lq_stats **out, lq_error *err);
void lq_stats_free(lq_stats *s);
int64_t lq_stats_n_entries(const lq_stats *s);
const lq_stats_entry *lq_stats_entry_at(const lq_stats *s, int64_t i);
const lq_stats_entry *lq_stats_find(const lq_stats *s, const char *weight_name); /* O(log n) */
lq_stats_format lq_stats_file_format(const lq_stats *s);
const lq_stats_meta *lq_stats_get_meta(const lq_stats *s);
/* The importance row llama-quantize feeds its quantizers, n_experts × n_in floats (n_in for a
 * dense layer): GGUF: in_sum2/count per expert in float, 1.0 where an expert's count is 0;
 * legacy .dat: value/ncall (values unchanged when ncall <= 0). */
lq_status lq_stats_importance(const lq_stats_entry *e, float *out, lq_error *err);
/* AWQ's statistic: mean |x| per channel = sum_abs/count (0 where count is 0), n_experts × n_in.
 * LQ_ERR_UNSUPPORTED when the entry has no sum_abs (llama.cpp files). */
lq_status lq_stats_mean_abs(const lq_stats_entry *e, float *out, lq_error *err);

/* Writes s as a GGUF imatrix: general.type "imatrix", imatrix.datasets, imatrix.chunk_count,
 * imatrix.chunk_size; per entry, in name order, <name>.in_sum2 [n_in, n_experts], <name>.counts
 * [1, n_experts], then (when present) <name>.in_sum_abs and <name>.in_max_abs [n_in, n_experts],
 * all F32. Atomic (temporary file + rename). Same statistics → same bytes. */
lq_status lq_stats_write(const lq_stats *s, const char *path, lq_error *err);
/* Writes llama.cpp's legacy .dat: per entry name, ncall, n_in·n_experts values stored as
 * (sum/count)·ncall with ncall = ceil(max count / chunk_size) (1 without chunk_size), then
 * last_call = chunk_count and the first dataset name. Dense entries only round-trip exactly up
 * to float rounding; the extra statistics are dropped. */
lq_status lq_stats_write_dat(const lq_stats *s, const char *path, lq_error *err);

/* Accumulator of statistics (double sums): one per calibration run, or one per worker and
 * merged. Not thread-safe: one thread adds to an accumulator at a time. */
typedef struct lq_stats_acc lq_stats_acc;
/* n_threads splits the channels of large additions (0 = all cores); results do not depend on
 * it. include_output: also accumulate output.weight (llama-imatrix --process-output); other
 * names not starting with "blk." are always ignored, as llama-imatrix does. */
lq_status lq_stats_acc_new(int n_threads, bool include_output, lq_stats_acc **out, lq_error *err);
void lq_stats_acc_free(lq_stats_acc *a);
/* Adds n_tokens rows (x is n_tokens × n_in, row-major) to the entry of weight_name: per
 * channel Σx², Σ|x|, max|x|, and n_tokens to its count. The first addition fixes n_in;
 * another n_in later, NaN/Inf in x or a name of LQ_MAX_NAME bytes or more are errors. */
lq_status lq_stats_acc_add(lq_stats_acc *a, const char *weight_name, const float *x,
                           int64_t n_tokens, int64_t n_in, lq_error *err);
/* A lq_linear_hook (ctx = the accumulator): lq_stats_acc_add whose first failure is kept and
 * makes later calls no-ops; read it with lq_stats_acc_status. */
void lq_stats_acc_hook(void *ctx, const char *weight_name, const float *x, int64_t n_tokens,
                       int64_t n_in);
lq_status lq_stats_acc_status(const lq_stats_acc *a, lq_error *err);
/* dst += src (entries missing from dst are appended; n_in must agree). */
lq_status lq_stats_acc_merge(lq_stats_acc *dst, const lq_stats_acc *src, lq_error *err);
int64_t lq_stats_acc_n_entries(const lq_stats_acc *a);
/* Freezes the sums into float statistics (as llama.cpp stores them) with the given metadata
 * (copied; datasets may be NULL when n_datasets is 0). */
lq_status lq_stats_from_acc(const lq_stats_acc *a, const lq_stats_meta *meta, lq_stats **out,
                            lq_error *err);

/* ---- Calibration text and sampling ---- */

/* Reads calibration text: plain UTF-8 text, or JSON Lines with a string "text" field per line
 * (documents joined with "\n\n"), either optionally gzip-compressed (recognised by its magic
 * bytes, not the name). format: "text", "jsonl" or NULL = auto (JSONL when the name ends in
 * .jsonl/.jsonl.gz or the first non-blank byte is '{'). Errors name the file and line: bad
 * JSON, a line that is not an object, a missing or non-string "text" field. *text is malloc'd
 * and NUL-terminated. */
lq_status lq_calib_read_text(const char *path, const char *format, char **text, size_t *len,
                             lq_error *err);

typedef struct lq_calib_sample_opts {
    int64_t chunk_size;   /* tokens per chunk (0 = 512) */
    int64_t n_chunks;     /* chunks wanted (0 = every whole chunk of the text) */
    bool shuffle;         /* pick chunks by a seeded shuffle instead of the first n_chunks */
    uint64_t seed;
    bool parse_special;   /* recognise control tokens written in the text */
} lq_calib_sample_opts;

typedef struct lq_calib_chunks {
    int64_t n_chunks, chunk_size;
    int32_t *tokens;       /* n_chunks × chunk_size, BOS first in each chunk when the vocab adds BOS */
    int64_t *source_index; /* which chunk of the text each one is (ascending) */
    int64_t n_text_tokens; /* tokens of the whole text */
    int64_t n_text_chunks; /* whole chunks the text holds */
} lq_calib_chunks;

/* llama-imatrix's sampling: tokenize the whole text (BOS first when the vocab adds it), cut it
 * into consecutive chunks of chunk_size tokens (the tail is dropped), set each chunk's first
 * token to BOS when the vocab adds BOS. Then keep the first n_chunks, or with shuffle a seeded
 * random choice of n_chunks (same seed → same chunks), kept in text order. Asking for more
 * chunks than the text holds gives all of them (as llama-imatrix); LQ_ERR_INVALID when the
 * text holds no whole chunk. */
lq_status lq_calib_sample(const lq_tokenizer *tok, const char *text, size_t len,
                          const lq_calib_sample_opts *o, lq_calib_chunks *out, lq_error *err);
void lq_calib_chunks_free(lq_calib_chunks *c);
/* The model's tokenizer: GGUF tokenizer keys, or the HF directory's tokenizer.json. */
lq_status lq_calib_tokenizer(const lq_model *m, lq_tokenizer **out, lq_error *err);

/* Runs every chunk through the runtime (KV cache cleared per chunk, as llama-imatrix does)
 * with lq_stats_acc_hook installed; progress (may be NULL) is called after each chunk. */
typedef void (*lq_calib_progress_fn)(void *ctx, int64_t chunk_done, int64_t n_chunks,
                                     double chunk_seconds);
lq_status lq_calib_accumulate(lq_runtime *rt, const lq_calib_chunks *c, lq_stats_acc *acc,
                              lq_calib_progress_fn progress, void *progress_ctx, lq_error *err);

/* SHA-256 of a file as 64 lowercase hex digits (reports name their inputs by checksum). */
lq_status lq_sha256_file(const char *path, char hex[65], lq_error *err);

/* ------------------------------------------------------------------------------------------
 * Quantization plan (recipes: llama-quantize's presets, mixing rules, fallbacks, overrides)
 * and the tensors a calibrated pass hands to the writer.
 * ---------------------------------------------------------------------------------------- */
typedef struct lq_plan_entry {
    char name[LQ_MAX_NAME]; /* canonical tensor name */
    lq_type type;           /* output type chosen for it */
    bool fallback;          /* the preset's type did not fit the row width */
    /* filled by lq_plan_build: */
    lq_type src_type;       /* type in the source checkpoint */
    uint32_t n_dims;
    int64_t ne[LQ_MAX_DIMS];
    bool quantize;          /* a matrix the recipe chose a type for (false: 1-D/norm, kept F32
                             * or as stored) */
    bool overridden;        /* type set by --tensor-type, --output-tensor-type or
                             * --token-embedding-type */
} lq_plan_entry;

typedef struct lq_plan {
    int64_t n_entries;
    lq_plan_entry *entries; /* in the writer's order */
    int ftype;              /* llama_ftype written to general.file_type */
} lq_plan;

/* How to build a plan (llama-quantize's options). */
typedef struct lq_plan_opts {
    const char *preset;       /* F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S,
                               * Q3_K_M (= Q3_K), Q3_K_L, Q4_K_S, Q4_K_M (= Q4_K), Q5_K_S,
                               * Q5_K_M (= Q5_K), Q6_K, IQ4_NL, IQ4_XS; case-insensitive */
    bool pure;                /* no mixing rules: every matrix in the base type */
    int output_type;          /* lq_type for output.weight, or -1 (the rules decide) */
    int token_embd_type;      /* lq_type for token_embd.weight, or -1 */
    /* "REGEX=TYPE" overrides (PCRE2, searched anywhere in the tensor name); applied after the
     * mixing rules, the last matching rule wins (llama-quantize's --tensor-type). */
    const char *const *tensor_types;
    int n_tensor_types;
    bool has_imatrix;         /* rules differ with an importance matrix (ffn_down of Q4_0/Q5_0,
                               * IQ4_*) */
} lq_plan_opts;

/* llama_ftype id and base type of a preset name; LQ_ERR_INVALID naming it when unknown. */
lq_status lq_preset_lookup(const char *name, int *ftype, lq_type *base, lq_error *err);
/* Name of a llama_ftype id ("Q4_K_M"), NULL when not one of the presets above. */
const char *lq_ftype_name(int ftype);
/* The plan llama-quantize would follow for this model: tensors in its order (non-block tensors
 * by name, then blocks by layer, by name), types by the mixing rules (use_more_bits, attn_v /
 * ffn_down counting, output/token_embd rules), overrides, then the fallback chain when a row
 * width is not a multiple of the block size (Q2_K/Q3_K/IQ4_XS → IQ4_NL, Q4_K → Q5_0,
 * Q5_K → Q5_1, Q6_K → Q8_0, then F16; legacy types → F16, where llama-quantize refuses).
 * 1-D tensors and norms stay F32 (HF input) or as stored (GGUF input). Free with lq_plan_free. */
lq_status lq_plan_build(const lq_model *m, const lq_plan_opts *o, lq_plan *plan, lq_error *err);
void lq_plan_free(lq_plan *plan);
const lq_plan_entry *lq_plan_find(const lq_plan *plan, const char *name);

/* Replacement tensors produced by a calibrated pass (GPTQ, AWQ, SmoothQuant), keyed by
 * canonical name, in the model view's row order (HF input: rotate-half Q/K rows; the writer
 * applies the GGUF row permutation to whatever it writes). A tensor whose type equals the
 * plan's type is written as it is; an F32 tensor with another plan type (e.g. AWQ-scaled
 * weights, norms with folded scales) is quantized by the writer's RTN path. */
typedef struct lq_tensor_set lq_tensor_set;
lq_tensor_set *lq_tensor_set_new(void);
void lq_tensor_set_free(lq_tensor_set *s);
/* Takes ownership of data (malloc'd, nbytes long); replaces an entry of the same name. */
lq_status lq_tensor_set_put(lq_tensor_set *s, const char *name, lq_type type,
                            const int64_t ne[LQ_MAX_DIMS], void *data, size_t nbytes,
                            lq_error *err);
/* NULL when absent; the returned lq_tensor's data is owned by the set. */
const lq_tensor *lq_tensor_set_find(const lq_tensor_set *s, const char *name);
int64_t lq_tensor_set_count(const lq_tensor_set *s);

/* The quantization pipeline (`lq quantize`): model → plan → metadata → tensors quantized one
 * at a time on all cores (bounded memory: one tensor's fp32 rows plus its output) → GGUF,
 * written atomically. HF llama/mistral input gets the converter's Q/K row permutation (applied
 * to the quantized rows: per-row quantization commutes with row order). */
typedef void (*lq_progress_fn)(void *ctx, int64_t done_elements, int64_t total_elements,
                               const char *tensor_name);
typedef struct lq_quantize_opts {
    const char *model_path;          /* HF directory or unquantized GGUF */
    const char *out_path;
    lq_plan_opts plan;               /* plan.has_imatrix is set from imatrix_path */
    const char *imatrix_path;        /* statistics file (lq_stats_read), or NULL */
    const lq_tensor_set *replacements; /* tensors from a calibrated pass, or NULL */
    int n_threads;                   /* 0 = all cores */
    bool measure_error;              /* per-tensor RMSE of the quantization (decodes each tensor) */
    lq_progress_fn progress;         /* called after each tensor, or NULL */
    void *progress_ctx;
} lq_quantize_opts;

typedef struct lq_tensor_report {
    char name[LQ_MAX_NAME];
    lq_type type, src_type;
    uint32_t n_dims;
    int64_t ne[LQ_MAX_DIMS];
    uint64_t nbytes;                 /* bytes written (without padding) */
    bool fallback, imatrix, replaced, quantized;
    double rmse, rel_rmse;           /* √mean (w−q)², and that over √mean w²; -1 when not measured */
} lq_tensor_report;

typedef struct lq_quantize_report {
    int ftype;
    int64_t n_tensors;
    lq_tensor_report *tensors;       /* in file order */
    uint64_t n_elements, tensor_bytes, file_bytes;
    int64_t n_imatrix_used;          /* tensors quantized with importance */
    double seconds;
} lq_quantize_report;

/* Runs the pipeline. report may be NULL; else free it with lq_quantize_report_free. Errors name
 * the tensor (NaN/Inf: tensor, row and column). On failure nothing is left at out_path. */
lq_status lq_quantize_model(const lq_quantize_opts *o, lq_quantize_report *report, lq_error *err);
void lq_quantize_report_free(lq_quantize_report *r);
/* A fast 64-bit hash of a file's bytes (4-lane multiply-rotate over 64-bit words; for reports
 * identifying inputs, not for security) and its size. */
lq_status lq_file_hash64(const char *path, uint64_t *hash, uint64_t *size, lq_error *err);

/* ------------------------------------------------------------------------------------------
 * Calibrated passes: GPTQ, AWQ, SmoothQuant onto GGUF block grids (libquant/gptq.c, awq.c,
 * smoothquant.c, passes.c; linear algebra through libquant/linalg.h)
 * ---------------------------------------------------------------------------------------- */
/* Hessian of one linear input, H = 2/n · Σ x·xᵀ over the n calibration tokens (n counts
 * tokens, as GPTQModel does; the scale does not change GPTQ's result). Each batch's X·Xᵀ is
 * formed in fp32 (BLAS speed) and added to an fp64 running sum: with tens of thousands of
 * tokens an fp32 sum would drop the small late contributions; fp64 costs nothing extra because
 * the O(n_in²·tokens) work stays in fp32. */
typedef struct lq_hessian {
    int64_t n_in;
    int64_t n_tokens;
    double *h;      /* n_in × n_in, Σ x·xᵀ until lq_hessian_finish */
    float *scratch; /* n_in × n_in */
} lq_hessian;
lq_status lq_hessian_init(lq_hessian *hs, int64_t n_in, lq_error *err);
/* Adds n_tokens rows of n_in floats (x is n_tokens × n_in, row-major). */
void lq_hessian_add(lq_hessian *hs, const float *x, int64_t n_tokens, int n_threads);
/* Scales the sum to 2/n_tokens · Σ x·xᵀ (once, after the last batch). */
void lq_hessian_finish(lq_hessian *hs);
void lq_hessian_free(lq_hessian *hs);

typedef struct lq_gptq_opts {
    double percdamp;         /* dampening, relative to mean(diag H) (0 → 0.01) */
    int block_size;          /* lazy-batch width in columns (0 → 128; raised to a multiple of
                              * the type's block / super-block) */
    int n_threads;           /* 0 = all cores; the result does not depend on it */
    const float *importance; /* n_in per-column importance for lq_grid_fit (an imatrix row), or
                              * NULL: diag(H) */
    struct lq_device_ctx *device; /* NULL: CPU; else the sweep runs there (lq_device_open) */
} lq_gptq_opts;

typedef struct lq_gptq_report {
    int64_t n_dead;       /* columns with H_ii = 0: weights set to 0, H_ii to 1 */
    double percdamp;      /* relative dampening that factorised */
    int n_retries;        /* failed factorisation attempts before that */
    bool diag_floor;      /* a diagonal floor had to be added as well */
    bool rtn_fallback;    /* no usable inverse: the tensor was quantized by RTN (imatrix = diag H) */
    double loss;          /* GPTQ's Σ (w − q)² / (2·U_jj²) */
    char note[160];       /* what happened, one line, for a warning ("" when nothing notable) */
} lq_gptq_report;

/* GPTQ of one weight matrix (n_out rows of n_in, row-major = GGUF ne[0] = n_in) onto the grid of
 * a GGUF block type. h: n_in × n_in Hessian (from lq_hessian, or any symmetric matrix; it is
 * copied). Columns are swept in their natural order (no act-order: GGUF cannot store a
 * permutation of the input dimension); at the first column of each block / super-block of a row
 * the grid is fitted (lq_grid_fit) on the error-updated weights of that block, then each column
 * is rounded on that fixed grid and its error propagated through the upper Cholesky factor of
 * H⁻¹ (lazy batch updates). Failed factorisations retry with larger dampening (0.01, 0.03,
 * 0.1, 0.3, 1 × mean diag), then with a diagonal floor, then fall back to RTN (reported).
 * dst: n_out · lq_row_size(type, n_in) bytes; deq (optional, n_out × n_in floats): the values the
 * sweep used for each weight = what dst decodes to. */
lq_status lq_gptq_quantize(lq_type type, const char *name, const float *w, int64_t n_out,
                           int64_t n_in, const double *h, const lq_gptq_opts *opts, void *dst,
                           float *deq, lq_gptq_report *rep, lq_error *err);
/* The same in two steps, so weights reading one input (q,k,v; gate,up) share one O(n³)
 * factorisation: prepare (dead columns, dampening retries, upper factor of H⁻¹; a Hessian that
 * never factorises is not an error: the prepared state then makes every weight RTN, reported),
 * then quantize any number of weights with it (opts->percdamp is ignored there). n_threads:
 * threads of the factorisation (0 = all cores; the result does not depend on it). */
typedef struct lq_gptq_prep lq_gptq_prep;
lq_status lq_gptq_prepare(const char *name, int64_t n_in, const double *h, double percdamp,
                          int n_threads, lq_gptq_prep **out, lq_error *err);
lq_status lq_gptq_quantize_prepared(lq_type type, const char *name, const float *w, int64_t n_out,
                                    const lq_gptq_prep *p, const lq_gptq_opts *opts, void *dst,
                                    float *deq, lq_gptq_report *rep, lq_error *err);
void lq_gptq_prep_free(lq_gptq_prep *p);

/* The sequential driver (passes.c): decoder layers one at a time over the calibration tokens.
 * Layer i's inputs are the outputs of layer i-1 with its final (quantized) weights swapped in
 * (GPTQ's propagation, used for every method). Per layer: optional SmoothQuant (fold into
 * attn_norm / ffn_norm), optional AWQ (scale groups attn_norm→q,k,v; v→o only where v and o
 * have the same shape, i.e. not with GQA, as llm-awq checks; ffn_norm→gate,up; up→down; then
 * the clip search on every linear but q/k), then quantization of the 7 linears: GPTQ in
 * true-sequential order q,k,v → o → gate,up → down (the partial layer is re-run so each group's
 * Hessian sees the already-quantized earlier groups), or RTN. Scales are folded, so the output
 * is a standard-architecture model. */
typedef enum lq_pass_method {
    LQ_PASS_NONE = 0,     /* only the SmoothQuant/AWQ transforms: F32 weights in the set */
    LQ_PASS_RTN = 1,      /* round to nearest (imatrix when given) after the transforms */
    LQ_PASS_GPTQ = 2,
    LQ_PASS_AWQ = 3,      /* AWQ scales + clips, then RTN with the actual GGUF codec */
    LQ_PASS_AWQ_GPTQ = 4, /* AWQ scales + clips, then GPTQ */
} lq_pass_method;

struct lq_passes_report;
/* Called after each layer; rep holds that layer's tensors (names blk.<layer_done-1>.*) and
 * layer_seconds[layer_done - 1]. */
typedef void (*lq_pass_progress_fn)(void *ctx, const struct lq_passes_report *rep,
                                    int64_t layer_done);

typedef struct lq_passes_opts {
    lq_pass_method method;
    double smoothquant_alpha;  /* < 0: off; else the migration strength in [0, 1] */
    bool smoothquant_auto;     /* search alpha (0, 0.05, .., 1) per mapping by W8A8 error */
    double percdamp;           /* GPTQ dampening (0 → 0.01) */
    int gptq_block;            /* GPTQ lazy-batch width (0 → 128) */
    bool all_at_once;          /* GPTQ: one pass for all 7 Hessians instead of true-sequential */
    int awq_grid;              /* alpha grid points (0 → 20) */
    bool awq_no_clip;
    int64_t search_tokens;     /* tokens sampled (evenly) for the AWQ / SmoothQuant searches
                                * (0 → 4096); the clip search sums over every calibration
                                * token through the Hessians instead */
    const lq_stats *imatrix;   /* importance for grid fits (rescaled by folded scales), or NULL:
                                * GPTQ then uses diag(H), RTN none */
    bool no_error;             /* skip the per-tensor output errors (lq_pass_tensor.err_*) */
    bool rate_probe;           /* measure sgemm / dgemm rates at the start (report.*gemm_gflops) */
    int n_threads;             /* 0 = all cores; results do not depend on it */
    lq_pass_progress_fn progress;
    void *progress_ctx;
    struct lq_device_ctx *device; /* NULL: CPU; else Hessians, AWQ searches, GPTQ sweeps and the
                                   * forward passes' products run there (lq_device_open) */
} lq_passes_opts;
/* Defaults: method GPTQ, SmoothQuant off, everything else 0. */
void lq_passes_opts_default(lq_passes_opts *o);
/* The kernel set the passes' BLAS runs: OpenBLAS's core name ("SkylakeX", "Haswell", ...;
 * "Prescott" is its generic SSE3 fallback for CPUs it does not recognise, about 3x slower on an
 * AVX-512 machine: OPENBLAS_CORETYPE overrides it) or "builtin" without BLAS. */
const char *lq_passes_blas_core(void);
/* "none", "rtn", "gptq", "awq", "awq+gptq"; -1 when unknown. */
int lq_pass_method_from_name(const char *name);

typedef struct lq_pass_tensor {
    char name[LQ_MAX_NAME];
    lq_type type;              /* type written to the set (F32 when not quantized) */
    bool gptq;                 /* GPTQ ran (see report) */
    lq_gptq_report report;
    double awq_alpha;          /* alpha of this tensor's AWQ scale group, -1 when none */
    double awq_loss_rtn, awq_loss; /* group loss at s = 1 and at the chosen s */
    double clip_ratio;         /* mean chosen clip (1 = none), -1 when not searched */
    double sq_alpha;           /* SmoothQuant alpha of its mapping, -1 when none */
    /* Relative output error on this tensor's calibration inputs X (the ones its Hessian was
     * built from: after the earlier layers, and with GPTQ the earlier groups of this layer, were
     * quantized): ‖W·X − Ŵ·X‖² / ‖W·X‖², computed as Σ_rows Δw·H·Δwᵀ with H = Σ x·xᵀ.
     * before: Ŵ = the plain quantizer of the same type (imatrix when given) on the original
     * weights; after: the pass's output. W is the transformed weight the pass started from
     * (AWQ/SmoothQuant scales are function-preserving; AWQ clipping is part of "after"). For
     * RTN and AWQ, X are the inputs of the layer with float weights. -1: not measured. */
    double err_before, err_after;
} lq_pass_tensor;

typedef struct lq_passes_report {
    int64_t n_tensors;
    lq_pass_tensor *tensors;   /* linears in layer order, then the folded norms */
    int64_t n_rtn_fallback;    /* GPTQ tensors that fell back to RTN (warnings) */
    int64_t n_damp_retry;      /* GPTQ tensors that needed more dampening */
    int64_t n_layer;
    double *layer_seconds;
    double seconds;
    double hessian_seconds, factor_seconds, gptq_seconds, forward_seconds, search_seconds;
    double error_seconds;      /* the output-error measurement (err_before / err_after) */
    /* work done, in flops: Hessian panels (n_in²·tokens, the computed upper panels), the fp64
     * factorisation (2/3·n³ per attempt: Cholesky + triangular inverse), GPTQ's error
     * propagation (2·n_out·n_in²; grid fits not counted) */
    double hessian_flops, factor_flops, gptq_flops;
    int n_threads;             /* threads used */
    double sgemm_gflops, dgemm_gflops; /* rate probe (opts.rate_probe; 0 otherwise): OpenBLAS
                                        * GEMM at n_threads in fixed row chunks, wall clock */
} lq_passes_report;
void lq_passes_report_free(lq_passes_report *r);

/* Runs the passes over tokens (n_seq calibration sequences of n_tok tokens, e.g. from
 * lq_calib_sample) and puts into out, by canonical name: every layer linear whose plan type has
 * a block codec, quantized (type = plan type, written as is by lq_quantize_model); linears with
 * another plan type (F16 fallback) as F32 when a transform changed them; folded norms as F32.
 * Embedding and output head are left to the writer. report may be NULL. */
lq_status lq_passes_run(const lq_model *m, const lq_plan *plan, const int32_t *tokens,
                        int64_t n_seq, int64_t n_tok, const lq_passes_opts *o, lq_tensor_set *out,
                        lq_passes_report *report, lq_error *err);

/* ------------------------------------------------------------------------------------------
 * CUDA backend / devices (libquant/device.c; kernels in kernels/cuda/, their C interface in
 * kernels/cuda/lq_cuda.h). Builds without nvcc have every entry point; they report no device.
 *
 * `--device auto|cpu|cuda|cuda:N` (the tools' option): auto takes CUDA device 0 when one is
 * present and the CPU otherwise; cuda fails when there is none. The CUDA kernels call the
 * codecs' own host+device functions, so dequantized values, quantized blocks and statistics
 * are bit-identical to the CPU; products through cuBLAS agree to float rounding.
 * ---------------------------------------------------------------------------------------- */
typedef enum lq_device_kind { LQ_DEVICE_AUTO = 0, LQ_DEVICE_CPU = 1, LQ_DEVICE_CUDA = 2 } lq_device_kind;
typedef struct lq_device {
    lq_device_kind kind; /* LQ_DEVICE_CPU or LQ_DEVICE_CUDA once selected */
    int index;           /* CUDA device index, -1 for the CPU */
    char name[128];      /* "cpu" or the GPU's name */
    char note[256];      /* one line for the tool to print: what was chosen and why, e.g.
                          * "device: cuda:0 (NVIDIA H100 80GB HBM3; auto-selected, 1 CUDA device
                          * present)" or "device: cpu (no CUDA device present)" */
} lq_device;
/* True when this build contains the CUDA backend (it may still find no device). */
bool lq_cuda_compiled(void);
/* "auto" (also NULL or ""), "cpu", "cuda", "cuda:N" (case-insensitive); index -1 when not
 * given. LQ_ERR_INVALID naming the string otherwise. */
lq_status lq_device_parse(const char *spec, lq_device_kind *kind, int *index, lq_error *err);
/* Resolves a --device value against the devices present. cuda / cuda:N without such a device:
 * LQ_ERR_UNSUPPORTED, "--device cuda: <why>" with the loader's reason ("no CUDA driver (...)",
 * "no CUDA device (...)", "CUDA backend: <path>: ABI N, expected M", "built without CUDA", ...),
 * or LQ_ERR_INVALID (index out of range). auto without a device: the CPU, and the note says
 * "device: cpu (auto: <why>)". */
lq_status lq_device_select(const char *spec, lq_device *out, lq_error *err);
/* The CUDA backend is the module liblq_cuda.so, loaded on the first device request (selection
 * above, lq_cuda_device_count): $LQ_CUDA_MODULE, else (after a driver probe through
 * libcuda.so.1) the module beside the build of the running executable, else
 * <libdir>/libquant/liblq_cuda.so. Nothing CUDA is mapped before that. */

/* An opened device for the library's computations: the CUDA context plus what the device paths
 * keep there (weights uploaded once for the runtime, Hessian sums of the passes). The options of
 * the passes, the runtime and the statistics take it as `lq_device_ctx *device` (NULL = CPU).
 * One host thread uses it at a time. */
typedef struct lq_device_ctx lq_device_ctx;
/* dev from lq_device_select; *out = NULL (and LQ_OK) for the CPU: nothing to open. */
lq_status lq_device_open(const lq_device *dev, lq_device_ctx **out, lq_error *err);
void lq_device_close(lq_device_ctx *d);
/* Calibration statistics on the device: later lq_stats_acc_add calls sum there (bit-identical
 * sums; NULL goes back to the CPU). */
void lq_stats_acc_set_device(lq_stats_acc *a, lq_device_ctx *d);
/* Adds precomputed per-channel sums of n_tokens rows for one weight input (what the device
 * statistics kernel or another accumulator produced): sum_x2/sum_abs in double, max_abs (any of
 * the three may be NULL = nothing to add). Same name rules as lq_stats_acc_add. */
lq_status lq_stats_acc_add_sums(lq_stats_acc *a, const char *weight_name, int64_t n_in,
                                int64_t n_tokens, const double *sum_x2, const double *sum_abs,
                                const float *max_abs, lq_error *err);

/* ------------------------------------------------------------------------------------------
 * Synthetic checkpoints (random Llama-shaped weights for reproducible benchmarks and tests)
 * ---------------------------------------------------------------------------------------- */
typedef struct lq_synth_opts {
    int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train;
    float rope_theta, rms_eps;
    bool tie_embeddings;
    bool qkv_bias;     /* q/k/v/o biases (HF attention_bias) */
    bool rope_llama3;  /* Llama-3 RoPE scaling with the parameters below (HF: config.json
                        * rope_scaling; GGUF: a rope_freqs.weight tensor, as llama.cpp writes) */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int64_t rope_orig_ctx;
    lq_type type;      /* of the 2-D weights (embedding included): F32, F16, BF16 or any codec
                        * type (GGUF output only; rows that do not fit fall back to F16) */
    bool llama_mix;    /* llama-quantize's default mixing: output.weight Q6_K for quantized
                        * types other than Q8_0; Q4_K/Q5_K: the _M rules (attn_v, ffn_down) */
    uint64_t seed;
    int n_threads;     /* for quantizing */
} lq_synth_opts;
/* Named shapes: "tiny" (vocab 512, 64 wide, 2 layers), "1.1b" (TinyLlama-1.1B's shape).
 * Fills every field; LQ_ERR_INVALID for unknown names. */
lq_status lq_synth_shape(const char *name, lq_synth_opts *o, lq_error *err);
/* Writes an HF directory (config.json + model.safetensors; F32/F16/BF16 only) when path does
 * not end in ".gguf", else a GGUF file with llama keys and GGUF (interleaved-RoPE) row order.
 * The same seed gives the same model in both layouts. */
lq_status lq_synth_write(const char *path, const lq_synth_opts *o, lq_error *err);

#ifdef __cplusplus
}
#endif
#endif /* LIBQUANT_H */
