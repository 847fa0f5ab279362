#!/usr/bin/env bash
# fuzz.sh FUZZTIME: runs every Fuzz target of every package for FUZZTIME.
set -euo pipefail
t=${1:-30s}
go test -list '^Fuzz' ./... | awk '/^Fuzz/{names[n++]=$1} /^ok/{for(i=0;i<n;i++) print $2 " " names[i]; n=0}' |
while read -r pkg fn; do
	echo "fuzz $pkg $fn ($t)"
	go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" -fuzzminimizetime 2s "$pkg"
done
