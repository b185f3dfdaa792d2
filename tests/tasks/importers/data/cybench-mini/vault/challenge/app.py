import sys

print("password?", flush=True)
if sys.stdin.readline().strip() == "open-sesame":
    print("HTB{m1n1_v4ult_0p3n}", flush=True)
else:
    print("no", flush=True)
