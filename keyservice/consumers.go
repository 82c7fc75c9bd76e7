package keyservice

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ConsumerSpec names a container consumer: Barbican's {"name", "URL"}.
type ConsumerSpec struct {
	Name string
	URL  string
}

func validateConsumer(spec ConsumerSpec) error {
	if spec.Name == "" || spec.URL == "" {
		return Errorf(ErrInvalid, "Invalid consumer: 'name' and 'URL' are required non-empty strings.")
	}
	if len(spec.Name) > MaxNameLength || len(spec.URL) > MaxNameLength {
		return Errorf(ErrInvalid, "Invalid consumer: 'name' and 'URL' are at most %d characters.", MaxNameLength)
	}
	return nil
}

// AddContainerConsumer registers a consumer of a container; registering the
// same one again is not an error (it refreshes its updated time).
func (s *Service) AddContainerConsumer(ctx context.Context, caller Caller, c *Container, spec ConsumerSpec) error {
	if err := validateConsumer(spec); err != nil {
		return err
	}
	now := s.Now()
	cc := &ContainerConsumer{ContainerID: c.ID, ProjectID: caller.ProjectID, Name: spec.Name, URL: spec.URL, Created: now, Updated: now}
	var err error
	if slices.ContainsFunc(c.Consumers, func(cc ContainerConsumer) bool { return cc.Name == spec.Name && cc.URL == spec.URL }) {
		// Registering a known consumer again adds nothing to count.
		if err = s.store.PutContainerConsumer(ctx, cc); err != nil {
			err = fmt.Errorf("registering a container consumer: %w", err)
		}
	} else {
		err = s.createWithinQuota(ctx, caller.ProjectID, QuotaConsumers, "registering a container consumer",
			func(qi QuotaInserter, g QuotaGuard) (bool, error) { return qi.PutContainerConsumerGuarded(ctx, cc, g) },
			func() error { return s.store.PutContainerConsumer(ctx, cc) })
	}
	if errors.Is(err, ErrNotFound) {
		return containerNotFound()
	}
	return err
}

// RemoveContainerConsumer removes a consumer of a container.
func (s *Service) RemoveContainerConsumer(ctx context.Context, c *Container, spec ConsumerSpec) error {
	if err := validateConsumer(spec); err != nil {
		return err
	}
	err := s.store.RemoveContainerConsumer(ctx, c.ID, spec.Name, spec.URL)
	if errors.Is(err, ErrNotFound) {
		return Errorf(ErrNotFound, "Consumer not found.")
	}
	if err != nil {
		return fmt.Errorf("removing a container consumer: %w", err)
	}
	return nil
}

// ListContainerConsumers returns a page of a container's consumers.
func (s *Service) ListContainerConsumers(ctx context.Context, c *Container, limit, offset int) ([]ContainerConsumer, int, error) {
	list, total, err := s.store.ListContainerConsumers(ctx, c.ID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("listing container consumers: %w", err)
	}
	return list, total, nil
}

// SecretConsumerSpec names a secret consumer (microversion 1.1).
type SecretConsumerSpec struct {
	Service      string
	ResourceType string
	ResourceID   string
}

// Barbican's limits on secret consumer fields.
const (
	maxConsumerField      = 255
	maxConsumerResourceID = 36
)

func validateSecretConsumer(spec SecretConsumerSpec) error {
	if spec.Service == "" || spec.ResourceType == "" || spec.ResourceID == "" {
		return Errorf(ErrInvalid, "Invalid consumer: 'service', 'resource_type' and 'resource_id' are required non-empty strings.")
	}
	if len(spec.Service) > maxConsumerField || len(spec.ResourceType) > maxConsumerField || len(spec.ResourceID) > maxConsumerResourceID {
		return Errorf(ErrInvalid, "Invalid consumer: 'service' and 'resource_type' are at most 255 characters, 'resource_id' at most 36.")
	}
	return nil
}

// AddSecretConsumer registers a consumer of a secret; registering the same
// one again is not an error.
func (s *Service) AddSecretConsumer(ctx context.Context, caller Caller, sec *Secret, spec SecretConsumerSpec) error {
	if err := validateSecretConsumer(spec); err != nil {
		return err
	}
	now := s.Now()
	sc := &SecretConsumer{SecretID: sec.ID, ProjectID: caller.ProjectID, Service: spec.Service,
		ResourceType: spec.ResourceType, ResourceID: spec.ResourceID, Created: now, Updated: now}
	err := s.createWithinQuota(ctx, caller.ProjectID, QuotaConsumers, "registering a secret consumer",
		func(qi QuotaInserter, g QuotaGuard) (bool, error) { return qi.PutSecretConsumerGuarded(ctx, sc, g) },
		func() error { return s.store.PutSecretConsumer(ctx, sc) })
	if errors.Is(err, ErrNotFound) {
		return secretNotFound()
	}
	return err
}

// RemoveSecretConsumer removes a consumer of a secret.
func (s *Service) RemoveSecretConsumer(ctx context.Context, sec *Secret, spec SecretConsumerSpec) error {
	if err := validateSecretConsumer(spec); err != nil {
		return err
	}
	err := s.store.RemoveSecretConsumer(ctx, sec.ID, spec.Service, spec.ResourceType, spec.ResourceID)
	if errors.Is(err, ErrNotFound) {
		return Errorf(ErrNotFound, "Consumer not found.")
	}
	if err != nil {
		return fmt.Errorf("removing a secret consumer: %w", err)
	}
	return nil
}

// ListSecretConsumers returns a page of a secret's consumers.
func (s *Service) ListSecretConsumers(ctx context.Context, sec *Secret, limit, offset int) ([]SecretConsumer, int, error) {
	list, total, err := s.store.ListSecretConsumers(ctx, sec.ID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("listing secret consumers: %w", err)
	}
	return list, total, nil
}
