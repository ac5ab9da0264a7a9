package spec

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/devbox/devbox/devenv/compose"
)

// A devcontainer.json with dockerComposeFile: its service is the
// environment (its image or build, environment, volumes, ports, user and
// network_mode, with the devcontainer.json's own keys over them, as the
// Dev Container CLI's override file puts them), and the other services
// it runs (runServices, default all, with what they depend on) become
// [services.NAME] tables. The compose files are read by devbox-compose,
// as Docker Compose reads them; what devbox cannot honour is an error
// naming the file, the service and the key.

// compose fills m from dc's compose files.
func (d *dcReader) compose(dc *devcontainer, raw map[string]any, m map[string]any) error {
	files, err := d.composeFiles(dc)
	if err != nil {
		return err
	}
	var service string
	if json.Unmarshal(dc.Service, &service) != nil || service == "" {
		return d.errorf("service", "dockerComposeFile needs service: the one devbox logs into")
	}
	p, err := compose.Load(compose.Options{Files: files, ProjectName: d.projectName(files)})
	if err != nil {
		return d.errorf("dockerComposeFile", "%v", err)
	}
	app, ok := p.Services[service]
	if !ok {
		return d.errorf("service", "%q is not a service of %s", service, strings.Join(files, ", "))
	}
	run := []string{service}
	if len(dc.RunServices) > 0 {
		var names []string
		if err := json.Unmarshal(dc.RunServices, &names); err != nil {
			return d.errorf("runServices", "want an array of service names")
		}
		for _, n := range names {
			if _, ok := p.Services[n]; !ok {
				return d.errorf("runServices", "%q is not a service of %s", n, strings.Join(files, ", "))
			}
		}
		run = append(run, names...)
	} else {
		for n := range p.Services {
			run = append(run, n)
		}
	}
	services := map[string]any{}
	for _, name := range p.Closure(run) {
		svc := p.Services[name]
		if bad := svc.Unsupported(); len(bad) > 0 {
			return d.errorf("dockerComposeFile", "%s: service %s: devbox cannot honour %s", strings.Join(files, ", "), name, strings.Join(bad, ", "))
		}
		if name == service {
			continue
		}
		t, err := composeService(p, &svc)
		if err != nil {
			return d.errorf("dockerComposeFile", "%s: service %s: %v", strings.Join(files, ", "), name, err)
		}
		services[name] = t
	}
	if len(services) > 0 {
		m["services"] = services
	}
	d.origin["services"] = "dockerComposeFile"
	return d.composeApp(dc, p, &app, raw, m, strings.Join(files, ", "))
}

// composeFiles are dockerComposeFile's files, relative to the
// devcontainer.json.
func (d *dcReader) composeFiles(dc *devcontainer) ([]string, error) {
	var files []string
	var one string
	if json.Unmarshal(dc.DockerComposeFile, &one) == nil {
		files = []string{one}
	} else if json.Unmarshal(dc.DockerComposeFile, &files) != nil || len(files) == 0 {
		return nil, d.errorf("dockerComposeFile", "want a file name or an array of them")
	}
	for i, f := range files {
		if !filepath.IsAbs(f) {
			files[i] = filepath.Join(filepath.Dir(d.file), f)
		}
		if !fileExists(files[i]) {
			return nil, d.errorf("dockerComposeFile", "%s: no such file", files[i])
		}
	}
	return files, nil
}

var composeNameRE = lazyRE(`(?m)^name:\s*\S`)

// projectName is the Dev Container CLI's compose project name:
// COMPOSE_PROJECT_NAME or the files' own name (left to the loader, ""),
// else WORKSPACE_devcontainer for files in the workspace's .devcontainer
// folder, else the first file's folder's name.
func (d *dcReader) projectName(files []string) string {
	if os.Getenv("COMPOSE_PROJECT_NAME") != "" {
		return ""
	}
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && composeNameRE().Match(data) {
			return ""
		}
	}
	dir := filepath.Dir(files[0])
	name := filepath.Base(dir)
	if dir == filepath.Join(d.workspace, ".devcontainer") {
		name = filepath.Base(d.workspace) + "_devcontainer"
	}
	return regexp.MustCompile(`[^-_a-z0-9]`).ReplaceAllString(strings.ToLower(name), "")
}

// composeApp makes the environment of the service devbox logs into.
func (d *dcReader) composeApp(dc *devcontainer, p *compose.Project, app *compose.Service, raw, m map[string]any, files string) error {
	base, df := composeBase(app)
	m["base"], d.origin["base"] = base, "dockerComposeFile"
	if df != nil {
		m["dockerfile"] = df
	}
	if env := composeEnv(app.Environment); len(env) > 0 {
		m["env"] = env
	}
	mounts, err := composeMounts(p, app)
	if err != nil {
		return d.errorf("dockerComposeFile", "%s: service %s: %v", files, app.Name, err)
	}
	if len(mounts) > 0 {
		m["mounts"] = mounts
	}
	if ports, err := composePorts(app); err != nil {
		return d.errorf("dockerComposeFile", "%s: service %s: %v", files, app.Name, err)
	} else if len(ports) > 0 {
		m["ports"] = ports
	}
	m["aliases"] = append([]string{app.Name}, app.Aliases()...)
	if res := resourcesTable(app.Limits()); len(res) > 0 {
		m["resources"] = res
	}
	if deps := composeDeps(p, app); len(deps) > 0 {
		m["depends_on"] = deps
	}
	if svc, ok := strings.CutPrefix(app.NetworkMode, "service:"); ok {
		m["network"] = map[string]any{"mode": "service:" + svc}
	}
	if u := app.User; u != "" && !strings.ContainsAny(u[:1], "0123456789") {
		m["ssh"] = map[string]any{"user": strings.SplitN(u, ":", 2)[0]}
		d.origin["ssh.user"] = "dockerComposeFile"
	}
	// The CLI runs the service's entrypoint and command unless told
	// not to; here they run beside the SSH server.
	if dc.OverrideCommand == nil || !*dc.OverrideCommand {
		if app.Entrypoint != nil {
			m["entrypoint"] = app.Entrypoint
		}
		if app.Command != nil {
			m["command"] = app.Command
		}
		if len(app.Entrypoint)+len(app.Command) > 0 && app.Restart != "" {
			m["restart"] = app.Restart
		}
	}
	// The CLI's default for a compose file's container: its root.
	m["workdir"] = "/"
	if f, ok := raw["workspaceFolder"].(string); ok && f != "" {
		m["workdir"] = d.expand(f, "")
	}
	d.origin["workdir"] = "workspaceFolder"
	return nil
}

// composeService is a compose service as a [services.NAME] table.
func composeService(p *compose.Project, svc *compose.Service) (map[string]any, error) {
	if strings.HasPrefix(svc.NetworkMode, "service:") {
		return nil, fmt.Errorf("network_mode %s: only the service devbox logs into may share another's network", svc.NetworkMode)
	}
	t := map[string]any{}
	base, df := composeBase(svc)
	if df == nil {
		t["image"] = base
	} else {
		b := map[string]any{"context": df["context"], "dockerfile": strings.TrimPrefix(base, "dockerfile:")}
		for _, k := range []string{"args", "target"} {
			if v, ok := df[k]; ok {
				b[k] = v
			}
		}
		t["build"] = b
	}
	set := func(k string, v any, ok bool) {
		if ok {
			t[k] = v
		}
	}
	set("command", svc.Command, svc.Command != nil)
	aliases := svc.Aliases()
	set("aliases", aliases, len(aliases) > 0)
	set("entrypoint", svc.Entrypoint, svc.Entrypoint != nil)
	env := composeEnv(svc.Environment)
	set("env", env, len(env) > 0)
	mounts, err := composeMounts(p, svc)
	if err != nil {
		return nil, err
	}
	var vols, tmpfs []string
	for _, mt := range mounts {
		switch {
		case mt["type"] == "tmpfs":
			tmpfs = append(tmpfs, mt["target"].(string))
		case mt["readonly"] == true:
			vols = append(vols, fmt.Sprintf("%s:%s:ro", mt["source"], mt["target"]))
		default:
			vols = append(vols, fmt.Sprintf("%s:%s", mt["source"], mt["target"]))
		}
	}
	set("volumes", vols, len(vols) > 0)
	set("tmpfs", tmpfs, len(tmpfs) > 0)
	ports, err := composePorts(svc)
	if err != nil {
		return nil, err
	}
	set("ports", ports, len(ports) > 0)
	deps := composeDeps(p, svc)
	set("depends_on", deps, len(deps) > 0)
	if h := svc.Healthcheck; h != nil && (len(h.Test) > 0 || h.Disable) {
		hc := map[string]any{"test": h.Test, "disable": h.Disable}
		for k, v := range map[string]string{"interval": h.Interval, "timeout": h.Timeout, "start_period": h.StartPeriod} {
			if v != "" && v != "0s" {
				hc[k] = v
			}
		}
		if h.Retries > 0 {
			hc["retries"] = h.Retries
		}
		t["healthcheck"] = hc
	}
	cpus, memory, pids := svc.Limits()
	set("cpus", cpus, cpus != 0)
	set("mem_limit", memory, memory != "")
	set("pids_limit", pids, pids != 0)
	for k, v := range map[string]string{"restart": svc.Restart, "user": svc.User, "working_dir": svc.WorkingDir,
		"stop_signal": svc.StopSignal, "stop_grace_period": svc.StopGracePeriod} {
		set(k, v, v != "")
	}
	return t, nil
}

// composeDeps is a service's depends_on of the project's services, each
// with its condition.
func composeDeps(p *compose.Project, svc *compose.Service) map[string]any {
	deps := map[string]any{}
	for name, dep := range svc.DependsOn {
		if _, ok := p.Services[name]; ok {
			deps[name] = map[string]any{"condition": cmp.Or(dep.Condition, ServiceStarted)}
		}
	}
	return deps
}

// resourcesTable is cgroup limits (compose's cpus, mem_limit and
// pids_limit) as a [resources] table, with only the keys that are set.
func resourcesTable(cpus float64, memory string, pids int64) map[string]any {
	res := map[string]any{}
	if cpus != 0 {
		res["cpus"] = cpus
	}
	if memory != "" {
		res["memory"] = memory
	}
	if pids != 0 {
		res["pids"] = pids
	}
	return res
}

// composeBase is a service's image, or its build as a dockerfile: base
// and a [dockerfile] table.
func composeBase(svc *compose.Service) (string, map[string]any) {
	if svc.Build == nil {
		return svc.Image, nil
	}
	df := map[string]any{"context": svc.Build.Context}
	args := map[string]string{}
	for k, v := range svc.Build.Args {
		if v != nil {
			args[k] = *v
		}
	}
	if len(args) > 0 {
		df["args"] = args
	}
	if svc.Build.Target != "" {
		df["target"] = svc.Build.Target
	}
	dockerfile := cmp.Or(svc.Build.Dockerfile, "Dockerfile")
	if !filepath.IsAbs(dockerfile) {
		dockerfile = filepath.Join(svc.Build.Context, dockerfile)
	}
	return "dockerfile:" + dockerfile, df
}

// composeEnv is a service's environment without the unset variables.
func composeEnv(env map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// composeMounts are a service's volumes as [[mounts]] tables, a named
// volume by its project-scoped name.
func composeMounts(p *compose.Project, svc *compose.Service) ([]map[string]any, error) {
	var out []map[string]any
	for _, v := range svc.Volumes {
		mt := map[string]any{"target": v.Target, "readonly": v.ReadOnly}
		switch v.Type {
		case "bind":
			mt["source"] = v.Source
		case "volume":
			if v.Source == "" {
				return nil, fmt.Errorf("volumes: %s: an anonymous volume: give it a name", v.Target)
			}
			name := v.Source
			top, ok := p.Volumes[v.Source]
			if ok && top.External {
				// rm --volumes would delete what the project does not own.
				return nil, fmt.Errorf("volumes: %s is external: devbox keeps only its own volumes", v.Source)
			}
			if ok && top.Name != "" {
				name = top.Name
			}
			mt["source"], mt["type"] = name, "volume"
		case "tmpfs":
			mt["type"] = "tmpfs"
		}
		out = append(out, mt)
	}
	for _, t := range svc.Tmpfs {
		out = append(out, map[string]any{"target": strings.SplitN(t, ":", 2)[0], "type": "tmpfs"})
	}
	return out, nil
}

// composePorts are a service's published ports as devbox writes them.
func composePorts(svc *compose.Service) ([]string, error) {
	var out []string
	for _, p := range svc.Ports {
		if p.Published == "" {
			return nil, fmt.Errorf("ports: %d has no host port: devbox publishes a port where the file says", p.Target)
		}
		s := fmt.Sprintf("%s:%d", p.Published, p.Target)
		if p.HostIP != "" {
			s = p.HostIP + ":" + s
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}
