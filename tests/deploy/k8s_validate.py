#!/usr/bin/env python3
"""Validates Kubernetes manifests (multi-document YAML files) offline against the Kubernetes
OpenAPI schemas shipped in the PyPI package kubernetes-validate, strictly (unknown fields are
errors), for each Kubernetes version given. Custom resources whose schema is not shipped
(ServiceMonitor) are checked structurally here instead, with a note.

usage: k8s_validate.py --versions 1.27.0,1.37.0 FILE...
Exit 0 when every document is valid, 1 otherwise.
"""
import argparse
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
    return errors


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
        services = [d for d in docs if d.get("kind") == "Service"]
        for doc in docs:
            name = "%s %s/%s" % (path, doc.get("kind"), (doc.get("metadata") or {}).get("name"))
            if doc.get("kind") == "ServiceMonitor":
                errors = check_service_monitor(doc, services)
                if errors:
                    failures += 1
                    print("FAIL %s (structural check): %s" % (name, "; ".join(errors)))
                else:
                    print("ok   %s (CRD: no Kubernetes schema; checked structurally)" % name)
                continue
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
