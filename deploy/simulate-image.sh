#!/bin/sh
# Runs the Dockerfile's two stages without Docker, where no engine is available: the build
# stage's commands in a directory holding only what the Dockerfile copies into it, then a CSS
# started from a directory holding only what the runtime stage copies (as the ENTRYPOINT
# starts it), its health check, and `users add` through deploy/css/init-users.sh.
# Keep the file lists in step with the Dockerfile. Needs the npm registry (npm ci).
#   sh deploy/simulate-image.sh            (from the repository root; leaves its directories in /tmp)
set -eu
src=$(pwd)
build=$(mktemp -d /tmp/edgesync-image-build.XXXXXX)
run=$(mktemp -d /tmp/edgesync-image-run.XXXXXX)
data=$(mktemp -d /tmp/edgesync-image-data.XXXXXX)

echo "== build stage in $build"
cd "$build"
cp "$src/package.json" "$src/package-lock.json" .
npm ci --ignore-scripts
npm rebuild better-sqlite3
cp "$src/tsconfig.json" "$src/tsconfig.build.json" .
cp -r "$src/cmd" "$src/lib" "$src/sdk" "$src/scripts" "$src/swagger" .
mkdir -p test && cp -r "$src/test/helpers" test/
npm run build
npm prune --omit=dev

echo "== runtime stage in $run"
cp -r package.json node_modules dist swagger "$run/"
mkdir -p "$run/deploy/css" && cp "$src/deploy/css/init-users.sh" "$run/deploy/css/"
cd "$run"
du -sh node_modules dist

export PERSISTENCE_ROOT_PATH="$data" LISTENING_ADDRESS=127.0.0.1 MALLOC_MMAP_THRESHOLD_=131072 NODE_ENV=production
export UNSECURE_LISTENING_PORT="${PORT:-18080}" SECURE_LISTENING_PORT=0 EMBEDDED_BROKER_PORT=0
CSS_ADMIN_PASSWORD=admin-pw EDGE_ORG=myorg ESS_HTTP_TYPE=camera ESS_HTTP_ID=cam1 ESS_HTTP_PASSWORD=p1 \
  ESS_MQTT_TYPE=camera ESS_MQTT_ID=cam2 ESS_MQTT_PASSWORD=p2 EDGESYNC="node dist/cmd/edgesync.js" \
  sh deploy/css/init-users.sh
node --initial-old-space-size=64 --max-semi-space-size=4 dist/cmd/edgesync.js css &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
ok=1
for _ in 1 2 3 4 5 6 7 8 9 10; do
  sleep 1
  if UNSECURE_LISTENING_PORT="$UNSECURE_LISTENING_PORT" node dist/scripts/docker/healthcheck.js; then ok=0; break; fi
done
[ "$ok" = 0 ] || { echo "== health check failed" >&2; exit 1; }
curl -sf -u admin:admin-pw "http://127.0.0.1:$UNSECURE_LISTENING_PORT/api/v1/health" >/dev/null
echo "== the runtime stage's files serve a CSS; health check and /api/v1/health pass"
