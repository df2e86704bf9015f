#!/bin/sh
k=/sys/kernel/debug/kmemleak
[ -w $k ] || { echo "kmemleak: $k missing"; exit 1; }
echo scan > $k; sleep 1; echo scan > $k
n=$(grep -c '^unreferenced object' $k)
cat $k
echo "kmemleak: $n leak(s) reported after the tests"
[ "$n" = 0 ]
