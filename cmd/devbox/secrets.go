package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devbox/devbox/devenv/builder"
)

// withSecrets gives a command that builds the --secret and --ssh flags,
// docker buildx's, for a Dockerfile's RUN --mount=type=secret and ssh.
func (a *app) withSecrets(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().StringArrayVar(&a.secretFlags, "secret", nil, "id=ID,src=FILE (or env=VAR) for the Dockerfile's RUN --mount=type=secret,id=ID; never in a layer")
	cmd.Flags().StringArrayVar(&a.sshFlags, "ssh", nil, "ID=SOCKET (or default, $SSH_AUTH_SOCK) for the Dockerfile's RUN --mount=type=ssh")
	return cmd
}

// parseSecrets reads --secret and --ssh into a.secrets and a.ssh.
func (a *app) parseSecrets() error {
	a.secrets, a.ssh = map[string]builder.Secret{}, map[string]string{}
	for _, f := range a.secretFlags {
		id, sec, err := parseSecret(f)
		if err != nil {
			return usageError{fmt.Errorf("--secret %q: %w", f, err)}
		}
		a.secrets[id] = sec
	}
	for _, f := range a.sshFlags {
		id, sock, _ := strings.Cut(f, "=")
		if id == "" || strings.Contains(sock, ",") {
			return usageError{fmt.Errorf("--ssh %q: want ID or ID=SOCKET", f)}
		}
		if sock == "" {
			// As docker buildx: ID alone is the agent of $SSH_AUTH_SOCK.
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
		if sock != "" {
			abs, err := filepath.Abs(sock)
			if err != nil {
				return usageError{fmt.Errorf("--ssh %q: %w", f, err)}
			}
			a.ssh[id] = abs
		}
	}
	return nil
}

// parseSecret is one --secret: id=ID with src= (or source=) a file, or
// env= a variable; with neither, the variable named ID if set, else the
// file ID, as docker buildx has it; type=file|env says which.
func parseSecret(f string) (string, builder.Secret, error) {
	var id, typ string
	var sec builder.Secret
	for _, field := range strings.Split(f, ",") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return "", sec, fmt.Errorf("%q: want KEY=VALUE", field)
		}
		switch strings.ToLower(k) {
		case "id":
			id = v
		case "src", "source":
			sec.Src = v
		case "env":
			sec.Env = v
		case "type":
			typ = v
		default:
			return "", sec, fmt.Errorf("unknown key %q (id, src, env, type)", k)
		}
	}
	if id == "" {
		return "", sec, fmt.Errorf("id= is required")
	}
	switch {
	case sec.Src != "" && sec.Env != "":
		return "", sec, fmt.Errorf("src= and env= both given")
	case typ == "env" && sec.Env == "":
		sec.Env, sec.Src = cmp.Or(sec.Src, id), ""
	case typ != "" && typ != "file" && typ != "env":
		return "", sec, fmt.Errorf("type=%s: want file or env", typ)
	case sec.Src == "" && sec.Env == "":
		sec.Src = id
	}
	if sec.Src != "" {
		abs, err := filepath.Abs(sec.Src)
		if err != nil {
			return "", sec, err
		}
		sec.Src = abs
	}
	return id, sec, nil
}
