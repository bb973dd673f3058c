package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/berth-dev/berth/errdefs"
)

// containerStore indexes live Container objects by ID and name.
type containerStore struct {
	mu     sync.RWMutex
	byID   map[string]*Container
	byName map[string]string // name without "/" -> id
}

func newContainerStore() *containerStore {
	return &containerStore{byID: map[string]*Container{}, byName: map[string]string{}}
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// reserve adds c under its name, failing with a Conflict if it is taken.
func (s *containerStore) add(c *Container) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.TrimPrefix(c.Name, "/")
	if other, ok := s.byName[name]; ok {
		return errdefs.Conflictf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", "/"+name, other)
	}
	s.byID[c.ID] = c
	s.byName[name] = c.ID
	return nil
}

func (s *containerStore) delete(c *Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, c.ID)
	if s.byName[strings.TrimPrefix(c.Name, "/")] == c.ID {
		delete(s.byName, strings.TrimPrefix(c.Name, "/"))
	}
}

func (s *containerStore) nameTaken(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.byName[name]
	return ok
}

// get resolves a full ID, a name (with or without "/") or a unique ID prefix.
func (s *containerStore) get(ref string) (*Container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ref == "" {
		return nil, errdefs.NotFoundf("No such container: %s", ref)
	}
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	if id, ok := s.byName[strings.TrimPrefix(ref, "/")]; ok {
		return s.byID[id], nil
	}
	var found *Container
	for id, c := range s.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.InvalidParameterf("multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.NotFoundf("No such container: %s", ref)
	}
	return found, nil
}

// list returns all containers, newest first.
func (s *containerStore) list() []*Container {
	s.mu.RLock()
	out := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

var nameLeft = []string{
	"admiring", "bold", "brave", "calm", "clever", "dazzling", "eager", "elastic", "festive", "focused",
	"gallant", "happy", "jolly", "keen", "kind", "laughing", "lucid", "modest", "nifty", "peaceful",
	"quirky", "relaxed", "serene", "sharp", "stoic", "sweet", "tender", "upbeat", "vibrant", "zealous",
}

var nameRight = []string{
	"albattani", "babbage", "bell", "curie", "darwin", "einstein", "euler", "fermi", "galileo", "hopper",
	"hypatia", "kepler", "lamarr", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie", "shannon",
	"tesla", "thompson", "turing", "volta", "wilson", "wozniak", "yalow", "zhukovsky", "knuth", "torvalds",
}

// generateName makes a Docker-style "adjective_surname" name not yet taken.
func (s *containerStore) generateName() string {
	pick := func(l []string) string {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(l))))
		return l[n.Int64()]
	}
	for i := 0; ; i++ {
		name := pick(nameLeft) + "_" + pick(nameRight)
		if i > 10 {
			name = fmt.Sprintf("%s%d", name, i)
		}
		if !s.nameTaken(name) {
			return name
		}
	}
}
