package keyservice

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// MaxACLUsers bounds the users of one ACL.
const MaxACLUsers = 1000

// ACLSpec is one operation's part of an ACL request. Nil fields were absent
// from the request: PUT gives them their defaults (project access on, no
// users), PATCH keeps what is stored.
type ACLSpec struct {
	ProjectAccess *bool
	Users         *[]string
}

// ACLs returns the stored ACLs of a secret or container.
func (s *Service) ACLs(ctx context.Context, kind, id string) ([]ACL, error) {
	acls, err := s.store.GetACLs(ctx, kind, id)
	if err != nil {
		return nil, fmt.Errorf("loading ACLs: %w", err)
	}
	return acls, nil
}

// SecretACLs returns the stored ACLs of a secret read by LoadSecret,
// without a query when the store reported along with the row that there
// are none (one statement per secret read instead of two).
func (s *Service) SecretACLs(ctx context.Context, sec *Secret) ([]ACL, error) {
	if sec.NoACLs {
		return []ACL{}, nil
	}
	return s.ACLs(ctx, ACLSecret, sec.ID)
}

// PutACLs replaces a resource's ACLs as Barbican's PUT does: every
// operation in specs is set (absent fields take their defaults) and every
// operation not in specs is removed.
func (s *Service) PutACLs(ctx context.Context, kind, id string, specs map[string]ACLSpec) error {
	return s.changeACLs(ctx, kind, id, specs, true)
}

// PatchACLs updates a resource's ACLs as Barbican's PATCH does: only the
// fields given change; other operations stay.
func (s *Service) PatchACLs(ctx context.Context, kind, id string, specs map[string]ACLSpec) error {
	return s.changeACLs(ctx, kind, id, specs, false)
}

// DeleteACLs removes all ACLs of a resource: it is back to project access.
func (s *Service) DeleteACLs(ctx context.Context, kind, id string) error {
	return s.replaceACLs(ctx, kind, id, nil)
}

func (s *Service) changeACLs(ctx context.Context, kind, id string, specs map[string]ACLSpec, replace bool) error {
	for op, spec := range specs {
		if op != ACLRead {
			return Errorf(ErrInvalid, "Invalid ACL operation %q: only 'read' is supported.", op)
		}
		if spec.Users != nil {
			if len(*spec.Users) > MaxACLUsers {
				return Errorf(ErrInvalid, "Invalid ACL: at most %d users.", MaxACLUsers)
			}
			for _, u := range *spec.Users {
				if u == "" || len(u) > 255 {
					return Errorf(ErrInvalid, "Invalid ACL user: user ids are 1 to 255 characters.")
				}
			}
		}
	}
	current, err := s.ACLs(ctx, kind, id)
	if err != nil {
		return err
	}
	now := s.Now()
	byOp := map[string]ACL{}
	for _, a := range current {
		byOp[a.Operation] = a
	}
	next := []ACL{}
	if !replace {
		for _, a := range current {
			if _, changed := specs[a.Operation]; !changed {
				next = append(next, a)
			}
		}
	}
	for op, spec := range specs {
		old, exists := byOp[op]
		a := ACL{Operation: op, ProjectAccess: true, Users: []string{}, Created: now, Updated: now}
		if exists {
			a.Created = old.Created
			if !replace {
				a.ProjectAccess, a.Users = old.ProjectAccess, old.Users
			}
		}
		if spec.ProjectAccess != nil {
			a.ProjectAccess = *spec.ProjectAccess
		}
		if spec.Users != nil {
			a.Users = slices.Compact(slices.Sorted(slices.Values(*spec.Users)))
		}
		next = append(next, a)
	}
	return s.replaceACLs(ctx, kind, id, next)
}

func (s *Service) replaceACLs(ctx context.Context, kind, id string, acls []ACL) error {
	err := s.store.ReplaceACLs(ctx, kind, id, acls)
	if errors.Is(err, ErrNotFound) {
		if kind == ACLContainer {
			return containerNotFound()
		}
		return secretNotFound()
	}
	if err != nil {
		return fmt.Errorf("storing ACLs: %w", err)
	}
	return nil
}
