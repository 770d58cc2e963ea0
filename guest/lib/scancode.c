/* Set 2 make codes; a release is the same code after 0xf0 (IBM PS/2 Technical
 * Reference, Keyboards, scan code set 2). Right Ctrl and right Alt are the left
 * ones' codes after 0xe0. */
#include "lib/scancode.h"

#define SC_EXTENDED 0xe0
#define SC_RELEASE 0xf0
#define SC_CTRL 0x14
#define SC_ALT 0x11
#define SC_DEL 0x71

bool scancode_ctrl_alt_del(struct scancode_state *s, uint8_t b)
{
	bool ext = s->ext, down = !s->brk;

	if (b == SC_EXTENDED || b == SC_RELEASE) {
		*(b == SC_EXTENDED ? &s->ext : &s->brk) = true;
		return false;
	}
	s->ext = s->brk = false;
	switch (b) {
	case SC_CTRL:
		*(ext ? &s->ctrl_r : &s->ctrl_l) = down;
		return false;
	case SC_ALT:
		*(ext ? &s->alt_r : &s->alt_l) = down;
		return false;
	case SC_DEL:
		return down && (s->ctrl_l || s->ctrl_r) && (s->alt_l || s->alt_r);
	default:
		return false;
	}
}
