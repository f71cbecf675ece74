/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * SIGHUP (daemon_reload.c): what can be read again without a restart is
 * read again now. Loop thread only.
 */
#ifndef ZT_DAEMON_RELOAD_H
#define ZT_DAEMON_RELOAD_H

struct zt_daemon;

/*
 * The configuration file (keys that apply live are applied, the others
 * named in one line and kept at their running values; a file that does not
 * parse keeps the running configuration), the mTLS credentials, the policy
 * directory, the feeds (fetched now). Never fails the agent.
 */
void daemon_reload(struct zt_daemon *d);

/* daemon_mtls.c */
int daemon_mtls_reload_credentials(struct zt_daemon *d);
int daemon_mtls_retry(struct zt_daemon *d);
void daemon_mtls_peers_reload(struct zt_daemon *d);

#endif
