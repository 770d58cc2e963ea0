/* PS/2 scan code set 2 (what a keyboard sends when the i8042 does not translate),
 * decoded only as far as Ctrl+Alt+Del needs: the two Ctrl and two Alt keys, and Del. */
#ifndef GUEST_LIB_SCANCODE_H
#define GUEST_LIB_SCANCODE_H

#include <stdbool.h>
#include <stdint.h>

struct scancode_state {
	bool ext, brk; /* 0xe0 (extended key) and 0xf0 (release) prefixes seen */
	bool ctrl_l, ctrl_r, alt_l, alt_r;
};

/* Feeds one byte from the keyboard. True when it completes a press of Del (0xe0 0x71,
 * or keypad Del, 0x71) while a Ctrl and an Alt are down. Replies (0xfa, 0xaa, ...)
 * and other keys change nothing but the prefixes. Start from a zeroed state. */
bool scancode_ctrl_alt_del(struct scancode_state *s, uint8_t b);

#endif
