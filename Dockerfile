# wsgate container image: a static binary on distroless, running as non-root.
#
#   docker build -t wsgate --build-arg VERSION=$(git describe --always) --build-arg COMMIT=$(git rev-parse HEAD) .
#   docker run -p 8080:8080 -e WSGATE_JWT_SECRET=... -e WSGATE_API_KEY=... wsgate
#
# Settings come from WSGATE_* variables or a TOML file (WSGATE_CONFIG=/etc/wsgate/wsgate.toml,
# see deploy/wsgate.toml). deploy/compose/compose.yaml runs two nodes, Redis and nginx.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
ARG COMMIT=""
# The same script and flags as deploy/packaging_test.go checks: CGO_ENABLED=0, -trimpath.
RUN scripts/build-static.sh /out/wsgate "$VERSION" "$COMMIT"

# distroless/static: CA certificates, /etc/passwd with "nonroot" (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wsgate /usr/local/bin/wsgate
USER nonroot:nonroot
# Listen on every interface inside the container (the default is loopback only).
ENV WSGATE_ADDR=:8080
EXPOSE 8080
# No shell or curl in the image: the binary checks itself (GET /healthz on WSGATE_ADDR).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/wsgate", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wsgate"]
CMD ["serve"]
