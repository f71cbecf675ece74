/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef ZT_DAEMON_H
#define ZT_DAEMON_H

#define ZT_VERSION "0.1.0"
#define ZT_DEFAULT_CONFIG "/etc/ztagent/ztagent.yaml"

/* The whole daemon: argument parsing, start, the control loop, stop. Returns the exit code. */
int zt_daemon_main(int argc, char **argv);

#endif
