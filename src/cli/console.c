/* The interactive console: the terminal in raw mode, keys forwarded to argon-vmm's
 * serial input, an escape byte to quit, and the terminal restored on every path out
 * (normal exit, the child ending, a signal). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/exit_status.h"
#include "common/log.h"

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;
static volatile sig_atomic_t child_exited;

static void restore_terminal(void)
{
	if (termios_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
}

static void on_fatal_signal(int sig)
{
	restore_terminal();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_child(int sig)
{
	child_exited = 1;
}

static int enter_raw_mode(void)
{
	if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
		return -errno;
	termios_saved = 1;
	atexit(restore_terminal);
	signal(SIGTERM, on_fatal_signal);
	signal(SIGHUP, on_fatal_signal);
	signal(SIGQUIT, on_fatal_signal);
	struct termios raw = saved_termios;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* the guest sends \n; the terminal wants \r\n */
	return tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0 ? -errno : 0;
}

static pid_t spawn_with_pipe(char *const argv[], int *to_child)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[0], STDIN_FILENO);
		execv(argv[0], argv);
		log_error("%s: %s", argv[0], strerror(errno));
		_exit(EXIT_NO_FILE);
	}
	close(fds[0]);
	if (pid < 0) {
		close(fds[1]);
		return -1;
	}
	*to_child = fds[1];
	return pid;
}

/* Forwards the terminal to the child until it exits or the user types escape. */
static void forward_input(pid_t pid, int to_child, unsigned char escape)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	while (!child_exited) {
		int n = poll(&pfd, 1, 100); /* wakes to notice the child ending */
		if (n <= 0)
			continue;
		unsigned char buf[256];
		ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
		if (got <= 0)
			break;
		void *esc = memchr(buf, escape, (size_t)got);
		size_t len = esc ? (size_t)((unsigned char *)esc - buf) : (size_t)got;
		if (len && write(to_child, buf, len) < 0)
			break;
		if (esc) {
			kill(pid, SIGTERM);
			break;
		}
	}
}

int console_run_interactive(char *const argv[], unsigned char escape)
{
	signal(SIGCHLD, on_child);
	signal(SIGPIPE, SIG_IGN);
	int to_child;
	pid_t pid = spawn_with_pipe(argv, &to_child);
	if (pid < 0) {
		log_error("cannot start %s: %s", argv[0], strerror(errno));
		return EXIT_HOST_RESOURCE;
	}
	if (enter_raw_mode())
		log_warn("stdin is not a terminal: no raw mode");
	fprintf(stderr, "argon: console attached, Ctrl-] quits\r\n");
	forward_input(pid, to_child, escape);
	close(to_child);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	restore_terminal();
	termios_saved = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
