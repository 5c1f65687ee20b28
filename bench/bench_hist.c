/*
 * bench_hist.c — log-linear latency histogram (HdrHistogram-like, 7 bits of
 * precision: relative error under 0.8 % from 1 ns to 34 s).  Each thread
 * fills its own; the main thread merges them.
 */
#include "bench.h"

#include <string.h>

#define HIST_SUB (1u << BENCH_HIST_SUB_BITS) /* 128 */

/* Values below 2*HIST_SUB map to themselves; above, each power of two gets HIST_SUB
 * buckets of width 2^shift. */
static unsigned
bench_hist_index(uint64_t v)
{
	unsigned idx;
	int msb;
	int shift;

	if (v < 2u * HIST_SUB)
		return (unsigned)v;
	msb = 63 - __builtin_clzll(v);
	shift = msb - BENCH_HIST_SUB_BITS; /* >= 1 */
	idx = 2u * HIST_SUB + (unsigned)(shift - 1) * HIST_SUB +
	    (unsigned)((v >> shift) - HIST_SUB);
	if (idx >= BENCH_HIST_BUCKETS)
		idx = BENCH_HIST_BUCKETS - 1;
	return idx;
}

/* Highest value that maps to bucket idx. */
static uint64_t
bench_hist_top(unsigned idx)
{
	unsigned shift;
	uint64_t sub;

	if (idx < 2u * HIST_SUB)
		return idx;
	shift = (idx - 2u * HIST_SUB) / HIST_SUB + 1u;
	sub = (idx - 2u * HIST_SUB) % HIST_SUB + HIST_SUB;
	return ((sub + 1u) << shift) - 1u;
}

void
bench_hist_init(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void
bench_hist_record(struct bench_hist *h, uint64_t ns)
{
	h->bucket[bench_hist_index(ns)]++;
	h->count++;
	h->sum += (double)ns;
	if (ns > h->max)
		h->max = ns;
	if (ns < h->min)
		h->min = ns;
}

void
bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	unsigned i;

	for (i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
	if (src->min < dst->min)
		dst->min = src->min;
}

uint64_t
bench_hist_percentile(const struct bench_hist *h, double p)
{
	uint64_t want;
	uint64_t seen = 0;
	unsigned i;

	if (h->count == 0)
		return 0;
	if (p >= 100.0)
		return h->max;
	want = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
	if (want == 0)
		want = 1;
	for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= want) {
			uint64_t top = bench_hist_top(i);
			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}
