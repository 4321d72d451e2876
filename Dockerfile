# The tessera CLI and its plugins in a slim image.
#
#   docker build -t tessera:0.4.0 .
#   docker run --rm -p 8000:8000 -v "$PWD/deploy:/etc/tessera:ro" tessera:0.4.0
#
# The default command serves /etc/tessera/deploy.toml; model paths in it
# are relative to that folder (or see `tessera deploy k8s`).

# Build stage: the workspace's rust-version (Cargo.toml) is 1.88, edition 2024.
FROM rust:1.88-bookworm AS build
WORKDIR /src
# The whole workspace: cargo needs every member's manifest, and the
# binary and the plugins must be built together against one tessera-core.
COPY . .
# The default members: the CLI and the shipped plugins (not the test
# plugins); --locked builds exactly the versions in Cargo.lock.
RUN cargo build --release --locked \
    && mkdir /out \
    && cp target/release/tessera target/release/*.so /out/

# Runtime stage: the same Debian release as the build stage, so the
# binary and the plugins find the glibc they were linked against.
FROM debian:bookworm-slim
# The binary loads the plugins from its own folder.
COPY --from=build /out/ /opt/tessera/
# An unprivileged user; numeric, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 tessera \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --shell /usr/sbin/nologin tessera
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/opt/tessera/tessera"]
# 0.0.0.0: the default listen address, 127.0.0.1, is unreachable from
# outside the container.
CMD ["serve", "/etc/tessera/deploy.toml", "--listen", "0.0.0.0:8000"]
