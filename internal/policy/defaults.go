package policy

// ruleDefault is one policy rule with its two default check strings.
//
// The rule names and check strings are Barbican's (barbican/common/policies/*.py),
// so that a policy.yaml written for Barbican means the same thing here. Legacy is
// the check string Barbican deprecated in Wallaby (admin/creator/observer/audit/
// key-manager:service-admin); New is the current default (member/reader/admin).
// Helper rules used by both sets have Legacy == New.
type ruleDefault struct {
	Name        string
	Description string
	Operations  []string // "METHOD /path", for the sample file
	New         string
	Legacy      string
}

// Check strings repeated by many Barbican rules.
const (
	newSecretRead = "True:%(enforce_new_defaults)s and " +
		"(rule:secret_project_admin or " +
		"(rule:secret_project_member and rule:secret_owner) or " +
		"(rule:secret_project_member and rule:secret_is_not_private) or " +
		"rule:secret_acl_read)"
	newSecretWrite = "True:%(enforce_new_defaults)s and " +
		"(rule:secret_project_admin or " +
		"(rule:secret_project_member and rule:secret_owner) or " +
		"(rule:secret_project_member and rule:secret_is_not_private))"
	newContainerRead = "True:%(enforce_new_defaults)s and " +
		"(rule:container_project_admin or " +
		"(rule:container_project_member and rule:container_owner) or " +
		"(rule:container_project_member and rule:container_is_not_private) or " +
		"rule:container_acl_read)"
	newContainerWrite = "True:%(enforce_new_defaults)s and " +
		"(rule:container_project_admin or " +
		"(rule:container_project_member and rule:container_owner) or " +
		"(rule:container_project_member and rule:container_is_not_private))"

	legacySecretRead = "rule:secret_non_private_read or rule:secret_project_creator or " +
		"rule:secret_project_admin or rule:secret_acl_read"
	legacySecretMetaWrite = "rule:secret_project_admin or rule:secret_project_creator or " +
		"(rule:secret_project_creator_role and rule:secret_non_private_read)"
	legacyContainerRead = "rule:container_non_private_read or rule:container_project_creator or " +
		"rule:container_project_admin or rule:container_acl_read"
	legacyContainerSecretWrite = "rule:container_project_admin or rule:container_project_creator or " +
		"rule:container_project_creator_role and rule:container_non_private_read"
	legacyContainerACLWrite = "rule:container_project_admin or rule:container_project_creator or " +
		"(rule:container_project_creator_role and rule:container_non_private_read)"

	newMember = "True:%(enforce_new_defaults)s and role:member"
	newReader = "True:%(enforce_new_defaults)s and role:reader"
	newAdmin  = "True:%(enforce_new_defaults)s and role:admin"

	// Who may rotate and destroy a project's keys, in both sets.
	projectKeyAdmin = "(role:admin and rule:project_key_project_match) or rule:service_admin or rule:system_admin"

	newSystemReader = "True:%(enforce_new_defaults)s and rule:system_reader"
	newSystemAdmin  = "True:%(enforce_new_defaults)s and rule:system_admin"

	// Barbican's consumer rules also admit a system-scoped admin.
	newSecretConsumer = "True:%(enforce_new_defaults)s and " +
		"(rule:system_admin or rule:secret_project_admin or " +
		"(rule:secret_project_member and rule:secret_owner) or " +
		"(rule:secret_project_member and rule:secret_is_not_private) or " +
		"rule:secret_acl_read)"
	newContainerConsumer = "True:%(enforce_new_defaults)s and " +
		"(rule:system_admin or rule:container_project_admin or " +
		"(rule:container_project_member and rule:container_owner) or " +
		"(rule:container_project_member and rule:container_is_not_private) or " +
		"rule:container_acl_read)"
)

// same returns a helper rule whose check string does not depend on the default set.
func same(name, check, desc string) ruleDefault {
	return ruleDefault{Name: name, Description: desc, New: check, Legacy: check}
}

// defaultRules lists every rule Arca knows, in the order of the sample file.
var defaultRules = []ruleDefault{
	// Helper rules (barbican/common/policies/base.py).
	same("system_reader", "role:reader and system_scope:all", "A reader on a system-scoped token."),
	same("system_admin", "role:admin and system_scope:all", "An admin on a system-scoped token."),
	same("secret_project_match", "project_id:%(target.secret.project_id)s", "The token's project owns the secret."),
	same("secret_project_reader", "role:reader and rule:secret_project_match", ""),
	same("secret_project_member", "role:member and rule:secret_project_match", ""),
	same("secret_project_admin", "role:admin and rule:secret_project_match", ""),
	same("secret_owner", "user_id:%(target.secret.creator_id)s", "The token's user created the secret."),
	same("secret_is_not_private", "True:%(target.secret.read_project_access)s", "The secret's read ACL keeps project access (the default)."),
	same("secret_acl_read", "'read':%(target.secret.read)s", "The token's user is listed in the secret's read ACL."),
	same("container_project_match", "project_id:%(target.container.project_id)s", ""),
	same("container_project_member", "role:member and rule:container_project_match", ""),
	same("container_project_admin", "role:admin and rule:container_project_match", ""),
	same("container_owner", "user_id:%(target.container.creator_id)s", ""),
	same("container_is_not_private", "True:%(target.container.read_project_access)s", ""),
	same("container_acl_read", "'read':%(target.container.read)s", ""),
	same("order_project_match", "project_id:%(target.order.project_id)s", ""),
	same("order_project_member", "role:member and rule:order_project_match", ""),
	same("audit", "role:audit", "Legacy role: metadata only."),
	same("observer", "role:observer", "Legacy role: read and decrypt."),
	same("creator", "role:creator", "Legacy role: create, and delete what it created."),
	same("admin", "role:admin", ""),
	same("service_admin", "role:key-manager:service-admin", "Barbican's legacy role for project quotas; in Arca also rotates and destroys any project's keys."),
	same("all_users", "rule:admin or rule:observer or rule:creator or rule:audit or rule:service_admin", ""),
	same("all_but_audit", "rule:admin or rule:observer or rule:creator", ""),
	same("admin_or_creator", "rule:admin or rule:creator", ""),
	same("secret_creator_user", "user_id:%(target.secret.creator_id)s", ""),
	same("secret_private_read", "'False':%(target.secret.read_project_access)s", ""),
	same("secret_non_private_read", "rule:all_users and rule:secret_project_match and not rule:secret_private_read", ""),
	same("secret_decrypt_non_private_read", "rule:all_but_audit and rule:secret_project_match and not rule:secret_private_read", ""),
	same("secret_project_creator", "rule:creator and rule:secret_project_match and rule:secret_creator_user", ""),
	same("secret_project_creator_role", "rule:creator and rule:secret_project_match", ""),
	same("container_private_read", "'False':%(target.container.read_project_access)s", ""),
	same("container_creator_user", "user_id:%(target.container.creator_id)s", ""),
	same("container_non_private_read", "rule:all_users and rule:container_project_match and not rule:container_private_read", ""),
	same("container_project_creator", "rule:creator and rule:container_project_match and rule:container_creator_user", ""),
	same("container_project_creator_role", "rule:creator and rule:container_project_match", ""),

	// Arca's helper rules for the project-keys extension. The two service roles
	// are deliberately not "service": every OpenStack service user holds that
	// role, and none but Arca's own daemons may read another project's keys.
	// Operators who name the roles differently re-point these two rules.
	same("arca_object_server", "role:key-manager:object-server",
		"arca-object-server: reads the key material and active key ids of any project (?project_id=)."),
	same("arca_swift_filter", "role:key-manager:swift-filter",
		"arca-swift-filter: reads the active key ids of any project (?project_id=), never key material."),
	same("project_key_project_match", "project_id:%(target.project_key.project_id)s",
		"The token's project is the project whose keys are addressed."),

	{Name: "version:get", Description: "Version discovery.", Operations: []string{"GET /", "GET /v1"}, New: "@", Legacy: "@"},

	// Secrets (secrets.py).
	{Name: "secrets:post", Description: "Create a secret.", Operations: []string{"POST /v1/secrets"},
		New: newMember, Legacy: "rule:admin_or_creator"},
	{Name: "secrets:get", Description: "List the project's secrets.", Operations: []string{"GET /v1/secrets"},
		New: newMember, Legacy: "rule:all_but_audit"},
	{Name: "secret:get", Description: "Retrieve a secret's metadata.", Operations: []string{"GET /v1/secrets/{secret-id}"},
		New: newSecretRead, Legacy: legacySecretRead},
	{Name: "secret:decrypt", Description: "Retrieve a secret's payload.", Operations: []string{"GET /v1/secrets/{secret-id}/payload"},
		New: "True:%(enforce_new_defaults)s and (rule:secret_project_admin or " +
			"(rule:secret_project_member and rule:secret_owner) or " +
			"(rule:secret_project_member and rule:secret_is_not_private) or rule:secret_acl_read)",
		Legacy: "rule:secret_decrypt_non_private_read or rule:secret_project_creator or " +
			"rule:secret_project_admin or rule:secret_acl_read"},
	{Name: "secret:put", Description: "Add the payload to a metadata-only secret.", Operations: []string{"PUT /v1/secrets/{secret-id}"},
		New: newSecretWrite, Legacy: "rule:admin_or_creator and rule:secret_project_match"},
	{Name: "secret:delete", Description: "Delete a secret.", Operations: []string{"DELETE /v1/secrets/{secret-id}"},
		New: newSecretWrite,
		Legacy: "rule:secret_project_admin or rule:secret_project_creator or " +
			"(rule:secret_project_creator_role and not rule:secret_private_read)"},

	// Secret metadata (secretmeta.py).
	{Name: "secret_meta:get", Description: "List or read a secret's user metadata.",
		Operations: []string{"GET /v1/secrets/{secret-id}/metadata", "GET /v1/secrets/{secret-id}/metadata/{meta-key}"},
		New:        newSecretRead, Legacy: legacySecretRead},
	{Name: "secret_meta:post", Description: "Add one user metadata key.", Operations: []string{"POST /v1/secrets/{secret-id}/metadata"},
		New: newSecretWrite, Legacy: legacySecretMetaWrite},
	{Name: "secret_meta:put", Description: "Set all user metadata, or update one key.",
		Operations: []string{"PUT /v1/secrets/{secret-id}/metadata", "PUT /v1/secrets/{secret-id}/metadata/{meta-key}"},
		New:        newSecretWrite, Legacy: legacySecretMetaWrite},
	{Name: "secret_meta:delete", Description: "Delete one user metadata key.", Operations: []string{"DELETE /v1/secrets/{secret-id}/metadata/{meta-key}"},
		New: newSecretWrite, Legacy: legacySecretMetaWrite},

	// Secret ACLs (acls.py).
	{Name: "secret_acls:get", Description: "Read a secret's ACL.", Operations: []string{"GET /v1/secrets/{secret-id}/acl"},
		New: newSecretWrite, Legacy: "rule:all_but_audit and rule:secret_project_match"},
	{Name: "secret_acls:put_patch", Description: "Replace or update a secret's ACL.",
		Operations: []string{"PUT /v1/secrets/{secret-id}/acl", "PATCH /v1/secrets/{secret-id}/acl"},
		New:        newSecretWrite, Legacy: legacySecretMetaWrite},
	{Name: "secret_acls:delete", Description: "Delete a secret's ACL.", Operations: []string{"DELETE /v1/secrets/{secret-id}/acl"},
		New: newSecretWrite, Legacy: legacySecretMetaWrite},

	// Secret consumers (consumers.py, microversion 1.1).
	{Name: "secret_consumers:get", Description: "List a secret's consumers.", Operations: []string{"GET /v1/secrets/{secret-id}/consumers"},
		New: newSecretConsumer, Legacy: legacySecretRead},
	{Name: "secret_consumers:post", Description: "Register a secret consumer.", Operations: []string{"POST /v1/secrets/{secret-id}/consumers"},
		New: newSecretConsumer, Legacy: legacySecretRead},
	{Name: "secret_consumers:delete", Description: "Remove a secret consumer.", Operations: []string{"DELETE /v1/secrets/{secret-id}/consumers"},
		New: newSecretConsumer, Legacy: legacySecretRead},

	// Orders (orders.py).
	{Name: "orders:post", Description: "Create an order.", Operations: []string{"POST /v1/orders"},
		New: "True:%(enforce_new_defaults)s and role:member", Legacy: "rule:admin_or_creator"},
	{Name: "orders:get", Description: "List the project's orders.", Operations: []string{"GET /v1/orders"},
		New: "True:%(enforce_new_defaults)s and role:member", Legacy: "rule:all_but_audit"},
	{Name: "orders:put", Description: "Unsupported; kept for Barbican compatibility.", Operations: []string{"PUT /v1/orders"},
		New: "True:%(enforce_new_defaults)s and role:member", Legacy: "rule:admin_or_creator"},
	{Name: "order:get", Description: "Retrieve an order.", Operations: []string{"GET /v1/orders/{order-id}"},
		New:    "True:%(enforce_new_defaults)s and rule:order_project_member",
		Legacy: "rule:all_users and project_id:%(target.order.project_id)s"},
	{Name: "order:delete", Description: "Delete an order.", Operations: []string{"DELETE /v1/orders/{order-id}"},
		New:    "True:%(enforce_new_defaults)s and rule:order_project_member",
		Legacy: "rule:admin and project_id:%(target.order.project_id)s"},

	// Containers (containers.py).
	{Name: "containers:post", Description: "Create a container.", Operations: []string{"POST /v1/containers"},
		New: newMember, Legacy: "rule:admin_or_creator"},
	{Name: "containers:get", Description: "List the project's containers.", Operations: []string{"GET /v1/containers"},
		New: newMember, Legacy: "rule:all_but_audit"},
	{Name: "container:get", Description: "Retrieve a container.", Operations: []string{"GET /v1/containers/{container-id}"},
		New: newContainerRead, Legacy: legacyContainerRead},
	{Name: "container:delete", Description: "Delete a container.", Operations: []string{"DELETE /v1/containers/{container-id}"},
		New: newContainerWrite, Legacy: "rule:container_project_admin or rule:container_project_creator"},
	{Name: "container_secret:post", Description: "Add a secret to a container.", Operations: []string{"POST /v1/containers/{container-id}/secrets"},
		New: newContainerWrite, Legacy: legacyContainerSecretWrite},
	{Name: "container_secret:delete", Description: "Remove a secret from a container.",
		Operations: []string{"DELETE /v1/containers/{container-id}/secrets/{secret-id}"},
		New:        newContainerWrite, Legacy: legacyContainerSecretWrite},

	// Container ACLs (acls.py).
	{Name: "container_acls:get", Description: "Read a container's ACL.", Operations: []string{"GET /v1/containers/{container-id}/acl"},
		New: newContainerWrite, Legacy: "rule:all_but_audit and rule:container_project_match"},
	{Name: "container_acls:put_patch", Description: "Replace or update a container's ACL.",
		Operations: []string{"PUT /v1/containers/{container-id}/acl", "PATCH /v1/containers/{container-id}/acl"},
		New:        newContainerWrite, Legacy: legacyContainerACLWrite},
	{Name: "container_acls:delete", Description: "Delete a container's ACL.", Operations: []string{"DELETE /v1/containers/{container-id}/acl"},
		New: newContainerWrite, Legacy: legacyContainerACLWrite},

	// Container consumers (consumers.py).
	{Name: "consumer:get", Description: "Retrieve one container consumer.", Operations: []string{"GET /v1/containers/{container-id}/consumers/{consumer-id}"},
		New:    newContainerConsumer,
		Legacy: "rule:admin or rule:observer or rule:creator or rule:audit or " + legacyContainerRead},
	{Name: "container_consumers:get", Description: "List a container's consumers.", Operations: []string{"GET /v1/containers/{container-id}/consumers"},
		New: newContainerConsumer, Legacy: legacyContainerRead},
	{Name: "container_consumers:post", Description: "Register a container consumer.", Operations: []string{"POST /v1/containers/{container-id}/consumers"},
		New: newContainerConsumer, Legacy: legacyContainerRead},
	{Name: "container_consumers:delete", Description: "Remove a container consumer.", Operations: []string{"DELETE /v1/containers/{container-id}/consumers"},
		New: newContainerConsumer, Legacy: legacyContainerRead},

	// Quotas (quotas.py).
	{Name: "quotas:get", Description: "Read the effective quotas of the token's project.", Operations: []string{"GET /v1/quotas"},
		New: newReader, Legacy: "rule:all_users"},
	{Name: "project_quotas:get", Description: "List or read configured project quotas.",
		Operations: []string{"GET /v1/project-quotas", "GET /v1/project-quotas/{project-id}"},
		New:        newSystemReader, Legacy: "rule:service_admin"},
	{Name: "project_quotas:put", Description: "Set a project's quotas.", Operations: []string{"PUT /v1/project-quotas/{project-id}"},
		New: newSystemAdmin, Legacy: "rule:service_admin"},
	{Name: "project_quotas:delete", Description: "Delete a project's quotas.", Operations: []string{"DELETE /v1/project-quotas/{project-id}"},
		New: newSystemAdmin, Legacy: "rule:service_admin"},

	// Secret stores (secretstores.py).
	{Name: "secretstores:get", Description: "List the secret stores.", Operations: []string{"GET /v1/secret-stores"},
		New: newReader, Legacy: "rule:all_users"},
	{Name: "secretstores:get_global_default", Description: "Read the global default secret store.", Operations: []string{"GET /v1/secret-stores/global-default"},
		New: newReader, Legacy: "rule:all_users"},
	{Name: "secretstores:get_preferred", Description: "Read the project's preferred secret store.", Operations: []string{"GET /v1/secret-stores/preferred"},
		New: newReader, Legacy: "rule:all_users"},
	{Name: "secretstore_preferred:post", Description: "Set the project's preferred secret store.", Operations: []string{"POST /v1/secret-stores/{store-id}/preferred"},
		New: newAdmin, Legacy: "rule:admin"},
	{Name: "secretstore_preferred:delete", Description: "Unset the project's preferred secret store.", Operations: []string{"DELETE /v1/secret-stores/{store-id}/preferred"},
		New: newAdmin, Legacy: "rule:admin"},
	{Name: "secretstore:get", Description: "Read one secret store.", Operations: []string{"GET /v1/secret-stores/{store-id}"},
		New: newReader, Legacy: "rule:all_users"},

	// Transport keys (transportkeys.py); Arca does not implement them, the names are kept
	// so that a Barbican policy file loads unchanged.
	{Name: "transport_key:get", Operations: []string{"GET /v1/transport_keys/{key-id}"}, New: newReader, Legacy: "rule:all_users"},
	{Name: "transport_key:delete", Operations: []string{"DELETE /v1/transport_keys/{key-id}"}, New: newSystemAdmin, Legacy: "rule:service_admin"},
	{Name: "transport_keys:get", Operations: []string{"GET /v1/transport_keys"}, New: newReader, Legacy: "rule:all_users"},
	{Name: "transport_keys:post", Operations: []string{"POST /v1/transport_keys"}, New: newSystemAdmin, Legacy: "rule:service_admin"},

	// Arca's project keys: the data keys Swift objects are encrypted with. The
	// object servers and the filter address any project through ?project_id=;
	// a user only their token's project. Rotating and destroying keys belongs to
	// the project's own admin, Barbican's key-manager:service-admin and a
	// system-scoped admin; the plain service and admin roles and an
	// X-Service-Token grant nothing here.
	{Name: "project_key:get_active", Description: "Read the project's active key id (project_key:create decides whether a project without one gets its first).",
		Operations: []string{"GET /v1/project-keys/active"},
		New:        "rule:arca_object_server or rule:arca_swift_filter or (role:member and rule:project_key_project_match)",
		Legacy:     "rule:arca_object_server or rule:arca_swift_filter or (rule:all_but_audit and rule:project_key_project_match)"},
	// Creating a project's first key is its own decision, checked only when
	// get_active finds none: the filter's role reads an existing id but
	// never makes a key, so its credential cannot fill the key table with
	// keys for invented projects. The object servers create the key of an
	// account Swift let them write to; a member creates their own project's.
	{Name: "project_key:create", Description: "Create a project's first key, when get_active finds no active key.",
		Operations: []string{"GET /v1/project-keys/active"},
		New:        "rule:arca_object_server or (role:member and rule:project_key_project_match)",
		Legacy:     "rule:arca_object_server or (rule:all_but_audit and rule:project_key_project_match)"},
	{Name: "project_key:rotate", Description: "Make a new active key; the old one stays usable for decryption.",
		Operations: []string{"POST /v1/project-keys/rotate"},
		New:        projectKeyAdmin, Legacy: projectKeyAdmin},
	{Name: "project_key:list", Description: "List the project's keys, or read one (metadata only).",
		Operations: []string{"GET /v1/project-keys", "GET /v1/project-keys/{key-id}"},
		New:        "(role:reader and rule:project_key_project_match) or rule:service_admin or rule:system_reader",
		Legacy:     "(rule:all_users and rule:project_key_project_match) or rule:service_admin or rule:system_reader"},
	{Name: "project_key:payload", Description: "Read a project key's raw bytes. The object servers only: whoever holds these reads the project's objects.",
		Operations: []string{"GET /v1/project-keys/{key-id}/payload"},
		New:        "rule:arca_object_server",
		Legacy:     "rule:arca_object_server"},
	// The listing key is derived from a project key and opens listing
	// ETags only (objcrypt/SPEC.md, "Listing ETags"): the filter shows
	// clients the MD5s that the container databases keep sealed. The
	// project's own readers may read what they may list anyway.
	{Name: "project_key:get_listing_key", Description: "Read a project key's listing key (opens the ETags in container listings, nothing else).",
		Operations: []string{"GET /v1/project-keys/{key-id}/listing-key"},
		New:        "rule:arca_swift_filter or (role:reader and rule:project_key_project_match)",
		Legacy:     "rule:arca_swift_filter or (rule:all_users and rule:project_key_project_match)"},
	{Name: "project_key:delete", Description: "Destroy a project key's material (crypto-shredding its objects).",
		Operations: []string{"DELETE /v1/project-keys/{key-id}"},
		New:        projectKeyAdmin, Legacy: projectKeyAdmin},
}
