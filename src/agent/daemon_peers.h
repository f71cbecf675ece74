/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The mTLS peer table learned from the cluster (daemon_peers.c): each
 * Node's pod CIDRs (spec.podCIDRs, spec.podCIDR) map to that node's agent
 * (its first InternalIP of the family the agents meet over: IPv4, or IPv6
 * when this node is IPv6-only; port mtls.port). Fed by the Node watch
 * (daemon_k8s.c), read by the tunnel's steering (daemon_mtls.c) when no
 * mtls.peers entry covers a destination. Loop thread only, but for
 * daemon_peers_lookup4/6: any thread (the relay thread steers).
 */
#ifndef ZT_DAEMON_PEERS_H
#define ZT_DAEMON_PEERS_H

#include <cbor.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "k8s/k8s.h"

struct zt_daemon;
struct zt_peers;

int zt_peers_new(struct zt_daemon *d, struct zt_peers **out);
void zt_peers_free(struct zt_peers *p); /* NULL is fine */
/*
 * A Node added or changed; self: it is this agent's node. Applied at once
 * unless one of its pod CIDRs overlaps another node's: then that is logged
 * (both named), the node's last good mapping stays, and the change is
 * tried again when a node goes away or changes.
 */
void zt_peers_node_set(struct zt_peers *p, const struct zt_k8s_object *o, bool self);
void zt_peers_node_del(struct zt_peers *p, const char *name);
size_t zt_peers_count(const struct zt_peers *p);

/*
 * The other nodes' pod addresses (IPv4 and IPv6) and their nodes, from the
 * pod watch, for pods outside every node's podCIDRs: built whole at each
 * pod recompute, then committed in place of the last set (ownership passes;
 * on out of memory the last set stays). Committing also puts the set's
 * addresses into the datapath's strict-mode remote sets (/32, /128) and
 * takes out those that left it. add: a pod of another node.
 */
struct zt_peers_pods;
struct zt_peers_pods *zt_peers_pods_new(void);
void zt_peers_pods_add(struct zt_peers_pods *b, const struct zt_k8s_object *o);
void zt_peers_pods_commit(struct zt_peers *p, struct zt_peers_pods *b);

/* The table of d (NULL without a Node watch: kubernetes.enabled off, or mtls.mode off). */
struct zt_peers *daemon_k8s_peers(struct zt_daemon *d);
/*
 * The agent of another node for the IPv4 pod address addr (network byte
 * order) into out (net: the node's CIDR, port 0: mtls.port): the node whose
 * podCIDR holds it, else the node of the pod the watch knows at it (net
 * the address, /32). -ENOENT when neither, or when it is this node's (a
 * local address that is no workload here has no agent to go to).
 */
int daemon_peers_lookup4(struct zt_daemon *d, uint32_t addr, struct zt_mtls_peer *out);
/*
 * The same for an IPv6 pod address (16 bytes): the node whose IPv6 podCIDR
 * holds it, else the node of the pod the watch knows at it (net /128).
 */
int daemon_peers_lookup6(struct zt_daemon *d, const uint8_t *addr, struct zt_mtls_peer6 *out);
/* "peers" (mtls.peers and the nodes', with where each came from) into the status map. */
int daemon_peers_status(struct zt_daemon *d, cbor_item_t *top);

#endif
