// Package benchmark is the harness of the commands in bench/: each
// measures devbox beside the tool a user would otherwise pick, in the
// same run, in interleaved rounds, and reports medians and their ratios
// to the peer. It holds no state between calls; a command builds its
// Sides, calls Interleave once, and prints with Report.
package benchmark
