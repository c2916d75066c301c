/* test_quantize_plan.c — plans follow llama-quantize's rules (reference notes, section c):
 * each expectation below is derived from the rule text, not from our output. */
#include "test.h"

static lq_plan_opts opts(const char *preset) {
    lq_plan_opts o;
    memset(&o, 0, sizeof o);
    o.preset = preset;
    o.output_type = o.token_embd_type = -1;
    return o;
}

static lq_type type_of(const lq_plan *p, const char *name) {
    const lq_plan_entry *e = lq_plan_find(p, name);
    CHECKF(e != NULL, "no plan entry %s", name);
    return e ? e->type : LQ_TYPE_COUNT;
}

static bool fallback_of(const lq_plan *p, const char *name) {
    const lq_plan_entry *e = lq_plan_find(p, name);
    return e && e->fallback;
}

static lq_type layer_type(const lq_plan *p, int layer, const char *suffix) {
    char name[LQ_MAX_NAME];
    snprintf(name, sizeof name, "blk.%d.%s", layer, suffix);
    return type_of(p, name);
}

static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static lq_plan build(const lq_model *m, const lq_plan_opts *o) {
    lq_plan p;
    lq_error err;
    CHECK_OK(lq_plan_build(m, o, &p, &err), &err);
    return p;
}

/* tinystories-4m (4 layers, 256 wide, GQA 2, untied): Q4_K_M and the other K presets. */
static void test_4m(const lq_model *m) {
    lq_plan_opts o = opts("Q4_K_M");
    lq_plan p = build(m, &o);
    CHECK(p.ftype == 15);
    CHECK(p.n_entries == lq_model_n_tensors(m));
    /* order: non-block tensors by name, then blocks by layer and name */
    CHECK(p.n_entries > 4 && !strcmp(p.entries[0].name, "output.weight") &&
          !strcmp(p.entries[1].name, "output_norm.weight") && !strcmp(p.entries[2].name, "token_embd.weight") &&
          !strcmp(p.entries[3].name, "blk.0.attn_k.weight"));
    CHECK(type_of(&p, "output.weight") == LQ_TYPE_Q6_K);     /* output: Q6_K */
    CHECK(type_of(&p, "token_embd.weight") == LQ_TYPE_Q4_K); /* untied embedding: base type */
    CHECK(type_of(&p, "output_norm.weight") == LQ_TYPE_F32);
    int n_q6 = 0;
    for (int i = 0; i < 4; i++) {
        /* Q4_K_M: attn_v and ffn_down Q6_K where use_more_bits(i, 4): i = 2, 3 */
        lq_type want = use_more_bits(i, 4) ? LQ_TYPE_Q6_K : LQ_TYPE_Q4_K;
        CHECK(layer_type(&p, i, "attn_v.weight") == want);
        CHECK(layer_type(&p, i, "ffn_down.weight") == want);
        n_q6 += want == LQ_TYPE_Q6_K;
        CHECK(layer_type(&p, i, "attn_q.weight") == LQ_TYPE_Q4_K);
        CHECK(layer_type(&p, i, "attn_output.weight") == LQ_TYPE_Q4_K);
        CHECK(layer_type(&p, i, "ffn_up.weight") == LQ_TYPE_Q4_K);
        CHECK(layer_type(&p, i, "attn_norm.weight") == LQ_TYPE_F32);
        CHECK(!fallback_of(&p, "blk.0.ffn_down.weight"));
    }
    CHECK(n_q6 == 2);
    lq_plan_free(&p);

    o = opts("Q3_K_M"); /* attn_v: Q5_K for the first 2, then Q4_K; ffn_down i < n/16 → none: Q4_K;
                         * attn_output Q4_K */
    p = build(m, &o);
    CHECK(p.ftype == 12);
    for (int i = 0; i < 4; i++) {
        CHECK(layer_type(&p, i, "attn_v.weight") == (i < 2 ? LQ_TYPE_Q5_K : LQ_TYPE_Q4_K));
        CHECK(layer_type(&p, i, "ffn_down.weight") == LQ_TYPE_Q4_K);
        CHECK(layer_type(&p, i, "attn_output.weight") == LQ_TYPE_Q4_K);
        CHECK(layer_type(&p, i, "ffn_gate.weight") == LQ_TYPE_Q3_K);
    }
    lq_plan_free(&p);

    o = opts("Q2_K"); /* attn_v Q3_K (GQA 2 < 4), ffn_down Q3_K, attn_output Q3_K, rest Q2_K */
    p = build(m, &o);
    CHECK(layer_type(&p, 1, "attn_v.weight") == LQ_TYPE_Q3_K);
    CHECK(layer_type(&p, 1, "ffn_down.weight") == LQ_TYPE_Q3_K);
    CHECK(layer_type(&p, 1, "attn_output.weight") == LQ_TYPE_Q3_K);
    CHECK(layer_type(&p, 1, "attn_k.weight") == LQ_TYPE_Q2_K);
    lq_plan_free(&p);

    o = opts("Q4_K_S"); /* attn_v Q5_K for the first 4 (all 4 here); ffn_down i < n/8 = 0: none */
    p = build(m, &o);
    for (int i = 0; i < 4; i++) CHECK(layer_type(&p, i, "attn_v.weight") == LQ_TYPE_Q5_K);
    CHECK(layer_type(&p, 0, "ffn_down.weight") == LQ_TYPE_Q4_K);
    lq_plan_free(&p);

    o = opts("Q8_0"); /* output stays Q8_0 */
    p = build(m, &o);
    CHECK(type_of(&p, "output.weight") == LQ_TYPE_Q8_0);
    lq_plan_free(&p);

    o = opts("F16"); /* no mixing for unquantized presets */
    p = build(m, &o);
    CHECK(type_of(&p, "output.weight") == LQ_TYPE_F16 && layer_type(&p, 3, "attn_v.weight") == LQ_TYPE_F16);
    CHECK(type_of(&p, "output_norm.weight") == LQ_TYPE_F32);
    lq_plan_free(&p);

    /* overrides: --pure, --tensor-type (first match wins), output/embedding types */
    o = opts("Q4_K_M");
    o.pure = true;
    p = build(m, &o);
    CHECK(type_of(&p, "output.weight") == LQ_TYPE_Q4_K && layer_type(&p, 3, "ffn_down.weight") == LQ_TYPE_Q4_K);
    lq_plan_free(&p);
    const char *rules[] = {"attn_(q|k)\\.weight=q8_0", "blk\\.0\\.=f16", "blk\\.1\\.attn_q=q5_0"};
    o = opts("Q4_K_M");
    o.tensor_types = rules;
    o.n_tensor_types = 3;
    o.output_type = LQ_TYPE_Q8_0;
    o.token_embd_type = LQ_TYPE_Q6_K;
    p = build(m, &o);
    CHECK(layer_type(&p, 1, "attn_q.weight") == LQ_TYPE_Q5_0); /* the last matching rule wins */
    CHECK(layer_type(&p, 1, "attn_k.weight") == LQ_TYPE_Q8_0);
    CHECK(layer_type(&p, 0, "attn_k.weight") == LQ_TYPE_F16);
    CHECK(layer_type(&p, 0, "ffn_up.weight") == LQ_TYPE_F16);
    CHECK(layer_type(&p, 0, "attn_norm.weight") == LQ_TYPE_F32); /* norms are never overridden */
    CHECK(layer_type(&p, 3, "attn_v.weight") == LQ_TYPE_Q6_K);   /* no rule: mixing */
    CHECK(type_of(&p, "output.weight") == LQ_TYPE_Q8_0 && type_of(&p, "token_embd.weight") == LQ_TYPE_Q6_K);
    lq_plan_free(&p);

    lq_error err;
    const char *bad[] = {"attn_(q=q4_0"};
    o = opts("Q4_K_M");
    o.tensor_types = bad;
    o.n_tensor_types = 1;
    CHECK(lq_plan_build(m, &o, &p, &err) == LQ_ERR_INVALID && strstr(err.msg, "attn_(q"));
    bad[0] = "attn_q=q9_9";
    CHECK(lq_plan_build(m, &o, &p, &err) == LQ_ERR_INVALID);
    o = opts("Q7_K");
    CHECK(lq_plan_build(m, &o, &p, &err) == LQ_ERR_INVALID && strstr(err.msg, "Q7_K"));
}

/* tinystories-656k: tied (token_embd takes the output rules), 128 wide: not a multiple of 256,
 * so the output rule gives Q8_0 and K-quants fall back. */
static void test_656k(const lq_model *m) {
    lq_plan_opts o = opts("Q4_K_M");
    lq_plan p = build(m, &o);
    CHECK(type_of(&p, "token_embd.weight") == LQ_TYPE_Q8_0);
    CHECK(layer_type(&p, 0, "attn_q.weight") == LQ_TYPE_Q5_0 && fallback_of(&p, "blk.0.attn_q.weight")); /* Q4_K → Q5_0 */
    /* 2 layers: use_more_bits(i, 2) is true for i = 0 (n/8 = 0? no: 0 >= 7*2/8 = 1 false, i < 0 false,
     * (0 - 0) % 3 = 0) → false; i = 1: 1 >= 1 → true. Q6_K → Q8_0 fallback. */
    CHECK(layer_type(&p, 0, "attn_v.weight") == LQ_TYPE_Q5_0);
    CHECK(layer_type(&p, 1, "attn_v.weight") == LQ_TYPE_Q8_0);
    /* ffn_down rows are 384 wide (not a multiple of 256): Q6_K → Q8_0 in layer 1 */
    CHECK(layer_type(&p, 1, "ffn_down.weight") == LQ_TYPE_Q8_0);
    lq_plan_free(&p);
    o = opts("Q2_K"); /* Q2_K/Q3_K → IQ4_NL */
    p = build(m, &o);
    CHECK(layer_type(&p, 0, "ffn_gate.weight") == LQ_TYPE_IQ4_NL);
    CHECK(layer_type(&p, 0, "attn_output.weight") == LQ_TYPE_IQ4_NL);
    lq_plan_free(&p);
    o = opts("Q5_K_S"); /* Q5_K → Q5_1 */
    p = build(m, &o);
    CHECK(layer_type(&p, 0, "ffn_up.weight") == LQ_TYPE_Q5_1);
    lq_plan_free(&p);
}

/* stories260K: ffn_down rows are 172 wide (not a multiple of 32): even the fallback does not fit,
 * F16; the GGUF's 1-D tensors stay as stored. */
static void test_260k(const lq_model *m) {
    lq_plan_opts o = opts("Q4_K_M");
    lq_plan p = build(m, &o);
    for (int i = 0; i < 5; i++) {
        CHECK(layer_type(&p, i, "ffn_down.weight") == LQ_TYPE_F16);
        CHECK(layer_type(&p, i, "ffn_up.weight") == LQ_TYPE_Q5_0);
    }
    CHECK(type_of(&p, "output.weight") == LQ_TYPE_Q8_0); /* 64 wide */
    lq_plan_free(&p);
    o = opts("Q4_0");
    p = build(m, &o);
    CHECK(layer_type(&p, 0, "ffn_down.weight") == LQ_TYPE_F16 && fallback_of(&p, "blk.0.ffn_down.weight"));
    CHECK(layer_type(&p, 0, "ffn_gate.weight") == LQ_TYPE_Q4_0);
    lq_plan_free(&p);
}

int main(void) {
    lq_error err;
    const char *paths[3] = {test_shared_path("models/tinystories-4m"), test_shared_path("models/tinystories-656k"),
                            test_shared_path("models/stories260k/stories260K.gguf")};
    void (*fns[3])(const lq_model *) = {test_4m, test_656k, test_260k};
    for (int i = 0; i < 3; i++) {
        lq_model *m = NULL;
        CHECK_OK(lq_model_open(paths[i], &m, &err), &err);
        if (m) fns[i](m);
        lq_model_close(m);
    }
    int ft;
    lq_type base;
    CHECK(lq_preset_lookup("q4_k", &ft, &base, &err) == LQ_OK && ft == 15 && base == LQ_TYPE_Q4_K);
    CHECK(lq_preset_lookup("IQ4_XS", &ft, &base, &err) == LQ_OK && ft == 30 && base == LQ_TYPE_IQ4_XS);
    CHECK(!strcmp(lq_ftype_name(17), "Q5_K_M") && lq_ftype_name(5) == NULL);
    TEST_DONE();
}
