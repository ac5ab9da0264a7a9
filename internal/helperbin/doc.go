// Package helperbin runs devbox's helper binaries: devbox-compose and
// devbox-kube, installed beside devbox (make build makes all three). They
// are binaries of their own because the libraries they link (compose-go,
// the Kubernetes API types) cost every process that links them start-up
// time and memory at init, and devbox's binary is also every container's
// init. Each run is one process: arguments and standard input in, its
// standard output and error back.
package helperbin
