// Package dockerfile reads a Dockerfile into what devbox builds of it: the
// stages the target needs, in file order, each starting from an image or
// an earlier stage, and, once the config it starts from is known, the
// steps that change files (RUN, COPY, ADD, WORKDIR) with every variable
// expanded and the state each runs in (environment, build args, workdir,
// user, shell), and the config the stage ends with.
//
// Parsing is moby/buildkit's (its parser and instructions packages); this
// package evaluates ARG and ENV as BuildKit does and refuses, with the
// Dockerfile's line, what devbox does not build: RUN --security=insecure
// and --device, RUN --mount from= an image (a stage is mounted), ADD from
// git (and URL schemes other than http and https), COPY --from=$VAR (as
// BuildKit), FROM --platform for another platform than the host's.
// COPY --exclude, --parents and --link, ADD --exclude, --link and
// --unpack, and ADD of an http(s) URL with or without --checksum, are
// built (copyflags.go checks them as BuildKit's dispatchCopy does;
// BuildKit's ADD has no --parents). RUN --mount (bind, cache, tmpfs,
// secret, ssh) and --network come out as the step's Mounts and Network,
// with BuildKit's defaults; the builder refuses --network=host unless the
// spec's network is the host's. HEALTHCHECK, STOPSIGNAL, VOLUME, SHELL,
// ONBUILD and MAINTAINER set the config (config.go).
//
// Lifecycle. Parse reads the file once, with the build args and target;
// the builder resolves each stage's base, then calls Evaluate with the
// base's config to get the stage's steps and final config.
package dockerfile
