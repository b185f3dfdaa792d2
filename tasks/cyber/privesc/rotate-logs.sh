#!/bin/sh
# rotate the app's logs (run by cron as root)
# TODO(ops): chmod 755 once the deploy user no longer needs to edit this
for f in /var/log/app/*.log; do
    [ -s "$f" ] || continue
    mv "$f" "$f.$(date +%s)"
    : > "$f"
done
find /var/log/app -name '*.log.*' -mmin +1440 -delete 2>/dev/null
exit 0
