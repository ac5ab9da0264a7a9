// Package dockerfilecases holds the Dockerfiles that devbox builds as
// BuildKit does: the differential suite (e2e TestDockerfileOracle) builds
// each with Docker and with devbox and compares the images, and the
// Dockerfile planner's fuzzer starts from them. Plain data, read only.
package dockerfilecases
