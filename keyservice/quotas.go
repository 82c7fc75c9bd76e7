package keyservice

import (
	"context"
	"errors"
	"fmt"
)

// Quotas are enforced at creation: the project's live resources of the kind
// are counted and the creation refused (403) when the count has reached
// the limit. Counting and inserting are not one atomic step, so racing
// creations can overshoot a limit by the number of racers; a quota is a
// guard against runaway clients, not an exact ledger.

// describeError returns a client-facing error's description.
func describeError(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Description
	}
	return err.Error()
}

// DefaultQuotas returns the configured default quotas, every resource
// present (-1: unlimited).
func (s *Service) DefaultQuotas() Quotas {
	q := Quotas{}
	for _, r := range QuotaResources {
		q[r] = Unlimited
		if v, ok := s.quotas[r]; ok {
			q[r] = v
		}
	}
	return q
}

// EffectiveQuotas returns a project's quotas: its configured values over
// the defaults.
func (s *Service) EffectiveQuotas(ctx context.Context, projectID string) (Quotas, error) {
	q := s.DefaultQuotas()
	pq, err := s.store.GetProjectQuotas(ctx, projectID)
	switch {
	case errors.Is(err, ErrNotFound):
		return q, nil
	case err != nil:
		return nil, fmt.Errorf("loading project quotas: %w", err)
	}
	for r, v := range pq.Quotas {
		q[r] = v
	}
	return q, nil
}

// checkQuota refuses a creation that would take the project over its quota
// of resource.
func (s *Service) checkQuota(ctx context.Context, projectID, resource string) error {
	q, err := s.EffectiveQuotas(ctx, projectID)
	if err != nil {
		return err
	}
	limit := q[resource]
	if limit < 0 {
		return nil
	}
	n := 0
	if limit > 0 {
		if n, err = s.store.CountResources(ctx, projectID, resource, s.Now()); err != nil {
			return fmt.Errorf("counting %s: %w", resource, err)
		}
	}
	if n >= limit {
		return quotaReached(projectID, limit, resource)
	}
	return nil
}

func quotaReached(projectID string, limit int, resource string) error {
	return Errorf(ErrForbidden, "Quota reached for project %s. Only %d %s are allowed.", projectID, limit, resource)
}

func projectQuotasNotFound() error { return Errorf(ErrNotFound, "Project quotas not found.") }

// ProjectQuotas returns a project's configured quotas.
func (s *Service) ProjectQuotas(ctx context.Context, projectID string) (*ProjectQuotas, error) {
	if projectID == "" || len(projectID) > 255 {
		return nil, projectQuotasNotFound()
	}
	pq, err := s.store.GetProjectQuotas(ctx, projectID)
	if errors.Is(err, ErrNotFound) {
		return nil, projectQuotasNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("loading project quotas: %w", err)
	}
	return pq, nil
}

// SetProjectQuotas configures a project's quotas (replacing any before);
// values are -1 (unlimited) or more.
func (s *Service) SetProjectQuotas(ctx context.Context, projectID string, q Quotas) error {
	if projectID == "" || len(projectID) > 255 {
		return Errorf(ErrInvalid, "Invalid project id.")
	}
	for r, v := range q {
		known := false
		for _, k := range QuotaResources {
			known = known || k == r
		}
		if !known {
			return Errorf(ErrInvalid, "Invalid quota resource %q.", r)
		}
		if v < Unlimited {
			return Errorf(ErrInvalid, "Invalid quota for %s: must be -1 (unlimited) or more.", r)
		}
	}
	now := s.Now()
	if err := s.store.SetProjectQuotas(ctx, &ProjectQuotas{ProjectID: projectID, Quotas: q, Created: now, Updated: now}); err != nil {
		return fmt.Errorf("storing project quotas: %w", err)
	}
	return nil
}

// DeleteProjectQuotas removes a project's configured quotas: the defaults
// apply again.
func (s *Service) DeleteProjectQuotas(ctx context.Context, projectID string) error {
	if projectID == "" || len(projectID) > 255 {
		return projectQuotasNotFound()
	}
	err := s.store.DeleteProjectQuotas(ctx, projectID)
	if errors.Is(err, ErrNotFound) {
		return projectQuotasNotFound()
	}
	if err != nil {
		return fmt.Errorf("deleting project quotas: %w", err)
	}
	return nil
}

// ListProjectQuotas returns a page of configured project quotas.
func (s *Service) ListProjectQuotas(ctx context.Context, limit, offset int) ([]*ProjectQuotas, int, error) {
	list, total, err := s.store.ListProjectQuotas(ctx, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("listing project quotas: %w", err)
	}
	return list, total, nil
}
