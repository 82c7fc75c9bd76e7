package policy

import (
	"bytes"
	"fmt"
	"strconv"
)

// Sample renders the policy.yaml sample: every rule with its description, the
// endpoints it guards and both defaults, all commented out. The file under
// etc/arca/ is this output (a test keeps the two identical).
func Sample() []byte {
	var b bytes.Buffer
	b.WriteString(`# Arca policy file (oslo.policy format, YAML).
#
# Every rule Arca knows is listed below, commented out, with its default.
# Uncomment and edit a line to override that rule; rules not named here keep
# their defaults. Rule names and check strings are Barbican's, so a Barbican
# policy.yaml keeps its meaning.
#
# Two default sets exist, chosen by [oslo_policy] enforce_new_defaults in
# arca.conf. The last line of each entry shows the default Arca uses out of the
# box (enforce_new_defaults = true: member/reader/admin); a "legacy" line shows
# Barbican's deprecated default where it differs (enforce_new_defaults = false:
# admin/creator/observer/audit/key-manager:service-admin).
#
# Credentials available to checks: user_id, user_domain_id, project_id,
# project_domain_id, domain_id, system_scope ("all" on a system-scoped token),
# is_service (True when an X-Service-Token with a service role came along),
# is_admin_project, and role:<name>.
#
# Project keys: arca-object-server's Keystone user needs the role named by
# arca_object_server, arca-swift-filter's the one named by arca_swift_filter.
# The plain service and admin roles grant nothing on another project's keys.
# Targets: target.secret.{project_id,creator_id,read,read_project_access},
# target.container.{...same...}, target.order.project_id,
# target.project_key.project_id, enforce_new_defaults.

`)
	for _, r := range defaultRules {
		if r.Description != "" {
			fmt.Fprintf(&b, "# %s\n", r.Description)
		}
		for _, op := range r.Operations {
			fmt.Fprintf(&b, "# %s\n", op)
		}
		if r.Legacy != r.New {
			fmt.Fprintf(&b, "# legacy: %s\n", strconv.Quote(r.Legacy))
		}
		fmt.Fprintf(&b, "#%s: %s\n\n", strconv.Quote(r.Name), strconv.Quote(r.New))
	}
	out := bytes.TrimRight(b.Bytes(), "\n")
	return append(out, '\n')
}
