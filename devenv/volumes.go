package devenv

import (
	"slices"

	"github.com/devbox/devbox/devenv/volume"
	container "github.com/devbox/devbox/runtime"
)

// volumeNames are the names of the volumes among mounts.
func volumeNames(mounts []container.Mount) []string {
	var names []string
	for _, m := range mounts {
		if m.Type == "volume" && !slices.Contains(names, m.Source) {
			names = append(names, m.Source)
		}
	}
	return names
}

// VolumeInfo is a volume and the running environments (and one-shot
// containers) that mount it.
type VolumeInfo struct {
	Name   string   `json:"name"`
	UsedBy []string `json:"used_by"`
}

// Volumes lists the named volumes of the state root.
func (e *Envs) Volumes() ([]VolumeInfo, error) {
	names, err := volume.New(e.root).List()
	if err != nil {
		return nil, err
	}
	users, err := e.volumeUsers()
	if err != nil {
		return nil, err
	}
	out := make([]VolumeInfo, 0, len(names))
	for _, n := range names {
		out = append(out, VolumeInfo{Name: n, UsedBy: users[n]})
	}
	return out, nil
}

// RemoveVolume deletes volume name, refused while a running environment
// or one-shot container mounts it (as `docker volume rm` refuses a volume
// in use); it waits for the starts under way to record theirs.
func (e *Envs) RemoveVolume(name string) error {
	return volume.New(e.root).Remove(name, func() ([]string, error) {
		users, err := e.volumeUsers()
		return users[name], err
	})
}

// volumeUsers maps each volume to the running environments and one-shot
// containers that mount it.
func (e *Envs) volumeUsers() (map[string][]string, error) {
	envs, err := e.List()
	if err != nil {
		return nil, err
	}
	users := runVolumes(e.root.Runs())
	for _, env := range envs {
		if env.Status == "stopped" {
			continue // a starting one's services mount theirs already
		}
		for _, v := range env.Volumes {
			users[v] = append(users[v], env.Name)
		}
	}
	return users, nil
}
