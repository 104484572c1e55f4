#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
#
# make malloc-check: the tests of libheapdev-malloc on the memfd backend.
# $BUILD is the library's build directory; $VALGRIND the valgrind to use
# (skipped when missing).  Each part prints TAP lines and "N passed, N
# failed"; the exit status is non-zero when anything failed.

T=$BUILD/malloc/test
LIB=$BUILD/libheapdev-malloc.so.1
HERE=$(dirname "$0")
fail=0
export HEAPDEV_BACKEND=memfd

run() {
	echo "== $*"
	"$@" || fail=1
}

for mode in process thread; do
	for t in malloc_test malloc_thread_test malloc_fork_test new_test; do
		run env HEAPDEV_MALLOC_HEAPS=$mode "$T/$t"
	done
done
run env HEAPDEV_MALLOC_COMMIT=now "$T/malloc_test"
run "$T/malloc_static_test"
for t in malloc_test malloc_thread_test new_test; do
	run env UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$BUILD/malloc/ubsan/test/$t"
done
if command -v "${VALGRIND:-valgrind}" >/dev/null; then
	for t in "malloc_test" "malloc_thread_test 20000"; do
		# nouserintercepts: memcheck keeps its hands off the drop-in's
		# malloc (it still checks every access the drop-in makes).
		run "${VALGRIND:-valgrind}" -q --error-exitcode=99 \
			--soname-synonyms=somalloc=nouserintercepts \
			--run-libc-freeres=no --run-cxx-freeres=no \
			--child-silent-after-fork=yes $T/$t
	done
else
	echo "== valgrind not installed: skipped"
fi

# ---- Debian programs, preloaded ----
n=0 bad=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		bad=$((bad + 1))
	fi
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/heapdev-malloc.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "== preloaded programs (memfd)"
PY=/usr/bin/python3
if [ -x $PY ]; then
	$PY "$HERE/preload.py" >"$tmp/py.ref"
	for mode in process thread; do
		HEAPDEV_MALLOC_HEAPS=$mode LD_PRELOAD=$LIB $PY "$HERE/preload.py" \
			--marker >"$tmp/py.out" 2>"$tmp/py.err"
		rc=$?
		[ $rc = 0 ] && [ "$(head -n 1 "$tmp/py.out")" = "$(cat "$tmp/py.ref")" ] &&
			[ "$(sed -n 2p "$tmp/py.out")" = marker ] && [ ! -s "$tmp/py.err" ]
		ok $? "python3, four threads building dicts, HEAPDEV_MALLOC_HEAPS=$mode: exit $rc, output as without the drop-in, heapstat marker mapped"
	done
else
	echo "# python3 missing: skipped"
fi
awk 'BEGIN { srand(7); for (i = 0; i < 400000; i++) printf "%d %s\n", int(rand() * 1e9), substr("abcdefghijklmnopqrstuvwxyz", i % 26 + 1) }' >"$tmp/in"
sort --parallel=2 -S 20M -k2,2 -k1n "$tmp/in" >"$tmp/sort.ref"
LD_PRELOAD=$LIB sort --parallel=2 -S 20M -k2,2 -k1n "$tmp/in" >"$tmp/sort.out" 2>"$tmp/sort.err"
rc=$?
[ $rc = 0 ] && cmp -s "$tmp/sort.ref" "$tmp/sort.out" && [ ! -s "$tmp/sort.err" ]
ok $? "sort --parallel=2 of 400000 lines: exit $rc, output as without the drop-in"
perl -e 'my %h; for my $i (1..200000) { $h{"k$i"} = [($i) x ($i % 9)] } my $s = 0; $s += @{$h{$_}} for keys %h; print "$s\n"' >"$tmp/pl.ref"
LD_PRELOAD=$LIB perl -e 'my %h; for my $i (1..200000) { $h{"k$i"} = [($i) x ($i % 9)] } my $s = 0; $s += @{$h{$_}} for keys %h; print "$s\n"' >"$tmp/pl.out" 2>&1
ok $? "perl hash of arrays: exit 0"
cmp -s "$tmp/pl.ref" "$tmp/pl.out"
ok $? "... output as without the drop-in"

# Programs that fork and go on using their parent's data (issue 15.1).
if [ -x $PY ]; then
	pyfork='import multiprocessing as m, os
d = {i: str(i) * 3 for i in range(50000)}
with m.get_context("fork").Pool(2) as p:
	print(sum(p.map(len, [d[i] for i in range(0, 50000, 7)])))
pid = os.fork()
if pid == 0:
	os._exit(0 if d[49999] == "49999" * 3 else 3)
print(os.waitpid(pid, 0)[1])'
	$PY -c "$pyfork" >"$tmp/mp.ref"
	for mode in process thread; do
		HEAPDEV_MALLOC_HEAPS=$mode LD_PRELOAD=$LIB $PY -c "$pyfork" \
			>"$tmp/mp.out" 2>"$tmp/mp.err"
		rc=$?
		[ $rc = 0 ] && cmp -s "$tmp/mp.ref" "$tmp/mp.out" && [ ! -s "$tmp/mp.err" ]
		ok $? "python3 multiprocessing (fork) and os.fork() reading the parent's dict, HEAPDEV_MALLOC_HEAPS=$mode: exit $rc, output as without the drop-in"
	done
fi
shfork='x=$(echo sub; (echo nested)); y=$(printf "%s" "$x" | tr a-z A-Z); echo "$y"; for i in 1 2 3; do echo "$i" | (read v; echo "got $v"); done'
sh -c "$shfork" >"$tmp/sh.ref"
LD_PRELOAD=$LIB sh -c "$shfork" >"$tmp/sh.out" 2>"$tmp/sh.err"
rc=$?
[ $rc = 0 ] && cmp -s "$tmp/sh.ref" "$tmp/sh.out" && [ ! -s "$tmp/sh.err" ]
ok $? "sh running subshells and pipelines (each a fork that uses the shell's heap): exit $rc, output as without the drop-in"

# The environment: misconfigurations are reported once, on stderr.
HEAPDEV_MALLOC_HEAPS=bogus LD_PRELOAD=$LIB $PY -c pass 2>"$tmp/err"
rc=$?
[ $rc != 0 ] && [ "$(grep -c '^heapdev-malloc: HEAPDEV_MALLOC_HEAPS=bogus: not "process" or "thread"' "$tmp/err")" = 1 ]
ok $? "HEAPDEV_MALLOC_HEAPS=bogus: one message, malloc() fails (python3 exits $rc)"
HEAPDEV_MALLOC_COMMIT=bogus LD_PRELOAD=$LIB $PY -c pass 2>"$tmp/err"
rc=$?
[ $rc != 0 ] && [ "$(grep -c '^heapdev-malloc: HEAPDEV_MALLOC_COMMIT=bogus: not "touch" or "now"' "$tmp/err")" = 1 ]
ok $? "HEAPDEV_MALLOC_COMMIT=bogus: one message, malloc() fails (python3 exits $rc)"
if [ ! -e /dev/heapdev ]; then
	env -u HEAPDEV_BACKEND LD_PRELOAD=$LIB $PY -c pass 2>"$tmp/err"
	rc=$?
	[ $rc != 0 ] && [ "$(grep -c '^heapdev-malloc: cannot create the process heap: /dev/heapdev: No such file or directory' "$tmp/err")" = 1 ]
	ok $? "no /dev/heapdev and no backend chosen: one message, no silent fallback (python3 exits $rc)"
	env -u HEAPDEV_BACKEND HEAPDEV_MALLOC_FALLBACK=memfd LD_PRELOAD=$LIB \
		$PY -c 'print(sum(len(str(i)) for i in range(100000)))' >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc = 0 ] && [ "$(cat "$tmp/out")" = 488890 ] &&
		[ "$(grep -c 'using the memfd backend (HEAPDEV_MALLOC_FALLBACK=memfd)' "$tmp/err")" = 1 ] &&
		[ "$(wc -l <"$tmp/err")" = 1 ]
	ok $? "HEAPDEV_MALLOC_FALLBACK=memfd without /dev/heapdev: one message, then memfd heaps"
fi
# Installed as a user would: make install into a stage, pkg-config, link.
echo "== make install, pkg-config"
stage=$tmp/stage
if make -s -C "$HERE/../.." install BUILD="$BUILD" DESTDIR="$stage" PREFIX=/usr/local \
	>"$tmp/install.log" 2>&1; then
	ok 0 "make install DESTDIR"
else
	ok 1 "make install DESTDIR"
	tail -n 20 "$tmp/install.log"
fi
lib=$stage/usr/local/lib
for f in libheapdev-malloc.so.1 libheapdev-malloc.so libheapdev-malloc.a pkgconfig/heapdev-malloc.pc; do
	[ -e "$lib/$f" ]
	ok $? "installed /usr/local/lib/$f"
done
export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage
printf '#include <stdlib.h>\n#include <heapdev.h>\nint main(void) { void *p = malloc(100); int ok = heapdev_heap_of(p) == heapdev_process_heap(); free(p); return !ok; }\n' >"$tmp/use.c"
# shellcheck disable=SC2046
cc -o "$tmp/use" "$tmp/use.c" $(pkg-config --cflags --libs heapdev-malloc heapdev) 2>"$tmp/cc.err" &&
	LD_LIBRARY_PATH=$lib "$tmp/use"
ok $? "a program linked with \$(pkg-config --libs heapdev-malloc) allocates from the process heap"
# shellcheck disable=SC2046
cc -static -o "$tmp/use-static" "$tmp/use.c" $(pkg-config --static --cflags --libs heapdev-malloc) 2>"$tmp/cc.err" &&
	"$tmp/use-static"
ok $? "... and statically linked with --static"
LD_PRELOAD=$lib/libheapdev-malloc.so.1 /bin/ls / >/dev/null
ok $? "the installed libheapdev-malloc.so.1 preloads (it finds libheapdev.so.1 next to it)"

echo "$((n - bad)) passed, $bad failed"
[ $bad = 0 ] || fail=1
exit $fail
