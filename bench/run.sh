#!/usr/bin/env bash
# Benchmarks: devbox side by side with the tool a user would otherwise use,
# in the same run, reported as ratios. Run as root (make bench).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
CRANE_VERSION=v0.22.1
command -v crane >/dev/null || go install github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION
[ -x bin/devbox ] || make build

echo "== pull + unpack of a debootstrapped Debian bookworm from a loopback registry (devbox vs crane export | tar -x)"
go run ./bench/pullbench -devbox bin/devbox -crane "$(command -v crane)" -runs 7

echo "== start a container and run /bin/true on a cached environment (devbox run vs runc run vs bwrap --unshare-all)"
go run ./bench/runbench -devbox "$PWD/bin/devbox" -runs 50

echo "== SSH: key login, up until ssh works, SFTP download, idle memory (devbox vs OpenSSH sshd)"
go run ./bench/sshbench -devbox "$PWD/bin/devbox" -runs 20 -sftp-mb 1024

echo "== provisioning: cold and warm build, rebuild after a Node change, disk of a second environment"
go run ./bench/buildbench -devbox "$PWD/bin/devbox"

echo "== the classic Dockerfile as a devbox base vs the devbox.toml that says the same: cold, and after editing one line"
go run ./bench/dockerfilebench -devbox "$PWD/bin/devbox"

echo "== a devcontainer.json with a local feature: cold up (nothing cached) and warm up (after a stop) (devbox vs the Dev Container CLI with Docker 20.10)"
go run ./bench/devcontainerbench -devbox "$PWD/bin/devbox"

echo "== rootless (an ordinary user: its own user namespace, pasta) vs root (bridge): run /bin/true, up until ssh answers, 1 GB through the network"
go run ./bench/rootlessbench -devbox "$PWD/bin/devbox" -runs 20

echo "== services: a devcontainer.json's compose file (app + PostgreSQL + Redis, healthchecks, named volumes), warm up until healthy, and the supervisors' idle memory (devbox vs docker-compose with Docker 20.10)"
go run ./bench/composebench -devbox "$PWD/bin/devbox" -rounds 5
