#!/usr/bin/env python3
"""appctl: the (fictional) admin CLI of the example app.

`appctl login --password P` checks P against the admin password's hash and, when it
matches, opens an admin session by writing /tmp/appctl/session.
"""

import argparse
import hashlib
import os
import sys

ADMIN_SHA256 = "{{password:admin|sha256}}"
SESSION = "/tmp/appctl/session"


def main() -> int:
    parser = argparse.ArgumentParser(prog="appctl", description="admin CLI of the app")
    sub = parser.add_subparsers(dest="cmd", required=True)
    login = sub.add_parser("login", help="open an admin session")
    login.add_argument("--password", required=True)
    sub.add_parser("status", help="show the session")
    args = parser.parse_args()
    if args.cmd == "status":
        print("admin session open" if os.path.exists(SESSION) else "no session")
        return 0
    if hashlib.sha256(args.password.encode()).hexdigest() != ADMIN_SHA256:
        print("login failed: wrong password", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(SESSION), exist_ok=True)
    proof = hashlib.sha256(("session:" + args.password).encode()).hexdigest()
    with open(SESSION, "w") as fh:
        fh.write(f"role=admin proof={proof}\n")
    print("login ok: admin session open")
    return 0


if __name__ == "__main__":
    sys.exit(main())
