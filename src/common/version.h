/* argon's version, reported by --version and the API. */
#ifndef ARGON_COMMON_VERSION_H
#define ARGON_COMMON_VERSION_H

#define ARGON_VERSION "0.1.0"

#endif
