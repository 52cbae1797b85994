#!/usr/bin/env python3
"""Validates Kubernetes manifests (multi-document YAML files) offline against the Kubernetes
OpenAPI schemas shipped in the PyPI package kubernetes-validate, strictly (unknown fields are
errors), for each Kubernetes version given. Custom resources whose schema is not shipped
(ServiceMonitor, cert-manager's Certificate) are checked structurally here instead, with a note:
their fields, and that they point at the Service port / the Secret a Deployment mounts. A
NetworkPolicy is also checked against the render: it selects the pods of a Deployment or
StatefulSet, names only their container ports, and every rule names its peers (a rule without
`from` admits everyone).

usage: k8s_validate.py --versions 1.27.0,1.37.0 FILE...
Exit 0 when every document is valid, 1 otherwise.
"""
import argparse
import re
import sys

import kubernetes_validate
import yaml


def check_service_monitor(doc, services):
    """The fields the Prometheus Operator needs, and that they point at a real Service port."""
    errors = []
    spec = doc.get("spec") or {}
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        errors.append("apiVersion is not monitoring.coreos.com/v1")
    labels = ((spec.get("selector") or {}).get("matchLabels")) or {}
    if not labels:
        errors.append("spec.selector.matchLabels is empty")
    endpoints = spec.get("endpoints") or []
    if not endpoints:
        errors.append("spec.endpoints is empty")
    matching = [s for s in services
                if labels and all(s["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())]
    if labels and not matching:
        errors.append("no Service in the same render carries the selector labels %s" % labels)
    for ep in endpoints:
        port = ep.get("port")
        if not any(port == p.get("name") for s in matching for p in s["spec"].get("ports", [])):
            errors.append("endpoint port %r is not a named port of the selected Service" % port)
        for key in ("interval", "scrapeTimeout"):
            if key in ep and not isinstance(ep[key], str):
                errors.append("endpoint %s must be a duration string" % key)
        if ep.get("scheme", "http") not in ("http", "https"):
            errors.append("endpoint scheme %r is not http or https" % ep.get("scheme"))
        tls = ep.get("tlsConfig")
        if tls is not None:
            if ep.get("scheme") != "https":
                errors.append("endpoint has a tlsConfig but scheme %r" % ep.get("scheme"))
            unknown = set(tls) - SAFE_TLS_CONFIG
            if unknown:
                errors.append("tlsConfig has unknown fields %s" % sorted(unknown))
            for key in ("ca", "cert"):
                ref = tls.get(key)
                if ref is not None and not (isinstance(ref, dict) and len(ref) == 1 and
                                            set(ref) <= {"secret", "configMap"} and
                                            {"name", "key"} <= set(next(iter(ref.values())) or {})):
                    errors.append("tlsConfig.%s must be {secret|configMap: {name, key}}" % key)
    return errors


# Prometheus Operator's SafeTLSConfig plus TLSConfig's file fields (monitoring.coreos.com/v1).
SAFE_TLS_CONFIG = {"ca", "cert", "keySecret", "serverName", "insecureSkipVerify", "minVersion",
                   "maxVersion", "caFile", "certFile", "keyFile"}

# cert-manager.io/v1 Certificate (cert-manager 1.x): the fields of spec, privateKey and issuerRef,
# and the key usages it accepts.
CERTIFICATE_SPEC = {"subject", "literalSubject", "commonName", "duration", "renewBefore",
                    "renewBeforePercentage", "dnsNames", "ipAddresses", "uris", "otherNames",
                    "emailAddresses", "secretName", "secretTemplate", "keystores", "issuerRef",
                    "isCA", "usages", "privateKey", "encodeUsagesInRequest", "revisionHistoryLimit",
                    "additionalOutputFormats", "nameConstraints", "signatureAlgorithm"}
CERTIFICATE_PRIVATE_KEY = {"rotationPolicy", "encoding", "algorithm", "size"}
CERTIFICATE_USAGES = {"signing", "digital signature", "content commitment", "key encipherment",
                      "key agreement", "data encipherment", "cert sign", "crl sign",
                      "encipher only", "decipher only", "any", "server auth", "client auth",
                      "code signing", "email protection", "s/mime", "ipsec end system",
                      "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
                      "microsoft sgc", "netscape sgc"}
DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+$")
UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
DNS_NAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def go_duration(text):
    """Seconds of a Go duration string (cert-manager's duration fields), None if malformed."""
    if not isinstance(text, str) or not DURATION.match(text):
        return None
    return sum(float(n) * UNIT_SECONDS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text))


def pod_templates(docs):
    """The pod templates of the render's workloads (the server's Deployment, the in-cluster
    PostgreSQL's StatefulSet)."""
    return [d["spec"]["template"] for d in docs if d.get("kind") in ("Deployment", "StatefulSet")]


def check_certificate(doc, docs):
    """The fields cert-manager needs, and that a Deployment in the render mounts its Secret."""
    errors = []
    spec = doc.get("spec") or {}
    if doc.get("apiVersion") != "cert-manager.io/v1":
        errors.append("apiVersion is not cert-manager.io/v1")
    unknown = set(spec) - CERTIFICATE_SPEC
    if unknown:
        errors.append("spec has unknown fields %s" % sorted(unknown))
    secret = spec.get("secretName")
    if not isinstance(secret, str) or not secret:
        errors.append("spec.secretName is missing")
    issuer = spec.get("issuerRef") or {}
    if not isinstance(issuer.get("name"), str) or not issuer.get("name"):
        errors.append("spec.issuerRef.name is missing")
    if set(issuer) - {"name", "kind", "group"}:
        errors.append("spec.issuerRef has unknown fields %s" % sorted(set(issuer) - {"name", "kind", "group"}))
    names = spec.get("dnsNames")
    if not names and not spec.get("ipAddresses") and not spec.get("uris") and not spec.get("commonName"):
        errors.append("no dnsNames, ipAddresses, uris or commonName: the certificate names nothing")
    for n in names or []:
        if not isinstance(n, str) or not DNS_NAME.match(n):
            errors.append("dnsNames entry %r is not a DNS name" % (n,))
    duration = go_duration(spec.get("duration", "2160h"))
    renew = go_duration(spec.get("renewBefore", "1h"))
    if duration is None or renew is None:
        errors.append("duration/renewBefore must be Go durations (e.g. 2160h): %r, %r"
                      % (spec.get("duration"), spec.get("renewBefore")))
    elif renew >= duration:
        errors.append("renewBefore (%s) must be shorter than duration (%s)" % (spec.get("renewBefore"), spec.get("duration")))
    key = spec.get("privateKey") or {}
    if set(key) - CERTIFICATE_PRIVATE_KEY:
        errors.append("spec.privateKey has unknown fields %s" % sorted(set(key) - CERTIFICATE_PRIVATE_KEY))
    if key.get("algorithm", "RSA") not in ("RSA", "ECDSA", "Ed25519"):
        errors.append("privateKey.algorithm %r is not RSA, ECDSA or Ed25519" % key.get("algorithm"))
    algorithm, size = key.get("algorithm", "RSA"), key.get("size")
    if size is not None and ((algorithm == "ECDSA" and size not in (256, 384, 521)) or
                             (algorithm == "RSA" and not 2048 <= size <= 8192) or algorithm == "Ed25519"):
        errors.append("privateKey.size %r does not fit algorithm %s" % (size, algorithm))
    if key.get("rotationPolicy", "Always") not in ("Always", "Never"):
        errors.append("privateKey.rotationPolicy %r is not Always or Never" % key.get("rotationPolicy"))
    bad_usages = [u for u in spec.get("usages") or [] if u not in CERTIFICATE_USAGES]
    if bad_usages:
        errors.append("unknown usages %s" % bad_usages)
    templates = pod_templates(docs)
    if templates and secret and not any(
            (v.get("secret") or {}).get("secretName") == secret
            for t in templates for v in t["spec"].get("volumes") or []):
        errors.append("no Deployment in the render mounts its Secret %s" % secret)
    return errors


def check_network_policy(doc, docs):
    """The policy selects the render's pods, names their container ports, and names its peers."""
    errors = []
    spec = doc.get("spec") or {}
    templates = pod_templates(docs)
    selector = (spec.get("podSelector") or {}).get("matchLabels") or {}
    selected = [t for t in templates
                if all((t["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
    if templates and not selected:
        errors.append("spec.podSelector %s selects no Deployment's or StatefulSet's pods" % selector)
    port_names = {p["name"] for t in selected for c in t["spec"]["containers"] for p in c.get("ports") or []
                  if "name" in p}
    for i, rule in enumerate(spec.get("ingress") or []):
        if not rule.get("from"):
            errors.append("ingress[%d] has no `from`: it admits every source" % i)
        for p in rule.get("ports") or []:
            if isinstance(p.get("port"), str) and selected and p["port"] not in port_names:
                errors.append("ingress[%d] names port %r, not a container port (%s)"
                              % (i, p["port"], ", ".join(sorted(port_names))))
    return errors


# Custom resources: kind -> structural check(doc, all docs of the file).
STRUCTURAL = {
    "ServiceMonitor": lambda doc, docs: check_service_monitor(doc, [d for d in docs if d.get("kind") == "Service"]),
    "Certificate": check_certificate,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", default="1.37.0")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    versions = args.versions.split(",")
    failures = 0
    checked = 0
    for path in args.files:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        if not docs:
            print("FAIL %s: no manifests" % path)
            failures += 1
            continue
        for doc in docs:
            name = "%s %s/%s" % (path, doc.get("kind"), (doc.get("metadata") or {}).get("name"))
            if doc.get("kind") in STRUCTURAL:
                errors = STRUCTURAL[doc["kind"]](doc, docs)
                if errors:
                    failures += 1
                    print("FAIL %s (structural check): %s" % (name, "; ".join(errors)))
                else:
                    print("ok   %s (CRD: no Kubernetes schema; checked structurally)" % name)
                continue
            if doc.get("kind") == "NetworkPolicy":
                errors = check_network_policy(doc, docs)
                if errors:
                    failures += 1
                    print("FAIL %s (against the render): %s" % (name, "; ".join(errors)))
            for version in versions:
                checked += 1
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    failures += 1
                    path_str = ".".join(str(p) for p in e.path)
                    print("FAIL %s against %s: %s: %s" % (name, version, path_str, e.message))
                except (kubernetes_validate.SchemaNotFoundError,
                        kubernetes_validate.InvalidSchemaError) as e:
                    failures += 1
                    print("FAIL %s against %s: %s" % (name, version, e))
                else:
                    print("ok   %s (Kubernetes %s, strict)" % (name, version))
    print("%d schema checks, %d failures" % (checked, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
