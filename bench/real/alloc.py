# SPDX-License-Identifier: GPL-2.0-only
# bench/real: an allocation-heavy Python program (make bench, "real
# programs").  Builds and drops many small objects: dicts of records,
# JSON round trips, string building, sorting; prints a digest that must
# be the same under every allocator.
import hashlib
import json
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 120000
h = hashlib.sha256()
for rnd in range(3):
    recs = []
    for i in range(N):
        k = (i * 2654435761 + rnd) % 1000003
        recs.append({"id": k, "name": "n%07d" % k, "tags": [str(k % 97), str(k % 89)],
                     "score": (k % 1000) / 7.0})
    recs.sort(key=lambda r: (r["score"], r["name"]))
    text = json.dumps(recs[: N // 4])
    back = json.loads(text)
    idx = {}
    for r in recs:
        idx.setdefault(r["tags"][0], []).append(r["id"])
    h.update(text[:100000].encode())
    h.update(repr(sorted((k, len(v), sum(v)) for k, v in idx.items())).encode())
    h.update(str(len(back)).encode())
    words = " ".join(r["name"] for r in recs).split(" ")
    h.update(str(sum(len(w) for w in words)).encode())
print(h.hexdigest())
