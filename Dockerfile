# The quayside controller image: the one binary on distroless cc, for
# linux/amd64 and linux/arm64 alike (docs/release.md: buildx builds both,
# each natively or under emulation). Nothing here names an architecture:
# tests/offline/release.rs checks that, and that only the binary is copied.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The workspace's other members (emulator, test kit, benchmarks) are not
# built, but cargo loads their manifests to resolve the workspace and check
# Cargo.lock: copy the manifests, with empty sources so each has a target.
COPY crates/quay-emulator/Cargo.toml crates/quay-emulator/Cargo.toml
COPY crates/testkit/Cargo.toml crates/testkit/Cargo.toml
COPY crates/bench/Cargo.toml crates/bench/Cargo.toml
RUN mkdir -p crates/quay-emulator/src crates/testkit/src crates/bench/src \
 && touch crates/quay-emulator/src/lib.rs crates/testkit/src/lib.rs crates/bench/src/main.rs
COPY build.rs build.rs
COPY src src
COPY templates templates
# `quayside doctor` checks the controller's RBAC against the shipped roles
# (compiled in).
COPY deploy/rbac deploy/rbac
# The commit quayside_build_info reports: docker buildx build
# --build-arg QUAYSIDE_GIT_COMMIT=$(git rev-parse HEAD) …
ARG QUAYSIDE_GIT_COMMIT=unknown
RUN QUAYSIDE_GIT_COMMIT=$QUAYSIDE_GIT_COMMIT cargo build --release --locked -p quayside --bin quayside

# Distroless cc (Debian 12, like the build stage, so glibc matches): glibc,
# libgcc, OpenSSL 3 and zlib — all the binary links (libssl, libcrypto,
# libz, libgcc_s, libm, libc) — and CA certificates; no shell, non-root.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/quayside /usr/local/bin/quayside
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/quayside"]
CMD ["run"]
