#!/bin/sh
# One line per boot: after a down/up with the volume kept there are two.
mkdir -p /data
echo "boot $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> /data/boots.txt
exec httpd -f -p 7000 -h /data
