/* kquants.c: not written yet */
