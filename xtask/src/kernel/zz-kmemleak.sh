#!/bin/sh
# The debug kernel's last test: an object is reported once it looks
# unreferenced on two scans; any report fails the run, printed first.
k=/sys/kernel/debug/kmemleak
[ -w $k ] || { echo "kmemleak: $k missing"; exit 1; }
echo scan > $k; sleep 1; echo scan > $k
n=$(grep -c '^unreferenced object' $k)
cat $k
echo "kmemleak: $n leak(s) reported after the tests"
[ "$n" = 0 ]
