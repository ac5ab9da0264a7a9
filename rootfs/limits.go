package rootfs

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Bounds on what a layer may unpack to. A layer is compressed data from
// anywhere: a few MiB of gzip can expand to gigabytes of zeros.
const (
	// DefaultMaxLayerSize is a layer's largest uncompressed size.
	DefaultMaxLayerSize = 32 << 30
	// maxRatio bounds uncompressed/compressed size past ratioFloor: real
	// layers stay well under 20, gzip's limit is about 1000.
	maxRatio   = 200
	ratioFloor = 256 << 20
	// An unpack leaves free at least a twentieth of the store's file
	// system, or 256 MiB, whichever is less; it checks every checkEvery
	// bytes (statfs is cheap).
	maxReserve = 256 << 20
	checkEvery = 4 << 20
)

// ErrLayerTooLarge is a layer past a bound.
var ErrLayerTooLarge = errors.New("layer too large")

// layerLimits are the bounds of one layer's unpacking.
type layerLimits struct {
	max        int64  // uncompressed bytes
	compressed int64  // the compressed size, -1 if unknown
	dir        string // where it is unpacked, for free space

	checked int64 // bytes at the last free-space check
	every   int64 // bytes between checks: at most half the reserve
}

// check is called with the uncompressed bytes read so far.
func (l *layerLimits) check(n int64) error {
	if l.max > 0 && n > l.max {
		return fmt.Errorf("%w: over %d bytes uncompressed (the limit)", ErrLayerTooLarge, l.max)
	}
	if l.compressed > 0 && n > ratioFloor && n/l.compressed > maxRatio {
		return fmt.Errorf("%w: %d compressed bytes expand past %d (more than %d times): refusing a decompression bomb",
			ErrLayerTooLarge, l.compressed, n, maxRatio)
	}
	if l.dir == "" || (l.every > 0 && n-l.checked < l.every) {
		return nil
	}
	l.checked = n
	var st unix.Statfs_t
	if err := unix.Statfs(l.dir, &st); err != nil {
		return nil // cannot tell: the writes themselves will say
	}
	free, size := int64(st.Bavail)*int64(st.Bsize), int64(st.Blocks)*int64(st.Bsize)
	reserve := min(maxReserve, size/20)
	l.every = max(min(checkEvery, reserve/2), 64<<10)
	if free < reserve {
		return fmt.Errorf("%w: the store's file system is down to %d KiB free after %d MiB of it", ErrLayerTooLarge, free>>10, n>>20)
	}
	return nil
}
