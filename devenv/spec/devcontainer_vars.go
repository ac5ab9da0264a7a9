package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// The variables of devcontainer.json, as the Dev Container CLI substitutes
// them, and the workspace folders they name.

// WorkspaceOf is the folder a devcontainer.json is for: the one holding
// .devcontainer/ or .devcontainer.json. A config in a subfolder of
// .devcontainer (.devcontainer/python/devcontainer.json, one of several
// the editor offers) is the project's too: the CLI and the editor take
// the project root as its workspace folder, not the subfolder.
func WorkspaceOf(file string) string {
	dir := filepath.Dir(file)
	if filepath.Base(dir) == ".devcontainer" {
		return filepath.Dir(dir)
	}
	if up := filepath.Dir(dir); filepath.Base(up) == ".devcontainer" {
		return filepath.Dir(up)
	}
	return dir
}

// workspaceFolder is where the workspace is in the container: the
// workspaceFolder key, its variables expanded, or /workspaces/NAME.
func (d *dcReader) workspaceFolder(raw map[string]any) string {
	if f, ok := raw["workspaceFolder"].(string); ok && f != "" {
		return d.expand(f, "")
	}
	return "/workspaces/" + filepath.Base(d.workspace)
}

// substitute replaces the variables the spec defines in every string,
// except in other tools' customizations, whose variables are theirs.
func (d *dcReader) substitute(raw any) (any, error) {
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, d.errorf("", "not a JSON object")
	}
	folder := d.workspaceFolder(top)
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch v := v.(type) {
		case string:
			return d.expand(v, folder)
		case []any:
			for i := range v {
				v[i] = walk(key+"."+strconv.Itoa(i), v[i])
			}
		case map[string]any:
			for k := range v {
				sub := strings.TrimPrefix(key+"."+k, ".")
				if key == "customizations" && k != "devbox" {
					continue
				}
				v[k] = walk(sub, v[k])
			}
		}
		return v
	}
	return walk("", top), nil
}

// expand replaces ${localEnv:X[:default]}, ${localWorkspaceFolder},
// ${containerWorkspaceFolder}, their Basename forms and ${devcontainerId}
// in s. Others are left as they are, as the Dev Container CLI leaves
// them; ${containerEnv:X} is resolved with the image's environment.
func (d *dcReader) expand(s, folder string) string {
	return dcVarRE().ReplaceAllStringFunc(s, func(m string) string {
		g := dcVarRE().FindStringSubmatch(m)
		switch g[1] {
		case "localEnv", "env":
			if v, ok := os.LookupEnv(g[2]); ok {
				return v
			}
			return g[3]
		case "localWorkspaceFolder":
			return d.workspace
		case "localWorkspaceFolderBasename":
			return filepath.Base(d.workspace)
		case "containerWorkspaceFolder":
			if folder != "" {
				return folder
			}
		case "containerWorkspaceFolderBasename":
			if folder != "" {
				return path.Base(folder)
			}
		case "devcontainerId":
			return devcontainerID(d.file)
		}
		return m
	})
}

// devcontainerID is ${devcontainerId} of the devcontainer.json at file:
// the same for every build of one workspace's config, another for each.
func devcontainerID(file string) string {
	sum := sha256.Sum256([]byte(file))
	return hex.EncodeToString(sum[:16])
}
