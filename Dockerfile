# syntax=docker/dockerfile:1
# The controller image: `tenantctl controller` on Node 22, production
# dependencies only, as the unprivileged `node` user.
# scripts/build-image-tree.sh runs these same steps without Docker (CI has no
# Docker engine) and fails on an instruction it does not understand, so keep
# to FROM, WORKDIR, COPY, RUN, ENV, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD.

# 1. Build: every dependency, compile src/ to dist/.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Prune: drop the dev dependencies (TypeScript, vitest, tsx...) from node_modules.
FROM build AS prune
RUN npm prune --omit=dev --no-audit --no-fund

# 3. Runtime: only what `node bin/tenantctl.js` loads. Files stay owned by
# root, so the node user can read but not change its own code.
FROM node:22-slim AS runtime
ENV NODE_ENV=production HTTP_PORT=8080
WORKDIR /app
COPY package.json ./
COPY bin ./bin
COPY --from=prune /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080
# node:22-slim has no curl; Node's own fetch checks /healthz on HTTP_PORT.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HTTP_PORT || '8080') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/tenantctl.js"]
CMD ["controller"]
