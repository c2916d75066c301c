/* test_tools.c — `lq synth` (reproducible, llama-quantize's type mix, sizes) and `lq bench`
 * (report structure and consistency) on tiny synthetic models. */
#include "test.h"

#include <jansson.h>
#include <sys/wait.h>

static const char *lq_bin(void) {
    const char *b = getenv("LQ_BIN");
    if (!b) TEST_SKIP("LQ_BIN is not set (run through meson test)");
    return b;
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    void *da = test_read_file(a, &na), *db = test_read_file(b, &nb);
    bool same = da && db && na == nb && memcmp(da, db, na) == 0;
    free(da), free(db);
    return same;
}

static void test_synth(const char *tmp) {
    char a[4300], b[4300], c[4300], cmd[16384];
    snprintf(a, sizeof a, "%s/a.gguf", tmp);
    snprintf(b, sizeof b, "%s/b.gguf", tmp);
    snprintf(c, sizeof c, "%s/c.gguf", tmp);
    snprintf(cmd, sizeof cmd, "'%s' synth --out '%s' --shape tiny --type q4_k_m --seed 3 -t 1", lq_bin(), a);
    CHECK(run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "'%s' synth --out '%s' --shape tiny --type q4_k_m --seed 3 -t 2", lq_bin(), b);
    CHECK(run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "'%s' synth --out '%s' --shape tiny --type q4_k_m --seed 4", lq_bin(), c);
    CHECK(run(cmd) == 0);
    CHECK(same_file(a, b));  /* same seed, any thread count: same bytes */
    CHECK(!same_file(a, c)); /* another seed: another model */

    /* llama-quantize's Q4_K_M mix: output Q6_K, attn_v/ffn_down Q6_K where use_more_bits
     * (i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2: for 2 layers only layer 1), everything else
     * Q4_K; norms F32 */
    lq_error err;
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(a, &m, &err), &err);
    if (m) {
        struct { const char *name; lq_type type; } want[] = {
            {"token_embd.weight", LQ_TYPE_Q4_K},    {"output.weight", LQ_TYPE_Q6_K},
            {"blk.0.attn_q.weight", LQ_TYPE_Q4_K},  {"blk.1.attn_v.weight", LQ_TYPE_Q6_K},
            {"blk.0.attn_v.weight", LQ_TYPE_Q4_K},  {"blk.1.ffn_down.weight", LQ_TYPE_Q6_K},
            {"blk.0.ffn_down.weight", LQ_TYPE_Q4_K}, {"blk.1.ffn_up.weight", LQ_TYPE_Q4_K},
            {"blk.0.attn_norm.weight", LQ_TYPE_F32},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            const lq_tensor *t = lq_model_find(m, want[i].name);
            CHECKF(t && t->type == want[i].type, "%s: type %d, want %d", want[i].name, t ? (int)t->type : -1,
                   (int)want[i].type);
        }
        const lq_hparams *hp = lq_model_hparams(m);
        CHECK(hp->n_embd == 256 && hp->n_layer == 2 && hp->n_vocab == 512 && hp->n_head_kv == 2);
        lq_model_close(m);
    }
    /* bad requests are usage errors, an HF directory cannot hold quantized weights */
    snprintf(cmd, sizeof cmd, "'%s' synth --out '%s/x' --type q4_0 2>/dev/null", lq_bin(), tmp);
    CHECK(run(cmd) == 2);
    snprintf(cmd, sizeof cmd, "'%s' synth --out '%s/y.gguf' --shape huge 2>/dev/null", lq_bin(), tmp);
    CHECK(run(cmd) == 2);
    snprintf(cmd, sizeof cmd, "'%s' synth --out '%s/z.gguf' --heads 3 2>/dev/null", lq_bin(), tmp);
    CHECK(run(cmd) == 2);
    remove(b), remove(c);
}

static void test_bench(const char *tmp) {
    char model[4300], out[4300], cmd[16384];
    snprintf(model, sizeof model, "%s/a.gguf", tmp);
    snprintf(out, sizeof out, "%s/bench.json", tmp);
    snprintf(cmd, sizeof cmd, "'%s' bench '%s' -p 16 -n 4 -r 2 -t 2 --json '%s' > /dev/null", lq_bin(), model, out);
    CHECK(run(cmd) == 0);
    json_error_t je;
    json_t *r = json_load_file(out, 0, &je);
    CHECKF(r != NULL, "%s: %s", out, je.text);
    if (!r) return;
    json_t *tests = json_object_get(r, "tests");
    CHECK(json_array_size(tests) == 2);
    double bw = json_number_value(json_object_get(r, "read_bandwidth_bytes_per_s"));
    double tok_bytes = json_number_value(json_object_get(r, "weight_bytes_per_token"));
    CHECK(bw > 1e8);
    /* tiny: per token it reads 7 matrices of every layer, the output head and one embedding row */
    CHECK(tok_bytes > 0 && tok_bytes < json_number_value(json_object_get(r, "model_size")));
    for (size_t i = 0; i < json_array_size(tests); i++) {
        json_t *t = json_array_get(tests, i);
        const char *name = json_string_value(json_object_get(t, "test"));
        json_t *samples = json_object_get(t, "samples_ts");
        CHECK(json_array_size(samples) == 2);
        double mean = 0;
        for (size_t k = 0; k < json_array_size(samples); k++) mean += json_number_value(json_array_get(samples, k)) / 2;
        CHECK(fabs(mean - json_number_value(json_object_get(t, "avg_ts"))) < 1e-6 * mean);
        if (name && !strcmp(name, "tg4")) {
            /* each repetition against the bandwidth probed around it; the bound from their mean */
            double bound = json_number_value(json_object_get(t, "bandwidth_bound_ts"));
            CHECK(fabs(bound - bw / tok_bytes) < 1e-6 * bound);
            json_t *bws = json_object_get(t, "samples_read_bandwidth_bytes_per_s");
            json_t *fracs = json_object_get(t, "samples_fraction_of_bound");
            CHECK(json_array_size(bws) == 2 && json_array_size(fracs) == 2);
            double bw_mean = 0, frac_mean = 0;
            for (size_t k = 0; k < json_array_size(bws) && k < json_array_size(fracs); k++) {
                double bwk = json_number_value(json_array_get(bws, k));
                double tsk = json_number_value(json_array_get(samples, k));
                double frk = json_number_value(json_array_get(fracs, k));
                CHECK(bwk > 1e8);
                CHECKF(fabs(frk - tsk * tok_bytes / bwk) < 1e-6 * frk, "repetition %zu: %g", k, frk);
                bw_mean += bwk / 2, frac_mean += frk / 2;
            }
            CHECK(fabs(bw_mean - bw) < 1e-6 * bw);
            CHECK(fabs(json_number_value(json_object_get(t, "fraction_of_bound")) - frac_mean) < 1e-6 * frac_mean);
        } else {
            CHECK(name && !strcmp(name, "pp16"));
        }
    }
    json_decref(r);
    snprintf(cmd, sizeof cmd, "'%s' bench '%s/missing.gguf' 2>/dev/null", lq_bin(), tmp);
    CHECK(run(cmd) == 5);
}

int main(void) {
    const char *tmp = test_tmpdir("runtime-tools");
    test_synth(tmp);
    test_bench(tmp);
    TEST_DONE();
}
