package auth

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// validName is what a token's name may be: it is printed in the audit log and in `ledger audit`.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckName refuses a token name the tokens file and LEDGER_API_TOKEN would refuse.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("name %q: want letters, digits, '.', '_' or '-' (at most 64)", name)
	}
	return nil
}

// PlainRole is the role of a plain LEDGER_API_TOKEN entry (one without a name and role): read,
// which is everything such a token could do before tokens had roles. Starting reconcile runs,
// retrying quarantined events and the admin routes need a named entry or the tokens file.
const PlainRole = Read

// ParseEnv reads LEDGER_API_TOKEN: comma-separated entries, each either a plain token (role
// read, named api-token-1, api-token-2, … by its place) or NAME:ROLE:TOKEN. Hashes belong in the
// tokens file (LoadFile). An entry whose first colon-separated field could be a token's name
// and whose second is not a role is refused: it is far likelier a NAME:ROLE:TOKEN with a typo in
// the role (ops:operater:…) than a plain token, and taking it as one would start serve with a
// read token nobody meant. A plain token may hold a colon only where what precedes its first
// colon is no valid name. The errors name the entry by its place, never by its value (not even
// its first field, which for a plain token is part of the secret).
func ParseEnv(s string) (*Tokens, error) {
	var entries []entry
	n := 0
	for raw := range strings.SplitSeq(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		n++
		src := fmt.Sprintf("LEDGER_API_TOKEN entry %d", n)
		e := entry{source: src}
		parts := strings.SplitN(raw, ":", 3)
		if len(parts) >= 2 && CheckName(parts[0]) == nil {
			if _, err := ParseRole(parts[1]); err != nil {
				return nil, fmt.Errorf("%s: looks like NAME:ROLE:TOKEN but its second field is no role (want read, operate or admin); "+
					"a plain token must not start with a name and a colon", src)
			}
		}
		if len(parts) == 3 {
			if role, err := ParseRole(parts[1]); err == nil {
				if err := CheckName(parts[0]); err != nil {
					return nil, fmt.Errorf("%s: %w", src, err)
				}
				if parts[2] == "" {
					return nil, fmt.Errorf("%s (%s): empty token", src, parts[0])
				}
				e.Name, e.Role, raw = parts[0], role, parts[2]
			}
		}
		if e.Name == "" {
			e.Name, e.Role = fmt.Sprintf("api-token-%d", n), PlainRole
		}
		if isHash(raw) {
			// An argon2id PHC string holds commas, the list's separator: hashes live in the file.
			return nil, fmt.Errorf("%s (%s): a hash belongs in LEDGER_TOKENS_FILE; LEDGER_API_TOKEN holds tokens", src, e.Name)
		}
		e.digest = sha256.Sum256([]byte(raw))
		entries = append(entries, e)
	}
	return merge(entries)
}

// MustParseEnv is ParseEnv for tokens a program or test chooses itself; it panics on a bad one.
func MustParseEnv(s string) *Tokens {
	ts, err := ParseEnv(s)
	if err != nil {
		panic(err)
	}
	return ts
}

// LoadFile reads a tokens file (LEDGER_TOKENS_FILE): one token a line, `NAME ROLE HASH`
// separated by spaces or tabs, the hash an argon2id PHC string (`ledger tokens hash` makes one) or
// a bcrypt hash; blank lines and lines starting with # are ignored. The errors name the file and
// the line, never a hash.
func LoadFile(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	var entries []entry
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		src := fmt.Sprintf("%s line %d", path, line)
		fields := strings.Fields(text)
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s: want NAME ROLE HASH, found %d field(s)", src, len(fields))
		}
		if err := CheckName(fields[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		role, err := ParseRole(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		if !isHash(fields[2]) {
			return nil, fmt.Errorf("%s: the third field must be an argon2id or bcrypt hash, not a token (ledger tokens hash makes one)", src)
		}
		h, err := parseHash(fields[2])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		entries = append(entries, entry{Identity: Identity{Name: fields[0], Role: role}, hash: h, source: src})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens file %s line %d: %w", path, line+1, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("tokens file %s: no tokens in it", path)
	}
	return merge(entries)
}

// Join is the tokens of every set; names must be unique across them.
func Join(sets ...*Tokens) (*Tokens, error) {
	var entries []entry
	for _, s := range sets {
		if s != nil {
			entries = append(entries, s.entries...)
		}
	}
	return merge(entries)
}

func merge(entries []entry) (*Tokens, error) {
	seen := map[string]string{}
	for _, e := range entries {
		if prev, ok := seen[e.Name]; ok {
			return nil, fmt.Errorf("%s: token name %q is already used by %s", e.source, e.Name, prev)
		}
		seen[e.Name] = e.source
	}
	if len(entries) == 0 {
		return nil, nil
	}
	return newTokens(entries), nil
}
