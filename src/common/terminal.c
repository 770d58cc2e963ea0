#include "common/terminal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static int saved_fd = -1; /* the terminal whose modes are in saved; -1: none */

/* The signals that end a process without exit(): handled only to restore the
 * terminal, then given back to whoever handled them before (a sanitizer, or the
 * default action). */
static const int fatal_signals[] = { SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE };
#define NFATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))
static struct sigaction previous[NFATAL];

bool terminal_is_ours(int fd)
{
	return isatty(fd) && tcgetpgrp(fd) == getpgrp();
}

void terminal_restore(void)
{
	int fd = saved_fd;
	if (fd < 0)
		return;
	saved_fd = -1;
	tcsetattr(fd, TCSADRAIN, &saved);
}

static void on_fatal_signal(int sig, siginfo_t *info, void *ctx)
{
	int saved_errno = errno;
	terminal_restore();
	for (size_t i = 0; i < NFATAL; i++)
		if (fatal_signals[i] == sig)
			sigaction(sig, &previous[i], NULL);
	/* A fault (si_code > 0) happens again when the instruction is retried, now to
	 * the previous handler; a sent signal has to be sent again. */
	if (info->si_code <= 0)
		raise(sig);
	errno = saved_errno;
}

static void catch_fatal_signals(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	struct sigaction sa = { .sa_sigaction = on_fatal_signal, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NFATAL; i++)
		sigaction(fatal_signals[i], &sa, &previous[i]);
	atexit(terminal_restore);
}

int terminal_raw_begin(int fd)
{
	if (!terminal_is_ours(fd))
		return 0;
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return -errno;
	saved = t;
	saved_fd = fd;
	catch_fatal_signals();
	cfmakeraw(&t);
	t.c_oflag |= OPOST | ONLCR; /* guests write "\n"; the terminal wants "\r\n" */
	if (tcsetattr(fd, TCSADRAIN, &t) < 0) {
		int err = errno;
		saved_fd = -1;
		return -err;
	}
	return 1;
}
