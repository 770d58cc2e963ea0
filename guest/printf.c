/* vsnprintf for the kernel's needs; printf writes through console_write. */
#include <stdbool.h>
#include <stdint.h>

#include "console.h"
#include "printf.h"
#include "string.h"

struct out {
	char *buf;
	size_t size;
	size_t len; /* bytes that would have been written */
};

struct spec {
	bool left, zero;
	int width;
	int precision; /* -1: none; only %s uses it */
	int length; /* 0 int, 1 long, 2 long long / size_t */
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_padded(struct out *o, const char *s, size_t n, const struct spec *sp)
{
	char pad = sp->zero && !sp->left ? '0' : ' ';
	int fill = sp->width > (int)n ? sp->width - (int)n : 0;

	/* Zero padding goes after the sign. */
	if (pad == '0' && n && *s == '-') {
		put(o, *s++);
		n--;
	}
	if (!sp->left)
		while (fill-- > 0)
			put(o, pad);
	while (n--)
		put(o, *s++);
	if (sp->left)
		while (fill-- > 0)
			put(o, ' ');
}

static void put_number(struct out *o, uint64_t v, bool negative, unsigned base, bool upper,
		       const struct spec *sp)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int i = sizeof(tmp);

	do {
		tmp[--i] = digits[v % base];
		v /= base;
	} while (v);
	if (negative)
		tmp[--i] = '-';
	put_padded(o, tmp + i, sizeof(tmp) - i, sp);
}

static const char *parse_spec(const char *f, struct spec *sp)
{
	*sp = (struct spec){ .precision = -1 };
	for (;; f++) {
		if (*f == '-')
			sp->left = true;
		else if (*f == '0')
			sp->zero = true;
		else
			break;
	}
	while (*f >= '0' && *f <= '9')
		sp->width = sp->width * 10 + (*f++ - '0');
	if (*f == '.') {
		sp->precision = 0;
		while (*++f >= '0' && *f <= '9')
			sp->precision = sp->precision * 10 + (*f - '0');
	}
	while (*f == 'l' || *f == 'z') {
		sp->length += *f == 'z' ? 2 : 1;
		f++;
	}
	return f;
}

static void convert(struct out *o, char c, const struct spec *sp, va_list *ap)
{
	int64_t s;
	uint64_t u;

	switch (c) {
	case 'd':
	case 'i':
		s = sp->length ? va_arg(*ap, int64_t) : va_arg(*ap, int);
		put_number(o, s < 0 ? -(uint64_t)s : (uint64_t)s, s < 0, 10, false, sp);
		return;
	case 'u':
	case 'x':
	case 'X':
		u = sp->length ? va_arg(*ap, uint64_t) : va_arg(*ap, unsigned int);
		put_number(o, u, false, c == 'u' ? 10 : 16, c == 'X', sp);
		return;
	case 'p':
		put(o, '0');
		put(o, 'x');
		put_number(o, (uintptr_t)va_arg(*ap, void *), false, 16, false, sp);
		return;
	case 's': {
		const char *str = va_arg(*ap, const char *);

		size_t n;

		str = str ? str : "(null)";
		for (n = 0; str[n] && (sp->precision < 0 || (int)n < sp->precision); n++)
			;
		put_padded(o, str, n, sp);
		return;
	}
	case 'c': {
		char ch = (char)va_arg(*ap, int);

		put_padded(o, &ch, 1, sp);
		return;
	}
	default:
		put(o, '%');
		put(o, c);
	}
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	struct spec sp;
	va_list args;

	va_copy(args, ap);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			put(&o, *f);
			continue;
		}
		f = parse_spec(f + 1, &sp);
		if (!*f)
			break;
		if (*f == '%')
			put(&o, '%');
		else
			convert(&o, *f, &sp, &args);
	}
	va_end(args);
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	console_write(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	return n;
}
