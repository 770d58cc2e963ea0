/* Command-line parsing, Linux style: parameters separated by spaces, double
 * quotes protect spaces (argon.cmd="a b;c" or "argon.cmd=a b;c"). */
#include "cmdline.h"
#include "string.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Returns the end of the parameter starting at p, honouring quotes. */
static const char *param_end(const char *p)
{
	bool quoted = false;

	for (; *p && (quoted || !is_space(*p)); p++)
		if (*p == '"')
			quoted = !quoted;
	return p;
}

bool cmdline_get(const char *cmdline, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);

	for (const char *p = cmdline; *p;) {
		const char *end, *name;
		size_t n = 0;

		while (is_space(*p))
			p++;
		end = param_end(p);
		name = *p == '"' ? p + 1 : p;
		if (!strncmp(name, key, klen) && name[klen] == '=') {
			for (const char *v = name + klen + 1; v < end && n + 1 < outlen; v++)
				if (*v != '"')
					out[n++] = *v;
			out[n] = '\0';
			return true;
		}
		p = end;
	}
	return false;
}

int split_words(char *s, char **argv, int max)
{
	int n = 0;

	for (;;) {
		while (is_space(*s))
			*s++ = '\0';
		if (!*s)
			return n;
		if (n == max)
			return -1;
		argv[n++] = s;
		while (*s && !is_space(*s))
			s++;
	}
}
