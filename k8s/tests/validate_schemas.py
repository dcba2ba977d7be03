#!/usr/bin/env python3
"""Validates every object of rendered manifests against JSON schemas, offline.

Built-in kinds: the Kubernetes OpenAPI schemas bundled in the `kubernetes-validate` package (strict: unknown
fields are errors). KEDA's ScaledObject: the checked-in subset of its CRD schema (schemas/). An object whose
kind has no schema is an error, so nothing passes unvalidated.

usage: validate_schemas.py [--kubernetes-version 1.30.0] FILE...
"""
import argparse
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): os.path.join(HERE, "schemas", "keda-scaledobject-v1alpha1.json"),
}


def load_crd_validators():
    validators = {}
    for key, path in CRD_SCHEMAS.items():
        with open(path) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        validators[key] = jsonschema.Draft202012Validator(schema)
    return validators


def describe(obj):
    meta = obj.get("metadata") or {}
    return "%s %s/%s" % (obj.get("apiVersion"), obj.get("kind"), meta.get("name"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubernetes-version", default="1.30.0")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    crd_validators = load_crd_validators()
    failures = 0
    count = 0
    for path in args.files:
        with open(path) as f:
            objects = [o for o in yaml.safe_load_all(f) if o]
        if not objects:
            print("FAIL %s: no objects" % path)
            failures += 1
        for obj in objects:
            count += 1
            key = (obj.get("apiVersion"), obj.get("kind"))
            if key in crd_validators:
                errors = sorted(crd_validators[key].iter_errors(obj), key=lambda e: list(e.path))
                if errors:
                    failures += 1
                    for e in errors:
                        where = ".".join(str(p) for p in e.path) or "(root)"
                        print("FAIL %s: %s (CRD subset schema): %s: %s" % (path, describe(obj), where, e.message))
                else:
                    print("ok   %s: %s (CRD subset schema)" % (path, describe(obj)))
                continue
            try:
                version = kubernetes_validate.validate(obj, args.kubernetes_version, strict=True)
                print("ok   %s: %s (Kubernetes %s, strict)" % (path, describe(obj), version))
            except kubernetes_validate.ValidationError as e:
                failures += 1
                where = ".".join(str(p) for p in e.path) or "(root)"
                print("FAIL %s: %s (Kubernetes %s): %s: %s" % (path, describe(obj), e.version, where, e.message))
            except kubernetes_validate.SchemaNotFoundError as e:
                failures += 1
                print("FAIL %s: %s: no schema: %s" % (path, describe(obj), e.message))
    print("%d objects, %d failed" % (count, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
