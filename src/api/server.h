/* The API server: HTTP/1.1 with JSON bodies on a unix socket, served by its own
 * thread on its own event loop (non-blocking sockets, so one slow client never holds
 * up another). Limits, besides the HTTP ones in api/http.h:
 *   API_MAX_CONNS open connections; one more is answered 503 and closed
 *   a request must arrive whole within API_REQUEST_TIMEOUT_MS of its first byte [408]
 *   a response must drain within API_WRITE_TIMEOUT_MS, or the connection is closed
 *   an idle keep-alive connection is closed after API_IDLE_TIMEOUT_MS */
#ifndef ARGON_API_SERVER_H
#define ARGON_API_SERVER_H

struct vmm;
struct api_server;

#define API_MAX_CONNS 16
#define API_REQUEST_TIMEOUT_MS 5000
#define API_WRITE_TIMEOUT_MS 5000
#define API_IDLE_TIMEOUT_MS 60000
#define API_TICK_MS 250

/* Creates the socket at path with mode 0600 (a socket file left by a dead process is
 * replaced; one a live process serves, or any other file, is refused) and starts the
 * API thread. Returns 0 or -errno after logging one message naming the path. */
int api_server_start(struct vmm *v, const char *path, struct api_server **out);
/* Stops the thread, sends what is still queued (without waiting), closes every
 * connection and removes the socket file. */
void api_server_stop(struct api_server *s);

#endif
