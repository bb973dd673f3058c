package daemon

import (
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

func TestContainerStoreLookup(t *testing.T) {
	s := newContainerStore()
	a := &Container{ID: "abc123" + newID()[6:], Name: "/alpha"}
	b := &Container{ID: "abd456" + newID()[6:], Name: "/beta"}
	for _, c := range []*Container{a, b} {
		if err := s.add(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.add(&Container{ID: newID(), Name: "/alpha"}); !errdefs.IsConflict(err) {
		t.Fatalf("duplicate name: %v, want conflict", err)
	}
	cases := []struct {
		ref  string
		want *Container
		err  func(error) bool
	}{
		{a.ID, a, nil},
		{"alpha", a, nil},
		{"/beta", b, nil},
		{"abc", a, nil},
		{"ab", nil, errdefs.IsInvalidParameter},
		{"zzz", nil, errdefs.IsNotFound},
		{"", nil, errdefs.IsNotFound},
	}
	for _, tc := range cases {
		got, err := s.get(tc.ref)
		if tc.err != nil {
			if !tc.err(err) {
				t.Errorf("get(%q) error = %v", tc.ref, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("get(%q) = %v, %v", tc.ref, got, err)
		}
	}
	s.delete(a)
	if !s.nameTaken("beta") || s.nameTaken("alpha") {
		t.Fatalf("names after delete are wrong")
	}
	if n := s.generateName(); n == "" || s.nameTaken(n) {
		t.Fatalf("generateName = %q", n)
	}
}
