// Package treerules holds the rules the source tree keeps, as a test that
// `make test` runs, so that they do not slip while features grow: no
// source file over 500 lines, no function over 80, a package comment in
// every package, no folder named like build output (tools and ignore
// templates skip those), and the state layout's file names spelled only
// in internal/state. It has no code of its own.
package treerules
