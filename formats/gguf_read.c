/* gguf_read.c: not written yet */
