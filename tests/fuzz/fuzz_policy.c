// SPDX-License-Identifier: GPL-2.0-only
/*
 * Policy files (NetworkPolicy / ZeroTrustPolicy YAML): zt_policy_parse_buf,
 * then every policy and rule described and the set evaluated for a few
 * connections between two endpoints, as `ztctl policy explain` does.
 */
#include <netinet/in.h>

#include "fuzz.h"
#include "seg/endpoint.h"
#include "seg/policy.h"
#include "seg/policy_eval.h"

static struct zt_ep *eps[2];
static struct zt_eval_endpoint views[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const struct zt_ep_spec specs[2] = {
		{ .ifname = "v-web",
		  .name = "web",
		  .ns = "prod",
		  .addrs = "198.18.1.10",
		  .labels = "app=web,tier=front",
		  .ns_labels = "env=prod",
		  .ports = "http=8080/TCP,dns=53/UDP" },
		{ .ifname = "v-db",
		  .name = "db",
		  .ns = "data",
		  .addrs = "198.18.1.20,2001:db8::20",
		  .labels = "app=db",
		  .ns_labels = "env=prod",
		  .ports = "pg=5432/TCP" },
	};
	char err[256];

	for (int i = 0; i < 2; i++) {
		if (zt_ep_from_spec(&specs[i], &eps[i], err, sizeof(err)) < 0)
			abort();
		views[i] = eps[i]->ev;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_policy_set *set = NULL;
	char err[1024], d[512];

	if (zt_policy_parse_buf((const char *)data, size, "fuzz.yaml", &set, err, sizeof(err)) <
	    0) {
		FUZZ_CHECK(err[0], "refused without a message");
		return 0;
	}
	for (size_t i = 0; i < set->n; i++) {
		const struct zt_policy *p = &set->policies[i];

		zt_policy_describe(p, NULL, d, sizeof(d));
		for (int dir = 0; dir < ZT_POL_DIR_MAX; dir++)
			for (size_t k = 0; k < p->n_rules[dir]; k++)
				zt_policy_describe(p, &p->rules[dir][k], d, sizeof(d));
	}
	{
		static const struct {
			int a, b;
			uint8_t proto;
			uint16_t port;
		} conns[] = { { 0, 1, IPPROTO_TCP, 5432 },
			      { 1, 0, IPPROTO_TCP, 8080 },
			      { 0, 1, IPPROTO_UDP, 53 },
			      { 0, -1, IPPROTO_TCP, 443 },
			      { -1, 0, IPPROTO_TCP, 8080 } };

		for (size_t i = 0; i < sizeof(conns) / sizeof(conns[0]); i++) {
			struct zt_eval_conn c = { .protocol = conns[i].proto,
						  .port = conns[i].port };
			struct zt_eval_result res;

			if (conns[i].a >= 0)
				c.src.ep = &views[conns[i].a];
			else
				c.src.addr = (struct zt_ep_addr){ .family = AF_INET,
								  .addr = { 203, 0, 113, 9 } };
			if (conns[i].b >= 0)
				c.dst.ep = &views[conns[i].b];
			else
				c.dst.addr = (struct zt_ep_addr){ .family = AF_INET,
								  .addr = { 203, 0, 113, 7 } };
			for (int def = 0; def < 2; def++) {
				FUZZ_CHECK(zt_policy_eval(set, (enum zt_pol_default)def, views, 2,
							  &c, &res) == 0,
					   "evaluation failed");
				zt_eval_format(&res, &c, d, sizeof(d));
			}
		}
	}
	zt_policy_set_free(set);
	return 0;
}
