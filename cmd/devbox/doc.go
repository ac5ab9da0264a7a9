// Command devbox turns a devbox.toml (or a devcontainer.json, or a
// Dockerfile) into a running, SSH-reachable development environment.
//
// This package only parses flags and calls the packages that do the work:
// devenv (environments: build, up, down, rm, exec, run, push, kube,
// doctor), rootfs (images and layers), runtime (containers) and sshd (the
// server an environment's init runs). Each invocation is one command and
// ends with it: there is no daemon; a container started by up outlives it
// as its own init.
package main
