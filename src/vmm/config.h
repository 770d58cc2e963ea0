/* A VM's configuration: one structure filled from the command line, a JSON file
 * with Firecracker's field names, or (later) the API, so all paths agree. */
#ifndef ARGON_VMM_CONFIG_H
#define ARGON_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_VCPUS 1
#define CONFIG_DEFAULT_MEM_MIB 128
#define CONFIG_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1"

struct vm_config {
	char *kernel_path;  /* boot-source.kernel_image_path */
	char *initrd_path;  /* boot-source.initrd_path, NULL for none */
	char *cmdline;	    /* boot-source.boot_args */
	int vcpus;	    /* machine-config.vcpu_count */
	uint64_t mem_mib;   /* machine-config.mem_size_mib */
};

void config_init(struct vm_config *cfg);
void config_free(struct vm_config *cfg);
/* Replaces *field with a copy of value (NULL clears it). Returns 0 or -ENOMEM. */
int config_set_string(char **field, const char *value);

/* Reads a JSON config file over cfg: {"boot-source": {...}, "machine-config": {...}}.
 * Unknown fields, wrong types and out-of-range values are errors. Returns 0, or -1
 * with a one-line message naming the file and field in err. */
int config_load_file(struct vm_config *cfg, const char *path, char *err, size_t errlen);
/* The same from a string (tests, the API); name is used in messages. */
int config_load_string(struct vm_config *cfg, const char *name, const char *json, char *err,
		       size_t errlen);

#endif
