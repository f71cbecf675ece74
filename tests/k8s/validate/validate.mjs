// SPDX-License-Identifier: GPL-2.0-only
// Offline checks of the Kubernetes manifests (no cluster, no network):
//
//   node validate.mjs manifests FILE...
//     every document against the Kubernetes OpenAPI schemas (kubernetes-models'
//     validators, the Prometheus Operator's for ServiceMonitor); a
//     CustomResourceDefinition's schema must also be structural (the rules
//     the API server enforces). One line per document: "OK file#i Kind name"
//     or "FAIL file#i Kind name: why". Exit 1 on any FAIL.
//
//   node validate.mjs json FILE...
//     every document as one line of JSON, for the test's jq queries.
//
//   node validate.mjs ztp CRD FILE...
//     every ZeroTrustPolicy document of FILE... against CRD's openAPIV3Schema,
//     as the API server does with fieldValidation=Strict (unknown fields are
//     errors) plus ObjectMeta's name rules. One JSON line per document:
//     {"file", "index", "name", "valid", "errors"}. Always exit 0 (the caller
//     compares with ztctl policy validate).
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import Ajv from "ajv";

function docs(file) {
  const out = [];
  parseAllDocuments(readFileSync(file, "utf8")).forEach((d, i) => {
    if (d.errors.length) throw new Error(`${file}#${i}: ${d.errors[0].message}`);
    const v = d.toJS({ maxAliasCount: 1000 });
    if (v !== null && v !== undefined) out.push([i, v]);
  });
  return out;
}

// ---- structural schema (apiextensions-apiserver's rules) --------------------

const JUNCTORS = ["allOf", "anyOf", "oneOf", "not"];
const FORBIDDEN_IN_JUNCTOR = ["description", "type", "default", "additionalProperties", "nullable"];

function isIntOrStringPattern(s) {
  // The two shapes allowed with x-kubernetes-int-or-string.
  const t = (a) => Array.isArray(a) && a.length === 2 && a[0].type === "integer" &&
    a[1].type === "string" && Object.keys(a[0]).length === 1 && Object.keys(a[1]).length === 1;
  return t(s.anyOf) || (Array.isArray(s.allOf) && s.allOf.length === 1 && t(s.allOf[0].anyOf));
}

function structural(s, path, errs, inJunctor) {
  if (typeof s !== "object" || s === null) {
    errs.push(`${path}: not a schema`);
    return;
  }
  if ("$ref" in s) errs.push(`${path}: $ref is not allowed`);
  if (s.additionalProperties === false) errs.push(`${path}: additionalProperties: false is not allowed`);
  if (s.properties && s.additionalProperties) errs.push(`${path}: properties and additionalProperties are exclusive`);
  const special = s["x-kubernetes-int-or-string"] || s["x-kubernetes-preserve-unknown-fields"];
  if (!inJunctor && !s.type && !special) errs.push(`${path}: type is missing`);
  if (s["x-kubernetes-int-or-string"] && s.type) errs.push(`${path}: int-or-string must not set type`);
  if (inJunctor) {
    for (const k of FORBIDDEN_IN_JUNCTOR) if (k in s) errs.push(`${path}: ${k} inside a logical junctor`);
  }
  for (const [k, v] of Object.entries(s.properties || {})) structural(v, `${path}.properties.${k}`, errs, inJunctor);
  if (s.items) structural(s.items, `${path}.items`, errs, inJunctor);
  if (typeof s.additionalProperties === "object") structural(s.additionalProperties, `${path}.additionalProperties`, errs, inJunctor);
  for (const j of JUNCTORS) {
    if (!(j in s)) continue;
    if (s["x-kubernetes-int-or-string"] && isIntOrStringPattern(s)) continue;
    const list = j === "not" ? [s.not] : s[j];
    list.forEach((sub, i) => {
      structural(sub, `${path}.${j}[${i}]`, errs, true);
      // A field or item named inside a junctor must be specified outside it too.
      for (const k of Object.keys(sub.properties || {})) {
        if (!s.properties || !(k in s.properties)) errs.push(`${path}.${j}[${i}]: field ${k} is not specified outside the junctor`);
      }
      if (sub.items && !s.items) errs.push(`${path}.${j}[${i}]: items not specified outside the junctor`);
    });
  }
}

function checkCrd(crd) {
  const errs = [];
  for (const v of crd.spec.versions || []) {
    const s = v.schema && v.schema.openAPIV3Schema;
    if (!s) {
      errs.push(`version ${v.name}: no openAPIV3Schema`);
      continue;
    }
    structural(s, `${v.name}.openAPIV3Schema`, errs, false);
    const md = s.properties && s.properties.metadata;
    if (md && Object.keys(md).some((k) => k !== "type" && k !== "properties")) {
      errs.push(`${v.name}: metadata may only restrict name and generateName`);
    }
  }
  return errs;
}

// ---- manifests ------------------------------------------------------------------

async function model(apiVersion, kind) {
  let mod;
  if (apiVersion === "monitoring.coreos.com/v1") {
    mod = await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1");
  } else {
    mod = await import(`kubernetes-models/${apiVersion}`);
  }
  if (!mod[kind]) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return mod[kind];
}

async function manifests(files) {
  let bad = 0;
  for (const f of files) {
    for (const [i, d] of docs(f)) {
      const what = `${f}#${i} ${d.kind} ${d.metadata && d.metadata.name}`;
      try {
        const M = await model(d.apiVersion, d.kind);
        new M(d).validate();
        if (d.kind === "CustomResourceDefinition") {
          const errs = checkCrd(d);
          if (errs.length) throw new Error(`not structural: ${errs.join("; ")}`);
        }
        console.log(`OK ${what}`);
      } catch (e) {
        bad++;
        console.log(`FAIL ${what}: ${String(e.message || e).split("\n")[0]}`);
      }
    }
  }
  process.exit(bad ? 1 : 0);
}

// ---- ZeroTrustPolicy against the CRD --------------------------------------------

// OpenAPI v3 (Kubernetes' dialect) into a JSON schema that ajv checks like
// the API server: strict fields, int-or-string, no Kubernetes extensions.
function toJsonSchema(s, top) {
  if (Array.isArray(s)) return s.map((x) => toJsonSchema(x, false));
  if (typeof s !== "object" || s === null) return s;
  const out = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith("x-kubernetes-") || k === "format" || k === "nullable") continue;
    if (k === "properties" || k === "definitions") {
      out[k] = Object.fromEntries(Object.entries(v).map(([p, ps]) => [p, toJsonSchema(ps, false)]));
    } else {
      out[k] = toJsonSchema(v, false);
    }
  }
  if (s.type === "object" && s.properties && !top) out.additionalProperties = false;
  if (s.nullable) out.type = [s.type, "null"];
  return out;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function metaErrors(md) {
  const e = [];
  if (!md || typeof md !== "object") return ["metadata: required"];
  if (typeof md.name !== "string" || md.name.length > 253 || !DNS1123_SUBDOMAIN.test(md.name)) {
    e.push(`metadata.name: '${md.name}' is not a DNS subdomain`);
  }
  if (md.namespace !== undefined && (typeof md.namespace !== "string" ||
      md.namespace.length > 63 || !DNS1123_LABEL.test(md.namespace))) {
    e.push(`metadata.namespace: '${md.namespace}' is not a DNS label`);
  }
  return e;
}

function ztp(crdFile, files) {
  const crd = docs(crdFile).map(([, d]) => d).find((d) => d.kind === "CustomResourceDefinition");
  const v1 = crd.spec.versions.find((v) => v.name === "v1");
  const schema = toJsonSchema(v1.schema.openAPIV3Schema, true);
  // The root keeps apiVersion, kind, metadata and spec; nothing else.
  schema.additionalProperties = false;
  const ajv = new Ajv({ allErrors: true, strict: false });
  const check = ajv.compile(schema);
  for (const f of files) {
    for (const [i, d] of docs(f)) {
      if (!d || d.kind !== "ZeroTrustPolicy") continue;
      const errors = [];
      if (d.apiVersion !== `${crd.spec.group}/v1`) errors.push(`apiVersion: expected ${crd.spec.group}/v1`);
      errors.push(...metaErrors(d.metadata));
      if (!check(d)) {
        for (const e of check.errors) errors.push(`${e.instancePath || "/"}: ${e.message}`);
      }
      console.log(JSON.stringify({ file: f, index: i, name: d.metadata && d.metadata.name,
        valid: errors.length === 0, errors }));
    }
  }
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "manifests") await manifests(args);
else if (mode === "json") {
  // Each document as one line of JSON (YAML anchors resolved), for jq.
  for (const f of args) for (const [, d] of docs(f)) console.log(JSON.stringify(d));
}
else if (mode === "ztp") ztp(args[0], args.slice(1));
else {
  console.error("usage: validate.mjs manifests FILE... | json FILE... | ztp CRD FILE...");
  process.exit(2);
}
