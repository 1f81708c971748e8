# Multi-stage build of the quayside controller. (Not built in this project's
# CI: the build machines have no container engine.)
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
# `quayside doctor` checks the controller's RBAC against the shipped roles.
COPY deploy/rbac deploy/rbac
# `quayside version` names the commit; there is no .git in the context.
ARG QUAYSIDE_GIT_COMMIT=unknown
RUN cargo build --release --locked -p quayside --bin quayside \
 && mkdir -p /out/lib \
 && cp target/release/quayside /out/ \
 && cp /usr/lib/x86_64-linux-gnu/libssl.so.3 /usr/lib/x86_64-linux-gnu/libcrypto.so.3 /out/lib/

# Distroless runtime: glibc and CA certificates, no shell, non-root.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/lib/ /usr/lib/x86_64-linux-gnu/
COPY --from=build /out/quayside /usr/local/bin/quayside
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/quayside"]
CMD ["run"]
