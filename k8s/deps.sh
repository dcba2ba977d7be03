#!/usr/bin/env bash
# Installs what k8s/test.sh needs, skipping what is already there: kubectl (checked, not installed: it comes
# with the machine image), a Python venv at .venv with kubernetes-validate (bundled Kubernetes JSON schemas),
# jsonschema and PyYAML at pinned versions.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
# Pinned so that the schemas and the validator do not change under the tests.
requirements=(kubernetes-validate==1.37.0 jsonschema==4.26.0 PyYAML==6.0.3)

if ! command -v kubectl >/dev/null 2>&1; then
  echo "deps.sh: kubectl is missing (expected at /usr/bin/kubectl); it renders kustomize offline" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  if ! /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
      echo "deps.sh: python3-venv is missing and cannot be installed here" >&2
      exit 1
    fi
  fi
  /usr/bin/python3 -m venv "$venv"
fi

# Ask pip only when a pinned requirement is not satisfied (keeps the second run offline and fast).
if ! "$venv/bin/python" - "${requirements[@]}" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version, PackageNotFoundError
for req in sys.argv[1:]:
    name, want = req.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
fi
echo "deps.sh: kubectl $(kubectl version --client -o json 2>/dev/null | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), $("$venv/bin/python" -c 'import kubernetes_validate.version as v; print("kubernetes-validate", v.__version__)')"
