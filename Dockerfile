# syntax=docker/dockerfile:1
# ses-lifecycle worker / webhook image (docker-compose.yml builds it as ses-lifecycle:local).
#
#   docker build -t ses-lifecycle .
#   docker run --env-file .env ses-lifecycle worker
#   docker run --env-file .env -p 3000:3000 ses-lifecycle webhook
#
# Configuration is the environment only (src/config.ts); see the README's configuration table.
ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript (typescript is a devDependency) -------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the package's `prepare` (the build) runs below, once the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY scripts ./scripts
RUN npm run build

# --- runtime: production dependencies + compiled JS, non-root ----------------------------------
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
# Production dependencies only: the compiled CLI needs no TypeScript tooling (--ignore-scripts:
# the package's `prepare` build needs the devDependencies; dist/ comes from the build stage).
# The Temporal worker's native core bridge ships prebuilt for linux-x64/arm64 glibc, which
# bookworm provides.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
# No src/ here, so bin/ses-lifecycle.js runs dist/src/cli.js; the worker bundles dist/workflows.
COPY --from=build /app/dist ./dist
ENV WEBHOOK_HOST=0.0.0.0 \
    WEBHOOK_PORT=3000 \
    WORKER_METRICS_HOST=0.0.0.0 \
    DATA_DIR=/tmp/ses-lifecycle
USER node
EXPOSE 3000
# The webhook's liveness endpoint. The worker has no HTTP port: docker-compose.yml gives the
# worker service its own check (is this container polling its task queue?).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WEBHOOK_PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/ses-lifecycle.js"]
CMD ["webhook"]
