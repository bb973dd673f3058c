#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "${GREETING:-hello}"
echo "store says: $(nc store 5432 </dev/null 2>/dev/null || echo unreachable)"
