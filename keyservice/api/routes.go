package api

import (
	"net/http"

	"opendev.org/x/arca/keyservice"
)

// Body limits. Barbican caps secret payloads at 20000 bytes and whole
// requests at 25000.
const (
	secretBodyLimit   = 25000
	smallBodyLimit    = 16 << 10
	metadataBodyLimit = 64 << 10
	// A container lists its secret refs: room for a few hundred.
	containerBodyLimit = 64 << 10
	// An ACL lists user ids (at most keyservice.MaxACLUsers).
	aclBodyLimit = 300 << 10
)

// routes is the whole API surface: every path, the policy rule it enforces,
// what the wrapper checks it against (the caller's project for collection
// routes, the stored row the route's loader fetches for the others), which
// token scopes reach it, and how much body it accepts. Rules carry Barbican's names so a
// policy.yaml written for Barbican applies unchanged. The function is that
// table and nothing else, one literal with a line per route, kept in one
// piece so that the surface reads in one place however long it grows.
func (s *Server) routes() []route { //nolint:funlen // the route table: one line per route, read in one place
	return []route{
		// Discovery and health: no authentication, as in Barbican.
		{method: http.MethodGet, path: "/", handler: s.getRoot},
		{method: http.MethodGet, path: "/v1", handler: s.getV1, trailingSlash: true},
		{method: http.MethodGet, path: "/healthcheck", handler: s.healthcheck},
		{method: http.MethodHead, path: "/healthcheck", handler: s.healthcheck},

		// Secrets.
		{method: http.MethodPost, path: "/v1/secrets", rule: "secrets:post", collection: true, bodyLimit: secretBodyLimit, trailingSlash: true, handler: s.createSecret},
		{method: http.MethodGet, path: "/v1/secrets", rule: "secrets:get", collection: true, trailingSlash: true, handler: s.listSecrets},
		{method: http.MethodGet, path: "/v1/secrets/:id", rule: "secret:get", ruleOf: getSecretRule, load: s.secretLoader, handler: s.getSecret},
		{method: http.MethodGet, path: "/v1/secrets/:id/payload", rule: "secret:decrypt", trailingSlash: true, load: s.secretLoader, handler: s.getSecretPayload},
		{method: http.MethodPut, path: "/v1/secrets/:id", rule: "secret:put", bodyLimit: secretBodyLimit, load: s.secretLoader, validate: validPayloadBody, handler: s.putSecretPayload},
		{method: http.MethodDelete, path: "/v1/secrets/:id", rule: "secret:delete", load: s.secretLoader, handler: s.deleteSecret},

		// Secret user metadata.
		{method: http.MethodGet, path: "/v1/secrets/:id/metadata", rule: "secret_meta:get", trailingSlash: true, load: s.secretLoader, handler: s.getSecretMetadata},
		{method: http.MethodPut, path: "/v1/secrets/:id/metadata", rule: "secret_meta:put", bodyLimit: metadataBodyLimit, trailingSlash: true, load: s.secretLoader, validate: validMetadataBody, handler: s.putSecretMetadata},
		{method: http.MethodPost, path: "/v1/secrets/:id/metadata", rule: "secret_meta:post", bodyLimit: smallBodyLimit, trailingSlash: true, load: s.secretLoader, validate: validMetadatumBody, handler: s.postSecretMetadatum},
		{method: http.MethodGet, path: "/v1/secrets/:id/metadata/:key", rule: "secret_meta:get", load: s.secretLoader, handler: s.getSecretMetadatum},
		{method: http.MethodPut, path: "/v1/secrets/:id/metadata/:key", rule: "secret_meta:put", bodyLimit: smallBodyLimit, load: s.secretLoader, validate: validMetadatumBody, handler: s.putSecretMetadatum},
		{method: http.MethodDelete, path: "/v1/secrets/:id/metadata/:key", rule: "secret_meta:delete", load: s.secretLoader, handler: s.deleteSecretMetadatum},

		// Orders.
		{method: http.MethodPost, path: "/v1/orders", rule: "orders:post", collection: true, bodyLimit: smallBodyLimit, trailingSlash: true, handler: s.createOrder},
		{method: http.MethodGet, path: "/v1/orders", rule: "orders:get", collection: true, trailingSlash: true, handler: s.listOrders},
		{method: http.MethodGet, path: "/v1/orders/:id", rule: "order:get", load: s.orderLoader, denied: orderDenied, handler: s.getOrder},
		{method: http.MethodDelete, path: "/v1/orders/:id", rule: "order:delete", load: s.orderLoader, denied: orderDenied, handler: s.deleteOrder},

		// Containers (handlers in containers.go). Secret refs in bodies must
		// be this service's refs to secrets of the caller's project.
		{method: http.MethodPost, path: "/v1/containers", rule: "containers:post", collection: true, bodyLimit: containerBodyLimit, trailingSlash: true, handler: s.createContainer},
		{method: http.MethodGet, path: "/v1/containers", rule: "containers:get", collection: true, trailingSlash: true, handler: s.listContainers},
		{method: http.MethodGet, path: "/v1/containers/:id", rule: "container:get", load: s.containerLoader, handler: s.getContainer},
		{method: http.MethodDelete, path: "/v1/containers/:id", rule: "container:delete", load: s.containerLoader, handler: s.deleteContainer},
		{method: http.MethodPost, path: "/v1/containers/:id/secrets", rule: "container_secret:post", bodyLimit: smallBodyLimit, trailingSlash: true, load: s.containerLoader, validate: s.validContainerSecretBody, handler: s.addContainerSecret},
		{method: http.MethodDelete, path: "/v1/containers/:id/secrets", rule: "container_secret:delete", bodyLimit: smallBodyLimit, trailingSlash: true, load: s.containerLoader, validate: s.validContainerSecretBody, handler: s.removeContainerSecret},

		// Container consumers (containers.go): POST and DELETE answer 200
		// with the container.
		{method: http.MethodGet, path: "/v1/containers/:id/consumers", rule: "container_consumers:get", trailingSlash: true, load: s.containerLoader, validate: validPage, handler: s.listContainerConsumers},
		{method: http.MethodPost, path: "/v1/containers/:id/consumers", rule: "container_consumers:post", bodyLimit: smallBodyLimit, trailingSlash: true, load: s.containerLoader, validate: validContainerConsumer, handler: s.addContainerConsumer},
		{method: http.MethodDelete, path: "/v1/containers/:id/consumers", rule: "container_consumers:delete", bodyLimit: smallBodyLimit, trailingSlash: true, load: s.containerLoader, validate: validContainerConsumer, handler: s.removeContainerConsumer},

		// ACLs of secrets and containers (acls.go). DELETE answers 200 with
		// the body null. The stored ACLs take part in every secret and
		// container rule: a user in a "read" ACL may read from any project.
		{method: http.MethodGet, path: "/v1/secrets/:id/acl", rule: "secret_acls:get", trailingSlash: true, load: s.secretLoader, handler: s.getACLs(keyservice.ACLSecret)},
		{method: http.MethodPut, path: "/v1/secrets/:id/acl", rule: "secret_acls:put_patch", bodyLimit: aclBodyLimit, trailingSlash: true, load: s.secretLoader, validate: validACLBody, handler: s.setACLs(keyservice.ACLSecret, true)},
		{method: http.MethodPatch, path: "/v1/secrets/:id/acl", rule: "secret_acls:put_patch", bodyLimit: aclBodyLimit, trailingSlash: true, load: s.secretLoader, validate: validACLBody, handler: s.setACLs(keyservice.ACLSecret, false)},
		{method: http.MethodDelete, path: "/v1/secrets/:id/acl", rule: "secret_acls:delete", trailingSlash: true, load: s.secretLoader, handler: s.deleteACLs(keyservice.ACLSecret)},
		{method: http.MethodGet, path: "/v1/containers/:id/acl", rule: "container_acls:get", trailingSlash: true, load: s.containerLoader, handler: s.getACLs(keyservice.ACLContainer)},
		{method: http.MethodPut, path: "/v1/containers/:id/acl", rule: "container_acls:put_patch", bodyLimit: aclBodyLimit, trailingSlash: true, load: s.containerLoader, validate: validACLBody, handler: s.setACLs(keyservice.ACLContainer, true)},
		{method: http.MethodPatch, path: "/v1/containers/:id/acl", rule: "container_acls:put_patch", bodyLimit: aclBodyLimit, trailingSlash: true, load: s.containerLoader, validate: validACLBody, handler: s.setACLs(keyservice.ACLContainer, false)},
		{method: http.MethodDelete, path: "/v1/containers/:id/acl", rule: "container_acls:delete", trailingSlash: true, load: s.containerLoader, handler: s.deleteACLs(keyservice.ACLContainer)},

		// Secret consumers (consumers.go; microversion 1.1 in Barbican, served
		// at every version here): POST and DELETE answer 200 with the secret.
		{method: http.MethodGet, path: "/v1/secrets/:id/consumers", rule: "secret_consumers:get", trailingSlash: true, load: s.secretLoader, validate: validPage, handler: s.listSecretConsumers},
		{method: http.MethodPost, path: "/v1/secrets/:id/consumers", rule: "secret_consumers:post", bodyLimit: smallBodyLimit, trailingSlash: true, load: s.secretLoader, validate: validSecretConsumer, handler: s.addSecretConsumer},
		{method: http.MethodDelete, path: "/v1/secrets/:id/consumers", rule: "secret_consumers:delete", bodyLimit: smallBodyLimit, trailingSlash: true, load: s.secretLoader, validate: validSecretConsumer, handler: s.removeSecretConsumer},

		// Quotas (quotas.go). The project in /v1/project-quotas/{project}
		// is what is managed, not a policy input: Barbican's rules ask for
		// a system-scoped reader or admin.
		{method: http.MethodGet, path: "/v1/quotas", rule: "quotas:get", collection: true, trailingSlash: true, handler: s.getQuotas},
		{method: http.MethodGet, path: "/v1/project-quotas", rule: "project_quotas:get", collection: true, scope: systemScope, trailingSlash: true, handler: s.listProjectQuotas},
		{method: http.MethodGet, path: "/v1/project-quotas/:project", rule: "project_quotas:get", collection: true, scope: systemScope, handler: s.getProjectQuotas},
		{method: http.MethodPut, path: "/v1/project-quotas/:project", rule: "project_quotas:put", collection: true, scope: systemScope, bodyLimit: smallBodyLimit, handler: s.putProjectQuotas},
		{method: http.MethodDelete, path: "/v1/project-quotas/:project", rule: "project_quotas:delete", collection: true, scope: systemScope, handler: s.deleteProjectQuotas},

		// Secret stores (secretstores.go): the project is the token's own.
		// A system-scoped token may read the stores, not a preference.
		{method: http.MethodGet, path: "/v1/secret-stores", rule: "secretstores:get", collection: true, scope: systemScope, trailingSlash: true, handler: s.listSecretStores},
		{method: http.MethodGet, path: "/v1/secret-stores/global-default", rule: "secretstores:get_global_default", collection: true, scope: systemScope, trailingSlash: true, handler: s.getGlobalDefaultSecretStore},
		{method: http.MethodGet, path: "/v1/secret-stores/preferred", rule: "secretstores:get_preferred", collection: true, trailingSlash: true, handler: s.getPreferredSecretStore},
		{method: http.MethodGet, path: "/v1/secret-stores/:id", rule: "secretstore:get", scope: systemScope, trailingSlash: true, load: s.secretStoreLoader, handler: s.getSecretStore},
		{method: http.MethodPost, path: "/v1/secret-stores/:id/preferred", rule: "secretstore_preferred:post", bodyLimit: smallBodyLimit, trailingSlash: true, load: s.secretStoreLoader, handler: s.setPreferredSecretStore},
		{method: http.MethodDelete, path: "/v1/secret-stores/:id/preferred", rule: "secretstore_preferred:delete", trailingSlash: true, load: s.secretStoreLoader, handler: s.removePreferredSecretStore},

		// Project keys (Arca extension, docs/project-keys.md; handlers in
		// projectkeys.go). ?project_id= addresses another project, which
		// the default rules allow the object servers' and the filter's roles
		// only (the payload route to the object servers alone, the
		// listing-key route, a key derived to open listing ETags, to the
		// filter and the project's own users). A system
		// admin or reader manages a project's keys naming it with
		// ?project_id=. The wrapper authorizes against the addressed project
		// (projectLoader) or the stored key row (projectKeyLoader); every
		// refusal and every read of another project's active id
		// (?project_id=) is audited.
		{method: http.MethodGet, path: "/v1/project-keys/active", rule: "project_key:get_active", audit: keyservice.AuditGetActive, load: s.projectLoader(keyservice.AuditGetActive), denied: s.projectDenied(keyservice.AuditGetActive), handler: s.getActiveProjectKey},
		{method: http.MethodPost, path: "/v1/project-keys/rotate", rule: "project_key:rotate", scope: systemWithProject, audit: keyservice.AuditRotate, load: s.projectLoader(keyservice.AuditRotate), denied: s.projectDenied(keyservice.AuditRotate), handler: s.rotateProjectKey},
		{method: http.MethodGet, path: "/v1/project-keys", rule: "project_key:list", scope: systemWithProject, audit: keyservice.AuditList, trailingSlash: true, load: s.projectLoader(keyservice.AuditList), denied: s.projectDenied(keyservice.AuditList), validate: s.auditRefused(keyservice.AuditList, validPage), handler: s.listProjectKeys},
		{method: http.MethodGet, path: "/v1/project-keys/:id", rule: "project_key:list", scope: systemWithProject, audit: keyservice.AuditGet, load: s.projectKeyLoader(keyservice.AuditGet), denied: s.projectKeyDenied(keyservice.AuditGet), handler: s.getProjectKey},
		{method: http.MethodGet, path: "/v1/project-keys/:id/payload", rule: "project_key:payload", audit: keyservice.AuditPayload, load: s.projectKeyLoader(keyservice.AuditPayload), denied: s.projectKeyDenied(keyservice.AuditPayload), handler: s.getProjectKeyPayload},
		{method: http.MethodGet, path: "/v1/project-keys/:id/listing-key", rule: "project_key:get_listing_key", audit: keyservice.AuditListingKey, load: s.projectKeyLoader(keyservice.AuditListingKey), denied: s.projectKeyDenied(keyservice.AuditListingKey), handler: s.getProjectKeyListingKey},
		{method: http.MethodDelete, path: "/v1/project-keys/:id", rule: "project_key:delete", scope: systemWithProject, audit: keyservice.AuditDestroy, load: s.projectKeyLoader(keyservice.AuditDestroy), denied: s.projectKeyDenied(keyservice.AuditDestroy), validate: s.auditRefused(keyservice.AuditDestroy, validForce), handler: s.deleteProjectKey},
	}
}
