package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// runTimeout bounds one command-line tool: the openstack and swift CLIs
// take seconds, but a hung one must not hang the test run.
const runTimeout = 2 * time.Minute

// Run runs a command-line tool (the openstack or swift CLI, arca-manage)
// to completion in dir ("" for the current folder), with extraEnv added to
// the test's environment. It returns the tool's standard output and, when
// it fails, an error that carries the command line, stdout and stderr.
func Run(extraEnv []string, dir, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// RunOutputs runs a command until it ends or ctx is done, with env added
// to the test's environment, and returns its standard output and standard
// error apart (trimmed), for tests that check what a program says where.
func RunOutputs(ctx context.Context, env []string, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	return strings.TrimSpace(outBuf.String()), strings.TrimSpace(errBuf.String()), err
}
