package keyservice

import (
	"context"
	"errors"
	"fmt"
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
		return Errorf(ErrInvalid, fmt.Sprintf("Invalid consumer: 'name' and 'URL' are at most %d characters.", MaxNameLength))
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
	err := s.store.PutContainerConsumer(ctx, cc)
	if errors.Is(err, ErrNotFound) {
		return containerNotFound()
	}
	if err != nil {
		return fmt.Errorf("registering a container consumer: %w", err)
	}
	return nil
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
