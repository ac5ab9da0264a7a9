package builder

import "encoding/json"

// featureLabelKeys are the keys of a devcontainer-feature.json that go
// into the metadata label of an image it is installed in
// (pickFeatureProperties in the CLI's src/spec-node/imageMetadata.ts).
var featureLabelKeys = []string{"onCreateCommand", "updateContentCommand", "postCreateCommand", "postStartCommand",
	"postAttachCommand", "init", "privileged", "capAdd", "securityOpt", "entrypoint", "mounts", "customizations"}

// featureLabel is a feature's fragment of the label: its id as the
// devcontainer.json names it, and those keys of its metadata.
func featureLabel(ref string, meta []byte) json.RawMessage {
	var all map[string]json.RawMessage
	json.Unmarshal(meta, &all) // read strictly before this
	picked := map[string]json.RawMessage{}
	for _, k := range featureLabelKeys {
		if v, ok := all[k]; ok {
			picked[k] = v
		}
	}
	picked["id"], _ = json.Marshal(ref)
	data, _ := json.Marshal(picked)
	return data
}
