package keyservice

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Quotas are enforced at creation: the project's live resources of the kind
// are counted and the creation refused (403, Barbican's "Quota reached for
// project ...") when the count has reached the limit. With the SQL store
// the count is part of the statement that inserts (createWithinQuota,
// QuotaGuard), so concurrent creations cannot together go over a limit;
// on a multi-writer Galera cluster that holds per node only (the locking
// read is not certified across nodes). Other stores count, then insert.
//
// When each quota applies, an order's included: POST /v1/orders is held
// to the orders quota when the order is stored. Barbican checks nothing
// more: its worker makes the order's secret (and an asymmetric order's
// container) without any quota check. Arca fulfils an order at once and
// stores what it makes through CreateSecret and CreateContainer, so the
// secrets and containers quotas apply too, when the order is fulfilled;
// over either, the order is an ERROR order with the 403 and its text, and
// nothing of it is kept (TestAsymmetricOrderQuotas). A project's secrets
// quota therefore bounds its secrets however they are made.

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

// createWithinQuota stores a new resource of projectID within its quota of
// resource: through guarded (the store folds the quota into the insert)
// when the store is a QuotaInserter, else checkQuota then plain. Under an
// unlimited default the first guarded insert only looks up whether the
// project has a quota of its own (one statement, the common case); a
// project with a limit has its resources counted by the insert. Store
// errors are wrapped with what; a refusal is the 403 unwrapped.
func (s *Service) createWithinQuota(ctx context.Context, projectID, resource, what string,
	guarded func(QuotaInserter, QuotaGuard) (bool, error), plain func() error) error {
	qi, fold := s.store.(QuotaInserter)
	if !fold {
		if err := s.checkQuota(ctx, projectID, resource); err != nil {
			return err
		}
		if err := plain(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	g := QuotaGuard{Resource: resource, ProjectID: projectID, Limit: Unlimited, At: s.Now()}
	if s.DefaultQuotas()[resource] < 0 {
		done, err := guarded(qi, g)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if done {
			return nil
		}
	}
	q, err := s.EffectiveQuotas(ctx, projectID)
	if err != nil {
		return err
	}
	if g.Limit = q[resource]; g.Limit < 0 {
		// The project's own quota was removed meanwhile.
		if err := plain(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	done, err := guarded(qi, g)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !done {
		return quotaReached(projectID, g.Limit, resource)
	}
	return nil
}

// QuotaGuard is the quota condition a QuotaInserter folds into the
// statement that inserts a resource of a project. Limit >= 0: insert only
// while the project holds fewer than Limit live resources of the kind (at
// At). Limit Unlimited (used when the default is unlimited): insert only
// if the project has no quota of its own for Resource.
type QuotaGuard struct {
	Resource  string
	ProjectID string
	Limit     int
	At        time.Time
}

// QuotaInserter is a Store that checks a quota in the statement that
// inserts (sqlstore.Store). Each method stores as its Store counterpart
// (CreateSecret, CreateOrder, CreateContainer, PutSecretConsumer,
// PutContainerConsumer) but only if the guard lets it, and reports whether
// it did; a consumer registered already is refused like a new one.
type QuotaInserter interface {
	CreateSecretGuarded(ctx context.Context, sec *Secret, g QuotaGuard) (bool, error)
	CreateOrderGuarded(ctx context.Context, o *Order, g QuotaGuard) (bool, error)
	CreateContainerGuarded(ctx context.Context, c *Container, g QuotaGuard) (bool, error)
	PutSecretConsumerGuarded(ctx context.Context, c *SecretConsumer, g QuotaGuard) (bool, error)
	PutContainerConsumerGuarded(ctx context.Context, c *ContainerConsumer, g QuotaGuard) (bool, error)
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
