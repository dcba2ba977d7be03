#!/usr/bin/env python3
"""Calls per unit of the Swift runtime's reference-counting, exclusivity and allocation entry points in callgrind
dumps: callgrind_calls.py N UNIT DUMP... (N units of work were measured; see lib.sh's callgrind_report)."""
import re, sys
n, unit = int(sys.argv[1]), sys.argv[2]
names = ["swift_retain", "swift_release", "swift_bridgeObjectRetain", "swift_bridgeObjectRelease",
         "swift_beginAccess", "swift_endAccess", "swift_allocObject", "swift_deallocObject", "malloc", "free"]
calls = {k: 0 for k in names}
# Callgrind's format: "cfn=(id) name" names the callee of the next "calls=COUNT ..." line; ids are compressed
# (the name appears only at the first use of an id in each file).
for path in sys.argv[3:]:
    ids = {}
    callee = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("cfn="):
                m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m:
                    if m.group(2) is not None:
                        ids[m.group(1)] = m.group(2)
                    callee = ids.get(m.group(1))
                else:
                    callee = line[4:].strip()
            elif line.startswith("fn="):
                m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m and m.group(2) is not None:
                    ids[m.group(1)] = m.group(2)
            elif line.startswith("calls=") and callee is not None:
                if callee in calls:
                    calls[callee] += int(line[6:].split()[0])
                callee = None
rr = calls["swift_retain"] + calls["swift_release"]
print(f"swift_retain+swift_release per {unit}: {rr / n:.2f}")
for k in names:
    print(f"  {k}: {calls[k] / n:.2f} per {unit}")
