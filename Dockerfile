# s3ftpd in a container. Build: docker build -t s3ftpd .
# Run:  docker run -p 21:2121 -p 10100-10199:10100-10199 s3ftpd \
#         --listen 0.0.0.0:2121 --pasv-ports 10100-10199 --pasv-address <public IP> --s3-endpoint https://s3.example.net
FROM node:24-bookworm-slim AS build
WORKDIR /app
# g++, make and python3 build the TLS engine in native/ (without them the gateway uses Node's TLS).
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY native ./native
COPY scripts/build-native.sh ./scripts/
RUN bash scripts/build-native.sh && mkdir -p native/build/Release && npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/build/Release ./native/build/Release
COPY package.json ./
USER node
EXPOSE 2121 10100-10199
ENTRYPOINT ["node", "--max-semi-space-size=16", "dist/cli.js"]
CMD ["--listen", "0.0.0.0:2121", "--pasv-ports", "10100-10199", "--data-dir", "/home/node/data"]
