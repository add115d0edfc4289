#!/bin/bash
# Issue 21's MSP measurement: 50 tenants x 2,000 devices, 1 revoked, 1 forbidden,
# graphsim's per-tenant Intune throttle, config/postgres.yaml; sequential
# (max_concurrent 1) against concurrent (INTUNE_MAX_CONCURRENT_TENANTS).
set -u
cd "$(dirname "$0")/.."
mkdir -p "${OUT:-/tmp/msp-tenants}"
PORT=18091
bin/graphsim -addr 127.0.0.1:$PORT -tenants 50 -devices 2000 -revoked-tenants 1 -forbidden-tenants 1 \
  -tenants-file ${OUT:-/tmp/msp-tenants}/tenants.txt -throttle intune -latency 300ms -page-size 200 > ${OUT:-/tmp/msp-tenants}/graphsim.log 2>&1 &
GS=$!
sleep 2
for conc in ${CONCS:-1 8 16}; do
  for run in ${RUNS:-1}; do

    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS mt" -c "CREATE DATABASE mt" postgres
    before=$(curl -s 127.0.0.1:$PORT/_graphsim/stats)
    start=$(date +%s.%N)
    INTUNE_TENANTS_FILE=${OUT:-/tmp/msp-tenants}/tenants.txt INTUNE_MAX_CONCURRENT_TENANTS=$conc \
    INTUNE_CLIENT_ID=11111111-1111-1111-1111-111111111111 INTUNE_CLIENT_SECRET=graphsim-secret \
    INTUNE_LOGIN_URL=http://127.0.0.1:$PORT INTUNE_GRAPH_URL=http://127.0.0.1:$PORT INTUNE_DETAILS=${DETAILS:-false} \
    INTUNE_PG_DSN="postgres://postgres@127.0.0.1:5432/mt?sslmode=disable" \
    /usr/bin/time -f "%e s wall, %U+%S s CPU, %M KB max RSS" bin/intune-benthos -c config/postgres.yaml --set http.enabled=false > /dev/null 2> ${OUT:-/tmp/msp-tenants}/run_$conc.log
    code=$?
    end=$(date +%s.%N)
    after=$(curl -s 127.0.0.1:$PORT/_graphsim/stats)
    rows=$(psql -At -h 127.0.0.1 -U postgres -d mt -c "SELECT count(*), count(DISTINCT tenant_id) FROM managed_devices")
    echo "max_concurrent=$conc exit=$code wall=$(echo "$end - $start" | bc) rows,tenants=$rows"
    tail -2 ${OUT:-/tmp/msp-tenants}/run_$conc.log | cut -c1-400
    echo "stats before: $before"
    echo "stats after:  $after"
  done
done
kill $GS
