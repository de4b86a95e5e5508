package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/cowfile/cowfile"
	"github.com/spf13/cobra"
)

var checkJSON bool

var checkCmd = &cobra.Command{
	Use:   "check FILE",
	Short: "Verify every page of the current version (Tx.Check)",
	Long: `check opens FILE read-only, with the shared lock, and runs the engine's
full check on the current version: both metas; every reachable page's
checksum, id, type and the reference to it (checksum and txid); key order
within and across pages; no page reachable twice; the trees of every
snapshot; and that reachable, free and pending pages account for every
page below the high-water mark (no leaks).

It also reports when open had to fall back from the newest meta to the
older one (the pages of the last commit do not verify: a torn commit or
rot), and a file that open refuses. Every problem is listed with its page.

Exit status 1 when any problem is found. When the last commit is the
damaged one, 'cowfile revert' writes a copy without it.`,
	Example: `  cowfile check app.cow
  cowfile check --json app.cow`,
	Args: nargs(1, 1),
	RunE: func(cmd *cobra.Command, args []string) error {
		res := checkResult{File: args[0], Problems: []checkProblem{}}
		db, err := openDB(args[0], true)
		var p problemError
		switch {
		case errors.As(err, &p):
			res.Problems = append(res.Problems, checkProblem{Page: pageOf(err), Problem: err.Error()})
		case err != nil:
			return err
		default:
			defer db.Close()
			st := db.Stats()
			res.TxID, res.Pages = &st.TxID, st.FilePages
			if st.FellBack {
				res.FellBack = true
				res.Problems = append(res.Problems, checkProblem{Page: pageOf(errors.New(st.FallbackReason)),
					Problem: "open fell back to the older meta: " + st.FallbackReason})
			}
			bar := newProgress(-1, "checking", false)
			err = db.View(func(tx *cowfile.Tx) error { return tx.Check() })
			bar.finish()
			for _, e := range splitErrors(err) {
				res.Problems = append(res.Problems, checkProblem{Page: pageOf(e), Problem: e.Error()})
			}
		}
		res.OK = len(res.Problems) == 0
		w := cmd.OutOrStdout()
		if checkJSON {
			if err := writeJSON(w, res); err != nil {
				return err
			}
		} else if res.OK {
			fmt.Fprintf(w, "ok: tx %d, %d pages, no problems found\n", *res.TxID, res.Pages)
		} else {
			fmt.Fprintf(w, "%d problem(s) found in %s:\n", len(res.Problems), args[0])
			t := newTable(w, "PAGE", "PROBLEM")
			for _, p := range res.Problems {
				at := "-"
				if p.Page != nil {
					at = strconv.FormatUint(*p.Page, 10)
				}
				t.row(at, p.Problem)
			}
			t.flush()
		}
		if !res.OK {
			return problemError{}
		}
		return nil
	},
}

type checkResult struct {
	File     string         `json:"file"`
	TxID     *uint64        `json:"txid"`
	Pages    uint64         `json:"pages"`
	FellBack bool           `json:"fallback"`
	OK       bool           `json:"ok"`
	Problems []checkProblem `json:"problems"`
}

// checkProblem is one problem; Page is nil when the message names none.
type checkProblem struct {
	Page    *uint64 `json:"page"`
	Problem string  `json:"problem"`
}

// splitErrors returns the problems joined in err (errors.Join).
func splitErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []error{err}
}

var pageRe = regexp.MustCompile(`\bpage (\d+)\b`)

// pageOf finds the page an error names (every corruption error names
// one); nil when none.
func pageOf(err error) *uint64 {
	if m := pageRe.FindStringSubmatch(err.Error()); m != nil {
		if n, perr := strconv.ParseUint(m[1], 10, 64); perr == nil {
			return &n
		}
	}
	return nil
}

func init() {
	checkCmd.Flags().BoolVar(&checkJSON, "json", false, "write JSON")
	rootCmd.AddCommand(checkCmd)
}
