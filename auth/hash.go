package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters of the hashes `ledger tokens hash` makes: OWASP's recommended minimum
// (19 MiB, 2 passes, 1 lane), about 20–50 ms per check on this project's machines. A token is 32
// random bytes, so the hash's cost guards tokens chosen by people, not the generated ones.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Bounds on the parameters a tokens file may name: a typo such as m=1900000000 must not make
// every request allocate gigabytes.
const (
	maxArgonMemory  = 1 << 20 // KiB: 1 GiB
	maxArgonTime    = 64
	maxArgonThreads = 64
)

func maxParallelHashes() int { return max(1, runtime.GOMAXPROCS(0)) }

// verifier checks a token against a stored hash: 1 when it matches, 0 when not, in time that
// depends on the hash's parameters only.
type verifier interface {
	verify(token string) int
}

type argon2idHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func (h argon2idHash) verify(token string) int {
	got := argon2.IDKey([]byte(token), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key)
}

type bcryptHash []byte

func (h bcryptHash) verify(token string) int {
	if bcrypt.CompareHashAndPassword(h, []byte(token)) == nil {
		return 1
	}
	return 0
}

// Hash is token's argon2id hash in the PHC string format
// ($argon2id$v=19$m=19456,t=2,p=1$salt$key, unpadded base64), as the tokens file holds it.
func Hash(token string) (string, error) {
	if token == "" {
		return "", errors.New("an empty token cannot be hashed")
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(token), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// NewToken is a fresh random token: "ltk_" and 32 random bytes, base64url.
func NewToken() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return "ltk_" + base64.RawURLEncoding.EncodeToString(raw), nil
}

// isHash says whether a value is meant as a hash (and so must parse as one) rather than a token.
func isHash(s string) bool {
	return strings.HasPrefix(s, "$argon2") || strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// parseHash reads an argon2id PHC string or a bcrypt hash. The errors never repeat the value.
func parseHash(s string) (verifier, error) {
	if strings.HasPrefix(s, "$2") {
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			return nil, fmt.Errorf("not a valid bcrypt hash: %v", err)
		}
		return bcryptHash(s), nil
	}
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, key
	if len(parts) != 6 || parts[0] != "" {
		return nil, errors.New("not a PHC string: want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[1] != "argon2id" {
		return nil, fmt.Errorf("hash algorithm %q: want argon2id (or a bcrypt hash)", parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("argon2 version %q: want v=%d", parts[2], argon2.Version)
	}
	var h argon2idHash
	seen := map[string]bool{}
	for kv := range strings.SplitSeq(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || seen[k] {
			return nil, fmt.Errorf("argon2id parameter %q: want m=KiB,t=passes,p=lanes", kv)
		}
		seen[k] = true
		switch k {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > maxArgonThreads {
				return nil, fmt.Errorf("argon2id p=%d: at most %d", n, maxArgonThreads)
			}
			h.threads = uint8(n)
		default:
			return nil, fmt.Errorf("argon2id parameter %q: want m, t and p", k)
		}
	}
	switch {
	case !seen["m"] || !seen["t"] || !seen["p"]:
		return nil, errors.New("argon2id parameters: want m, t and p")
	case h.time < 1 || h.time > maxArgonTime:
		return nil, fmt.Errorf("argon2id t=%d: want 1 to %d", h.time, maxArgonTime)
	case h.threads < 1:
		return nil, errors.New("argon2id p=0: want at least 1")
	case h.memory < 8*uint32(h.threads) || h.memory > maxArgonMemory:
		return nil, fmt.Errorf("argon2id m=%d: want %d to %d KiB", h.memory, 8*uint32(h.threads), maxArgonMemory)
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return nil, errors.New("argon2id salt: want at least 8 bytes, unpadded base64")
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) < 16 {
		return nil, errors.New("argon2id hash: want at least 16 bytes, unpadded base64")
	}
	return h, nil
}
