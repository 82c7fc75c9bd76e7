package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// aclView is one operation's ACL as GET …/acl shows it. A resource without
// stored ACLs shows {"read": {"project-access": true}} only.
type aclView struct {
	ProjectAccess bool      `json:"project-access"`
	Users         *[]string `json:"users,omitempty"`
	Created       string    `json:"created,omitempty"`
	Updated       string    `json:"updated,omitempty"`
}

func renderACLs(acls []keyservice.ACL) map[string]aclView {
	out := map[string]aclView{}
	for _, a := range acls {
		users := a.Users
		if users == nil {
			users = []string{}
		}
		out[a.Operation] = aclView{ProjectAccess: a.ProjectAccess, Users: &users,
			Created: FormatTimestamp(a.Created), Updated: FormatTimestamp(a.Updated)}
	}
	if len(out) == 0 {
		out[keyservice.ACLRead] = aclView{ProjectAccess: true}
	}
	return out
}

// targetACLs turns stored ACLs into the policy target's form.
func targetACLs(acls []keyservice.ACL) map[string]ACL {
	if len(acls) == 0 {
		return nil
	}
	out := make(map[string]ACL, len(acls))
	for _, a := range acls {
		pa := a.ProjectAccess
		out[a.Operation] = ACL{Users: a.Users, ProjectAccess: &pa}
	}
	return out
}

// decodeACLs reads a PUT or PATCH …/acl body: {"read": {"users": [...],
// "project-access": bool}}. Like Barbican's schema, unknown keys at either
// level are refused; an operation given as {} or null changes nothing on
// PATCH and is dropped on PUT.
func decodeACLs(raw []byte) (map[string]keyservice.ACLSpec, error) {
	obj, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	specs := map[string]keyservice.ACLSpec{}
	for op, rawOp := range obj {
		if op != keyservice.ACLRead {
			return nil, invalid(fmt.Sprintf("Invalid ACL operation %q: only 'read' is supported.", op))
		}
		if isNull(rawOp) {
			continue
		}
		var fields map[string]json.RawMessage
		if json.Unmarshal(rawOp, &fields) != nil || fields == nil {
			return nil, invalid("Invalid ACL: 'read' must be an object with 'users' and 'project-access'.")
		}
		if len(fields) == 0 {
			continue
		}
		var spec keyservice.ACLSpec
		for key, val := range fields {
			switch key {
			case "users":
				var users []string
				if json.Unmarshal(val, &users) != nil || bytes.Equal(bytes.TrimSpace(val), []byte("null")) {
					return nil, invalid("Invalid ACL: 'users' must be a list of user ids.")
				}
				if users == nil {
					users = []string{}
				}
				spec.Users = &users
			case "project-access":
				var b bool
				if json.Unmarshal(val, &b) != nil || isNull(val) {
					return nil, invalid("Invalid ACL: 'project-access' must be true or false.")
				}
				spec.ProjectAccess = &b
			default:
				return nil, invalid(fmt.Sprintf("Invalid ACL: unknown property %q.", key))
			}
		}
		specs[op] = spec
	}
	return specs, nil
}

// aclResource loads the secret or container in the path (authorised by the
// route's ACL rule) and returns its kind, id and ref.
func (s *Server) aclResource(c echo.Context, kind string) (string, string, error) {
	if kind == keyservice.ACLContainer {
		ct, err := s.loadContainer(c)
		if err != nil {
			return "", "", err
		}
		return ct.ID, s.containerRef(c, ct.ID), nil
	}
	sec, err := s.loadSecret(c)
	if err != nil {
		return "", "", err
	}
	return sec.ID, s.secretRef(c, sec.ID), nil
}

func (s *Server) getACLs(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, _, err := s.aclResource(c, kind)
		if err != nil {
			return err
		}
		acls, err := s.svc.ACLs(c.Request().Context(), kind, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, renderACLs(acls))
	}
}

// validACLBody answers a bad ACL body 400 (or 415) before the secret or
// container is loaded (route validate).
func validACLBody(c echo.Context) error {
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	_, err := decodeACLs(body(c))
	return err
}

func (s *Server) setACLs(kind string, replace bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
			return err
		}
		specs, err := decodeACLs(body(c))
		if err != nil {
			return err
		}
		id, ref, err := s.aclResource(c, kind)
		if err != nil {
			return err
		}
		if replace {
			err = s.svc.PutACLs(c.Request().Context(), kind, id, specs)
		} else {
			err = s.svc.PatchACLs(c.Request().Context(), kind, id, specs)
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"acl_ref": ref + "/acl"})
	}
}

// deleteACLs answers 200 with the body "null", as Barbican does.
func (s *Server) deleteACLs(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, _, err := s.aclResource(c, kind)
		if err != nil {
			return err
		}
		if err := s.svc.DeleteACLs(c.Request().Context(), kind, id); err != nil {
			return err
		}
		return c.JSONBlob(http.StatusOK, []byte("null"))
	}
}
