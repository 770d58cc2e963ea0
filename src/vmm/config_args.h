/* Device options given on the command line, parsed into the same vm_config the JSON
 * and the API fill. Each kind parses its own option (devices/NAME_kind.c) with the
 * helpers below. */
#ifndef ARGON_VMM_CONFIG_ARGS_H
#define ARGON_VMM_CONFIG_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "devices/rate_limiter.h"
#include "vmm/config.h"

struct device_kind;

/* --<kind->option> arg: a new device of a kind with ids, else the kind's one device
 * set over what came before. Returns 0, or -1 with a message naming the option in
 * err. */
int config_arg_device(struct vm_config *cfg, const struct device_kind *kind, const char *arg,
		      char *err, size_t errlen);

/* Splits "a,b=c" in place; returns the next item or NULL. */
char *config_arg_next(char **cursor);
/* "OPT: 'ITEM': WHAT" into err; returns -1. */
int config_arg_fail(char *err, size_t errlen, const char *opt, const char *item,
		    const char *what);
/* 10M, 512K, 1G, 1T (binary units, either case) or a plain number; 0 or -1. */
int config_arg_size(const char *s, uint64_t *out);
/* A rate per second: a bucket of that size refilled in 1000 ms; 0 or -1. */
int config_arg_rate(const char *value, struct token_bucket_config *b);
/* Items every device with ids accepts: id=, bw=, ops=. Returns 1 when item was one of
 * them (with *bad set when its value was wrong), else 0. */
int config_arg_common(char *item, char **id, struct rate_limiter_config *rl, int *bad);

#endif
