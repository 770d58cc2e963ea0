/* Running argon-vmm under argon: a child that never outlives argon and gets the signals
 * argon gets, with argon's stdin passed on to the guest's console.
 *
 * - SIGTERM, SIGINT, SIGHUP and SIGQUIT sent to argon are sent on to argon-vmm, which
 *   stops the VM and ends (84); argon then returns that status. If argon itself dies
 *   (SIGKILL), the kernel sends argon-vmm SIGTERM (PR_SET_PDEATHSIG): no VM is left
 *   running under init.
 * - stdin reaches the guest through a pipe. On a terminal in CONSOLE_RAW mode the
 *   terminal is raw (every key is the guest's) and Ctrl-] ends the VM; it is restored
 *   on every way out (terminal.h). With CONSOLE_EOT, the end of stdin is passed on as
 *   Ctrl-D (EOT), what a terminal sends to end a session: argon-guest's prompt powers
 *   off on it, so `argon run < commands` ends when its input does. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "common/terminal.h"

#define ESCAPE_BYTE 0x1d /* Ctrl-], as telnet and virsh console */
#define EOT_BYTE 0x04	 /* Ctrl-D */

/* Set by the main flow, read by the signal handlers (a process has one child here). */
static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t child_exited;

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };
#define NFORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

static void on_child(int sig)
{
	child_exited = 1;
}

/* No SA_RESTART: a signal wakes poll() and a blocked write() to the child. */
static void install_handlers(void)
{
	struct sigaction sa = { .sa_handler = forward_signal };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NFORWARDED; i++)
		sigaction(forwarded[i], &sa, NULL);
	sa.sa_handler = on_child;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void exec_child(char *const argv[], int in_fd, pid_t parent, const sigset_t *mask)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent) /* argon died before the line above */
		_exit(EXIT_SIGNAL);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	if (in_fd >= 0 && dup2(in_fd, STDIN_FILENO) < 0)
		_exit(EXIT_HOST_RESOURCE);
	execv(argv[0], argv);
	log_error("cannot run %s: %s", argv[0], strerror(errno));
	_exit(EXIT_NO_FILE);
}

/* Forks and execs argv with in_fd (when >= 0) as its stdin. The forwarded signals are
 * held until child_pid is set, so none is lost or sent to process 0. */
static pid_t spawn(char *const argv[], int in_fd)
{
	sigset_t hold, old;
	sigemptyset(&hold);
	for (size_t i = 0; i < NFORWARDED; i++)
		sigaddset(&hold, forwarded[i]);
	sigaddset(&hold, SIGCHLD);
	sigprocmask(SIG_BLOCK, &hold, &old);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0)
		exec_child(argv, in_fd, parent, &old);
	int err = errno;
	if (pid > 0)
		child_pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return pid;
}

/* Passes stdin to the child until the child ends, stdin ends, or (raw) the user types
 * the escape byte. */
static void relay(int to_child, enum console_mode mode)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	while (!child_exited) {
		if (poll(&pfd, 1, 100) <= 0) /* the timeout covers a SIGCHLD just before */
			continue;
		unsigned char buf[256];
		ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			unsigned char eot = EOT_BYTE;
			if (mode == CONSOLE_EOT && write(to_child, &eot, 1) < 0)
				log_debug("EOT: %s", strerror(errno));
			return;
		}
		void *esc = mode == CONSOLE_RAW ? memchr(buf, ESCAPE_BYTE, (size_t)got) : NULL;
		size_t len = esc ? (size_t)((unsigned char *)esc - buf) : (size_t)got;
		if (len && write(to_child, buf, len) < 0)
			return; /* the child is gone, or a signal came */
		if (esc) {
			forward_signal(SIGTERM);
			return;
		}
	}
}

static int wait_child(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return EXIT_INTERNAL;
	child_pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int console_run(char *const argv[], enum console_mode mode)
{
	install_handlers();
	/* A terminal that another process group owns (argon run as a background job) is
	 * not read: reading it would stop argon (SIGTTIN). */
	bool read_stdin = !isatty(STDIN_FILENO) || terminal_is_ours(STDIN_FILENO);
	int fds[2] = { -1, -1 };
	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_error("pipe: %s", strerror(errno));
		return EXIT_HOST_RESOURCE;
	}
	pid_t pid = spawn(argv, fds[0]);
	close(fds[0]);
	if (pid < 0) {
		log_error("cannot start %s: %s", argv[0], strerror(errno));
		close(fds[1]);
		return EXIT_HOST_RESOURCE;
	}
	if (mode == CONSOLE_RAW && terminal_raw_begin(STDIN_FILENO) > 0)
		fprintf(stderr, "argon: console attached, Ctrl-] quits\r\n");
	if (read_stdin)
		relay(fds[1], mode);
	close(fds[1]);
	int status = wait_child(pid);
	terminal_restore();
	return status;
}
