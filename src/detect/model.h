/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The embedded model: a tree ensemble (random forest or gradient-boosted
 * trees) trained offline by tools/train and loaded from a versioned CBOR
 * file, evaluated in the daemon off the packet path.
 *
 * The file (format 1; tools/train/train.py writes it) is one CBOR map:
 *   format        "ztagent-model"
 *   version       1
 *   schema_hash   32-byte string: features.h's hash the model was trained on
 *   features      [names], must equal this agent's schema, in order
 *   classes       [names], "benign" and threat types (enum zt_threat), no repeats
 *   kind          "forest": P = mean over trees of the leaf's class distribution
 *                 "boosted": raw = init + sum of leaves, per class; P = softmax(raw)
 *   init          [floats], one per class (boosted only)
 *   trees         [tree maps], each with packed little-endian arrays of n nodes:
 *                   feature   int32[n]: feature index, or -1 at a leaf
 *                   threshold float64[n]: go left when x[feature] <= threshold
 *                   left      int32[n], right int32[n]: child node indices
 *                                (> the node's own, so every walk ends)
 *                   value     float64[leaves * width]: one row per leaf, the
 *                                leaves in node order; for "forest" the width is
 *                                the number of classes, for "boosted" 1
 *                   class     ("boosted" only) the class the tree adds to
 *   threshold     the score at or above which a flow is a threat
 *   target_fpr    the false-positive rate the threshold was chosen for
 *   fpr_table     optional [[fpr, threshold], ...] from the benign validation set,
 *                 so another detection.target_fpr picks its own threshold
 *   metadata      optional map; "created" and "trainer" (text) are kept for status
 *
 * Every count is bounded (ZT_MODEL_MAX_*) and every index checked at load,
 * so a hostile file is refused, never walked out of bounds. A file whose
 * schema_hash or feature list differs from this agent's is refused with
 * -ESTALE and a message that says so: the agent then runs on its detectors.
 */
#ifndef ZT_DETECT_MODEL_H
#define ZT_DETECT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect/detect.h"

#define ZT_MODEL_FORMAT "ztagent-model"
#define ZT_MODEL_VERSION 1
#define ZT_MODEL_MAX_FILE (64u << 20)
#define ZT_MODEL_MAX_CLASSES 8
#define ZT_MODEL_MAX_TREES 4096
#define ZT_MODEL_MAX_TREE_NODES (1u << 20)
#define ZT_MODEL_MAX_NODES (1u << 23) /* all trees together */
#define ZT_MODEL_MAX_FPR_TABLE 1024
#define ZT_MODEL_MAX_FEATURES 1024

/* Threat types (enum zt_threat, zt_threat_name/parse): detect/detect.h. */

enum zt_model_kind {
	ZT_MODEL_FOREST = 0,
	ZT_MODEL_BOOSTED = 1,
};

struct zt_model_result {
	float score; /* 1 - P(benign), in [0, 1] */
	bool alert; /* score >= the threshold in force */
	enum zt_threat threat; /* the likeliest threat class (also below the threshold) */
	float threat_p; /* its probability */
};

struct zt_model_info {
	enum zt_model_kind kind;
	uint32_t n_trees;
	uint32_t n_nodes;
	uint32_t n_features;
	uint32_t n_classes;
	enum zt_threat classes[ZT_MODEL_MAX_CLASSES];
	double threshold; /* in force */
	double target_fpr; /* the threshold's */
	double file_threshold; /* the file's own */
	double file_target_fpr;
	char created[64];
	char trainer[128];
	char schema_hash[65];
};

struct zt_model;

/*
 * Loads a model file (at most ZT_MODEL_MAX_FILE bytes). On failure *out is
 * untouched and err says what and where: -ENOENT/-EACCES/... (the file),
 * -EFBIG (too large), -EPROTO (not a valid model file), -ENOTSUP (a format
 * version this agent does not read), -ESTALE (trained for another feature
 * schema). The agent keeps running on its detectors either way.
 */
int zt_model_load(const char *path, struct zt_model **out, char *err, size_t errlen);
/* Same, from memory (also the libFuzzer entry point: pure, no I/O). */
int zt_model_load_buf(const uint8_t *buf, size_t len, struct zt_model **out, char *err,
		      size_t errlen);
void zt_model_free(struct zt_model *m);

/*
 * Scores one feature vector x[ZT_F_COUNT] (features.h). Allocation-free,
 * thread-safe on a loaded model (read-only). A NaN feature goes right at
 * every split, as it compares false. Returns 0, or -EINVAL without m, x or out.
 */
int zt_model_score(const struct zt_model *m, const float *x, struct zt_model_result *out);
/* The class probabilities in the file's class order, n >= the number of classes. */
int zt_model_proba(const struct zt_model *m, const float *x, double *p, size_t n);

/*
 * Sets the threshold for a target false-positive rate from the file's
 * fpr_table: the lowest threshold whose validation FPR is at most fpr.
 * Without a table (or fpr <= 0) the file's own threshold stays. Returns 0,
 * or -ERANGE when no table entry is that low (the highest threshold is used).
 */
int zt_model_set_target_fpr(struct zt_model *m, double fpr);
void zt_model_get_info(const struct zt_model *m, struct zt_model_info *info);

#endif
