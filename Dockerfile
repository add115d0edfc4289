# Multi-stage build of the intune-benthos distribution: a static binary on a
# minimal base, running as a non-root user, with the ready configs in /config.
#
#   docker build -t intune-benthos .
#   docker run --rm -v intune-data:/data \
#     -e INTUNE_TENANT_ID -e INTUNE_CLIENT_ID -e INTUNE_CLIENT_SECRET intune-benthos

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same recipe CI and `make demo` use.
RUN make build && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/intune-benthos /intune-benthos
COPY --from=build /src/config /config
COPY --from=build --chown=65532:65532 /out/data /data
# The SQLite file (and the Kafka config's state) lands in the working
# directory, the volume.
USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 4195
ENTRYPOINT ["/intune-benthos"]
CMD ["-c", "/config/sqlite.yaml"]
