# evalgate: the GitHub App and its command line, in a small image that runs as a non-root user.
# Build: docker build -t evalgate .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p evalgate \
 && strip target/release/evalgate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/evalgate --create-home evalgate
COPY --from=build /src/target/release/evalgate /usr/local/bin/evalgate
USER 10001
WORKDIR /var/lib/evalgate
ENV EVALGATE_BIND=0.0.0.0:3000 \
    EVALGATE_DATABASE_URL=sqlite:///var/lib/evalgate/evalgate.db \
    EVALGATE_LOG_FORMAT=json
EXPOSE 3000
ENTRYPOINT ["evalgate"]
CMD ["serve"]
