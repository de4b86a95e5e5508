// Command cowfile inspects, checks, copies and repairs cowfile files, and
// moves their contents in and out in the text format of LMDB's mdb_dump
// and Berkeley DB's db_dump.
//
// Exit status: 0 when all is well, 1 when problems were found (a failed
// check, a damaged page, a missing key), 2 for usage and I/O errors.
// docs/CLI.md has a tour of every command.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// rootCmd is the cowfile command. Commands in other files of this package
// register themselves on it in init functions.
var rootCmd = &cobra.Command{
	Use:   "cowfile",
	Short: "Inspect, check, dump, load, copy and repair cowfile files",
	Long: `cowfile is the operator's tool for cowfile files.

Read-only commands (buckets, keys, get, dump, check, backup, compact's
source) open the file with the shared lock and never modify it. inspect,
pages, page and map decode the file's bytes directly, without the engine
and without a lock, so they also work on a file the engine refuses to open.

Exit status: 0 ok, 1 problems found, 2 usage or I/O error.`,
	Example: `  cowfile inspect app.cow
  cowfile check app.cow
  cowfile dump app.cow > app.dump && cowfile load copy.cow app.dump`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

// Global options.
var (
	quiet       bool
	lockTimeout time.Duration
)

func init() {
	rootCmd.PersistentFlags().BoolVarP(&quiet, "quiet", "q", false, "no progress bars")
	rootCmd.PersistentFlags().DurationVar(&lockTimeout, "timeout", 5*time.Second, "how long to wait for the file lock (0: forever)")
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	rootCmd.CompletionOptions.DisableDefaultCmd = true
}

func main() { os.Exit(run(os.Args[1:])) }

// run executes the command line and returns the exit status.
func run(args []string) int {
	rootCmd.SetArgs(args)
	cmd, err := rootCmd.ExecuteC()
	if err == nil {
		return 0
	}
	var p problemError
	if errors.As(err, &p) {
		if p.msg != "" {
			fmt.Fprintf(os.Stderr, "cowfile: %s\n", p.msg)
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "cowfile: %v\n", err)
	var u usageError
	if errors.As(err, &u) || isCobraUsage(err) {
		fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return 2
}

// problemError ends a command with exit status 1: it ran, and found
// something wrong. msg, if set, is printed to stderr.
type problemError struct{ msg string }

func (p problemError) Error() string {
	if p.msg == "" {
		return "problems found"
	}
	return p.msg
}

func problems(format string, args ...any) error {
	return problemError{fmt.Sprintf(format, args...)}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// isCobraUsage recognizes the error cobra returns for an unknown command
// (it has no type of its own).
func isCobraUsage(err error) bool { return strings.HasPrefix(err.Error(), "unknown command ") }
