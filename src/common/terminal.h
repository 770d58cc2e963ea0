/* A console on a terminal, as Firecracker's: raw mode, so every key (Ctrl-C, Ctrl-Z,
 * Ctrl-\ included) reaches the guest as a byte instead of signalling the host process;
 * output keeps its "\n" -> "\r\n" translation. The terminal as it was is put back by
 * terminal_restore(), which also runs at exit() and before a fatal signal ends the
 * process (SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE). Only SIGKILL leaves it
 * raw (`stty sane` repairs it).
 *
 * Process-wide: a process has one controlling terminal, and the exit and signal paths
 * that restore it have no context to be passed. */
#ifndef ARGON_COMMON_TERMINAL_H
#define ARGON_COMMON_TERMINAL_H

#include <stdbool.h>

/* True when fd is a terminal whose foreground process group is this process's (a
 * background job that reads it or changes its modes is stopped by SIGTTIN/SIGTTOU). */
bool terminal_is_ours(int fd);

/* Puts the terminal on fd in raw mode, saving its modes first. Returns 1 when it did,
 * 0 when fd is not a terminal this process owns (nothing changed), or -errno. */
int terminal_raw_begin(int fd);

/* Puts the saved modes back (nothing when none were saved). Async-signal-safe. */
void terminal_restore(void);

#endif
