# SPDX-License-Identifier: GPL-2.0-only
"""The scenarios of netpol_conformance.sh, as data.

Written after the cases of Kubernetes' test/e2e/network/netpol suite (the
"upstream" field names the one each follows); the policies and matrices are
our own. A scenario is a list of steps; each step may relabel endpoints
(re-registration, as a pod or namespace relabel would), replaces the policy
directory with its files, and states the expected reachability as rules
applied in order over "every pod reaches every pod":

    (source, destination, port, reaches)

pods as "x/a", "x/*", "*/a" or "*"; ports as "tcp/80", "udp/*", "*/81" or
"*". A pod always reaches itself (loopback never crosses its veth). A step
with "explain" also asks `ztctl policy explain` about every pair of x/a's
row and column (TCP 80, UDP 81) and wants the datapath's answer.
Addresses: namespace x is 198.19.1.0/24, y 198.19.2.0/24, z 198.19.3.0/24;
pod a is .10, b .11, c .12. The label value y is quoted: YAML 1.1 (and so
Kubernetes' own YAML reading) takes a bare y for a boolean.
"""


def np(ns, name, spec):
    """A NetworkPolicy document; spec is the YAML under spec:, indented by two."""
    return (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}")


def docs(*d):
    return "---\n".join(d)


A_IN = "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress]\n"
A_OUT = "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
DENY_IN_X = np("x", "deny-ingress", "  podSelector: {}\n  policyTypes: [Ingress]\n")

# The usual shape of an ingress expectation for x/a: nobody but these.
def only_into_xa(*allowed):
    return [("*", "x/a", "*", False)] + [(s, "x/a", p, True) for s, p in allowed]


def only_from_xa(*allowed):
    return [("x/a", "*", "*", False)] + [("x/a", d, p, True) for d, p in allowed]


SCENARIOS = [
    {"name": "default-deny-ingress",
     "upstream": "should support a 'default-deny-ingress' policy",
     "steps": [{"policies": {"p": DENY_IN_X},
                "expect": [("*", "x/*", "*", False)]}]},
    {"name": "default-deny-egress",
     "upstream": "should support a 'default-deny-all' policy (egress half)",
     "steps": [{"policies": {"p": np("x", "deny-egress",
                                     "  podSelector: {}\n  policyTypes: [Egress]\n")},
                "expect": [("x/*", "*", "*", False)]}]},
    {"name": "default-deny-all",
     "upstream": "should support a 'default-deny-all' policy",
     "steps": [{"policies": {"p": np("x", "deny-all",
                                     "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n")},
                "expect": [("*", "x/*", "*", False), ("x/*", "*", "*", False)]}]},
    {"name": "allow-all ingress beside default-deny-ingress",
     "upstream": "should enforce multiple ingress policies with ingress allow-all policy "
                 "taking precedence",
     "steps": [{"what": "x/a: TCP 80 only",
                "policies": {"p": np("x", "allow-80", A_IN + "  ingress:\n  - ports: [{port: 80}]\n")},
                "expect": only_into_xa(("*", "tcp/80"))},
               {"what": "plus allow-all",
                "policies": {"p": np("x", "allow-80", A_IN + "  ingress:\n  - ports: [{port: 80}]\n"),
                             "q": np("x", "allow-all", A_IN + "  ingress:\n  - {}\n")},
                "expect": []}]},
    {"name": "allow-all egress beside a narrower egress policy",
     "upstream": "should enforce multiple egress policies with egress allow-all policy "
                 "taking precedence",
     "steps": [{"what": "x/a: to TCP 80 only",
                "policies": {"p": np("x", "out-80", A_OUT + "  egress:\n  - ports: [{port: 80}]\n")},
                "expect": only_from_xa(("*", "tcp/80"))},
               {"what": "plus allow-all egress",
                "policies": {"p": np("x", "out-80", A_OUT + "  egress:\n  - ports: [{port: 80}]\n"),
                             "q": np("x", "out-all", A_OUT + "  egress:\n  - {}\n")},
                "expect": []}]},
    {"name": "namespaceSelector: only from namespace y",
     "upstream": "should enforce policy to allow traffic only from a different namespace, "
                 "based on NamespaceSelector",
     "steps": [{"policies": {"p": np("x", "from-y", A_IN + "  ingress:\n"
                                     "  - from: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]\n")},
                "expect": only_into_xa(("y/*", "*"))}]},
    {"name": "podSelector alone is the policy's namespace",
     "upstream": "should enforce policy to allow traffic from pods within server namespace "
                 "based on PodSelector",
     "steps": [{"policies": {"p": np("x", "from-x", A_IN + "  ingress:\n"
                                     "  - from: [{podSelector: {}}]\n")},
                "expect": only_into_xa(("x/*", "*"))}]},
    {"name": "podSelector with matchExpressions",
     "upstream": "should enforce policy based on PodSelector with MatchExpressions",
     "steps": [{"policies": {"p": np("x", "from-b", A_IN + "  ingress:\n  - from:\n"
                                     "    - podSelector: {matchExpressions: "
                                     "[{key: pod, operator: In, values: [b]}]}\n")},
                "expect": only_into_xa(("x/b", "*"))}]},
    {"name": "namespaceSelector with matchExpressions",
     "upstream": "should enforce policy based on NamespaceSelector with MatchExpressions",
     "steps": [{"policies": {"p": np("x", "not-y", A_IN + "  ingress:\n  - from:\n"
                                     "    - namespaceSelector: {matchExpressions: "
                                     "[{key: ns, operator: NotIn, values: ['y']}]}\n")},
                "expect": only_into_xa(("x/*", "*"), ("z/*", "*"))}]},
    {"name": "podSelector OR namespaceSelector (two peers)",
     "upstream": "should enforce policy based on PodSelector or NamespaceSelector",
     "steps": [{"policies": {"p": np("x", "or", A_IN + "  ingress:\n  - from:\n"
                                     "    - namespaceSelector: {matchExpressions: "
                                     "[{key: ns, operator: NotIn, values: [x]}]}\n"
                                     "    - podSelector: {matchLabels: {pod: b}}\n")},
                "expect": only_into_xa(("y/*", "*"), ("z/*", "*"), ("x/b", "*"))}]},
    {"name": "podSelector AND namespaceSelector (one peer)",
     "upstream": "should enforce policy based on PodSelector and NamespaceSelector",
     "steps": [{"policies": {"p": np("x", "and", A_IN + "  ingress:\n  - from:\n"
                                     "    - namespaceSelector: {matchExpressions: "
                                     "[{key: ns, operator: NotIn, values: [x]}]}\n"
                                     "      podSelector: {matchLabels: {pod: b}}\n")},
                "expect": only_into_xa(("y/b", "*"), ("z/b", "*"))}]},
    {"name": "several pods AND several namespaces",
     "upstream": "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
     "steps": [{"policies": {"p": np("x", "multi", A_IN + "  ingress:\n  - from:\n"
                                     "    - namespaceSelector: {matchExpressions: "
                                     "[{key: ns, operator: NotIn, values: [x]}]}\n"
                                     "      podSelector: {matchExpressions: "
                                     "[{key: pod, operator: In, values: [b, c]}]}\n")},
                "expect": only_into_xa(("y/b", "*"), ("y/c", "*"), ("z/b", "*"), ("z/c", "*"))}]},
    {"name": "egress by podSelector AND namespaceSelector",
     "upstream": "should enforce egress policy allowing traffic to a server in a different "
                 "namespace based on PodSelector and NamespaceSelector",
     "steps": [{"policies": {"p": np("x", "to-ya", A_OUT + "  egress:\n  - to:\n"
                                     "    - namespaceSelector: {matchLabels: {ns: 'y'}}\n"
                                     "      podSelector: {matchLabels: {pod: a}}\n")},
                "expect": only_from_xa(("y/a", "*"))}]},
    {"name": "ports: only TCP 81 from namespace y",
     "upstream": "should enforce policy based on Ports",
     "steps": [{"policies": {"p": np("x", "y-81", A_IN + "  ingress:\n"
                                     "  - from: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]\n"
                                     "    ports: [{port: 81, protocol: TCP}]\n")},
                "expect": only_into_xa(("y/*", "tcp/81"))}]},
    {"name": "stacked policies with overlapping podSelectors are additive",
     "upstream": "should enforce multiple, stacked policies with overlapping podSelectors",
     "steps": [{"what": "TCP 80 from y",
                "policies": {"p": np("x", "y-80", A_IN + "  ingress:\n"
                                     "  - from: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]\n"
                                     "    ports: [{port: 80}]\n")},
                "expect": only_into_xa(("y/*", "tcp/80"))},
               {"what": "plus TCP 81 from y",
                "policies": {"p": np("x", "y-80", A_IN + "  ingress:\n"
                                     "  - from: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]\n"
                                     "    ports: [{port: 80}]\n"),
                             "q": np("x", "y-81", A_IN + "  ingress:\n"
                                     "  - from: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]\n"
                                     "    ports: [{port: 81}]\n")},
                "expect": only_into_xa(("y/*", "tcp/*"))}]},
    {"name": "named port on ingress",
     "upstream": "should allow ingress access on one named port",
     "steps": [{"policies": {"p": np("x", "named-in", A_IN + "  ingress:\n"
                                     "  - ports: [{port: serve-81-tcp}]\n")},
                "expect": only_into_xa(("*", "tcp/81"))}]},
    {"name": "named port from one namespace",
     "upstream": "should allow ingress access from namespace on one named port",
     "steps": [{"policies": {"p": np("x", "named-y", A_IN + "  ingress:\n"
                                     "  - from: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]\n"
                                     "    ports: [{port: serve-80-udp, protocol: UDP}]\n")},
                "expect": only_into_xa(("y/*", "udp/80"))}]},
    {"name": "named port on egress",
     "upstream": "should allow egress access on one named port",
     "steps": [{"policies": {"p": np("x", "named-out", A_OUT + "  egress:\n"
                                     "  - ports: [{port: serve-80-tcp}]\n")},
                "expect": only_from_xa(("*", "tcp/80"))}]},
    {"name": "endPort: TCP 80-81, UDP 81-81",
     "upstream": "should support a port range with endPort (NetworkPolicyEndPort)",
     "steps": [{"policies": {"p": np("x", "range", A_IN + "  ingress:\n  - ports:\n"
                                     "    - {protocol: TCP, port: 80, endPort: 81}\n"
                                     "    - {protocol: UDP, port: 81, endPort: 81}\n")},
                "expect": only_into_xa(("*", "tcp/*"), ("*", "udp/81"))}]},
    {"name": "a protocol without a port: every UDP port",
     "upstream": "should enforce ingress policy allowing any port traffic to a server on a "
                 "specific protocol",
     "steps": [{"policies": {"p": np("x", "udp-any", A_IN + "  ingress:\n"
                                     "  - ports: [{protocol: UDP}]\n")},
                "expect": only_into_xa(("*", "udp/*"))}]},
    {"name": "UDP only: TCP to the same port is denied",
     "upstream": "should not allow access by TCP when a policy specifies only UDP",
     "steps": [{"policies": {"p": np("x", "udp-81", A_IN + "  ingress:\n"
                                     "  - ports: [{protocol: UDP, port: 81}]\n")},
                "expect": only_into_xa(("*", "udp/81"))}]},
    {"name": "policy update",
     "upstream": "should enforce updated policy",
     "steps": [{"what": "from y on 81",
                "policies": {"p": np("x", "upd", A_IN + "  ingress:\n"
                                     "  - from: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]\n"
                                     "    ports: [{port: 81}]\n")},
                "expect": only_into_xa(("y/*", "tcp/81"))},
               {"what": "the same policy, now from z on 80",
                "policies": {"p": np("x", "upd", A_IN + "  ingress:\n"
                                     "  - from: [{namespaceSelector: {matchLabels: {ns: z}}}]\n"
                                     "    ports: [{port: 80}]\n")},
                "expect": only_into_xa(("z/*", "tcp/80"))}]},
    {"name": "pod relabel grants ingress",
     "upstream": "should allow ingress access from updated pod",
     "steps": [{"what": "nobody has pod2=updated",
                "policies": {"p": np("x", "upd-pod", A_IN + "  ingress:\n"
                                     "  - from: [{podSelector: {matchLabels: {pod2: updated}}}]\n")},
                "expect": only_into_xa()},
               {"what": "x/b relabelled pod2=updated",
                "relabel": {"x/b": ("pod=b,pod2=updated", "ns=x")},
                "expect": only_into_xa(("x/b", "*"))}]},
    {"name": "pod relabel isolates",
     "upstream": "should deny ingress access to updated pod",
     "steps": [{"what": "nobody has target=isolated",
                "policies": {"p": np("x", "iso", "  podSelector: {matchLabels: {target: isolated}}\n"
                                     "  policyTypes: [Ingress]\n")},
                "expect": []},
               {"what": "x/a relabelled target=isolated",
                "relabel": {"x/a": ("pod=a,target=isolated", "ns=x")},
                "expect": only_into_xa()}]},
    {"name": "namespace relabel grants ingress",
     "upstream": "should allow ingress access from updated namespace",
     "steps": [{"what": "no namespace has ns2=updated",
                "policies": {"p": np("x", "upd-ns", A_IN + "  ingress:\n"
                                     "  - from: [{namespaceSelector: {matchLabels: {ns2: updated}}}]\n")},
                "expect": only_into_xa()},
               {"what": "namespace y relabelled ns2=updated",
                "relabel": {f"y/{p}": (f"pod={p}", "ns=y,ns2=updated") for p in "abc"},
                "expect": only_into_xa(("y/*", "*"))}]},
    {"name": "ingress and egress in one policy",
     "upstream": "should work with Ingress, Egress specified together",
     "steps": [{"policies": {"p": np("x", "both", "  podSelector: {matchLabels: {pod: a}}\n"
                                     "  policyTypes: [Ingress, Egress]\n"
                                     "  ingress:\n  - from: [{podSelector: {matchLabels: {pod: b}}}]\n"
                                     "  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]\n")},
                "expect": only_into_xa(("x/b", "*")) + only_from_xa(("y/*", "*"))}]},
    {"name": "ingress and egress controlled independently",
     "upstream": "should enforce policies to check ingress and egress policies can be "
                 "controlled independently based on PodSelector",
     "steps": [{"policies": {"p": np("x", "no-egress", A_OUT + "  egress: []\n")},
                "expect": only_from_xa()}]},
    {"name": "the client's egress denies what the server's ingress allows",
     "upstream": "should support denying of egress traffic on the client side (even if the "
                 "server explicitly allows this traffic)",
     "steps": [{"policies": {"p": np("z", "z-open", "  podSelector: {}\n  ingress:\n  - {}\n"),
                             "q": np("x", "to-y", A_OUT + "  egress:\n"
                                     "  - to: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]\n")},
                "expect": only_from_xa(("y/*", "*"))}]},
    {"name": "policy deletion",
     "upstream": "should stop enforcing policies after they are deleted",
     "steps": [{"what": "default-deny-ingress in x",
                "policies": {"p": DENY_IN_X},
                "expect": [("*", "x/*", "*", False)]},
               {"what": "deleted",
                "policies": {},
                "expect": []}]},
    # ipBlock: the pod-address cases (issue "ipBlock matches pods too").
    {"name": "ipBlock egress to pods in a CIDR",
     "upstream": "should allow egress access to server in CIDR block",
     "steps": [{"policies": {"p": np("x", "cidr", A_OUT + "  egress:\n"
                                     "  - to: [{ipBlock: {cidr: 198.19.2.0/24}}]\n")},
                "explain": True, "expect": only_from_xa(("y/*", "*"))}]},
    {"name": "ipBlock except cuts a pod out",
     "upstream": "should enforce except clause while egress access to server in CIDR block",
     "steps": [{"policies": {"p": np("x", "cidr-except", A_OUT + "  egress:\n"
                                     "  - to: [{ipBlock: {cidr: 198.19.0.0/16, "
                                     "except: [198.19.1.11/32]}}]\n")},
                "explain": True, "expect": [("x/a", "x/b", "*", False)]}]},
    {"name": "an address in both a cidr and an except is allowed by another ipBlock",
     "upstream": "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
     "steps": [{"what": "x/b in the except",
                "policies": {"p": np("x", "cidr-except", A_OUT + "  egress:\n"
                                     "  - to: [{ipBlock: {cidr: 198.19.0.0/16, "
                                     "except: [198.19.1.11/32]}}]\n")},
                "explain": True, "expect": [("x/a", "x/b", "*", False)]},
               {"what": "plus a policy allowing x/b's /32",
                "policies": {"p": np("x", "cidr-except", A_OUT + "  egress:\n"
                                     "  - to: [{ipBlock: {cidr: 198.19.0.0/16, "
                                     "except: [198.19.1.11/32]}}]\n"),
                             "q": np("x", "cidr-b", A_OUT + "  egress:\n"
                                     "  - to: [{ipBlock: {cidr: 198.19.1.11/32}}]\n")},
                "explain": True, "expect": []}]},
    {"name": "ipBlock ingress from pods, with except and a port",
     "upstream": "(ingress counterpart of the CIDR cases)",
     "steps": [{"policies": {"p": np("x", "cidr-in", A_IN + "  ingress:\n"
                                     "  - from: [{ipBlock: {cidr: 198.19.3.0/24, "
                                     "except: [198.19.3.12/32]}}]\n"
                                     "    ports: [{port: 80}, {port: 81, protocol: UDP}]\n")},
                "explain": True, "expect": only_into_xa(("z/a", "tcp/80"), ("z/b", "tcp/80"),
                                       ("z/a", "udp/81"), ("z/b", "udp/81"))}]},
    {"name": "ipBlock with a named port on egress",
     "upstream": "(named ports and ipBlock together; the port is the destination pod's)",
     "steps": [{"policies": {"p": np("x", "cidr-named", A_OUT + "  egress:\n"
                                     "  - to: [{ipBlock: {cidr: 198.19.3.0/24}}]\n"
                                     "    ports: [{port: serve-81-udp, protocol: UDP}]\n")},
                "explain": True, "expect": only_from_xa(("z/*", "udp/81"))}]},
]
