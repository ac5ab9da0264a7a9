// Package compose reads compose files for devbox: it runs devbox-compose
// (compose-spec/compose-go, as Docker Compose reads them) and holds the
// project it prints, as much of compose's model as devbox can honour and
// the names of every key it cannot.
//
// Nothing is kept: Load runs the helper each time a spec is read, and the
// Project is decoded once and only read afterwards.
package compose
