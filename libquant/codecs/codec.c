/* codec.c: not written yet */
