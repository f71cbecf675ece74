// SPDX-License-Identifier: GPL-2.0-only
/*
 * featschema: prints the agent's feature schema (src/detect/features.c) as
 * JSON, for tools/train/train.py, so the trainer reads the same ordered
 * names and versions the agent computes and both hash them the same way.
 * With a model file argument: loads it as the agent would and prints what
 * it holds, or why it is refused (exit 1).
 *
 *   build/tools/featschema [--hash | --model FILE]
 */
#include <stdio.h>
#include <string.h>

#include "detect/features.h"
#include "detect/model.h"

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--hash")) {
		printf("%s\n", zt_feat_schema_hash_hex());
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--model")) {
		struct zt_model *m;
		struct zt_model_info in;
		char err[512];

		if (zt_model_load(argv[2], &m, err, sizeof(err)) < 0) {
			fprintf(stderr, "featschema: %s\n", err);
			return 1;
		}
		zt_model_get_info(m, &in);
		printf("model %s: %s, %u trees, %u nodes, %u features, classes", argv[2],
		       in.kind == ZT_MODEL_FOREST ? "forest" : "boosted", in.n_trees, in.n_nodes,
		       in.n_features);
		for (uint32_t c = 0; c < in.n_classes; c++)
			printf("%s%s", c ? "," : " ", zt_threat_name(in.classes[c]));
		printf("; threshold %.6g for target FPR %g; created %s by %s\n", in.threshold,
		       in.target_fpr, in.created[0] ? in.created : "?",
		       in.trainer[0] ? in.trainer : "?");
		zt_model_free(m);
		return 0;
	}
	if (argc != 1) {
		fprintf(stderr,
			"usage: featschema [--hash | --model FILE]\n"
			"  (no argument) the feature schema as JSON, for tools/train\n"
			"  --hash        its SHA-256, as model files carry it\n"
			"  --model FILE  load a model file as the agent does and describe it\n");
		return 2;
	}
	return zt_feat_schema_json(stdout) ? 1 : 0;
}
