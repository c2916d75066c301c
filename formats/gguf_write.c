/* gguf_write.c: not written yet */
