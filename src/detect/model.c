// SPDX-License-Identifier: GPL-2.0-only
/*
 * The tree-ensemble runtime (model.h): a strict loader for the CBOR model
 * file, and an allocation-free evaluator.
 *
 * Trees are kept in one flat node array (16 bytes a node) with absolute
 * indices, thresholds as float: a float feature x satisfies x <= t (t the
 * file's double) exactly when x <= t32, t32 the largest float not above
 * t, so the float comparison decides as scikit-learn does (it compares
 * float32 features with double thresholds) at half the memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/cbor.h"
#include "agent/util.h"
#include "detect/features.h"
#include "detect/model.h"

struct mnode {
	float thr;
	int32_t feat; /* -1: a leaf */
	uint32_t left; /* a leaf: its row's offset in values */
	uint32_t right;
};

struct mtree {
	uint32_t root; /* index of node 0 in nodes */
	uint32_t cls; /* boosted: the class it adds to */
};

struct fpr_point {
	double fpr, thr;
};

struct zt_model {
	enum zt_model_kind kind;
	uint32_t n_classes, n_features, n_trees, n_nodes, n_values;
	uint32_t benign; /* index of "benign" in classes */
	enum zt_threat classes[ZT_MODEL_MAX_CLASSES];
	double init[ZT_MODEL_MAX_CLASSES];
	struct mtree *trees;
	struct mnode *nodes;
	double *values;
	struct fpr_point *fpr_table;
	uint32_t n_fpr;
	double threshold, target_fpr, file_threshold, file_target_fpr;
	char created[64];
	char trainer[128];
};

void zt_model_free(struct zt_model *m)
{
	if (!m)
		return;
	free(m->trees);
	free(m->nodes);
	free(m->values);
	free(m->fpr_table);
	free(m);
}

/* ---- loading ---- */

/* A number of any CBOR kind (unsigned, negative, float) as a double; false otherwise. */
static bool num(const cbor_item_t *it, double *out)
{
	if (!it)
		return false;
	if (cbor_isa_uint(it)) {
		*out = (double)cbor_get_int(it);
		return true;
	}
	if (cbor_isa_negint(it)) {
		*out = -1.0 - (double)cbor_get_int(it);
		return true;
	}
	if (cbor_isa_float_ctrl(it) && cbor_float_get_width(it) != CBOR_FLOAT_0) {
		*out = cbor_float_get_float(it);
		return isfinite(*out);
	}
	return false;
}

/* A definite byte string of exactly n elements of size elem. */
static const uint8_t *packed(const cbor_item_t *tree, const char *key, size_t n, size_t elem,
			     uint32_t t, char *err, size_t errlen)
{
	const cbor_item_t *v = zt_cbor_get(tree, key);

	if (!v || !cbor_isa_bytestring(v) || !cbor_bytestring_is_definite(v)) {
		zt_seterr(err, errlen, "trees[%u].%s: expected a byte string (packed array)", t,
			  key);
		return NULL;
	}
	if (cbor_bytestring_length(v) != n * elem) {
		zt_seterr(err, errlen, "trees[%u].%s: %zu bytes, expected %zu (%zu x %zu)", t, key,
			  cbor_bytestring_length(v), n * elem, n, elem);
		return NULL;
	}
	return cbor_bytestring_handle(v);
}

static int32_t le32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24);
}

static double le64f(const uint8_t *p)
{
	uint64_t u = 0;
	double d;

	for (int i = 7; i >= 0; i--)
		u = u << 8 | p[i];
	memcpy(&d, &u, sizeof(d));
	return d;
}

/* The largest float not above t (see the top of this file). */
static float floor_float(double t)
{
	float f = (float)t;

	if ((double)f > t)
		f = nextafterf(f, -INFINITY);
	return f;
}

static int check_header(const cbor_item_t *root, struct zt_model *m, char *err, size_t errlen)
{
	const uint8_t *want = zt_feat_schema_hash();
	char fmt[32], kind[16], name[64];
	const cbor_item_t *v, *feats, *classes;
	uint64_t ver;

	if (zt_cbor_get_str(root, "format", fmt, sizeof(fmt)) || strcmp(fmt, ZT_MODEL_FORMAT)) {
		zt_seterr(err, errlen, "format: expected \"%s\" (not a ztagent model file)",
			  ZT_MODEL_FORMAT);
		return -EPROTO;
	}
	if (zt_cbor_get_u64(root, "version", &ver)) {
		zt_seterr(err, errlen, "version: expected an unsigned integer");
		return -EPROTO;
	}
	if (ver != ZT_MODEL_VERSION) {
		zt_seterr(
			err, errlen,
			"version %llu: this agent reads model format %d; retrain with its tools/train",
			(unsigned long long)ver, ZT_MODEL_VERSION);
		return -ENOTSUP;
	}
	v = zt_cbor_get(root, "schema_hash");
	if (!v || !cbor_isa_bytestring(v) || !cbor_bytestring_is_definite(v) ||
	    cbor_bytestring_length(v) != ZT_FEAT_HASH_LEN) {
		zt_seterr(err, errlen, "schema_hash: expected a %d-byte string", ZT_FEAT_HASH_LEN);
		return -EPROTO;
	}
	if (memcmp(cbor_bytestring_handle(v), want, ZT_FEAT_HASH_LEN)) {
		char got[ZT_FEAT_HASH_HEX];

		for (int i = 0; i < ZT_FEAT_HASH_LEN; i++)
			snprintf(got + 2 * i, 3, "%02x", cbor_bytestring_handle(v)[i]);
		zt_seterr(
			err, errlen,
			"trained for feature schema %.16s, this agent computes schema %.16s: refused (retrain with this agent's `make train`); detection runs on the detectors alone",
			got, zt_feat_schema_hash_hex());
		return -ESTALE;
	}
	/* The hash says it already; the names catch a trainer that hashed one list and sent another. */
	feats = zt_cbor_get(root, "features");
	if (!feats || !cbor_isa_array(feats) || cbor_array_size(feats) != ZT_F_COUNT) {
		zt_seterr(err, errlen, "features: expected an array of the %d feature names",
			  ZT_F_COUNT);
		return feats && cbor_isa_array(feats) ? -ESTALE : -EPROTO;
	}
	for (size_t i = 0; i < ZT_F_COUNT; i++) {
		cbor_item_t *it = cbor_array_get(feats, i);
		int r = zt_cbor_str(it, name, sizeof(name));

		if (it)
			cbor_decref(&it);
		if (r || strcmp(name, zt_feat_defs[i].name)) {
			zt_seterr(err, errlen, "features[%zu]: expected \"%s\"", i,
				  zt_feat_defs[i].name);
			return -ESTALE;
		}
	}
	m->n_features = ZT_F_COUNT;
	classes = zt_cbor_get(root, "classes");
	if (!classes || !cbor_isa_array(classes) || cbor_array_size(classes) < 2 ||
	    cbor_array_size(classes) > ZT_MODEL_MAX_CLASSES) {
		zt_seterr(err, errlen, "classes: expected an array of 2 to %d class names",
			  ZT_MODEL_MAX_CLASSES);
		return -EPROTO;
	}
	m->n_classes = (uint32_t)cbor_array_size(classes);
	m->benign = UINT32_MAX;
	for (uint32_t i = 0; i < m->n_classes; i++) {
		cbor_item_t *it = cbor_array_get(classes, i);
		int r = zt_cbor_str(it, name, sizeof(name));

		if (it)
			cbor_decref(&it);
		if (r || zt_threat_parse(name, &m->classes[i]) ||
		    m->classes[i] >= ZT_THREAT_CLASSES) {
			zt_seterr(
				err, errlen,
				"classes[%u]: expected benign, scan, flood, bruteforce, slowconn or exfiltration",
				i);
			return -EPROTO;
		}
		for (uint32_t j = 0; j < i; j++)
			if (m->classes[j] == m->classes[i]) {
				zt_seterr(err, errlen, "classes[%u]: \"%s\" appears twice", i,
					  name);
				return -EPROTO;
			}
		if (m->classes[i] == ZT_THREAT_NONE)
			m->benign = i;
	}
	if (m->benign == UINT32_MAX) {
		zt_seterr(err, errlen, "classes: \"benign\" is missing");
		return -EPROTO;
	}
	if (zt_cbor_get_str(root, "kind", kind, sizeof(kind)) ||
	    (strcmp(kind, "forest") && strcmp(kind, "boosted"))) {
		zt_seterr(err, errlen, "kind: expected \"forest\" or \"boosted\"");
		return -EPROTO;
	}
	m->kind = strcmp(kind, "forest") ? ZT_MODEL_BOOSTED : ZT_MODEL_FOREST;
	if (m->kind == ZT_MODEL_BOOSTED) {
		v = zt_cbor_get(root, "init");
		if (!v || !cbor_isa_array(v) || cbor_array_size(v) != m->n_classes) {
			zt_seterr(err, errlen, "init: expected %u numbers (one per class)",
				  m->n_classes);
			return -EPROTO;
		}
		for (uint32_t i = 0; i < m->n_classes; i++) {
			cbor_item_t *it = cbor_array_get(v, i);
			bool ok = num(it, &m->init[i]);

			if (it)
				cbor_decref(&it);
			if (!ok) {
				zt_seterr(err, errlen, "init[%u]: expected a finite number", i);
				return -EPROTO;
			}
		}
	}
	return 0;
}

static int check_threshold(const cbor_item_t *root, struct zt_model *m, char *err, size_t errlen)
{
	const cbor_item_t *tab;

	if (!num(zt_cbor_get(root, "threshold"), &m->file_threshold) || m->file_threshold < 0 ||
	    m->file_threshold > 1.0 + 1e-9) {
		zt_seterr(err, errlen, "threshold: expected a number in [0, 1]");
		return -EPROTO;
	}
	if (!num(zt_cbor_get(root, "target_fpr"), &m->file_target_fpr) || m->file_target_fpr < 0 ||
	    m->file_target_fpr > 1) {
		zt_seterr(err, errlen, "target_fpr: expected a number in [0, 1]");
		return -EPROTO;
	}
	m->threshold = m->file_threshold;
	m->target_fpr = m->file_target_fpr;
	tab = zt_cbor_get(root, "fpr_table");
	if (!tab)
		return 0;
	if (!cbor_isa_array(tab) || cbor_array_size(tab) > ZT_MODEL_MAX_FPR_TABLE) {
		zt_seterr(err, errlen,
			  "fpr_table: expected an array of at most %d [fpr, threshold]",
			  ZT_MODEL_MAX_FPR_TABLE);
		return -EPROTO;
	}
	m->n_fpr = (uint32_t)cbor_array_size(tab);
	m->fpr_table = calloc(m->n_fpr ? m->n_fpr : 1, sizeof(*m->fpr_table));
	if (!m->fpr_table)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n_fpr; i++) {
		cbor_item_t *pair = cbor_array_get(tab, i), *a = NULL, *b = NULL;
		bool ok = pair && cbor_isa_array(pair) && cbor_array_size(pair) == 2;

		if (ok) {
			a = cbor_array_get(pair, 0);
			b = cbor_array_get(pair, 1);
			ok = num(a, &m->fpr_table[i].fpr) && num(b, &m->fpr_table[i].thr) &&
			     m->fpr_table[i].fpr >= 0 && m->fpr_table[i].fpr <= 1 &&
			     m->fpr_table[i].thr >= 0 && m->fpr_table[i].thr <= 1.0 + 1e-9;
		}
		if (a)
			cbor_decref(&a);
		if (b)
			cbor_decref(&b);
		if (pair)
			cbor_decref(&pair);
		if (!ok) {
			zt_seterr(err, errlen,
				  "fpr_table[%u]: expected [fpr, threshold], both in [0, 1]", i);
			return -EPROTO;
		}
	}
	return 0;
}

/* First pass: counts, so that the arrays are allocated once. */
static int count_trees(const cbor_item_t *trees, struct zt_model *m, char *err, size_t errlen)
{
	uint64_t nodes = 0;

	if (!trees || !cbor_isa_array(trees) || cbor_array_size(trees) == 0 ||
	    cbor_array_size(trees) > ZT_MODEL_MAX_TREES) {
		zt_seterr(err, errlen, "trees: expected an array of 1 to %d trees",
			  ZT_MODEL_MAX_TREES);
		return -EPROTO;
	}
	m->n_trees = (uint32_t)cbor_array_size(trees);
	for (uint32_t t = 0; t < m->n_trees; t++) {
		cbor_item_t *tree = cbor_array_get(trees, t);
		const cbor_item_t *f =
			tree && cbor_isa_map(tree) ? zt_cbor_get(tree, "feature") : NULL;
		size_t n = f && cbor_isa_bytestring(f) && cbor_bytestring_is_definite(f) ?
				   cbor_bytestring_length(f) / 4 :
				   0;

		if (tree)
			cbor_decref(&tree);
		if (n == 0 || n > ZT_MODEL_MAX_TREE_NODES) {
			zt_seterr(err, errlen,
				  "trees[%u]: expected a map whose \"feature\" holds 1 to %u int32",
				  t, ZT_MODEL_MAX_TREE_NODES);
			return -EPROTO;
		}
		nodes += n;
	}
	if (nodes > ZT_MODEL_MAX_NODES) {
		zt_seterr(err, errlen, "trees: %llu nodes in all, at most %u",
			  (unsigned long long)nodes, ZT_MODEL_MAX_NODES);
		return -EPROTO;
	}
	m->n_nodes = (uint32_t)nodes;
	m->trees = calloc(m->n_trees, sizeof(*m->trees));
	m->nodes = calloc(m->n_nodes, sizeof(*m->nodes));
	if (!m->trees || !m->nodes)
		return -ENOMEM;
	return 0;
}

static int load_tree(const cbor_item_t *tree, uint32_t t, uint32_t base, uint32_t *n_out,
		     struct zt_model *m, size_t *vcap, char *err, size_t errlen)
{
	const cbor_item_t *f = zt_cbor_get(tree, "feature");
	size_t n = cbor_bytestring_length(f) / 4, leaves = 0;
	uint32_t width = m->kind == ZT_MODEL_FOREST ? m->n_classes : 1;
	const uint8_t *feat, *thr, *left, *right, *val;

	if (!(feat = packed(tree, "feature", n, 4, t, err, errlen)) ||
	    !(thr = packed(tree, "threshold", n, 8, t, err, errlen)) ||
	    !(left = packed(tree, "left", n, 4, t, err, errlen)) ||
	    !(right = packed(tree, "right", n, 4, t, err, errlen)))
		return -EPROTO;
	if (m->kind == ZT_MODEL_BOOSTED) {
		uint64_t cls;

		if (zt_cbor_get_u64(tree, "class", &cls) || cls >= m->n_classes) {
			zt_seterr(err, errlen, "trees[%u].class: expected a class index below %u",
				  t, m->n_classes);
			return -EPROTO;
		}
		m->trees[t].cls = (uint32_t)cls;
	}
	for (size_t i = 0; i < n; i++)
		if (le32(feat + 4 * i) < 0)
			leaves++;
	val = packed(tree, "value", leaves * width, 8, t, err, errlen);
	if (!val)
		return -EPROTO;
	if (m->n_values + leaves * width > UINT32_MAX / 2)
		goto too_big;
	if (zt_grow((void **)&m->values, vcap, m->n_values + leaves * width, sizeof(double)) < 0)
		return -ENOMEM;
	m->trees[t].root = base;
	leaves = 0;
	for (size_t i = 0; i < n; i++) {
		struct mnode *nd = &m->nodes[base + i];
		int32_t fi = le32(feat + 4 * i);

		if (fi < 0) {
			nd->feat = -1;
			nd->left = m->n_values + (uint32_t)(leaves * width);
			for (uint32_t c = 0; c < width; c++) {
				double v = le64f(val + 8 * (leaves * width + c));

				if (!isfinite(v)) {
					zt_seterr(
						err, errlen,
						"trees[%u].value: leaf %zu holds a non-finite value",
						t, leaves);
					return -EPROTO;
				}
				m->values[nd->left + c] = v;
			}
			leaves++;
			continue;
		}
		int32_t l = le32(left + 4 * i), r = le32(right + 4 * i);
		double th = le64f(thr + 8 * i);

		if ((uint32_t)fi >= m->n_features) {
			zt_seterr(err, errlen, "trees[%u] node %zu: feature %d, there are %u", t, i,
				  fi, m->n_features);
			return -EPROTO;
		}
		/* Children after their parent: every walk moves forward and ends at a leaf. */
		if (l <= (int32_t)i || r <= (int32_t)i || (size_t)l >= n || (size_t)r >= n) {
			zt_seterr(
				err, errlen,
				"trees[%u] node %zu: children %d and %d, expected both in (%zu, %zu)",
				t, i, l, r, i, n);
			return -EPROTO;
		}
		if (isnan(th)) {
			zt_seterr(err, errlen, "trees[%u] node %zu: threshold is NaN", t, i);
			return -EPROTO;
		}
		nd->feat = fi;
		nd->thr = floor_float(th);
		nd->left = base + (uint32_t)l;
		nd->right = base + (uint32_t)r;
	}
	m->n_values += (uint32_t)(leaves * width);
	*n_out = (uint32_t)n;
	return 0;
too_big:
	zt_seterr(err, errlen, "trees[%u]: too many leaf values", t);
	return -EPROTO;
}

static void load_metadata(const cbor_item_t *root, struct zt_model *m)
{
	const cbor_item_t *md = zt_cbor_get(root, "metadata");

	if (!md || !cbor_isa_map(md))
		return;
	/* Informational: a missing or oversized text leaves the field empty. */
	if (zt_cbor_get_str(md, "created", m->created, sizeof(m->created)))
		m->created[0] = '\0';
	if (zt_cbor_get_str(md, "trainer", m->trainer, sizeof(m->trainer)))
		m->trainer[0] = '\0';
}

int zt_model_load_buf(const uint8_t *buf, size_t len, struct zt_model **out, char *err,
		      size_t errlen)
{
	/* Per tree a map of at most 8 pairs; the lists; a metadata allowance. */
	const size_t max_items = (size_t)ZT_MODEL_MAX_TREES * 20 + ZT_MODEL_MAX_FEATURES +
				 3 * ZT_MODEL_MAX_FPR_TABLE + 8192;
	cbor_item_t *root = NULL;
	const cbor_item_t *trees;
	struct zt_model *m = NULL;
	size_t vcap = 0;
	uint32_t base = 0;
	int r;

	if (len > ZT_MODEL_MAX_FILE) {
		zt_seterr(err, errlen, "%zu bytes, a model file is at most %u", len,
			  ZT_MODEL_MAX_FILE);
		return -EFBIG;
	}
	r = zt_cbor_decode(buf, len, max_items, &root, err, errlen);
	if (r < 0)
		return r == -ENOMEM ? r : -EPROTO;
	m = calloc(1, sizeof(*m));
	if (!m) {
		r = -ENOMEM;
		goto fail;
	}
	r = check_header(root, m, err, errlen);
	if (r < 0)
		goto fail;
	r = check_threshold(root, m, err, errlen);
	if (r < 0)
		goto fail;
	trees = zt_cbor_get(root, "trees");
	r = count_trees(trees, m, err, errlen);
	if (r < 0)
		goto fail;
	for (uint32_t t = 0; t < m->n_trees; t++) {
		cbor_item_t *tree = cbor_array_get(trees, t);
		uint32_t n = 0;

		r = load_tree(tree, t, base, &n, m, &vcap, err, errlen);
		cbor_decref(&tree);
		if (r < 0)
			goto fail;
		base += n;
	}
	load_metadata(root, m);
	cbor_decref(&root);
	*out = m;
	return 0;
fail:
	if (r == -ENOMEM)
		zt_seterr(err, errlen, "out of memory loading a %zu-byte model", len);
	if (root)
		cbor_decref(&root);
	zt_model_free(m);
	return r;
}

int zt_model_load(const char *path, struct zt_model **out, char *err, size_t errlen)
{
	char sub[512];
	uint8_t *buf = NULL;
	struct stat st;
	size_t got = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "model %s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "model %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		zt_seterr(err, errlen, "model %s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)ZT_MODEL_MAX_FILE) {
		r = -EFBIG;
		zt_seterr(err, errlen, "model %s: %lld bytes, a model file is at most %u", path,
			  (long long)st.st_size, ZT_MODEL_MAX_FILE);
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		r = -ENOMEM;
		zt_seterr(err, errlen, "model %s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r = k < 0 ? -errno : -EIO;
			zt_seterr(err, errlen, "model %s: read failed at byte %zu", path, got);
			goto out;
		}
		got += (size_t)k;
	}
	r = zt_model_load_buf(buf, got, out, sub, sizeof(sub));
	if (r < 0)
		zt_seterr(err, errlen, "model %s: %s", path, sub);
out:
	free(buf);
	close(fd);
	return r;
}

/* ---- evaluation ---- */

static inline uint32_t walk(const struct mnode *nodes, uint32_t i, const float *x)
{
	while (nodes[i].feat >= 0)
		i = x[nodes[i].feat] <= nodes[i].thr ? nodes[i].left : nodes[i].right;
	return nodes[i].left;
}

int zt_model_proba(const struct zt_model *m, const float *x, double *p, size_t n)
{
	if (!m || !x || !p || n < m->n_classes)
		return -EINVAL;
	if (m->kind == ZT_MODEL_FOREST) {
		for (uint32_t c = 0; c < m->n_classes; c++)
			p[c] = 0;
		for (uint32_t t = 0; t < m->n_trees; t++) {
			const double *v = &m->values[walk(m->nodes, m->trees[t].root, x)];

			for (uint32_t c = 0; c < m->n_classes; c++)
				p[c] += v[c];
		}
		for (uint32_t c = 0; c < m->n_classes; c++)
			p[c] /= m->n_trees;
	} else {
		double mx, sum = 0;

		for (uint32_t c = 0; c < m->n_classes; c++)
			p[c] = m->init[c];
		for (uint32_t t = 0; t < m->n_trees; t++)
			p[m->trees[t].cls] += m->values[walk(m->nodes, m->trees[t].root, x)];
		mx = p[0];
		for (uint32_t c = 1; c < m->n_classes; c++)
			if (p[c] > mx)
				mx = p[c];
		for (uint32_t c = 0; c < m->n_classes; c++)
			sum += exp(p[c] - mx);
		for (uint32_t c = 0; c < m->n_classes; c++)
			p[c] = exp(p[c] - mx - log(sum));
	}
	return 0;
}

int zt_model_score(const struct zt_model *m, const float *x, struct zt_model_result *out)
{
	double p[ZT_MODEL_MAX_CLASSES], score;
	uint32_t best = UINT32_MAX;

	if (!out || zt_model_proba(m, x, p, ZT_MODEL_MAX_CLASSES) < 0)
		return -EINVAL;
	score = 1.0 - p[m->benign];
	if (!(score >= 0))
		score = 0;
	if (score > 1)
		score = 1;
	for (uint32_t c = 0; c < m->n_classes; c++)
		if (c != m->benign && (best == UINT32_MAX || p[c] > p[best]))
			best = c;
	out->score = (float)score;
	out->alert = score >= m->threshold;
	out->threat = m->classes[best];
	out->threat_p = (float)p[best];
	return 0;
}

int zt_model_set_target_fpr(struct zt_model *m, double fpr)
{
	double best = -1, highest = -1;

	if (!m->n_fpr || !(fpr > 0)) {
		m->threshold = m->file_threshold;
		m->target_fpr = m->file_target_fpr;
		return 0;
	}
	for (uint32_t i = 0; i < m->n_fpr; i++) {
		if (m->fpr_table[i].thr > highest)
			highest = m->fpr_table[i].thr;
		if (m->fpr_table[i].fpr <= fpr && (best < 0 || m->fpr_table[i].thr < best))
			best = m->fpr_table[i].thr;
	}
	m->target_fpr = fpr;
	if (best < 0) {
		m->threshold = highest;
		return -ERANGE;
	}
	m->threshold = best;
	return 0;
}

void zt_model_get_info(const struct zt_model *m, struct zt_model_info *info)
{
	memset(info, 0, sizeof(*info));
	info->kind = m->kind;
	info->n_trees = m->n_trees;
	info->n_nodes = m->n_nodes;
	info->n_features = m->n_features;
	info->n_classes = m->n_classes;
	memcpy(info->classes, m->classes, sizeof(info->classes));
	info->threshold = m->threshold;
	info->target_fpr = m->target_fpr;
	info->file_threshold = m->file_threshold;
	info->file_target_fpr = m->file_target_fpr;
	snprintf(info->created, sizeof(info->created), "%s", m->created);
	snprintf(info->trainer, sizeof(info->trainer), "%s", m->trainer);
	snprintf(info->schema_hash, sizeof(info->schema_hash), "%s", zt_feat_schema_hash_hex());
}
