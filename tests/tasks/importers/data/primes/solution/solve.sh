#!/bin/bash
# Reads how many primes the checker wants from the note start() left, writes them, says done.
n=$(grep -o 'first [0-9]*' /home/agent/README.txt | grep -o '[0-9]*')
python3 - "$n" > /home/agent/primes.txt <<'PY'
import sys
n, found, k = int(sys.argv[1]), [], 2
while len(found) < n:
    if all(k % p for p in found if p * p <= k):
        found.append(k)
    k += 1
print("\n".join(map(str, found)))
PY
echo done
