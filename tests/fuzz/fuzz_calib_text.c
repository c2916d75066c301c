/* fuzz_calib_text.c — libFuzzer harness for the calibration text reader (plain text or JSON Lines,
 * either possibly gzip-compressed): the first byte picks the format (text, jsonl, auto); the text
 * read back is NUL-terminated at its length, plain text comes back byte for byte, and errors are
 * one line naming the file. */
#include "libquant.h"

#include "fuzz_file.h"

static const char *const formats[] = {"text", "jsonl", "auto", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *format = formats[(size ? data[0] : 0) & 3];
    const uint8_t *body = data + (size ? 1 : 0);
    size_t body_size = size ? size - 1 : 0;
    const char *path = fuzz_file("calib.txt", body, body_size);
    char *text = NULL;
    size_t len = 0;
    lq_error err;
    lq_error_clear(&err);
    if (lq_calib_read_text(path, format, &text, &len, &err) == LQ_OK) {
        if (!text || text[len] != '\0') abort();
        bool gzip = body_size >= 2 && body[0] == 0x1f && body[1] == 0x8b;
        if (format && !strcmp(format, "text") && !gzip && (len != body_size || memcmp(text, body, len))) abort();
        free(text);
    } else {
        if (text) abort();
        fuzz_check_error(err.msg, path);
    }
    return 0;
}
