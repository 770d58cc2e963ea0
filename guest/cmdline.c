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
	return cmdline_get_nth(cmdline, key, 0, out, outlen);
}

bool cmdline_get_nth(const char *cmdline, const char *key, int nth, char *out, size_t outlen)
{
	size_t klen = strlen(key);

	for (const char *p = cmdline; *p;) {
		const char *end, *name;
		size_t n = 0;

		while (is_space(*p))
			p++;
		end = param_end(p);
		name = *p == '"' ? p + 1 : p;
		if (!strncmp(name, key, klen) && name[klen] == '=' && nth-- == 0) {
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

/* Parses a decimal or 0x number at *p, advancing *p; false when none. */
static bool take_number(const char **p, uint64_t *out)
{
	unsigned base = 10;
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++, digits++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && (*s | 0x20) >= 'a' && (*s | 0x20) <= 'f')
			d = (*s | 0x20) - 'a' + 10;
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*p = s;
	*out = v;
	return digits > 0;
}

static int suffix_shift(char c)
{
	switch (c | 0x20) {
	case 'k':
		return 10;
	case 'm':
		return 20;
	case 'g':
		return 30;
	default:
		return -1;
	}
}

bool parse_mmio_device(const char *s, struct mmio_device_arg *out)
{
	uint64_t irq;
	int shift;

	if (!take_number(&s, &out->size))
		return false;
	if ((shift = suffix_shift(*s)) >= 0) {
		out->size <<= shift;
		s++;
	}
	if (*s++ != '@' || !take_number(&s, &out->base) || *s++ != ':' || !take_number(&s, &irq))
		return false;
	if (*s && *s != ':')
		return false;
	out->irq = (uint32_t)irq;
	return out->size && irq <= 0xffffffffu;
}
