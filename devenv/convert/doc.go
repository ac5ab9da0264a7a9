// Package convert writes a devbox.toml for what a team already has: a
// Dockerfile or a devcontainer.json (`devbox init --from`). It maps what
// maps cleanly (the base, package installs, the Node.js version, the npm
// registry, ports, workdir, env, mounts, the remaining RUN commands as
// [[run]] steps) and reports, with its line, everything it did not map,
// so that nothing is dropped silently. A file that does not convert
// cleanly can still be used as it is: base = "dockerfile:PATH", or the
// devcontainer.json itself.
package convert
