package policy

// ACL is one stored ACL entry of a secret or container, for one operation
// (Barbican only defines "read").
type ACL struct {
	Users []string
	// ProjectAccess is the stored project-access flag; nil when the row has none.
	ProjectAccess *bool
}

// Resource is what the store knows about a secret or container that policy
// decisions depend on.
type Resource struct {
	ProjectID string // owning (Keystone) project
	CreatorID string // Keystone user id that created it
	// ACLs by operation ("read"). Empty when the resource has no ACL rows.
	ACLs map[string]ACL
}

// SecretTarget builds the target for secret:*, secret_meta:*, secret_acls:* and
// secret_consumers:* rules. callerUserID is the token's user: Barbican puts an
// operation into the target only when the caller is one of its ACL users.
func SecretTarget(r Resource, callerUserID string) Target {
	return entityTarget(&secretKeys, r, callerUserID)
}

// ContainerTarget builds the target for container:*, container_secret:*,
// container_acls:*, container_consumers:* and consumer:get rules.
func ContainerTarget(r Resource, callerUserID string) Target {
	return entityTarget(&containerKeys, r, callerUserID)
}

// OrderTarget builds the target for order:* rules.
func OrderTarget(projectID string) Target {
	return Target{"target.order.project_id": projectID}
}

// ProjectKeyTarget builds the target for project_key:* rules: the project whose
// keys are addressed. For a key id, pass the project the key is stored under.
func ProjectKeyTarget(projectID string) Target {
	return Target{"target.project_key.project_id": projectID}
}

// entityTarget follows Barbican's get_acl_dict_for_user: "<op>" = "<op>" when the
// caller is among the operation's users, "<op>_project_access" = the stored flag,
// and when no ACL carries a flag at all, read_project_access = True (a resource
// without ACLs is readable by its project).
func entityTarget(k *entityKeys, r Resource, callerUserID string) Target {
	prefix := k.prefix
	t := Target{
		k.projectID: r.ProjectID,
		k.creatorID: r.CreatorID,
	}
	flagged := false
	for op, acl := range r.ACLs {
		if callerUserID != "" {
			for _, u := range acl.Users {
				if u == callerUserID {
					t[prefix+op] = op
					break
				}
			}
		}
		if acl.ProjectAccess != nil {
			t[prefix+op+"_project_access"] = pyBool(*acl.ProjectAccess)
			flagged = true
		}
	}
	if !flagged {
		t[k.readProjectAccess] = "True"
	}
	return t
}

// entityKeys are an entity's target keys, spelled out once: every policy
// check on a secret or container builds a target, and concatenating the
// keys cost an allocation each (issue 21). Keys of ACL operations, rare,
// are still built from prefix.
type entityKeys struct {
	prefix, projectID, creatorID, readProjectAccess string
}

func newEntityKeys(prefix string) entityKeys {
	return entityKeys{
		prefix: prefix, projectID: prefix + "project_id", creatorID: prefix + "creator_id",
		readProjectAccess: prefix + "read_project_access",
	}
}

var (
	secretKeys    = newEntityKeys("target.secret.")
	containerKeys = newEntityKeys("target.container.")
)
