/* Checksums and address text (inet.h). */
#include "net/inet.h"
#include "printf.h"

uint16_t inet_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint16_t)(p[0] | p[1] << 8);
	if (len)
		sum += p[0];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static bool take_octet(const char **s, uint32_t *v)
{
	int digits = 0;

	*v = 0;
	for (; **s >= '0' && **s <= '9' && digits < 4; (*s)++, digits++)
		*v = *v * 10 + (uint32_t)(**s - '0');
	return digits > 0 && digits < 4 && *v <= 255;
}

bool parse_ipv4(const char *s, uint32_t *ip, int *prefix)
{
	uint32_t v, addr = 0;

	for (int i = 0; i < 4; i++) {
		if (!take_octet(&s, &v) || (i < 3 && *s++ != '.'))
			return false;
		addr = addr << 8 | v;
	}
	*prefix = 32;
	if (*s == '/') {
		s++;
		if (!take_octet(&s, &v) || v > 32)
			return false;
		*prefix = (int)v;
	}
	*ip = addr;
	return *s == '\0';
}

void format_ipv4(uint32_t ip, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

void format_mac(const uint8_t *mac, char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}
