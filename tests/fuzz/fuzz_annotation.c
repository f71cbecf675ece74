// SPDX-License-Identifier: GPL-2.0-only
/*
 * ztagent.io/ annotations (ztctl annotate, the Kubernetes watch, the
 * state_dir/annotations file): zt_gen_annotation_check for both keys on a
 * pod and on a namespace; a talks-to that is accepted must generate
 * policy YAML that the policy parser accepts, whatever the isolation of
 * the namespaces involved (an accepted annotation never breaks the store).
 */
#include "fuzz.h"
#include "seg/polgen.h"
#include "seg/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct zt_label lab[] = { { "app", "web" }, { "tier", "front" } };
	char *s = fuzz_cstr(data, size), err[1024], problems[2048];
	struct zt_gen_ns nss[3] = { { "shop", ZT_GEN_ISO_STRICT },
				    { "payments", ZT_GEN_ISO_NAMESPACE },
				    { "ops", ZT_GEN_ISO_STRICT } };
	struct zt_gen_pod pod = { .ns = "shop", .name = "web-1", .labels = lab, .n_labels = 2 };
	struct zt_policy_set *set = NULL;
	char *yaml = NULL;

	zt_gen_annotation_check(ZT_ANN_ISOLATION, s, true, err, sizeof(err));
	zt_gen_annotation_check(ZT_ANN_ISOLATION, s, false, err, sizeof(err));
	zt_gen_annotation_check(s, "x", false, err, sizeof(err));
	if (zt_gen_annotation_check(ZT_ANN_TALKS_TO, s, false, err, sizeof(err)) == 0) {
		pod.talks_to = s;
		FUZZ_CHECK(zt_polgen(nss, 3, &pod, 1, &yaml, problems, sizeof(problems)) == 0,
			   "polgen '%s'", s);
		FUZZ_CHECK(!problems[0], "accepted '%s' but generation reports: %s", s, problems);
		FUZZ_CHECK(zt_policy_parse_buf(yaml, strlen(yaml), "generated", &set, err,
					       sizeof(err)) == 0,
			   "talks-to '%s' was accepted but its policy does not parse: %s", s, err);
		zt_policy_set_free(set);
		free(yaml);
	}
	free(s);
	return 0;
}
