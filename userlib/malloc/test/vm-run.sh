#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
#
# Run in the test VM by scripts/vm-check.job (as /opt/heapdev/malloc/run.sh,
# gathered by userlib's "make malloc-vm"): the drop-in malloc on the device
# backend.  Its test programs, then Debian's sort, perl and sqlite3 with
# libheapdev-malloc.so.1 preloaded, their output compared with a run
# without it, and heapstat showing a preloaded process.  Programs run
# through the dynamic loader copied next to them: the initramfs has no
# shared libc.  Prints TAP lines and "N passed, N failed".

D=$(dirname "$0")
LD="$D/lib/ld-linux-x86-64.so.2 --library-path $D/lib"
PRE="--preload $D/lib/libheapdev-malloc.so.1"
unset HEAPDEV_BACKEND
n=0 bad=0 sub_pass=0 sub_fail=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		bad=$((bad + 1))
	fi
}

# A test program: its own counts are added to ours.
suite() {
	name=$1
	shift
	echo "== $name"
	"$@" >/tmp/malloc-suite.out 2>&1
	rc=$?
	cat /tmp/malloc-suite.out
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' /tmp/malloc-suite.out | tail -n 1)
	p=${line%% passed*}
	f=${line#*passed, }
	f=${f%% failed*}
	[ -n "$line" ] || { p=0; f=1; }
	[ $rc = 0 ] || [ "$f" != 0 ] || f=1
	sub_pass=$((sub_pass + p))
	sub_fail=$((sub_fail + f))
}

[ -c /dev/heapdev ]
ok $? "/dev/heapdev exists (the device backend)"
# Under emulation: every entry point once, threads in both modes, fork
# (fewer thread operations and forks than on the host).
suite "malloc_test (device)" $LD "$D/bin/malloc_test"
suite "new_test (device)" $LD "$D/bin/new_test"
for mode in process thread; do
	suite "malloc_thread_test (device, HEAPDEV_MALLOC_HEAPS=$mode)" \
		env HEAPDEV_MALLOC_HEAPS=$mode $LD "$D/bin/malloc_thread_test" 10000
done
suite "malloc_fork_test (device)" $LD "$D/bin/malloc_fork_test" 10
suite "malloc_static_test (device, static)" "$D/bin/malloc_static_test"

echo "== Debian programs, preloaded (device)"
tmp=/tmp/malloc-vm
rm -rf $tmp
mkdir -p $tmp
awk 'BEGIN { srand(7); for (i = 0; i < 200000; i++) printf "%d %s\n", int(rand() * 1e9), substr("abcdefghijklmnopqrstuvwxyz", i % 26 + 1) }' >$tmp/in
$LD "$D/bin/sort" --parallel=2 -k2,2 -k1n $tmp/in >$tmp/sort.ref
$LD $PRE "$D/bin/sort" --parallel=2 -k2,2 -k1n $tmp/in >$tmp/sort.out 2>$tmp/sort.err
rc=$?
[ $rc = 0 ] && cmp -s $tmp/sort.ref $tmp/sort.out && [ ! -s $tmp/sort.err ]
ok $? "sort --parallel=2 of 200000 lines, preloaded: exit $rc, output as without the drop-in"
script='my %h; for my $i (1..200000) { $h{"k$i"} = [($i) x ($i % 9)] } my $s = 0; $s += @{$h{$_}} for keys %h; print "$s\n"'
$LD "$D/bin/perl" -e "$script" >$tmp/pl.ref
$LD $PRE "$D/bin/perl" -e "$script" >$tmp/pl.out 2>$tmp/pl.err
rc=$?
[ $rc = 0 ] && cmp -s $tmp/pl.ref $tmp/pl.out && [ ! -s $tmp/pl.err ]
ok $? "perl hash of arrays, preloaded: exit $rc, output as without the drop-in"
sql="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT count(*), sum(length(printf('%.*c', x % 50, 'y'))), max(x) FROM c; CREATE TABLE t(a, b); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000) INSERT INTO t SELECT x % 977, printf('%08d', x) FROM c; CREATE INDEX ta ON t(a); SELECT a, count(*), min(b) FROM t GROUP BY a ORDER BY a LIMIT 5;"
echo "$sql" | $LD "$D/bin/sqlite3" :memory: >$tmp/sq.ref 2>&1
echo "$sql" | $LD $PRE "$D/bin/sqlite3" :memory: >$tmp/sq.out 2>$tmp/sq.err
rc=$?
[ $rc = 0 ] && cmp -s $tmp/sq.ref $tmp/sq.out && [ ! -s $tmp/sq.err ]
ok $? "sqlite3 script, preloaded: exit $rc, output as without the drop-in"

# heapstat sees a preloaded process, its heap and the MALLOC mark.
$LD $PRE "$D/bin/perl" -e 'my @a = map { "x" x 200 } 1 .. 20000; sleep 30' &
pid=$!
sleep 2
if [ -x /opt/heapdev/heapstat ]; then
	/opt/heapdev/heapstat -p $pid >$tmp/hs 2>&1
	cat $tmp/hs
	line=$(grep "^ *$pid " $tmp/hs)
	set -- $line
	# PID COMMAND HEAPS COMMITTED RESIDENT RESERVED MAPS MALLOC
	[ "$#" = 8 ] && [ "$3" -ge 1 ] && [ "$8" = yes ]
	ok $? "heapstat: the preloaded perl (pid $pid) with its heap, MALLOC yes"
	/opt/heapdev/heapstat --json -p $pid | grep -q "\"pid\":$pid,.*\"malloc\":true"
	ok $? "heapstat --json: \"malloc\":true"
	$LD "$D/bin/sort" $tmp/in >/dev/null &
	spid=$!
	/opt/heapdev/heapstat -p $pid,$spid >/dev/null 2>&1
	ok $? "heapstat runs with a process that is not on heapdev around"
	wait $spid
else
	echo "# heapstat missing: skipped"
fi
kill $pid 2>/dev/null
wait $pid 2>/dev/null
echo "$((n - bad + sub_pass)) passed, $((bad + sub_fail)) failed"
[ $((bad + sub_fail)) = 0 ]
