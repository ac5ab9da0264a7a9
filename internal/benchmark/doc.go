// Package benchmark is the harness of the commands in bench/: each
// measures devbox beside the tool a user would otherwise pick, in the
// same run, in interleaved rounds (each round begun by the next side,
// after warm-up rounds and quiet pauses as Rounds says), and reports
// medians and their ratios to the peer. It holds no state between calls;
// a command builds its Sides (Command times a command line), calls
// Interleave, and prints with Report.
package benchmark
