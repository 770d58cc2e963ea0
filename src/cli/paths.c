#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

char *cli_sibling_path(const char *name, const char *env_override)
{
	const char *env = getenv(env_override);
	if (env && *env)
		return strdup(env);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return strdup(name);
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		slash[1] = '\0';
	size_t len = strlen(self) + strlen(name) + 1;
	char *path = malloc(len);
	if (path)
		snprintf(path, len, "%s%s", self, name);
	return path;
}
