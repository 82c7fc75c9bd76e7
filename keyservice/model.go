package keyservice

import "time"

// Secret types accepted by Barbican v1.
const (
	SecretTypeSymmetric   = "symmetric"
	SecretTypePublic      = "public"
	SecretTypePrivate     = "private"
	SecretTypePassphrase  = "passphrase"
	SecretTypeCertificate = "certificate"
	SecretTypeOpaque      = "opaque"
)

// Resource statuses as Barbican spells them.
const (
	StatusActive  = "ACTIVE"
	StatusPending = "PENDING"
	StatusError   = "ERROR"
)

// Secret is a stored secret's row. Payload holds the payload sealed by the
// project KEK (never plaintext); it is nil until the payload is set, which is
// how two-step creation is represented.
type Secret struct {
	ID         string
	ProjectID  string
	CreatorID  string
	Name       string
	SecretType string
	Algorithm  string
	BitLength  int // 0 when unset
	Mode       string
	Status     string
	Expiration *time.Time
	Created    time.Time
	Updated    time.Time

	// PayloadContentType is the media type the payload was stored as
	// ("text/plain", "application/octet-stream", ...); empty without payload.
	PayloadContentType string
	// Payload is the sealed payload (see package envelope), nil if none.
	Payload []byte
	// SecretStore names the secret store that holds the secret: its
	// payload is sealed with the project's KEK of that store ("": the
	// store of a deployment with one).
	SecretStore string

	// NoACLs is set by a store that found, in the same statement that read
	// the secret, that it has no stored ACLs: Service.SecretACLs then skips
	// the ACL query. False means "not known", never "has ACLs".
	NoACLs bool
}

// HasPayload reports whether the secret's payload has been stored.
func (s *Secret) HasPayload() bool { return s.Payload != nil }

// Expired reports whether the secret's expiration is at or before now.
// Expired secrets behave as if they did not exist.
func (s *Secret) Expired(now time.Time) bool {
	return s.Expiration != nil && !s.Expiration.After(now)
}

// Order types.
const (
	OrderTypeKey        = "key"
	OrderTypeAsymmetric = "asymmetric"
)

// Order is a request to generate a secret (key) or a key pair
// (asymmetric). Arca completes orders synchronously, so an order is ACTIVE
// with a SecretID (key) or a ContainerID (asymmetric), or ERROR with an
// error code and reason, by the time its creation returns.
type Order struct {
	ID        string
	ProjectID string
	CreatorID string
	Type      string
	Status    string
	// Meta is the order's "meta" object as accepted: only known keys, never
	// an asymmetric order's passphrase (OrderSpec.Passphrase).
	Meta            OrderMeta
	SecretID        string // set when a key order completed
	ContainerID     string // set when an asymmetric order completed
	ErrorStatusCode string
	ErrorReason     string
	Created         time.Time
	Updated         time.Time
}

// OrderMeta is the "meta" object of an order. Pointer fields distinguish
// "absent" from zero so the API can omit what the client did not send (the
// Python client rejects unknown or unexpected keys).
type OrderMeta struct {
	Name               *string `json:"name,omitempty"`
	Algorithm          *string `json:"algorithm,omitempty"`
	BitLength          *int    `json:"bit_length,omitempty"`
	Mode               *string `json:"mode,omitempty"`
	PayloadContentType *string `json:"payload_content_type,omitempty"`
	// Expiration is echoed as the client wrote it; the generated secret
	// carries the parsed time.
	Expiration *string `json:"expiration,omitempty"`
}

// ProjectKEK is a project's key-encryption key, sealed by a master key.
type ProjectKEK struct {
	ProjectID string
	// SecretStore names the secret store whose master key seals it ("":
	// the store of a deployment with one).
	SecretStore string
	// MasterKeyID names the master key that sealed WrappedKEK.
	MasterKeyID string
	WrappedKEK  []byte
	Created     time.Time
	Updated     time.Time
}

// ---- Containers, consumers, ACLs and quotas (containers.go, consumers.go,
// acls.go, quotas.go).

// Container types accepted by Barbican v1.
const (
	ContainerTypeGeneric     = "generic"
	ContainerTypeRSA         = "rsa"
	ContainerTypeCertificate = "certificate"
)

// Container groups references to secrets of its project under names.
type Container struct {
	ID        string
	ProjectID string
	CreatorID string
	Name      string
	Type      string
	Status    string
	Created   time.Time
	Updated   time.Time
	// Secrets are the container's references, ordered by name then id.
	Secrets []ContainerSecret
	// Consumers are the container's registered consumers, oldest first.
	Consumers []ContainerConsumer
}

// ContainerSecret is one named reference from a container to a secret.
// Name is "" when the client gave none (Barbican shows null).
type ContainerSecret struct {
	Name     string
	SecretID string
}

// ContainerConsumer is a service that declared it uses a container
// (Barbican's container consumer: a name and a URL).
type ContainerConsumer struct {
	ContainerID string
	// ProjectID is the project of the caller that registered it; quotas
	// count consumers by it.
	ProjectID string
	Name      string
	URL       string
	Created   time.Time
	Updated   time.Time
}

// SecretConsumer is a resource of another service that uses a secret
// (microversion 1.1).
type SecretConsumer struct {
	SecretID     string
	ProjectID    string // the registering caller's project, as above
	Service      string
	ResourceType string
	ResourceID   string
	Created      time.Time
	Updated      time.Time
}

// ACL kinds: the resources ACLs hang off.
const (
	ACLSecret    = "secret"
	ACLContainer = "container"
)

// ACLRead is the only ACL operation Barbican defines.
const ACLRead = "read"

// ACL is one stored ACL of a secret or container, for one operation.
type ACL struct {
	Operation string
	// ProjectAccess false makes the resource private: only its creator,
	// project admins and Users may use it.
	ProjectAccess bool
	// Users are Keystone user ids granted the operation, whatever their
	// project; sorted.
	Users   []string
	Created time.Time
	Updated time.Time
}

// Quota resources, named as /v1/quotas shows them.
const (
	QuotaSecrets    = "secrets"
	QuotaOrders     = "orders"
	QuotaContainers = "containers"
	QuotaConsumers  = "consumers"
	QuotaCAs        = "cas"
)

// QuotaResources lists the quota resources in Barbican's order.
var QuotaResources = []string{QuotaSecrets, QuotaOrders, QuotaContainers, QuotaConsumers, QuotaCAs}

// Unlimited is the quota value that sets no limit.
const Unlimited = -1

// Quotas maps quota resources to limits (-1 unlimited). In a project's
// configured quotas an absent resource falls back to the default.
type Quotas map[string]int

// ProjectQuotas are the quotas configured for one project.
type ProjectQuotas struct {
	ProjectID string
	Quotas    Quotas
	Created   time.Time
	Updated   time.Time
}
