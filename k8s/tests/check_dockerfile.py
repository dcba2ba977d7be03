#!/usr/bin/env python3
"""Static checks of a Dockerfile (no Docker engine here, so nothing is built): multi-stage, every base image
with a fixed tag (not `latest`, ARG defaults resolved), a Swift build stage, a slim runtime stage that installs
only the allowed C runtime libraries, a final numeric non-root USER, an exec-form ENTRYPOINT.

usage: check_dockerfile.py DOCKERFILE
"""
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


def main():
    path = sys.argv[1]
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
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
