#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Collects every ZeroTrustPolicy example of the repository, one YAML
document per file in OUT_DIR (NNN.yaml, with OUT_DIR/index.tsv saying where
each came from):

  - README.md and tests/**/*.md: ```yaml blocks
  - deploy/**/*.yaml, tests/**/*.yaml (the CRD itself aside)
  - YAML here-documents in tests/integration/*.sh and tools/*.sh
  - the language's reference example in the comment of src/seg/policy.h

A document is an example when it has a top-level "kind: ZeroTrustPolicy"
line. Documents with shell expansions ($...) in unquoted here-documents are
skipped (their text is not what the shell feeds). Prints the count.

  extract_ztp.py ROOT OUT_DIR
"""
import os
import re
import sys

root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
found = []


def split_docs(text):
    doc = []
    for line in text.split("\n"):
        if line.strip() == "---" or line.startswith("--- "):
            yield "\n".join(doc)
            doc = []
        else:
            doc.append(line)
    yield "\n".join(doc)


def add(text, where, shell_expands=False):
    for i, d in enumerate(split_docs(text)):
        if not re.search(r"^kind:\s*ZeroTrustPolicy\s*$", d, re.M):
            continue
        if shell_expands and "$" in d:
            continue
        found.append((d.strip("\n") + "\n", f"{where} doc {i}"))


def rel(p):
    return os.path.relpath(p, root)


def walk(sub, exts):
    base = os.path.join(root, sub)
    for dp, dns, fns in os.walk(base):
        dns[:] = sorted(d for d in dns if d not in ("node_modules", "fuzz"))
        for fn in sorted(fns):
            if fn.endswith(exts):
                yield os.path.join(dp, fn)


# Markdown: fenced yaml blocks.
mds = [os.path.join(root, "README.md")] + list(walk("tests", (".md",)))
for p in mds:
    text = open(p).read()
    for m in re.finditer(r"^```ya?ml\n(.*?)^```", text, re.M | re.S):
        line = text[:m.start()].count("\n") + 1
        add(m.group(1), f"{rel(p)}:{line}")

# YAML files.
for sub in ("deploy", "tests"):
    for p in walk(sub, (".yaml", ".yml")):
        text = open(p).read()
        if "kind: CustomResourceDefinition" in text:
            continue
        add(text, rel(p))

# Here-documents in shell scripts.
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
for sub in ("tests/integration", "tools"):
    d = os.path.join(root, sub)
    if not os.path.isdir(d):
        continue
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".sh"):
            continue
        p = os.path.join(d, fn)
        lines = open(p).read().split("\n")
        i = 0
        while i < len(lines):
            m = HEREDOC.search(lines[i])
            if not m:
                i += 1
                continue
            quoted, word, start = bool(m.group(1)), m.group(2), i + 1
            j = start
            while j < len(lines) and lines[j].strip() != word:
                j += 1
            add("\n".join(lines[start:j]), f"{rel(p)}:{start + 1}", shell_expands=not quoted)
            i = j + 1

# The reference example in src/seg/policy.h.
h = open(os.path.join(root, "src/seg/policy.h")).read()
m = re.search(r"^ \*    apiVersion: ztagent\.io/v1\n(.*?)^ \*\n \*    Peers", h, re.M | re.S)
if m:
    body = " *    apiVersion: ztagent.io/v1\n" + m.group(1)
    text = "\n".join(re.sub(r"^ \*    ?", "", l) for l in body.split("\n"))
    add(text, "src/seg/policy.h")

with open(os.path.join(out, "index.tsv"), "w") as idx:
    for n, (text, where) in enumerate(found):
        name = os.path.join(out, "%03d.yaml" % n)
        with open(name, "w") as f:
            f.write(text)
        idx.write(f"{name}\t{where}\n")
print(len(found))
