/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Policy compiler and applier: from a policy set, the endpoints and the
 * node's own addresses to the contents of tc_endpoint's maps, and from
 * there into the kernel as one generation (ztagent.h explains the slots).
 *
 *   zt_identities     label set -> numeric identity, stable while in use
 *   zt_polc_compile   policy set + endpoints -> struct zt_compiled (pure:
 *                     no kernel, testable against zt_policy_eval)
 *   zt_polc_apply     compiled -> the inactive slot, publish gen, clear
 *                     the slot of two generations ago
 *
 * Semantics are zt_policy_eval_ex's (policy_eval.h) with the host
 * addresses as zt_eval_opts.host_addrs, per side: tc_endpoint enforces the
 * egress side on the source's veth and the ingress side on the
 * destination's. The host (ZT_ID_HOST: the node's addresses) is always
 * allowed to and from its endpoints, as Kubernetes specifies (only a
 * ZeroTrustPolicy deny rule without from/to, i.e. for every peer, still
 * denies it: its ZT_ID_ANY entry wins over the host entry, see below).
 *
 * What the kernel lookup must do with these entries (ztagent.h, made
 * precise): for (dir, local identity, peer identity, proto, port), look up
 * the peer's identity and ZT_ID_ANY (full-length keys), and the peer
 * address's ipcache cidr_id and port_class when non-zero. Per verdict field
 * (verdict/rule_id/flags and audit_verdict/audit_rule_id): DENY from any
 * lookup wins, then ALLOW; when several give the same verdict the lowest
 * non-zero rule id decides (rule ids follow policy order, so this is "the
 * first rule", as the evaluator reports it) and the ALLOW flags are ORed.
 * The host entry is ALLOW with rule id 0 (reason: host). With NONE or no
 * entry from both, pol_isolation decides: isolated -> deny (rule_id = the
 * isolating policy, or 0 with by_default: policy.default), else allow.
 *
 * Rule ids (struct zt_compiled.rules, index = id): 0 = none; then per
 * policy in set order: one id for the policy itself (rule NULL: what
 * isolation entries carry), then its ingress rules, then its egress rules.
 */
#ifndef ZT_POLCOMPILE_H
#define ZT_POLCOMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seg/policy.h"
#include "seg/policy_eval.h"
#include "seg/selector.h"
#include "ztagent.h"

/* ---- identities ---- */

struct zt_identities;

int zt_identities_new(struct zt_identities **out);
void zt_identities_free(struct zt_identities *ids);
/*
 * The identity of a label set (namespace, labels, namespace labels; label
 * order does not matter, nor an explicit kubernetes.io/metadata.name label
 * naming the set's own namespace, which is implied), allocating the lowest
 * free id >= ZT_ID_FIRST_LABELS on first use. Each call takes a reference;
 * zt_identities_put drops one and frees the id at zero. want != 0 asks for
 * that id (restoring state after a restart): -EEXIST when it is taken by
 * another label set or the label set already has another id, -ERANGE when
 * want is outside [ZT_ID_FIRST_LABELS, ZT_ID_FIRST_CIDR). -ENOSPC when every
 * label id is in use, -ENOMEM.
 */
int zt_identities_get(struct zt_identities *ids, const struct zt_label_set *ls, uint32_t want,
		      uint32_t *id);
void zt_identities_put(struct zt_identities *ids, uint32_t id);
/*
 * The label set of id, or NULL (pointers valid until the id is freed). It is
 * the canonical form: labels sorted by key, the implied namespace label left
 * out.
 */
const struct zt_label_set *zt_identities_labels(const struct zt_identities *ids, uint32_t id);

/* ---- compile ---- */

struct zt_polc_endpoint {
	uint32_t ep_id;
	uint32_t identity; /* from zt_identities_get */
	/*
	 * Name, label set, addresses, named ports. Named ports are resolved
	 * per identity: the union over the endpoints that share it (replicas
	 * normally declare the same ports).
	 */
	const struct zt_eval_endpoint *ev;
};

struct zt_polc_input {
	const struct zt_policy_set *set; /* may hold no policies; not NULL */
	enum zt_pol_default def;
	const struct zt_polc_endpoint *eps;
	size_t n_eps;
	const struct zt_ep_addr *host_addrs; /* the node's own addresses -> ZT_ID_HOST */
	size_t n_host_addrs;
	/*
	 * Endpoints may have identity ZT_ID_PENDING (labels not known yet):
	 * their addresses map to it (with the CIDR identity ipBlock peers
	 * see), and it is in no identity group: no selector matches it, no
	 * policy selects it. pending_isolated (kubernetes.pending_posture:
	 * deny) isolates ZT_ID_PENDING both ways, the host still allowed
	 * (reason default-deny, rule 0, by_default), whether or not an
	 * endpoint has it now: an endpoint leaving the pending state is still
	 * ZT_ID_PENDING in the endpoints map until the generation that knows
	 * its labels is in force.
	 */
	bool pending_isolated;
};

/* What a rule id stands for: a rule, or a policy alone (isolation). */
struct zt_polc_rule {
	const struct zt_policy *policy; /* NULL for id 0 */
	const struct zt_pol_rule *rule; /* NULL: the policy itself (it isolates) */
};

struct zt_polc_pol_entry {
	uint32_t prefixlen; /* ZT_POL_PLEN_ANY_PROTO .. ZT_POL_PLEN_FULL */
	uint8_t dir; /* enum zt_dir */
	uint32_t local_id;
	uint32_t peer_id; /* ZT_ID_ANY = every peer */
	uint8_t proto; /* 0 with ZT_POL_PLEN_ANY_PROTO */
	/*
	 * First port of the block of 2^(ZT_POL_PLEN_FULL - prefixlen) ports;
	 * 0 with ZT_POL_PLEN_PROTO (every port) and ZT_POL_PLEN_ANY_PROTO.
	 */
	uint16_t port;
	struct zt_pol_val val; /* baked: the combination of every entry containing it */
};

/* Only for identities isolated (or audit-isolated) in dir; absent = neither. */
struct zt_polc_iso_entry {
	uint8_t dir;
	uint32_t identity;
	struct zt_iso_val val;
};

/*
 * 0/0 and ::/0 -> the worlds, every ipBlock prefix -> its CIDR identity,
 * host addresses -> ZT_ID_HOST, endpoint addresses -> their identity and
 * ep_id. Same prefix twice: endpoint over host over CIDR. Endpoint
 * addresses also get cidr_id (the CIDR identity or world the address lies
 * in, so ipBlock peers match it) and port_class (the pair of that and the
 * endpoint's identity, for egress ipBlock rules with named ports), each
 * only when some policy entry has it as its peer.
 */
struct zt_polc_ipc_entry {
	int family; /* AF_INET | AF_INET6 */
	uint8_t plen; /* address prefix length */
	uint8_t addr[16];
	struct zt_ipcache_val val;
};

/*
 * Every distinct prefix an effective rule's ipBlock names (cidr or except),
 * sorted (family, address, length), numbered from ZT_ID_FIRST_CIDR; /0 is
 * not one of them (it is the world's, ZT_ID_WORLD_V4/V6).
 */
struct zt_polc_cidr_id {
	struct zt_cidr cidr;
	uint32_t identity;
};

struct zt_compiled {
	struct zt_polc_pol_entry *pol;
	size_t n_pol;
	struct zt_polc_iso_entry *iso;
	size_t n_iso;
	struct zt_polc_ipc_entry *ipc;
	size_t n_ipc;
	struct zt_polc_cidr_id *cidr_ids;
	size_t n_cidr_ids;
	struct zt_polc_rule *rules; /* index = rule id; rules[0] = none */
	size_t n_rules;
	const struct zt_policy_set *set; /* borrowed: keep it while this lives */
};

/*
 * Compiles. Deterministic: the same input gives the same entries in the same
 * order (policy entries sorted by key, ipcache by family/length/address,
 * isolation by dir/identity). On failure returns -errno (-ENOMEM, -E2BIG
 * past ZT_POLC_MAX_ENTRIES entries of one map, or past 4x that many
 * intermediate entries; -EINVAL for an endpoint without a label identity or
 * an address of another family) with a message in err; *out is untouched.
 */
#define ZT_POLC_MAX_ENTRIES (1u << 20)
int zt_polc_compile(const struct zt_polc_input *in, struct zt_compiled **out, char *err,
		    size_t errlen);
void zt_compiled_free(struct zt_compiled *c);

/*
 * "NetworkPolicy prod/allow-web spec.ingress[0] (web.yaml:12:5)" for a rule,
 * "NetworkPolicy prod/allow-web (web.yaml:1:1)" for a policy's own id (what
 * isolation entries carry), "none" for 0. Returns 0, -ENOSPC (truncated) or
 * -ENOENT (no such id; buf says so).
 */
int zt_polc_rule_describe(const struct zt_compiled *c, uint32_t rule_id, char *buf, size_t n);

/* ---- apply ---- */

struct zt_polmaps {
	int policy_fd; /* ZT_PIN_POLICY */
	int iso_fd; /* ZT_PIN_POL_ISOLATION */
	int ipc4_fd; /* ZT_PIN_IPCACHE_V4 */
	int ipc6_fd; /* ZT_PIN_IPCACHE_V6 */
	int state_fd; /* ZT_PIN_POL_STATE (array of one, BPF_F_MMAPABLE) */
};

struct zt_polapply;

/*
 * Takes the maps (not owned; checked for ztagent.h's key and value sizes,
 * pol_state for BPF_F_MMAPABLE, which is mmapped). Reads the current
 * generation from pol_state, so a restarted daemon continues from what the
 * kernel enforces: a slot it has not written itself is read back with
 * bpf_map_get_next_key before it is first written.
 */
int zt_polapply_new(struct zt_polapply **out, const struct zt_polmaps *maps, char *err,
		    size_t errlen);
void zt_polapply_free(struct zt_polapply *a);
/*
 * Writes c into the slot not in use (first removing whatever is left there),
 * then publishes gen + 1 with one atomic store (release). The slot is
 * diffed against the applier's record of it: only keys that went are
 * deleted and only new or changed entries written, so re-applying a
 * similar policy is cheap. Big writes use a second thread. On failure the
 * new slot is cleared again, the published generation is unchanged (the
 * last good policy stays in force), and -errno + err say why (a full map:
 * its name and max_entries). *gen (may be NULL) gets the new generation.
 * Does not keep c. Not thread-safe: one caller at a time per applier.
 */
int zt_polapply_apply(struct zt_polapply *a, const struct zt_compiled *c, uint32_t *gen, char *err,
		      size_t errlen);
uint32_t zt_polapply_gen(const struct zt_polapply *a);

/*
 * Drift: what the kernel's policy, isolation and ipcache maps (and
 * pol_state.gen) hold that the applier did not write, or lack. Index 0
 * counts the policy maps (policy, pol_isolation), 1 the ipcache maps.
 */
struct zt_polapply_drift {
	size_t extra[2], changed[2], missing[2];
	bool gen_changed;
	char first[160]; /* the first difference, for the log and the audit trail */
};
/*
 * Compares every key of the slots the applier knows with its records and,
 * with repair, puts them back. Returns 0 or the first -errno of a repair;
 * d says what differed. Not thread-safe (the applier's thread only).
 */
int zt_polapply_verify(struct zt_polapply *a, bool repair, struct zt_polapply_drift *d);

/* One difference, for a caller that decides and reports per entry. */
struct zt_polapply_diff {
	int kind; /* 0 policy (policy, pol_isolation), 1 ipcache */
	const char *map; /* its pin name */
	const uint8_t *key;
	size_t ksz;
	const char *what; /* "entry added", "entry changed", "entry deleted" */
};
struct zt_polapply_drift_cb {
	/* May this entry be repaired now? */
	bool (*may)(void *ctx, const struct zt_polapply_diff *df);
	/* After: repaired or not, the repair's -errno. */
	void (*done)(void *ctx, const struct zt_polapply_diff *df, bool repaired, int err);
	void *ctx;
};
/* zt_polapply_verify, asking cb before each repair and telling it after. */
int zt_polapply_verify_cb(struct zt_polapply *a, const struct zt_polapply_drift_cb *cb,
			  struct zt_polapply_drift *d);
/*
 * One key of map (a pin name) that another process just wrote: made what
 * the applier's records say (exact, tries included: an entry is put back
 * with BPF_NOEXIST, so a covering prefix never passes for it). -ENOENT: not
 * one of the applier's maps.
 */
int zt_polapply_check_key(struct zt_polapply *a, const char *map, const uint8_t *key, size_t ksz,
			  const struct zt_polapply_drift_cb *cb);

#endif
