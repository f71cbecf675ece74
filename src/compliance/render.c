// SPDX-License-Identifier: GPL-2.0-only
/* The compliance report as JSON, as text for a terminal, and as one self-contained HTML page. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "compliance/compliance.h"
#include "agent/cbor.h"
#include "agent/daemon.h"
#include "agent/util.h"

static const char *iso(int64_t t, char *buf, size_t n)
{
	if (t <= 0 || zt_time_format((uint64_t)t, buf, n) < 0)
		snprintf(buf, n, "-");
	return buf;
}

static const char *day(int64_t t, char *buf, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, n, "%Y-%m-%d", &tm))
		snprintf(buf, n, "-");
	return buf;
}

static int64_t period_days(const struct zt_cmp_facts *f)
{
	return (f->now_unix - f->since_unix + 86399) / 86400;
}

/* ---- JSON ---- */

static cbor_item_t *check_json(const struct zt_cmp_check *c)
{
	cbor_item_t *m = zt_cbor_map(), *items = zt_cbor_array();

	if (!m || !items)
		goto nomem;
	for (size_t i = 0; i < c->n_items; i++) {
		cbor_item_t *s = cbor_build_string(c->items[i]);

		if (!s || zt_cbor_push(items, s)) {
			if (s)
				cbor_decref(&s);
			goto nomem;
		}
	}
	if (zt_cbor_put_str(m, "id", c->id) || zt_cbor_put_str(m, "title", c->title) ||
	    zt_cbor_put_str(m, "result", zt_cmp_result_name(c->result)) ||
	    zt_cbor_put_str(m, "requirement", c->requirement) ||
	    zt_cbor_put_str(m, "evidence", c->evidence ? c->evidence : "") ||
	    zt_cbor_put(m, "items", items))
		goto nomem;
	return m;
nomem:
	if (items)
		cbor_decref(&items);
	if (m)
		cbor_decref(&m);
	return NULL;
}

int zt_cmp_write_json(const struct zt_cmp_facts *f, const struct zt_cmp_report *r, FILE *out)
{
	cbor_item_t *doc = zt_cbor_map(), *period = zt_cbor_map(), *sum = zt_cbor_map(),
		    *checks = zt_cbor_array(), *series = zt_cbor_array();
	char a[40], b[40];
	int ret = -ENOMEM;

	if (!doc || !period || !sum || !checks || !series)
		goto out;
	if (zt_cbor_put_str(period, "since", iso(f->since_unix, a, sizeof(a))) ||
	    zt_cbor_put_str(period, "until", iso(f->now_unix, b, sizeof(b))) ||
	    zt_cbor_put_i64(period, "days", period_days(f)))
		goto out;
	if (zt_cbor_put_str(sum, "overall", zt_cmp_result_name(r->overall)) ||
	    zt_cbor_put_u64(sum, "checks", r->n) || zt_cbor_put_u64(sum, "pass", r->passed) ||
	    zt_cbor_put_u64(sum, "warn", r->warned) || zt_cbor_put_u64(sum, "fail", r->failed))
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		cbor_item_t *c = check_json(&r->checks[i]);

		if (!c || zt_cbor_push(checks, c)) {
			if (c)
				cbor_decref(&c);
			goto out;
		}
	}
	for (size_t i = 0; i < f->n_days; i++) {
		cbor_item_t *d = zt_cbor_map();

		if (!d || zt_cbor_put_str(d, "day", day(f->days[i].day_unix, a, sizeof(a))) ||
		    zt_cbor_put_u64(d, "denials", f->days[i].denials) ||
		    zt_cbor_put_u64(d, "incidents", f->days[i].incidents) ||
		    zt_cbor_push(series, d)) {
			if (d)
				cbor_decref(&d);
			goto out;
		}
	}
	if (zt_cbor_put_str(doc, "report", "ztagent compliance posture") ||
	    zt_cbor_put_str(doc, "version", ZT_VERSION) || zt_cbor_put_str(doc, "node", f->node) ||
	    zt_cbor_put_str(doc, "generated_at", iso(f->now_unix, a, sizeof(a))))
		goto out;
	/* The map takes each reference it adds. */
	if (zt_cbor_put(doc, "period", period))
		goto out;
	period = NULL;
	if (zt_cbor_put(doc, "summary", sum))
		goto out;
	sum = NULL;
	if (zt_cbor_put(doc, "checks", checks))
		goto out;
	checks = NULL;
	if (zt_cbor_put(doc, "series", series))
		goto out;
	series = NULL;
	ret = zt_cbor_to_json(doc, out, true);
	if (!ret && fputc('\n', out) == EOF)
		ret = -EIO;
out:
	for (cbor_item_t **it = (cbor_item_t *[]){ doc, period, sum, checks, series },
			 **end = it + 5;
	     it < end; it++)
		if (*it)
			cbor_decref(it);
	return ret;
}

/* ---- text ---- */

/* Text from data, safe for a terminal: control characters become '?'. */
static void put_clean(const char *s, FILE *out)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

int zt_cmp_write_text(const struct zt_cmp_facts *f, const struct zt_cmp_report *r, FILE *out)
{
	char a[40], b[40];

	fprintf(out, "ztagent compliance posture: node ");
	put_clean(f->node, out);
	fprintf(out, ", period %s to %s\n", iso(f->since_unix, a, sizeof(a)),
		iso(f->now_unix, b, sizeof(b)));
	fprintf(out, "overall %s: %u pass, %u warn, %u fail (of %zu checks)\n\n",
		zt_cmp_result_name(r->overall), r->passed, r->warned, r->failed, r->n);
	for (size_t i = 0; i < r->n; i++) {
		const struct zt_cmp_check *c = &r->checks[i];

		fprintf(out, "%-4s  %-12s %s\n", zt_cmp_result_name(c->result), c->id, c->title);
		fprintf(out, "      requirement: %s\n      evidence: ", c->requirement);
		put_clean(c->evidence ? c->evidence : "", out);
		fputc('\n', out);
		for (size_t k = 0; k < c->n_items; k++) {
			fputs("        - ", out);
			put_clean(c->items[k], out);
			fputc('\n', out);
		}
	}
	return ferror(out) ? -EIO : 0;
}

/* ---- HTML ---- */

void zt_cmp_html_escape(const char *s, FILE *out)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&#39;", out);
			break;
		default:
			if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
				fputs("&#xFFFD;", out);
			else
				fputc(*p, out);
		}
	}
}

static const char css[] =
	"body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;"
	"max-width:980px;padding:0 1em;color:#1d2330;background:#fff}"
	"h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em}"
	".meta{color:#556}.badges span{display:inline-block;margin:.3em .5em .3em 0;"
	"padding:.2em .7em;border-radius:1em;font-weight:600}"
	".pass{background:#e3f4e8;color:#16612d}.warn{background:#fff3d6;color:#7a5200}"
	".fail{background:#fde2e1;color:#9b1c1c}"
	"table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;"
	"padding:.45em .6em;border-bottom:1px solid #dde}th{background:#f4f5f8}"
	"td.res{font-weight:700;text-transform:uppercase;white-space:nowrap}"
	"td.id{font-family:ui-monospace,monospace;white-space:nowrap}"
	".req{color:#445;font-size:.9em}ul{margin:.3em 0 0 1.1em;padding:0}"
	"li{font-family:ui-monospace,monospace;font-size:.88em;word-break:break-all}"
	"svg text{font:11px sans-serif;fill:#445}.legend rect{stroke:none}"
	"@media print{body{margin:0}}";

static void chart(const struct zt_cmp_facts *f, FILE *out)
{
	const int W = 900, H = 240, L = 50, R = 10, T = 20, B = 40;
	uint64_t max = 0;
	double step, bw;
	char d[32];

	for (size_t i = 0; i < f->n_days; i++) {
		if (f->days[i].denials > max)
			max = f->days[i].denials;
		if (f->days[i].incidents > max)
			max = f->days[i].incidents;
	}
	fprintf(out,
		"<svg id=\"chart\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\" "
		"viewBox=\"0 0 %d %d\" width=\"100%%\" aria-label=\"Denied flows and incidents per "
		"day\">\n<title>Denied flows and incidents per day</title>\n",
		W, H);
	fprintf(out,
		"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#889\"/>\n"
		"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#889\"/>\n",
		L, T, L, H - B, L, H - B, W - R, H - B);
	if (!f->n_days || !max) {
		fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n</svg>\n",
			(L + W - R) / 2, (T + H - B) / 2,
			f->n_days ? "no denials and no incidents in the period" :
				    "no data: the records could not be read");
		return;
	}
	/* y axis: 0, half, max */
	for (int q = 0; q <= 2; q++) {
		double y = (H - B) - (double)(H - B - T) * q / 2;

		fprintf(out,
			"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eef\"/>"
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%" PRIu64 "</text>\n",
			L + 1, y, W - R, y, L - 4, y + 4, max * (uint64_t)q / 2);
	}
	step = (double)(W - L - R) / (double)f->n_days;
	bw = step * 0.4;
	for (size_t i = 0; i < f->n_days; i++) {
		double x = L + step * (double)i + step * 0.1;
		double hd = (double)(H - B - T) * (double)f->days[i].denials / (double)max;
		double hi = (double)(H - B - T) * (double)f->days[i].incidents / (double)max;

		day(f->days[i].day_unix, d, sizeof(d));
		fprintf(out,
			"<rect class=\"den\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
			"fill=\"#4a6fd1\"><title>%s: %" PRIu64 " denied flows</title></rect>"
			"<rect class=\"inc\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
			"fill=\"#d1494a\"><title>%s: %" PRIu64 " incidents</title></rect>\n",
			x, (H - B) - hd, bw, hd, d, f->days[i].denials, x + bw, (H - B) - hi, bw,
			hi, d, f->days[i].incidents);
		/* About eight date labels whatever the period. */
		if (i % ((f->n_days + 7) / 8) == 0)
			fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
				x + bw, H - B + 16, d + 5);
	}
	fprintf(out,
		"<g class=\"legend\"><rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" "
		"fill=\"#4a6fd1\"/><text x=\"%d\" y=\"%d\">denied flows</text>"
		"<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"#d1494a\"/>"
		"<text x=\"%d\" y=\"%d\">incidents</text></g>\n</svg>\n",
		L, H - 14, L + 14, H - 5, L + 120, H - 14, L + 134, H - 5);
}

int zt_cmp_write_html(const struct zt_cmp_facts *f, const struct zt_cmp_report *r, FILE *out)
{
	char a[40], b[40];

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'; img-src data:\">\n<title>ztagent compliance posture: ",
	      out);
	zt_cmp_html_escape(f->node, out);
	fprintf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n", css);
	fputs("<h1>Compliance posture</h1>\n<p class=\"meta\">Node <strong>", out);
	zt_cmp_html_escape(f->node, out);
	fprintf(out,
		"</strong>, ztagent %s. Period %s to %s (%" PRId64 " days). "
		"Generated %s from the agent's live state and its records.</p>\n",
		ZT_VERSION, iso(f->since_unix, a, sizeof(a)), iso(f->now_unix, b, sizeof(b)),
		period_days(f), iso(f->now_unix, b, sizeof(b)));
	fprintf(out,
		"<p class=\"badges\" id=\"summary\"><span class=\"%s\">overall: %s</span>"
		"<span class=\"pass\">%u pass</span><span class=\"warn\">%u warn</span>"
		"<span class=\"fail\">%u fail</span></p>\n",
		zt_cmp_result_name(r->overall), zt_cmp_result_name(r->overall), r->passed,
		r->warned, r->failed);
	fputs("<h2>Denied flows and incidents per day</h2>\n", out);
	chart(f, out);
	fputs("<h2>Checks</h2>\n<table id=\"checks\">\n<thead><tr><th>Result</th><th>Check</th>"
	      "<th>Evidence</th></tr></thead>\n<tbody>\n",
	      out);
	for (size_t i = 0; i < r->n; i++) {
		const struct zt_cmp_check *c = &r->checks[i];
		const char *res = zt_cmp_result_name(c->result);

		fprintf(out, "<tr id=\"%s\" class=\"check\" data-result=\"%s\">", c->id, res);
		fprintf(out, "<td class=\"res %s\">%s</td>", res, res);
		fprintf(out, "<td><div class=\"id\">%s</div><div>", c->id);
		zt_cmp_html_escape(c->title, out);
		fputs("</div><div class=\"req\">", out);
		zt_cmp_html_escape(c->requirement, out);
		fputs("</div></td><td><div class=\"evidence\">", out);
		zt_cmp_html_escape(c->evidence ? c->evidence : "", out);
		fputs("</div>", out);
		if (c->n_items) {
			fputs("<ul>", out);
			for (size_t k = 0; k < c->n_items; k++) {
				fputs("<li>", out);
				zt_cmp_html_escape(c->items[k], out);
				fputs("</li>", out);
			}
			fputs("</ul>", out);
		}
		fputs("</td></tr>\n", out);
	}
	fputs("</tbody>\n</table>\n<p class=\"meta\">pass: the requirement is met by what was "
	      "measured; warn: not met in full, or no data to show it (never a pass); fail: not "
	      "met. Produced by <code>ztctl compliance report</code>.</p>\n</body>\n</html>\n",
	      out);
	return ferror(out) ? -EIO : 0;
}
