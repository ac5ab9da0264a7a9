// Package builder turns a spec into layers: the plan (the ordered steps a
// spec implies, each keyed sha256(parent key + step), so a change rebuilds
// that step and the ones after it only), the steps themselves (packages
// with portable names, Node.js downloaded on the host with checksums, the
// npm registry, the SSH user, config, [[run]] commands) and the download
// cache.
//
// Lifecycle. Run resolves the base (rootfs), then walks the plan: a step
// whose layer is committed is reused; any other runs over the layers below
// it, in a build container (or on the host, for downloads), writing into a
// fresh directory in tmp/ that the store commits under the step's key only
// when the step succeeded. A failed or killed step commits nothing and
// leaves every earlier step cached, so the same build again resumes there.
package builder
