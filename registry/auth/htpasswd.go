package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Htpasswd checks passwords against an htpasswd file of bcrypt hashes
// (`htpasswd -B`). Verified credentials are remembered as a SHA-256 so that
// each request does not pay bcrypt's deliberate cost again.
type Htpasswd struct {
	users map[string][]byte

	mu       sync.Mutex
	verified map[string][32]byte
}

// LoadHtpasswd reads an htpasswd file. Only bcrypt entries are accepted:
// the older crypt/MD5/SHA1 schemes are too weak to honour.
func LoadHtpasswd(path string) (*Htpasswd, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	return ParseHtpasswd(raw)
}

// ParseHtpasswd parses htpasswd content.
func ParseHtpasswd(raw []byte) (*Htpasswd, error) {
	h := &Htpasswd{users: map[string][]byte{}, verified: map[string][32]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, ok := strings.Cut(t, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd line %d: expected user:hash", line)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("htpasswd line %d: user %q: only bcrypt hashes are supported", line, user)
		}
		h.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	return h, nil
}

// Verify reports whether password is user's.
func (h *Htpasswd) Verify(user, password string) bool {
	hash, ok := h.users[user]
	if !ok {
		// Spend the same time as a real check so that user names do not leak.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	sum := sha256.Sum256([]byte(user + "\x00" + password))
	h.mu.Lock()
	known, seen := h.verified[user]
	h.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(known[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	h.mu.Lock()
	h.verified[user] = sum
	h.mu.Unlock()
	return true
}

// dummyHash is made on first use: package init runs in every berth process
// (the shim and container init too), where a bcrypt round costs 1 ms.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.MinCost)
	return h
})
