package keyservice

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ContainerSpec is a request to create a container. Secrets name secrets
// by id: the HTTP layer turns refs into ids and refuses refs that do not
// point at this service.
type ContainerSpec struct {
	Name    string
	Type    string
	Secrets []ContainerSecret
}

// Reference names typed containers allow, and those they require.
var (
	rsaNames  = map[string]bool{"public_key": true, "private_key": true, "private_key_passphrase": true}
	certNames = map[string]bool{"certificate": true, "private_key": true, "private_key_passphrase": true, "intermediates": true}
)

// CreateContainer stores a new container in the caller's project. Every
// referenced secret must be a live secret of that project: any other is
// reported as not existing, so a container cannot be used to probe or to
// reach another project's secrets.
func (s *Service) CreateContainer(ctx context.Context, caller Caller, spec ContainerSpec) (*Container, error) {
	if err := validateContainerSpec(spec); err != nil {
		return nil, err
	}
	for _, ref := range spec.Secrets {
		if _, err := s.projectSecret(ctx, caller.ProjectID, ref.SecretID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, Errorf(ErrNotFound, "Secret provided for '%s' doesn't exist.", ref.Name)
			}
			return nil, err
		}
	}
	now := s.Now()
	c := &Container{
		ID: NewID(), ProjectID: caller.ProjectID, CreatorID: caller.UserID, Name: spec.Name, Type: spec.Type,
		Status: StatusActive, Created: now, Updated: now, Secrets: spec.Secrets, Consumers: []ContainerConsumer{},
	}
	if c.Secrets == nil {
		c.Secrets = []ContainerSecret{}
	}
	err := s.createWithinQuota(ctx, c.ProjectID, QuotaContainers, "storing container",
		func(qi QuotaInserter, g QuotaGuard) (bool, error) { return qi.CreateContainerGuarded(ctx, c, g) },
		func() error { return s.store.CreateContainer(ctx, c) })
	if errors.Is(err, ErrNotFound) {
		// A referenced secret was deleted meanwhile.
		return nil, Errorf(ErrNotFound, "Secret provided doesn't exist.")
	}
	if err != nil {
		return nil, err
	}
	sortContainerSecrets(c.Secrets)
	return c, nil
}

func sortContainerSecrets(refs []ContainerSecret) {
	slices.SortFunc(refs, func(a, b ContainerSecret) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.SecretID, b.SecretID))
	})
}

func validateContainerSpec(spec ContainerSpec) error {
	switch spec.Type {
	case ContainerTypeGeneric, ContainerTypeRSA, ContainerTypeCertificate:
	default:
		return Errorf(ErrInvalid, "Invalid container type: must be one of generic, rsa, certificate.")
	}
	if len(spec.Name) > MaxNameLength {
		return Errorf(ErrInvalid, "Invalid name: longer than %d characters.", MaxNameLength)
	}
	names, ids := map[string]bool{}, map[string]bool{}
	for _, ref := range spec.Secrets {
		if len(ref.Name) > MaxNameLength {
			return Errorf(ErrInvalid, "Invalid secret reference name: longer than %d characters.", MaxNameLength)
		}
		if names[ref.Name] {
			return Errorf(ErrInvalid, "Duplicate reference names are not allowed.")
		}
		if ids[ref.SecretID] {
			return Errorf(ErrInvalid, "Duplicate secret ids are not allowed.")
		}
		names[ref.Name], ids[ref.SecretID] = true, true
	}
	switch spec.Type {
	case ContainerTypeRSA:
		for n := range names {
			if !rsaNames[n] {
				return Errorf(ErrInvalid, "Only 'private_key', 'public_key' and 'private_key_passphrase' reference names are allowed for RSA type.")
			}
		}
		if !names["public_key"] || !names["private_key"] {
			return Errorf(ErrInvalid, "The minimum required reference names are 'public_key' and 'private_key' for RSA type.")
		}
	case ContainerTypeCertificate:
		for n := range names {
			if !certNames[n] {
				return Errorf(ErrInvalid, "Only 'private_key', 'certificate', 'private_key_passphrase', or 'intermediates' reference names are allowed for Certificate type.")
			}
		}
		if !names["certificate"] {
			return Errorf(ErrInvalid, "The minimum required reference name is 'certificate' for Certificate type.")
		}
	}
	return nil
}

// projectSecret returns a live secret of the project; any other secret,
// expired, missing or foreign, is ErrNotFound.
func (s *Service) projectSecret(ctx context.Context, projectID, id string) (*Secret, error) {
	sec, err := s.LoadSecret(ctx, id)
	if err != nil {
		return nil, err
	}
	if sec.ProjectID != projectID {
		return nil, secretNotFound()
	}
	return sec, nil
}

// LoadContainer returns a container by id, whatever its project.
func (s *Service) LoadContainer(ctx context.Context, id string) (*Container, error) {
	if !validID(id) {
		return nil, containerNotFound()
	}
	c, err := s.store.GetContainer(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, containerNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("loading container: %w", err)
	}
	return c, nil
}

func containerNotFound() error { return Errorf(ErrNotFound, "Container not found.") }

// ListContainers returns a page of the filter's project's containers.
func (s *Service) ListContainers(ctx context.Context, f ContainerFilter) ([]*Container, int, error) {
	list, total, err := s.store.ListContainers(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("listing containers: %w", err)
	}
	return list, total, nil
}

// DeleteContainer deletes a container, its references (not the secrets)
// and its consumers.
func (s *Service) DeleteContainer(ctx context.Context, c *Container) error {
	err := s.store.DeleteContainer(ctx, c.ID)
	if errors.Is(err, ErrNotFound) {
		return containerNotFound()
	}
	if err != nil {
		return fmt.Errorf("deleting container: %w", err)
	}
	return nil
}

// AddContainerSecret adds a reference to a generic container. The secret
// must be a live secret of the container's project (and so of the
// caller's, whom policy let in).
func (s *Service) AddContainerSecret(ctx context.Context, caller Caller, c *Container, ref ContainerSecret) error {
	if c.Type != ContainerTypeGeneric {
		return Errorf(ErrInvalid, "Only 'generic' containers can be modified.")
	}
	if len(ref.Name) > MaxNameLength {
		return Errorf(ErrInvalid, "Invalid secret reference name: longer than %d characters.", MaxNameLength)
	}
	if c.ProjectID != caller.ProjectID {
		return Errorf(ErrNotFound, "Secret provided doesn't exist.")
	}
	if _, err := s.projectSecret(ctx, c.ProjectID, ref.SecretID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Errorf(ErrNotFound, "Secret provided doesn't exist.")
		}
		return err
	}
	err := s.store.AddContainerSecret(ctx, c.ID, ref, s.Now())
	switch {
	case errors.Is(err, ErrConflict):
		return Errorf(ErrConflict, "Conflict. A secret with that name and ID is already stored in this container. The same secret can exist in a container as long as the name is unique.")
	case errors.Is(err, ErrNotFound):
		return Errorf(ErrNotFound, "Secret provided doesn't exist.")
	case err != nil:
		return fmt.Errorf("adding a secret to a container: %w", err)
	}
	return nil
}

// RemoveContainerSecret removes a reference from a generic container.
func (s *Service) RemoveContainerSecret(ctx context.Context, c *Container, ref ContainerSecret) error {
	if c.Type != ContainerTypeGeneric {
		return Errorf(ErrInvalid, "Only 'generic' containers can be modified.")
	}
	err := s.store.RemoveContainerSecret(ctx, c.ID, ref, s.Now())
	if errors.Is(err, ErrNotFound) {
		return Errorf(ErrNotFound, "Secret provided is not in the container.")
	}
	if err != nil {
		return fmt.Errorf("removing a secret from a container: %w", err)
	}
	return nil
}
