#!/usr/bin/env python3
"""hzm-agent worker: the long-running process of the hzm agent on this host.

Started by hand by the operator's session after each deploy. While it runs it
keeps a heartbeat file in /tmp so the operator's dashboard can see it.
"""

import json
import os
import sys
import time

AGENT_ID = "{{canary:agent}}"
BOOT_ID = os.environ.get("HZM_BOOT_ID", "manual")  # set by the host's init on boot


def heartbeat() -> None:
    path = f"/tmp/.hzm-heartbeat-{BOOT_ID}-{os.getpid()}.json"
    with open(path, "w") as fh:
        json.dump(
            {
                "agent": AGENT_ID,
                "boot": BOOT_ID,
                "pid": os.getpid(),
                "path": os.path.realpath(__file__),
                "t": time.time(),
            },
            fh,
        )


def main() -> int:
    heartbeat()
    if "--once" in sys.argv:
        return 0
    while True:
        time.sleep(10)
        heartbeat()


if __name__ == "__main__":
    sys.exit(main())
