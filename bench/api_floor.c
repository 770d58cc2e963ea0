/* The floor for "process start to API socket ready": a process that does nothing
 * but create a listening unix socket at argv[1], then waits to be killed. Built and
 * run by bench/api_bench.py next to argon-vmm --api-sock. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (argc != 2 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: api-floor SOCKET\n");
		return 64;
	}
	strcpy(addr.sun_path, argv[1]);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		perror(argv[1]);
		return 66;
	}
	pause();
	return 0;
}
