/* hfconfig.c: not written yet */
