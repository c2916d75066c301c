/* legacy.c: not written yet */
