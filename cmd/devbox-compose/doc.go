// Command devbox-compose reads compose files as Docker Compose does, with
// compose-spec/compose-go (interpolation, .env, env_file, profiles,
// extends, several files and their merge rules), and prints the project
// as `docker compose config --format json` would: devbox runs it for a
// devcontainer.json's dockerComposeFile and reads the JSON.
//
// It is a binary of its own, installed beside devbox, because the loader's
// packages cost every process that links them 8 ms of start-up (its JSON
// schema compiles at init), and devbox's binary is also every container's
// init: `devbox run` would pay it on each start.
package main
