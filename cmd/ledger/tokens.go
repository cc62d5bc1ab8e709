package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/audit"
	"github.com/stripeledger/ledger/auth"
)

// tokensCmd makes the tokens file's lines: hashes of tokens, and fresh tokens with theirs.
func tokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Make API tokens and their LEDGER_TOKENS_FILE lines (hash, new, check)",
	}
	var name, role string
	hash := &cobra.Command{
		Use:   "hash [--name NAME --role ROLE]",
		Short: "Read a token from stdin, print its argon2id hash (or, with --name and --role, its file line)",
		Long: `hash reads one token from stdin (the first line, without its line ending) and prints its
argon2id hash in the PHC format the tokens file holds; with --name and --role it prints the whole
line, NAME ROLE HASH, to append to LEDGER_TOKENS_FILE:

  printf %s "$TOKEN" | ledger tokens hash --name finance --role read >> tokens.txt

The token is never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (name == "") != (role == "") {
				return errors.New("--name and --role go together")
			}
			if err := checkEntry(name, role); err != nil {
				return err
			}
			line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096)).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("could not read the token from stdin: %w", err)
			}
			token := strings.TrimRight(line, "\r\n")
			if token == "" {
				return errors.New("no token on stdin: printf %s \"$TOKEN\" | ledger tokens hash")
			}
			h, err := auth.Hash(token)
			if err != nil {
				return err
			}
			if name != "" {
				fmt.Printf("%s %s %s\n", name, role, h)
			} else {
				fmt.Println(h)
			}
			return nil
		},
	}
	hash.Flags().StringVar(&name, "name", "", "the token's name, as the audit log records it")
	hash.Flags().StringVar(&role, "role", "", "read, operate or admin")

	var newRole string
	newCmd := &cobra.Command{
		Use:   "new NAME --role ROLE",
		Short: "Make a random token: prints it once, then its LEDGER_TOKENS_FILE line",
		Long: `new makes a random token (ltk_ and 32 random bytes) and prints two lines on stdout: the token
— shown this once, give it to its holder — and its line for LEDGER_TOKENS_FILE, which holds only
the hash:

  ledger tokens new finance --role read     # then append the second line to the file`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkEntry(args[0], newRole); err != nil {
				return err
			}
			token, err := auth.NewToken()
			if err != nil {
				return err
			}
			h, err := auth.Hash(token)
			if err != nil {
				return err
			}
			fmt.Println(token)
			fmt.Printf("%s %s %s\n", args[0], newRole, h)
			fmt.Fprintln(os.Stderr, "first line: the token (shown once); second line: append it to LEDGER_TOKENS_FILE, then restart serve")
			return nil
		},
	}
	newCmd.Flags().StringVar(&newRole, "role", "", "read, operate or admin (required)")

	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Check a tokens file (default LEDGER_TOKENS_FILE) as serve would, and list its names and roles",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := os.Getenv("LEDGER_TOKENS_FILE")
			if len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				return errors.New("name the file, or set LEDGER_TOKENS_FILE")
			}
			ts, err := auth.LoadFile(path)
			if err != nil {
				return err
			}
			for _, id := range ts.Names() {
				fmt.Printf("%s\t%s\n", id.Name, id.Role)
			}
			return nil
		},
	}
	cmd.AddCommand(hash, newCmd, check)
	return cmd
}

// checkEntry refuses a name or role the tokens file would refuse (empty ones are not checked).
func checkEntry(name, role string) error {
	if role == "" && name != "" {
		return errors.New("--role is required: read, operate or admin")
	}
	if role != "" {
		if _, err := auth.ParseRole(role); err != nil {
			return fmt.Errorf("--role: %w", err)
		}
	}
	if name != "" {
		return auth.CheckName(name)
	}
	return nil
}

// auditCmd lists the audit log.
func auditCmd() *cobra.Command {
	var since, token string
	var status, limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit [--since 24h] [--token NAME] [--status 403] [--limit 50] [--json]",
		Short: "List the audit log: every API, dashboard and /metrics request that presented a token",
		Long: `audit prints ledger.audit_log, newest first: when, the token's name and role ("-" for a token
that is not configured: those were answered 401), method, route pattern, path, status, client
address and how long the answer took.

  ledger audit --status 403            # refused for their role
  ledger audit --token finance --since 72h
  ledger audit --status 401 --json     # unknown tokens

Exit code 2 for a bad flag or an unreachable database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 100000 {
				return fmt.Errorf("--limit %d: want 1 to 100000", limit)
			}
			if status != 0 && (status < 100 || status > 599) {
				return fmt.Errorf("--status %d: want an HTTP status (100 to 599)", status)
			}
			f := audit.Filter{Token: token, Status: status, Limit: limit}
			if since != "" {
				d, err := time.ParseDuration(since)
				if err != nil || d <= 0 {
					return fmt.Errorf("--since %q: want a duration such as 24h", since)
				}
				f.Since = time.Now().Add(-d)
			}
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			entries, err := audit.List(cmd.Context(), pool, f)
			if err != nil {
				return err
			}
			if asJSON {
				if entries == nil {
					entries = []audit.Entry{}
				}
				return json.NewEncoder(os.Stdout).Encode(entries)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TIME\tTOKEN\tROLE\tMETHOD\tROUTE\tPATH\tSTATUS\tCLIENT\tTOOK")
			for _, e := range entries {
				// Every text is the client's to choose, in part: printed raw, a newline or an escape
				// sequence in a path would forge rows or rewrite the terminal.
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.At.UTC().Format(time.RFC3339Nano), printable(orDash(e.Token)),
					printable(orDash(e.Role)), printable(e.Method), printable(e.Route), printable(e.Path), e.Status, printable(orDash(e.Client)),
					(time.Duration(e.Duration) * time.Microsecond).String())
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only requests in this last duration (e.g. 24h)")
	f.StringVar(&token, "token", "", "only this token's requests (its name)")
	f.IntVar(&status, "status", 0, "only requests answered with this status")
	f.IntVar(&limit, "limit", 50, "at most this many (the newest)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printable is s as it is when every character of it is printable (and a space), else quoted
// with Go's escapes (strconv.Quote): "\n", "\x1b", "\t" instead of the characters. A value that
// begins with a double quote is quoted too, so a quoted value is never ambiguous.
func printable(s string) string {
	if strings.HasPrefix(s, `"`) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) || (r != ' ' && unicode.IsSpace(r)) {
			return strconv.Quote(s)
		}
	}
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	return s
}

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
