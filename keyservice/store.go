package keyservice

import (
	"context"
	"time"
)

// Store persists the key service's resources: one interface per resource,
// so that a consumer (or a test fake) takes only the part it needs.
// Implementations must be safe for concurrent use by many goroutines and many
// processes sharing one database, and must not rely on table locks
// (Galera-ready): conflicts are detected with unique keys and conditional
// updates.
//
// Errors: ErrNotFound when a row does not exist, ErrConflict when a unique
// key or a precondition is violated, ErrUnavailable when the database cannot
// be reached or does not answer in time; anything else is an internal error,
// wrapped with context. Stores never see plaintext key material.
type Store interface {
	HealthStore
	KEKStore
	SecretStore
	SecretMetadataStore
	OrderStore
	ProjectKeyStore
	AuditStore
	ContainerStore
	ACLStore
	ConsumerStore
	QuotaStore
	PreferredStoreStore
}

// HealthStore is what a health check needs.
type HealthStore interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
}

// KEKStore keeps each project's sealed key-encryption keys: one per project
// and secret store (the store argument or ProjectKEK.SecretStore; "" is the
// store of a deployment with one, see docs/operations.md).
type KEKStore interface {
	// GetProjectKEK returns the project's sealed KEK in the store,
	// ErrNotFound if none.
	GetProjectKEK(ctx context.Context, projectID, store string) (ProjectKEK, error)
	// CreateProjectKEK inserts a KEK; ErrConflict if the project has one
	// in that store already (a concurrent creator won: re-read it).
	CreateProjectKEK(ctx context.Context, kek ProjectKEK) error
	// ReplaceProjectKEK swaps the sealed KEK of a project in a store if and
	// only if it is still sealed by oldMasterKeyID (compare-and-swap);
	// ErrConflict otherwise, ErrNotFound if the project has no KEK there.
	ReplaceProjectKEK(ctx context.Context, kek ProjectKEK, oldMasterKeyID string) error
	// ListProjectKEKs returns up to limit KEKs of a store with ProjectID >
	// after, ordered by ProjectID: the cursor of a resumable rewrap.
	ListProjectKEKs(ctx context.Context, store, after string, limit int) ([]ProjectKEK, error)
}

// PreferredStoreStore keeps each project's preferred secret store
// (secretstores.go).
type PreferredStoreStore interface {
	// GetPreferredSecretStore returns the store a project prefers;
	// ErrNotFound if it has set none.
	GetPreferredSecretStore(ctx context.Context, projectID string) (string, error)
	// SetPreferredSecretStore creates or replaces a project's preference.
	SetPreferredSecretStore(ctx context.Context, projectID, store string, now time.Time) error
	// DeletePreferredSecretStore removes it; ErrNotFound if none.
	DeletePreferredSecretStore(ctx context.Context, projectID string) error
}

// SecretStore keeps secrets and their sealed payloads.
type SecretStore interface {
	// CreateSecret inserts a secret (with or without payload).
	CreateSecret(ctx context.Context, s *Secret) error
	// GetSecret returns a secret by id, whatever its project.
	GetSecret(ctx context.Context, id string) (*Secret, error)
	// SetSecretPayload stores the payload of a secret that has none;
	// ErrConflict if it has one, ErrNotFound if the secret does not exist.
	SetSecretPayload(ctx context.Context, id, contentType string, sealed []byte, updated time.Time) error
	// DeleteSecret removes a secret and everything hanging off it.
	DeleteSecret(ctx context.Context, id string) error
	// PurgeExpiredSecrets removes the secrets that expired before before,
	// and everything hanging off them, at most batch (0: 1000) per
	// transaction, and returns how many; dryRun counts them instead.
	PurgeExpiredSecrets(ctx context.Context, before time.Time, batch int, dryRun bool) (int64, error)
	// ListSecrets returns one page of a project's secrets and the total
	// number matching the filter.
	ListSecrets(ctx context.Context, f SecretFilter) ([]*Secret, int, error)
}

// SecretMetadataStore keeps the user metadata of secrets; it goes with its
// secret.
type SecretMetadataStore interface {
	// GetSecretMetadata returns a secret's user metadata (never nil).
	GetSecretMetadata(ctx context.Context, secretID string) (map[string]string, error)
	// ReplaceSecretMetadata replaces all user metadata of a secret.
	ReplaceSecretMetadata(ctx context.Context, secretID string, md map[string]string) error
	// AddSecretMetadatum adds one key; ErrConflict if it exists.
	AddSecretMetadatum(ctx context.Context, secretID, key, value string) error
	// UpdateSecretMetadatum sets an existing key; ErrNotFound if absent.
	UpdateSecretMetadatum(ctx context.Context, secretID, key, value string) error
	// DeleteSecretMetadatum removes one key; ErrNotFound if absent.
	DeleteSecretMetadatum(ctx context.Context, secretID, key string) error
}

// OrderStore keeps orders.
type OrderStore interface {
	// CreateOrder inserts an order.
	CreateOrder(ctx context.Context, o *Order) error
	// UpdateOrder stores an order's status, result and error fields.
	UpdateOrder(ctx context.Context, o *Order) error
	// GetOrder returns an order by id, whatever its project.
	GetOrder(ctx context.Context, id string) (*Order, error)
	// ListOrders returns one page of a project's orders, oldest first, and
	// the project's total.
	ListOrders(ctx context.Context, projectID string, limit, offset int) ([]*Order, int, error)
	// DeleteOrder removes an order (not the secret it produced).
	DeleteOrder(ctx context.Context, id string) error
}

// ProjectKeyStore keeps project keys (projectkeys.go,
// docs/project-keys.md). At most one ACTIVE key per project, enforced by a
// unique key, never by a lock.
type ProjectKeyStore interface {
	// CreateProjectKey inserts k as its project's ACTIVE key; ErrConflict
	// if the project already has an active key (a concurrent creator won).
	CreateProjectKey(ctx context.Context, k *ProjectKey) error
	// GetActiveProjectKey returns the project's ACTIVE key; ErrNotFound if
	// it has none.
	GetActiveProjectKey(ctx context.Context, projectID string) (*ProjectKey, error)
	// GetProjectKey returns a key by id, whatever its project and status.
	GetProjectKey(ctx context.Context, id string) (*ProjectKey, error)
	// ListProjectKeys returns one page of a project's keys, newest first,
	// and the project's total.
	ListProjectKeys(ctx context.Context, projectID string, limit, offset int) ([]*ProjectKey, int, error)
	// RotateProjectKey atomically makes oldID DEACTIVATED (at next.Created)
	// and inserts next as the project's ACTIVE key. ErrConflict if oldID is
	// no longer next.ProjectID's active key (a concurrent rotation or
	// destruction won).
	RotateProjectKey(ctx context.Context, oldID string, next *ProjectKey) error
	// DestroyProjectKey wipes a DEACTIVATED key's material and marks it
	// DESTROYED at now, in one conditional statement: it never destroys an
	// ACTIVE key (ErrConflict, force or not), nor, unless force is set, a
	// key deactivated after deactivatedBy (ErrConflict). ErrGone if it is
	// destroyed already, ErrNotFound if absent.
	DestroyProjectKey(ctx context.Context, id string, force bool, deactivatedBy, now time.Time) error
}

// AuditStore keeps the project keys' audit trail (audit.go, auditexport.go,
// docs/operations.md).
type AuditStore interface {
	// AppendKeyAudit writes audit records, all or none.
	AppendKeyAudit(ctx context.Context, recs []KeyAuditRecord) error
	// ListKeyAudit returns audit records, oldest first.
	ListKeyAudit(ctx context.Context, f KeyAuditFilter) ([]KeyAuditRecord, error)
	// ScanKeyAudit returns audit records with ID > q.AfterID, of
	// q.ProjectID (empty: all projects), written at or after q.Since (zero:
	// any time), oldest first, at most q.Limit (0: 1000).
	ScanKeyAudit(ctx context.Context, q KeyAuditQuery) ([]KeyAuditRecord, error)
	// PruneKeyAudit removes the records written before before, oldest
	// first, at most batch (0: 10,000) in each statement, and returns how
	// many it removed; dryRun counts them instead. It stops at the first
	// record, in write order, that is not older: records are appended in
	// time order, so that is where the old ones end.
	PruneKeyAudit(ctx context.Context, before time.Time, batch int, dryRun bool) (int64, error)
}

// ContainerStore keeps containers (containers.go). Containers reference
// secrets by id; deleting a secret removes it from every container, deleting
// a container removes its references and consumers (foreign keys, ON DELETE
// CASCADE).
type ContainerStore interface {
	// CreateContainer inserts a container and its secret references, all
	// or nothing; ErrNotFound if a referenced secret does not exist.
	CreateContainer(ctx context.Context, c *Container) error
	// GetContainer returns a container with its references and consumers,
	// whatever its project.
	GetContainer(ctx context.Context, id string) (*Container, error)
	// ListContainers returns one page of a project's containers (with
	// references and consumers), oldest first, and the total matching.
	ListContainers(ctx context.Context, f ContainerFilter) ([]*Container, int, error)
	// DeleteContainer removes a container, its references and consumers.
	DeleteContainer(ctx context.Context, id string) error
	// AddContainerSecret adds a reference; ErrConflict if the same name
	// and secret are there already, ErrNotFound if the container or the
	// secret does not exist.
	AddContainerSecret(ctx context.Context, containerID string, ref ContainerSecret, updated time.Time) error
	// RemoveContainerSecret removes a reference; ErrNotFound if absent.
	RemoveContainerSecret(ctx context.Context, containerID string, ref ContainerSecret, updated time.Time) error
}

// ACLStore keeps the ACLs of secrets and containers (acls.go). kind is
// ACLSecret or ACLContainer; ACLs go with the resource they belong to.
type ACLStore interface {
	// GetACLs returns a resource's ACLs ordered by operation, with users
	// sorted; none (not an error) when it has none or does not exist.
	GetACLs(ctx context.Context, kind, id string) ([]ACL, error)
	// ReplaceACLs replaces all ACLs of a resource, atomically; an empty
	// list deletes them. ErrNotFound if the resource does not exist.
	ReplaceACLs(ctx context.Context, kind, id string, acls []ACL) error
}

// ConsumerStore keeps the consumers of secrets (microversion 1.1) and of
// containers (consumers.go); they go with the resource they consume.
type ConsumerStore interface {
	// PutSecretConsumer registers a consumer; registering one again only
	// refreshes its Updated time. ErrNotFound if the secret does not exist.
	PutSecretConsumer(ctx context.Context, c *SecretConsumer) error
	// RemoveSecretConsumer removes a consumer; ErrNotFound if absent.
	RemoveSecretConsumer(ctx context.Context, secretID, service, resourceType, resourceID string) error
	// ListSecretConsumers returns one page of a secret's consumers, oldest
	// first, and their total (limit <= 0: only the total).
	ListSecretConsumers(ctx context.Context, secretID string, limit, offset int) ([]SecretConsumer, int, error)

	// PutContainerConsumer registers a consumer; registering one again
	// only refreshes its Updated time. ErrNotFound if the container does
	// not exist.
	PutContainerConsumer(ctx context.Context, c *ContainerConsumer) error
	// RemoveContainerConsumer removes a consumer; ErrNotFound if absent.
	RemoveContainerConsumer(ctx context.Context, containerID, name, url string) error
	// ListContainerConsumers returns one page of a container's consumers,
	// oldest first, and their total.
	ListContainerConsumers(ctx context.Context, containerID string, limit, offset int) ([]ContainerConsumer, int, error)
}

// QuotaStore keeps configured project quotas and counts what they limit
// (quotas.go).
type QuotaStore interface {
	// GetProjectQuotas returns a project's configured quotas (only the
	// resources set); ErrNotFound if none are configured.
	GetProjectQuotas(ctx context.Context, projectID string) (*ProjectQuotas, error)
	// SetProjectQuotas creates or replaces a project's configured quotas.
	SetProjectQuotas(ctx context.Context, q *ProjectQuotas) error
	// DeleteProjectQuotas removes them; ErrNotFound if none.
	DeleteProjectQuotas(ctx context.Context, projectID string) error
	// ListProjectQuotas returns one page of configured project quotas,
	// ordered by project id, and their total.
	ListProjectQuotas(ctx context.Context, limit, offset int) ([]*ProjectQuotas, int, error)
	// CountResources counts a project's live resources of one quota kind
	// (QuotaSecrets: not expired at now; QuotaConsumers: container and
	// secret consumers registered by the project).
	CountResources(ctx context.Context, projectID, resource string, now time.Time) (int, error)
}

// Comparison operators of the created/updated/expiration list filters.
const (
	CmpEQ  = ""
	CmpGT  = "gt"
	CmpGTE = "gte"
	CmpLT  = "lt"
	CmpLTE = "lte"
)

// TimeCondition is one "[op:]timestamp" term of a date filter.
type TimeCondition struct {
	Op   string // one of the Cmp* constants
	Time time.Time
}

// SortKey is one "key[:asc|desc]" term of the sort parameter. Field is one
// of the sortable column names Barbican accepts (algorithm, bit_length,
// created, expiration, mode, name, secret_type, status, updated).
type SortKey struct {
	Field string
	Desc  bool
}

// SecretFilter selects a page of secrets. Name, Algorithm and Mode are SQL
// LIKE patterns as Barbican treats them (the client may send "%" itself);
// empty means no condition. Secrets that expired at or before Now are never
// returned nor counted.
type SecretFilter struct {
	ProjectID string
	// ACLUserID, when set, replaces the project condition: the secrets of
	// any project whose read ACL names this user (Barbican's acl_only).
	ACLUserID  string
	Name       string
	Algorithm  string
	Mode       string
	BitLength  int // 0: any
	SecretType string
	Created    []TimeCondition
	Updated    []TimeCondition
	Expiration []TimeCondition
	// Sort defaults to created ascending; the id breaks ties so that pages
	// are stable.
	Sort   []SortKey
	Limit  int
	Offset int
	Now    time.Time
}

// SortableSecretFields lists the fields ListSecrets can sort on.
var SortableSecretFields = map[string]bool{
	"algorithm": true, "bit_length": true, "created": true, "expiration": true,
	"mode": true, "name": true, "secret_type": true, "status": true, "updated": true,
}

// ContainerFilter selects a page of a project's containers. Name is an SQL
// LIKE pattern as for secrets; Type an exact type; empty means any.
type ContainerFilter struct {
	ProjectID string
	Name      string
	Type      string
	Limit     int
	Offset    int
}
