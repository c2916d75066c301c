/* calib_internal.h — shared inside calib/: building an lq_stats from parts. */
#ifndef LQ_CALIB_INTERNAL_H
#define LQ_CALIB_INTERNAL_H

#include "internal.h"

/* An empty statistics set of the given format; entries are added with stats_add_entry and the
 * set is made searchable by stats_seal. */
lq_stats *stats_new(lq_stats_format format, lq_error *err);
/* Copies name and arrays (sum_abs/max_abs may be NULL). */
lq_status stats_add_entry(lq_stats *s, const char *name, int64_t n_in, int64_t n_experts,
                          const float *sum_x2, const float *counts, const float *sum_abs,
                          const float *max_abs, lq_error *err);
/* Copies the metadata (datasets strings included). */
lq_status stats_set_meta(lq_stats *s, const lq_stats_meta *meta, lq_error *err);
/* Sorts entries by name; a duplicate name is LQ_ERR_FORMAT naming origin. */
lq_status stats_seal(lq_stats *s, const char *origin, lq_error *err);

/* Whether the accumulator collects output.weight (then a pass must compute logits). */
bool calib_acc_wants_output(const lq_stats_acc *a);

/* Writes len bytes to path through a temporary file beside it, fsynced and renamed. */
lq_status calib_write_file_atomic(const char *path, const void *data, size_t len, lq_error *err);

#endif
