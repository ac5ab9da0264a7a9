package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

// usage is the one command and its flags, as docker compose names them.
const usage = `usage: devbox-compose config [--project-name NAME] [--project-directory DIR]
       [--env-file FILE]... [--profile NAME]... -f FILE [-f FILE]...`

type strs []string

func (s *strs) String() string     { return fmt.Sprint(*s) }
func (s *strs) Set(v string) error { *s = append(*s, v); return nil }

// errUsage is a command line that is not usage's.
var errUsage = errors.New("usage")

func main() {
	err := run(os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "devbox-compose: "+err.Error())
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "config" {
		return errUsage
	}
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var files, envFiles, profiles strs
	name := fs.String("project-name", "", "")
	dir := fs.String("project-directory", "", "")
	fs.Var(&files, "f", "")
	fs.Var(&envFiles, "env-file", "")
	fs.Var(&profiles, "profile", "")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || len(files) == 0 {
		return errUsage
	}
	// What docker compose's own command line gives the loader.
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(*dir),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(profiles...),
		cli.WithName(*name),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	data, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = out.Write(append(data, '\n'))
	return err
}
