/* iq4.c: not written yet */
