# SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
# An allocation-heavy Python run for the drop-in's preloaded tests: dicts,
# lists and strings built and dropped by four threads, then a digest of
# what was built, which must match a run without the drop-in.  With
# --marker, also checks that /proc/self/maps shows the drop-in's marker.
import hashlib
import sys
import threading

def work(seed, out):
    d = {}
    for i in range(60000):
        k = "%d-%d" % (seed, i * 7919 % 100003)
        d[k] = [k * (i % 7), i, str(i)]
        if i % 3 == 0:
            d.pop("%d-%d" % (seed, (i // 2) * 7919 % 100003), None)
    h = hashlib.sha256()
    for k in sorted(d):
        h.update(k.encode())
        h.update(repr(d[k]).encode())
    out[seed] = h.hexdigest()

out = {}
ts = [threading.Thread(target=work, args=(s, out)) for s in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(" ".join(out[s][:16] for s in sorted(out)))
if "--marker" in sys.argv:
    with open("/proc/self/maps") as f:
        print("marker" if "heapdev-malloc" in f.read() else "no marker")
