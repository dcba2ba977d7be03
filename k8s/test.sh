#!/usr/bin/env bash
# Offline validation of k8s/ (no cluster, no Docker engine): renders every kustomization, validates every
# object against Kubernetes schemas (and KEDA's ScaledObject against a checked-in subset of its CRD schema),
# asserts the deployment's properties with k8s/tests/check_manifests.py and requires every broken fixture to
# fail with its expected message, checks the gateway config in the rendered ConfigMap, the Dockerfile, the
# Grafana dashboard and deploy.sh --dry-run. Run k8s/deps.sh first. Exits non-zero on any failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
tests=k8s/tests
if [ ! -x "$py" ] || ! "$py" -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null; then
  echo "k8s/test.sh: the venv is missing or incomplete: run bash k8s/deps.sh" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# check_manifests.py's HPA simulation (tests/hpa_sim.py) keeps its verdict per ScaledObject setting here: the
# prod render and most fixtures share one.
export HPA_SIM_CACHE="$tmp/hpa-sim"
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
pass() { echo "PASS $*"; }
# Same flag as deploy.sh: the gateway ConfigMap is generated from gateway-config/gateway.conf, outside k8s/.
render() { kubectl kustomize --load-restrictor=LoadRestrictionsNone "$1"; }
start=$SECONDS

echo "== render every kustomization"
targets=(overlays/dev overlays/prod bench base prereqs)
for t in "${targets[@]}"; do
  out="$tmp/${t//\//-}.yaml"
  if render "k8s/$t" > "$out" 2> "$tmp/err"; then
    pass "render k8s/$t: $(grep -c '^kind:' "$out") objects"
  else
    fail "render k8s/$t: $(cat "$tmp/err")"
  fi
done
dev="$tmp/overlays-dev.yaml" prod="$tmp/overlays-prod.yaml" bench="$tmp/bench.yaml"

echo "== schemas (Kubernetes 1.30 strict; KEDA ScaledObject: CRD subset)"
if "$py" $tests/validate_schemas.py --kubernetes-version 1.30.0 "$dev" "$prod" "$bench" k8s/secret.example.yaml > "$tmp/schemas.log"; then
  pass "schemas: $(tail -1 "$tmp/schemas.log")"
else
  grep '^FAIL' "$tmp/schemas.log" || true
  fail "schemas: $(tail -1 "$tmp/schemas.log")"
fi
for f in $tests/fixtures/schema/*.yaml; do
  if "$py" $tests/validate_schemas.py "$f" > "$tmp/schema-fixture.log"; then
    fail "schema fixture $f was accepted"
  else
    pass "schema fixture $f rejected: $(grep -m1 '^FAIL' "$tmp/schema-fixture.log" | sed 's/^FAIL [^:]*: //')"
  fi
done

echo "== properties (k8s/tests/check_manifests.py)"
for spec in "system:$dev" "system:$prod" "bench:$bench"; do
  profile="${spec%%:*}" file="${spec#*:}"
  if "$py" $tests/check_manifests.py --profile "$profile" "$file" > "$tmp/check.log"; then
    sed "s|$tmp/||" "$tmp/check.log"
  else
    sed "s|$tmp/||" "$tmp/check.log"
    fail "check_manifests.py --profile $profile $(basename "$file")"
  fi
done

echo "== manifests against the programs (k8s/tests/check_programs.py: the built binaries' --help)"
for spec in "system:$dev" "system:$prod" "bench:$bench"; do
  profile="${spec%%:*}" file="${spec#*:}"
  if "$py" $tests/check_programs.py --profile "$profile" "$file" > "$tmp/programs.log"; then
    sed "s|$tmp/||" "$tmp/programs.log"
  else
    sed "s|$tmp/||" "$tmp/programs.log"
    fail "check_programs.py --profile $profile $(basename "$file")"
  fi
done
# Without the binaries the check cannot pass: it fails and says how to get them.
if "$py" $tests/check_programs.py --profile system --bin-dir "$tmp/no-binaries" "$prod" > "$tmp/programs.log"; then
  fail "check_programs.py passed without the built programs"
elif grep -q '^FAIL programs.binary .*run make build first' "$tmp/programs.log"; then
  pass "check_programs.py without the built programs: FAIL ... run make build first"
else
  fail "check_programs.py without the built programs failed without saying 'run make build first'"
fi

# The bench Job's args are `rtc-bench run`'s own options (read from `rtc-bench run --help`): a renamed flag fails.
sed 's/^\( *\)- --processes$/\1- --procs/' "$bench" > "$tmp/bench-renamed-flag.yaml"
if "$py" $tests/check_programs.py --profile bench "$tmp/bench-renamed-flag.yaml" > "$tmp/programs.log"; then
  fail "bench args: a flag rtc-bench run lacks (--procs) passed"
elif grep -q '^FAIL programs.args Job/rtc-bench.*unknown: --procs' "$tmp/programs.log"; then
  pass "bench args: a flag rtc-bench run lacks fails:$(grep '^FAIL programs.args' "$tmp/programs.log" | cut -d: -f2-)"
else
  fail "bench args: a renamed flag failed for another reason: $(grep '^FAIL' "$tmp/programs.log" | head -1)"
fi

echo "== broken fixtures must fail with their expected message"
for dir in $tests/fixtures/*/; do
  dir="${dir%/}"
  [ -f "$dir/kustomization.yaml" ] || continue
  name="$(basename "$dir")"
  profile="$(awk '$1 == "profile" {print $2}' "$dir/expect.txt")"
  # `checker programs` runs check_programs.py, otherwise check_manifests.py.
  checker="$(awk '$1 == "checker" {print $2}' "$dir/expect.txt")"
  checker="$tests/check_${checker:-manifests}.py"
  mapfile -t expected < <(sed -n 's/^fail //p' "$dir/expect.txt")
  if ! render "$dir" > "$tmp/fixture.yaml" 2> "$tmp/err"; then
    fail "fixture $name does not render: $(cat "$tmp/err")"
    continue
  fi
  if "$py" "$checker" --profile "$profile" "$tmp/fixture.yaml" > "$tmp/fixture.log"; then
    fail "fixture $name passed the checker (expected: ${expected[*]})"
    continue
  fi
  # Every failing check is an expected one, and every expected one failed: a fixture cannot pass by
  # breaking something else.
  problems=()
  while IFS= read -r line; do
    ok=0
    for e in "${expected[@]}"; do [[ "$line" == "FAIL $e"* ]] && ok=1; done
    [ "$ok" = 1 ] || problems+=("unexpected: $line")
  done < <(grep '^FAIL' "$tmp/fixture.log")
  for e in "${expected[@]}"; do
    grep -q "^FAIL $e" "$tmp/fixture.log" || problems+=("expected failure missing: $e")
  done
  if [ ${#problems[@]} -eq 0 ]; then
    pass "fixture $name fails as expected: $(grep -m1 '^FAIL' "$tmp/fixture.log" | cut -c6-)"
  else
    fail "fixture $name: $(printf '%s; ' "${problems[@]}")"
  fi
done

echo "== gateway config in the rendered ConfigMap"
binary=""
for b in .build/debug/rtc-gateway .build/release/rtc-gateway; do
  if [ -x "$b" ]; then binary="$b"; break; fi
done
for spec in "dev:$dev" "prod:$prod"; do
  overlay="${spec%%:*}" file="${spec#*:}"
  conf="$tmp/gateway-$overlay.conf"
  if ! "$py" - "$file" "$conf" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
found = [d["data"]["gateway.conf"] for d in docs
         if d.get("kind") == "ConfigMap" and d["metadata"]["name"].startswith("rtc-gateway-config")
         and "gateway.conf" in (d.get("data") or {})]
if len(found) != 1:
    sys.exit("expected one rtc-gateway-config ConfigMap with gateway.conf, found %d" % len(found))
open(sys.argv[2], "w").write(found[0])
PY
  then
    fail "gateway config ($overlay): cannot extract gateway.conf from the render"
    continue
  fi
  if cmp -s "$conf" gateway-config/gateway.conf; then
    pass "gateway config ($overlay): the ConfigMap holds gateway-config/gateway.conf byte for byte"
  else
    fail "gateway config ($overlay): the ConfigMap differs from gateway-config/gateway.conf"
  fi
  if [ -z "$binary" ]; then
    fail "rtc-gateway is not built (.build/debug/rtc-gateway): run 'make build' first"
  elif POD_NAMESPACE=rtc "$binary" --check-config "$conf" > "$tmp/check-config.log" 2>&1; then
    pass "$binary --check-config (config from the $overlay render)"
  else
    cat "$tmp/check-config.log"
    fail "$binary --check-config rejected the config from the $overlay render"
  fi
done

# Negative control: the same check must reject a broken copy of the file, with its line number.
if [ -n "$binary" ]; then
  sed 's/^\(\s*\)keepalive [0-9]*;/\1keepalive many;/' gateway-config/gateway.conf > "$tmp/broken.conf"
  if POD_NAMESPACE=rtc "$binary" --check-config "$tmp/broken.conf" > "$tmp/broken.log" 2>&1; then
    fail "$binary --check-config accepted a broken gateway.conf"
  elif grep -qE "^$tmp/broken.conf:[0-9]+: 'keepalive'" "$tmp/broken.log"; then
    pass "$binary --check-config rejects a broken gateway.conf with file:line"
  else
    cat "$tmp/broken.log"
    fail "$binary --check-config rejected the broken file without a file:line: message"
  fi
fi

echo "== Dockerfile (static: no Docker engine here, nothing is built)"
# --package/--manifests: every rtc-* image the renders run must be a build target (and a Package.swift program).
docker_targets=(--package Package.swift --manifests "$dev" "$prod" "$bench")
if "$py" $tests/check_dockerfile.py k8s/images/Dockerfile "${docker_targets[@]}" > "$tmp/docker.log"; then
  sed "s|$tmp/||g" "$tmp/docker.log"
else
  sed "s|$tmp/||g" "$tmp/docker.log"
  fail "k8s/images/Dockerfile"
fi
# Each fixture names the check it must fail in a `# expect-fail: NAME` line.
for f in $tests/fixtures/docker/*; do
  want="$(sed -n 's/^# expect-fail: //p' "$f")"
  if "$py" $tests/check_dockerfile.py "$f" "${docker_targets[@]}" > "$tmp/docker.log"; then
    fail "Dockerfile fixture $f was accepted"
  elif [ -n "$want" ] && ! grep -q "^FAIL $want " "$tmp/docker.log"; then
    fail "Dockerfile fixture $f rejected, but not by $want"
  else
    pass "Dockerfile fixture $f rejected by $want ($(grep -c '^FAIL' "$tmp/docker.log") checks failed)"
  fi
done

echo "== Grafana dashboard"
if "$py" $tests/check_dashboard.py k8s/monitoring/metric-names.txt k8s/monitoring/grafana-dashboard.json > "$tmp/dash.log"; then
  cat "$tmp/dash.log"
else
  cat "$tmp/dash.log"
  fail "k8s/monitoring/grafana-dashboard.json"
fi
for f in $tests/fixtures/dashboard/*.json; do
  if "$py" $tests/check_dashboard.py k8s/monitoring/metric-names.txt "$f" > "$tmp/dash.log"; then
    fail "dashboard fixture $f was accepted"
  else
    pass "dashboard fixture $f rejected: $(grep -m1 '^FAIL' "$tmp/dash.log" | cut -c6-)"
  fi
done
if grep -qx 'rtc_balancer_desired_socket_replicas' k8s/monitoring/metric-names.txt; then
  pass "metric-names.txt lists the KEDA trigger's metric rtc_balancer_desired_socket_replicas"
else
  fail "metric-names.txt lacks rtc_balancer_desired_socket_replicas (the KEDA trigger's metric)"
fi

echo "== scripts and the secret template"
for s in k8s/deploy.sh k8s/deps.sh k8s/test.sh; do
  if bash -n "$s"; then pass "bash -n $s"; else fail "bash -n $s"; fi
done
for overlay in dev prod; do
  if bash k8s/deploy.sh --overlay "$overlay" --dry-run > "$tmp/dry.log" 2> "$tmp/err"; then
    want="$(grep -c '^kind:' "$tmp/overlays-$overlay.yaml")"
    got="$(grep -c '^kind:' "$tmp/dry.log")"
    if grep -q '^# apply order' "$tmp/dry.log" && grep -q '^#   0. check prerequisites: APIService v1beta1.metrics.k8s.io' "$tmp/dry.log" \
        && [ "$got" = "$want" ]; then
      pass "deploy.sh --overlay $overlay --dry-run: prerequisites, apply order and $got objects, nothing applied"
    else
      fail "deploy.sh --overlay $overlay --dry-run: printed $got objects (render has $want), or no apply order or prerequisite step"
    fi
  else
    fail "deploy.sh --overlay $overlay --dry-run: $(cat "$tmp/err")"
  fi
done
# deploy.sh against a fake kubectl (renders with the real one, answers the prerequisite queries as told, logs
# everything else): a missing metrics-server or KEDA must stop it before anything is applied.
mkdir -p "$tmp/fakebin"
cat > "$tmp/fakebin/kubectl" <<FAKE
#!/usr/bin/env bash
real="$(command -v kubectl)"
FAKE
cat >> "$tmp/fakebin/kubectl" <<'FAKE'
case "$*" in
  kustomize*) exec "$real" "$@" ;;
  "get apiservice v1beta1.metrics.k8s.io"*) [ -n "$FAKE_METRICS" ] && printf '%s' "$FAKE_METRICS"; exit 0 ;;
  "get crd scaledobjects.keda.sh"*) [ "$FAKE_KEDA" = 1 ] ;;
  "get --raw /version"*) exit 1 ;;
  *) echo "$*" >> "$FAKE_LOG" ;;
esac
FAKE
chmod +x "$tmp/fakebin/kubectl"
fake_deploy() {  # overlay metrics keda -> exit status; output in $tmp/fake.out, kubectl calls in $tmp/fake.log
  : > "$tmp/fake.log"
  PATH="$tmp/fakebin:$PATH" FAKE_LOG="$tmp/fake.log" FAKE_METRICS="$2" FAKE_KEDA="$3" \
    bash k8s/deploy.sh --overlay "$1" > "$tmp/fake.out" 2>&1
}
if fake_deploy dev "" 1; then
  fail "deploy.sh went ahead without metrics-server"
elif grep -q 'metrics-server is not installed' "$tmp/fake.out" && ! grep -q '^apply' "$tmp/fake.log"; then
  pass "deploy.sh stops before applying anything when metrics-server is missing"
else
  fail "deploy.sh without metrics-server: $(tail -1 "$tmp/fake.out"); kubectl calls: $(paste -sd, "$tmp/fake.log")"
fi
if fake_deploy dev False 1; then
  fail "deploy.sh went ahead with metrics-server not Available"
else
  pass "deploy.sh stops when the metrics API is not Available"
fi
if fake_deploy prod True 0; then
  fail "deploy.sh --overlay prod went ahead without KEDA"
elif grep -q 'KEDA is not installed' "$tmp/fake.out" && ! grep -q '^apply' "$tmp/fake.log"; then
  pass "deploy.sh --overlay prod stops before applying anything when KEDA is missing"
else
  fail "deploy.sh --overlay prod without KEDA: $(tail -1 "$tmp/fake.out"); kubectl calls: $(paste -sd, "$tmp/fake.log")"
fi
if fake_deploy dev True 0 && grep -q '^apply -f .*10-workloads.yaml' "$tmp/fake.log"; then
  pass "deploy.sh --overlay dev with metrics-server (no KEDA needed) applies $(grep -c '^apply' "$tmp/fake.log") phases"
else
  fail "deploy.sh --overlay dev with metrics-server did not apply: $(tail -1 "$tmp/fake.out")"
fi
if fake_deploy prod True 1 && grep -q '^apply -f .*20-keda.yaml' "$tmp/fake.log"; then
  pass "deploy.sh --overlay prod with metrics-server and KEDA applies the KEDA phase"
else
  fail "deploy.sh --overlay prod with metrics-server and KEDA: $(tail -1 "$tmp/fake.out")"
fi
if bash k8s/deploy.sh --overlay staging --dry-run > /dev/null 2>&1; then
  fail "deploy.sh accepted an unknown overlay"
else
  pass "deploy.sh rejects an unknown overlay"
fi
if grep -rhs --include=kustomization.yaml -v '^[[:space:]]*#' k8s/base k8s/overlays k8s/prereqs k8s/bench \
    | grep -q 'secret.example.yaml'; then
  fail "secret.example.yaml is referenced by a kustomization"
elif grep -E '^\s+(RING|AUTH)_SECRET:' k8s/secret.example.yaml | grep -vq 'REPLACE-ME'; then
  fail "secret.example.yaml holds a value that is not a REPLACE-ME placeholder"
else
  pass "secret.example.yaml: placeholders only, outside every kustomization"
fi

echo "== k8s/test.sh: $failures failure(s) in $((SECONDS - start)) s"
[ "$failures" -eq 0 ]
