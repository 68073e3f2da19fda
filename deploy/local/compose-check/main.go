// compose-check loads a Compose file with compose-go, the loader Docker Compose v2 uses, as
// `docker compose config` does: interpolation from the project directory's .env, the
// Compose Specification's schema, extension fields, anchors and merges, normalization and
// consistency checks. It prints the project's name and its services (those of every profile)
// as JSON, or the loader's error and exits 1. Built and cached by deploy/local/setup.sh.
//
//	compose-check deploy/docker-compose.yml
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func load(file string) (string, error) {
	// As `docker compose -f FILE` does: the project directory is the file's, where .env is
	// read (before the name is decided: COMPOSE_PROJECT_NAME may be set there).
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		return "", err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return "", err
	}
	names := project.ServiceNames()
	sort.Strings(names)
	out, err := json.Marshal(map[string]any{"name": project.Name, "services": names})
	return string(out), err
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check COMPOSE-FILE")
		os.Exit(2)
	}
	out, err := load(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(out)
}
