/* The kinds of file a path handed over by a client (the API, later argond) must name.
 * Shared by the API, which checks the paths, and the device kinds, which say which of
 * their fields are paths of which kind. */
#ifndef ARGON_COMMON_CLIENT_PATH_H
#define ARGON_COMMON_CLIENT_PATH_H

enum api_path_kind {
	API_PATH_READ,	   /* an existing regular file to read (kernel, initrd) */
	API_PATH_DRIVE,	   /* an existing regular file, read (and written unless read_only) */
	API_PATH_OUTPUT,   /* a log or metrics destination: a regular file or FIFO, created
			      if missing, in an existing directory */
	API_PATH_NEW_SOCKET, /* a unix socket the VMM will create, in an existing directory */
};

#endif
