# syntax=docker/dockerfile:1
# edgesync: one image for the CSS and the ESS (README "Docker").
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t edgesync .
# better-sqlite3 is a native addon: the build stage compiles it for the platform being built
# (no prebuilt binary is assumed for arm/v7), so the build stage carries python3, make and g++,
# and the runtime stage only the compiled result.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# `prepare` runs the build, which needs the sources: install first without scripts, then
# compile the native addons alone, then build once the sources are in.
RUN npm ci --ignore-scripts \
 && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY cmd ./cmd
COPY lib ./lib
COPY sdk ./sdk
COPY scripts ./scripts
# scripts/bench (built with the rest) borrows two of the tests' helpers.
COPY test/helpers ./test/helpers
COPY swagger ./swagger
RUN npm run build \
 && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PERSISTENCE_ROOT_PATH=/data \
    LISTENING_ADDRESS=0.0.0.0 \
    MALLOC_MMAP_THRESHOLD_=131072
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Read at start (lib/node/node.ts: the OpenAPI document /swagger.json serves).
COPY --from=build /app/swagger ./swagger
# The web dashboard's static files (lib/api/app.ts serves them at /dashboard/; no build step).
COPY dashboard ./dashboard
COPY deploy/css/init-users.sh ./deploy/css/init-users.sh
# The image's `node` user (uid 1000) owns the data volume; nothing runs as root. sync/keys is
# there too, so that a named volume mounted on it (shared by scaled-out CSS processes, see
# docker-compose.yml) starts with that ownership.
RUN mkdir -p /data/sync/keys && chown -R node:node /data
USER node
VOLUME ["/data"]
# 8080: CSS HTTP (/api/v1, /spi/v1). 8443: HTTPS (the ESS's default). 1883: the CSS's embedded MQTT broker.
EXPOSE 8080 8443 1883
# /swagger.json needs no credentials, so the image holds no secret for its health check; it
# says the node serves HTTP, not that its CSS link or database is well (GET /api/v1/health does).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "dist/scripts/docker/healthcheck.js"]
# The start command of the tests (`node dist/cmd/edgesync.js css|ess`), with the runtime
# settings of ADR 11 given here: MALLOC_MMAP_THRESHOLD_ above and the two heap flags below.
# With both in effect the bin serves in this very process (no launcher): under `docker run` the
# node is PID 1 and receives the container's SIGTERM itself (graceful stop, SHUTDOWN_QUIESCE_TIME);
# compose's `init: true` puts tini in front, which passes it on.
ENTRYPOINT ["node", "--initial-old-space-size=64", "--max-semi-space-size=4", "dist/cmd/edgesync.js"]
CMD ["css"]
