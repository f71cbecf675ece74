// SPDX-License-Identifier: GPL-2.0-only
/*
 * The agent's configuration file (YAML): zt_config_load_buf. A refused file
 * names the file and a place; an accepted one has every text field
 * terminated inside its array.
 */
#include "fuzz.h"
#include "agent/config.h"

static void check_text(const char *field, size_t size, const char *name)
{
	FUZZ_CHECK(strnlen(field, size) < size, "%s is not terminated", name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_config *c = malloc(sizeof(*c));
	char err[1024];
	int r;

	if (!c)
		abort();
	r = zt_config_load_buf((const char *)data, size, "fuzz.yaml", c, err, sizeof(err));
	if (r == 0) {
		check_text(c->node, sizeof(c->node), "node");
		check_text(c->bpffs, sizeof(c->bpffs), "bpffs");
		check_text(c->api_socket, sizeof(c->api_socket), "api_socket");
		check_text(c->state_dir, sizeof(c->state_dir), "state_dir");
		check_text(c->policy.dir, sizeof(c->policy.dir), "policy.dir");
		check_text(c->database.url, sizeof(c->database.url), "database.url");
		check_text(c->database.spool_dir, sizeof(c->database.spool_dir), "spool_dir");
		check_text(c->metrics.listen, sizeof(c->metrics.listen), "metrics.listen");
		FUZZ_CHECK(c->xdp.n_interfaces <= ZT_MAX_IFACES, "%u interfaces",
			   c->xdp.n_interfaces);
		for (unsigned int i = 0; i < c->xdp.n_interfaces; i++)
			check_text(c->xdp.interfaces[i], sizeof(c->xdp.interfaces[i]), "interface");
	} else {
		FUZZ_CHECK(err[0] && !strncmp(err, "fuzz.yaml", 9), "refusal without a place: '%s'",
			   err);
	}
	free(c);
	return 0;
}
