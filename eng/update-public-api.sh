#!/usr/bin/env bash
# Records the public API the compiler reports as undeclared (RS0016) in each project's
# PublicAPI.Unshipped.txt and drops entries reported as removed (RS0017). Review the diff: every
# public change is deliberate.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
dotnet build RedisPoolKit.sln -c Debug -p:TreatWarningsAsErrors=false -nologo -clp:NoSummary >"$log" 2>&1 || true
python3 - "$log" <<'PY'
import re, sys, collections, os
added, removed = collections.defaultdict(set), collections.defaultdict(set)
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"^(.*?)\(\d+,\d+\): (?:error|warning) (RS001[67]): Symbol '(.*)' is (?:not part of the declared public API|part of the declared API, but is either not public or could not be found).*\[(.*?\.csproj)", line)
    if not m:
        continue
    project = os.path.dirname(m.group(4))
    (added if m.group(2) == "RS0016" else removed)[project].add(m.group(3))
for project in set(added) | set(removed):
    path = os.path.join(project, "PublicAPI.Unshipped.txt")
    lines = [l.rstrip("\n") for l in open(path, encoding="utf-8")] if os.path.exists(path) else ["#nullable enable"]
    body = (set(lines[1:]) | added[project]) - removed[project]
    body.discard("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("#nullable enable\n" + "".join(l + "\n" for l in sorted(body, key=lambda s: s.lstrip("~").replace("static ", "").replace("override ", "").replace("abstract ", "").replace("virtual ", ""))))
    print(f"{path}: +{len(added[project])} -{len(removed[project])}")
PY
rm -f "$log"
