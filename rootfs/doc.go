// Package rootfs holds root file systems on the host: base references and
// where they come from, the content-addressed layer store, safe layer
// extraction, and the way back out as an OCI image.
//
// Lifecycle. A Ref (ParseRef) names a base: a registry reference, an OCI
// layout, a docker-archive tarball, a directory or a debootstrap suite.
// Store.Pull (or Resolve, which pulls only what is missing) turns every
// kind into one source of layers by diffID, and unpacks each layer once,
// keyed by its ChainID, into tmp/, checked against its diffID, then renamed
// into layers/ and only then recorded: a layer directory is whole or
// absent, whatever kills devbox. Layers are shared by every image, build
// and environment over them, never changed once in place, and removed only
// by Prune, which keeps every layer a stored image or a build step stands
// on. Builds (the devenv/builder package) commit their steps' layers with
// CommitBuild; Export and Push write a stack of layers back out as an
// image.
//
// Safety. Extraction resolves every path inside the layer (os.Root and
// *at calls with O_NOFOLLOW): no entry of a hostile layer, however its
// names, links and whiteouts are made, writes outside it. Layers are kept
// in overlay form (whiteouts as 0/0 character devices, opaque directories
// as trusted.overlay.opaque, or user.overlay.opaque rootless: see
// userns.OverlayXattrs), ready to be lower directories of an overlay. In a
// user namespace, entries are owned through its mapping; an owner it does
// not map is stored as root's and counted (owners.go).
package rootfs
