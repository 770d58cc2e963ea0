/* Device options given on the command line, parsed into the same vm_config the JSON
 * and the API fill. Each returns 0, or -1 with a message naming the option in err. */
#ifndef ARGON_VMM_CONFIG_ARGS_H
#define ARGON_VMM_CONFIG_ARGS_H

#include <stddef.h>

#include "vmm/config.h"

int config_arg_disk(struct vm_config *cfg, const char *arg, char *err, size_t errlen);
int config_arg_net(struct vm_config *cfg, const char *arg, char *err, size_t errlen);
int config_arg_vsock(struct vm_config *cfg, const char *arg, char *err, size_t errlen);
int config_arg_balloon(struct vm_config *cfg, const char *arg, char *err, size_t errlen);
int config_arg_rng(struct vm_config *cfg, const char *arg, char *err, size_t errlen);

#endif
