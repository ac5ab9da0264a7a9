// Package lock holds devbox.lock, the record beside a spec of what its
// build resolved to: the base image's digest, the exact Node.js and npm
// with their tarballs' digests, the packages the manager installed with
// their versions, and each build step's cache key and layer diffID. It is
// meant for git, like go.sum: TOML in a stable order, so that a change
// reads as a small diff.
//
// Lifecycle: build and up write it after a build whose result differs
// from it; a build with a lock present installs what it names (the pins);
// `--locked` fails, with Diff's lines, when the build would change it; and
// `devbox lock --update` resolves afresh and rewrites it.
package lock
