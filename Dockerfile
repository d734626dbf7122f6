# Builds the batch server and the batchctl CLI.
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p batch-server && cargo build --release -p batch-client --features cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/batch-server /src/target/release/batchctl /usr/local/bin/
ENV BATCH_BIND=0.0.0.0:8080
EXPOSE 8080
CMD ["batch-server"]
