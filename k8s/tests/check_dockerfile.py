#!/usr/bin/env python3
"""Static checks of a Dockerfile (no Docker engine here, so nothing is built): multi-stage, every base image
with a fixed tag (not `latest`, ARG defaults resolved), a Swift build stage, a slim runtime stage that installs
only the allowed C runtime libraries, a final numeric non-root USER, an exec-form ENTRYPOINT.

With --package and --manifests it also checks the build targets: the products the build stage accepts (its
`case "${PRODUCT}" in a|b|c)` line) must be executable targets of Package.swift, and every rtc-* image that a
rendered manifest runs (containers and init containers) must be one of those products, so no manifest names an
image this Dockerfile cannot build.

usage: check_dockerfile.py DOCKERFILE [--package Package.swift --manifests RENDER...]
"""
import argparse
import re
import shlex
import sys

ALLOWED_RUNTIME_PACKAGES = {"libssl3", "libpcre2-8-0", "librdkafka1", "libhiredis0.14", "liburing2", "ca-certificates"}


def instructions(text):
    text = re.sub(r"\\\n", " ", text)                 # line continuations
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            yield word.upper(), rest.strip()


def dockerfile_products(build_insts):
    """The PRODUCT values the build stage accepts: the alternatives of its `case "${PRODUCT}" in ...)`."""
    for word, rest in build_insts:
        m = re.search(r'case\s+"?\$\{?PRODUCT\}?"?\s+in\s+([A-Za-z0-9_|.-]+)\)', rest) if word == "RUN" else None
        if m:
            return set(m.group(1).split("|"))
    return set()


def package_executables(path):
    with open(path) as f:
        text = f.read()
    return set(re.findall(r'\.executableTarget\(\s*name:\s*"([^"]+)"', text))


def manifest_images(paths):
    """rtc-* images run by any container of the rendered manifests: {program name: set of files}."""
    import yaml
    found = {}

    def walk(node, path):
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                for c in node.get(key) or []:
                    image = (c or {}).get("image") or ""
                    repo = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
                    if repo.startswith("rtc-"):
                        found.setdefault(repo, set()).add(path)
            for v in node.values():
                walk(v, path)
        elif isinstance(node, list):
            for v in node:
                walk(v, path)

    for p in paths:
        with open(p) as f:
            for doc in yaml.safe_load_all(f):
                walk(doc, p)
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dockerfile")
    parser.add_argument("--package", help="Package.swift, whose executable targets the products must be")
    parser.add_argument("--manifests", nargs="*", default=[], help="rendered manifests whose rtc-* images must be products")
    opts = parser.parse_args()
    path = opts.dockerfile
    with open(path) as f:
        insts = list(instructions(f.read()))
    args = {}
    stages = []
    for word, rest in insts:
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            stages.append({"from": rest, "insts": []})
        elif stages:
            stages[-1]["insts"].append((word, rest))
    results = []

    def check(ok, name, detail):
        results.append(ok)
        print("%s %s %s: %s" % ("PASS" if ok else "FAIL", name, path, detail))

    check(len(stages) >= 2, "docker.multi-stage", "%d stages" % len(stages))
    bad = []
    for s in stages:
        image = s["from"].split()[0]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), image)
        s["image"] = image
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        if "@sha256:" not in image and (not tag or tag == "latest"):
            bad.append(image or s["from"])
    check(not bad, "docker.tags", "untagged or latest: %s" % ", ".join(bad) if bad else
          "bases %s" % ", ".join(s["image"] for s in stages))
    builds = [s for s in stages if s["image"].startswith("swift:") and
              any(w == "RUN" and "swift build -c release" in r for w, r in s["insts"])]
    check(bool(builds), "docker.swift-build", "a swift:* stage runs `swift build -c release`" if builds
          else "no stage builds with `swift build -c release` on a swift image")
    final = stages[-1] if stages else {"image": "", "insts": []}
    check("slim" in final["image"] and not final["image"].startswith("swift:"), "docker.slim-runtime",
          "runtime %s" % final["image"])
    installed = set()
    for w, r in final["insts"]:
        if w == "RUN" and "apt-get install" in r:
            for cmd in r.split("&&"):
                if "apt-get install" in cmd:
                    installed.update(t for t in shlex.split(cmd.split("apt-get install", 1)[1]) if not t.startswith("-"))
    extra = sorted(installed - ALLOWED_RUNTIME_PACKAGES)
    check(not extra, "docker.runtime-packages", "not allowed in the runtime image: %s" % ", ".join(extra) if extra
          else "installs %s" % ", ".join(sorted(installed)))
    users = [r for w, r in final["insts"] if w == "USER"]
    user = users[-1].split(":")[0] if users else ""
    check(user.isdigit() and int(user) != 0, "docker.non-root", "final USER %s" % (users[-1] if users else "missing")
          if not (user.isdigit() and int(user) != 0) else "final USER %s (numeric, not root)" % users[-1])
    entry = [r for w, r in final["insts"] if w == "ENTRYPOINT"]
    check(bool(entry) and entry[-1].startswith("["), "docker.entrypoint",
          "exec form %s" % entry[-1] if entry and entry[-1].startswith("[") else
          "needs an exec-form ENTRYPOINT (the program must be PID 1 to get SIGTERM)")
    if opts.package or opts.manifests:
        products = set()
        for s in stages[:-1]:
            products |= dockerfile_products(s["insts"])
        problems = []
        if not products:
            problems.append('the build stage does not list its products (case "${PRODUCT}" in a|b|c))')
        if opts.package:
            executables = package_executables(opts.package)
            unknown = sorted(products - executables)
            if unknown:
                problems.append("not executable targets of %s: %s" % (opts.package, ", ".join(unknown)))
        used = manifest_images(opts.manifests)
        missing = sorted(set(used) - products)
        for name in missing:
            problems.append("image %s (in %s) is not a build target" % (name, ", ".join(sorted(used[name]))))
        check(not problems, "docker.targets", "; ".join(problems) or
              "builds %s; the manifests run %s" % (", ".join(sorted(products)), ", ".join(sorted(used)) or "none"))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
