package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// containerView is a container as GET /v1/containers/{id} shows it.
// barbicanclient reads the fields it knows with .get, so the shape is
// Barbican's: name and creator_id may be null.
type containerView struct {
	Status       string                  `json:"status"`
	Updated      string                  `json:"updated"`
	Name         *string                 `json:"name"`
	Consumers    []containerConsumerView `json:"consumers"`
	Created      string                  `json:"created"`
	ContainerRef string                  `json:"container_ref"`
	CreatorID    *string                 `json:"creator_id"`
	SecretRefs   []secretRefView         `json:"secret_refs"`
	Type         string                  `json:"type"`
}

type secretRefView struct {
	Name      *string `json:"name"`
	SecretRef string  `json:"secret_ref"`
}

// containerConsumerView is a consumer as the container shows it.
type containerConsumerView struct {
	Name string `json:"name"`
	URL  string `json:"URL"`
}

func (s *Server) containerRef(c echo.Context, id string) string {
	return s.baseURL(c) + "/v1/containers/" + id
}

func (s *Server) renderContainer(c echo.Context, ct *keyservice.Container) containerView {
	v := containerView{
		Status: ct.Status, Updated: FormatTimestamp(ct.Updated), Created: FormatTimestamp(ct.Created),
		Name: nullable(ct.Name), CreatorID: nullable(ct.CreatorID), Type: ct.Type,
		ContainerRef: s.containerRef(c, ct.ID),
		Consumers:    make([]containerConsumerView, 0, len(ct.Consumers)),
		SecretRefs:   make([]secretRefView, 0, len(ct.Secrets)),
	}
	for _, ref := range ct.Secrets {
		v.SecretRefs = append(v.SecretRefs, secretRefView{Name: nullable(ref.Name), SecretRef: s.secretRef(c, ref.SecretID)})
	}
	for _, cc := range ct.Consumers {
		v.Consumers = append(v.Consumers, containerConsumerView{Name: cc.Name, URL: cc.URL})
	}
	return v
}

// secretIDFromRef checks that ref is a secret ref of this service (it must
// start with the service's base URL, as Barbican requires, so that a
// container cannot point elsewhere) and returns the secret id.
func (s *Server) secretIDFromRef(c echo.Context, ref string) (string, error) {
	prefix := s.baseURL(c) + "/v1/secrets/"
	id, ok := strings.CutPrefix(strings.TrimSpace(ref), prefix)
	if !ok {
		return "", invalid("Secret_ref does not match the configured hostname, please try again.")
	}
	id = strings.TrimSuffix(id, "/")
	if id == "" || strings.ContainsAny(id, "/?#") {
		return "", invalid("Invalid secret_ref: it must be <base URL>/v1/secrets/<secret id>.")
	}
	return id, nil
}

// decodeSecretRef reads one {"name", "secret_ref"} object.
func (s *Server) decodeSecretRef(c echo.Context, raw json.RawMessage) (keyservice.ContainerSecret, error) {
	var ref keyservice.ContainerSecret
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return ref, invalid("Invalid secret_refs: each item must be an object with a 'secret_ref'.")
	}
	name, err := optString(obj, "name")
	if err != nil {
		return ref, err
	}
	href, err := optString(obj, "secret_ref")
	if err != nil {
		return ref, err
	}
	if href == nil {
		return ref, invalid("Invalid secret_refs: 'secret_ref' is a required property.")
	}
	if name != nil {
		ref.Name = *name
	}
	ref.SecretID, err = s.secretIDFromRef(c, *href)
	return ref, err
}

// decodeContainerSpec validates a POST /v1/containers body.
func (s *Server) decodeContainerSpec(c echo.Context) (keyservice.ContainerSpec, error) {
	var spec keyservice.ContainerSpec
	obj, err := decodeObject(body(c))
	if err != nil {
		return spec, err
	}
	name, err := optString(obj, "name")
	if err != nil {
		return spec, err
	}
	typ, err := optString(obj, "type")
	if err != nil {
		return spec, err
	}
	if typ == nil {
		return spec, invalid("Invalid container: 'type' is a required property.")
	}
	spec.Type = *typ
	if name != nil {
		spec.Name = *name
	}
	raw, ok := obj["secret_refs"]
	if !ok || isNull(raw) {
		return spec, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return spec, invalid("Invalid secret_refs: must be a list.")
	}
	for _, item := range items {
		ref, err := s.decodeSecretRef(c, item)
		if err != nil {
			return spec, err
		}
		spec.Secrets = append(spec.Secrets, ref)
	}
	return spec, nil
}

func (s *Server) createContainer(c echo.Context) error {
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	spec, err := s.decodeContainerSpec(c)
	if err != nil {
		return err
	}
	ct, err := s.svc.CreateContainer(c.Request().Context(), callerOf(c), spec)
	if err != nil {
		return err
	}
	ref := s.containerRef(c, ct.ID)
	c.Response().Header().Set(echo.HeaderLocation, ref)
	return c.JSON(http.StatusCreated, map[string]string{"container_ref": ref})
}

// containerTarget is the policy target of a container, from its stored row
// and ACLs.
func containerTarget(ct *keyservice.Container, acls []keyservice.ACL) Target {
	return Target{Kind: "container", ProjectID: ct.ProjectID, CreatorID: ct.CreatorID, ACLs: targetACLs(acls)}
}

// containerLoader is the loader of the /v1/containers/{id} routes: the
// container named in the path, and the target of its stored row with its
// ACLs.
func (s *Server) containerLoader(c echo.Context) (any, Target, error) {
	ct, err := s.svc.LoadContainer(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, Target{}, err
	}
	acls, err := s.svc.ACLs(c.Request().Context(), keyservice.ACLContainer, ct.ID)
	if err != nil {
		return nil, Target{}, err
	}
	return ct, containerTarget(ct, acls), nil
}

// loadContainer returns the container in the path, loaded and authorized
// by the route wrapper (containerLoader).
func (s *Server) loadContainer(c echo.Context) (*keyservice.Container, error) {
	return loaded[*keyservice.Container](c)
}

func (s *Server) getContainer(c echo.Context) error {
	ct, err := s.loadContainer(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.renderContainer(c, ct))
}

func (s *Server) deleteContainer(c echo.Context) error {
	ct, err := s.loadContainer(c)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteContainer(c.Request().Context(), ct); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listContainers(c echo.Context) error {
	q := c.QueryParams()
	limit, offset, err := pageParams(q)
	if err != nil {
		return err
	}
	f := keyservice.ContainerFilter{ProjectID: callerOf(c).ProjectID, Name: q.Get("name"), Type: q.Get("type"), Limit: limit, Offset: offset}
	list, total, err := s.svc.ListContainers(c.Request().Context(), f)
	if err != nil {
		return err
	}
	items := make([]containerView, 0, len(list))
	for _, ct := range list {
		items = append(items, s.renderContainer(c, ct))
	}
	return s.listPage(c, "containers", items, "/v1/containers", limit, offset, total)
}

// decodeContainerSecretBody reads the body of POST|DELETE
// /v1/containers/{id}/secrets.
func (s *Server) decodeContainerSecretBody(c echo.Context) (keyservice.ContainerSecret, error) {
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return keyservice.ContainerSecret{}, err
	}
	if _, err := decodeObject(body(c)); err != nil {
		return keyservice.ContainerSecret{}, err
	}
	return s.decodeSecretRef(c, body(c))
}

// Request checks that answer 400 before the container is loaded (route
// validate).
func (s *Server) validContainerSecretBody(c echo.Context) error {
	_, err := s.decodeContainerSecretBody(c)
	return err
}

func validContainerConsumer(c echo.Context) error { _, err := decodeConsumerSpec(c); return err }

// containerSecretChange reads the body of POST|DELETE
// /v1/containers/{id}/secrets and returns the container.
func (s *Server) containerSecretChange(c echo.Context) (*keyservice.Container, keyservice.ContainerSecret, error) {
	ref, err := s.decodeContainerSecretBody(c)
	if err != nil {
		return nil, ref, err
	}
	ct, err := s.loadContainer(c)
	return ct, ref, err
}

func (s *Server) addContainerSecret(c echo.Context) error {
	ct, ref, err := s.containerSecretChange(c)
	if err != nil {
		return err
	}
	if err := s.svc.AddContainerSecret(c.Request().Context(), callerOf(c), ct, ref); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"container_ref": s.containerRef(c, ct.ID)})
}

func (s *Server) removeContainerSecret(c echo.Context) error {
	ct, ref, err := s.containerSecretChange(c)
	if err != nil {
		return err
	}
	if err := s.svc.RemoveContainerSecret(c.Request().Context(), ct, ref); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ---- container consumers ----

// consumerListItem is a consumer as the consumers list shows it.
type consumerListItem struct {
	Status  string `json:"status"`
	Created string `json:"created"`
	Updated string `json:"updated"`
	Name    string `json:"name"`
	URL     string `json:"URL"`
}

// decodeConsumerSpec reads {"name", "URL"}.
func decodeConsumerSpec(c echo.Context) (keyservice.ConsumerSpec, error) {
	var spec keyservice.ConsumerSpec
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return spec, err
	}
	obj, err := decodeObject(body(c))
	if err != nil {
		return spec, err
	}
	name, err := optString(obj, "name")
	if err != nil {
		return spec, err
	}
	url, err := optString(obj, "URL")
	if err != nil {
		return spec, err
	}
	if name == nil || url == nil {
		return spec, invalid("Invalid consumer: 'name' and 'URL' are required non-empty strings.")
	}
	spec.Name, spec.URL = *name, *url
	return spec, nil
}

func (s *Server) changeContainerConsumer(c echo.Context, add bool) error {
	spec, err := decodeConsumerSpec(c)
	if err != nil {
		return err
	}
	ct, err := s.loadContainer(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if add {
		err = s.svc.AddContainerConsumer(ctx, callerOf(c), ct, spec)
	} else {
		err = s.svc.RemoveContainerConsumer(ctx, ct, spec)
	}
	if err != nil {
		return err
	}
	// Answer with the container as it is now.
	if ct, err = s.svc.LoadContainer(ctx, ct.ID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.renderContainer(c, ct))
}

func (s *Server) addContainerConsumer(c echo.Context) error {
	return s.changeContainerConsumer(c, true)
}

func (s *Server) removeContainerConsumer(c echo.Context) error {
	return s.changeContainerConsumer(c, false)
}

func (s *Server) listContainerConsumers(c echo.Context) error {
	limit, offset, err := pageParams(c.QueryParams())
	if err != nil {
		return err
	}
	ct, err := s.loadContainer(c)
	if err != nil {
		return err
	}
	list, total, err := s.svc.ListContainerConsumers(c.Request().Context(), ct, limit, offset)
	if err != nil {
		return err
	}
	items := make([]consumerListItem, 0, len(list))
	for _, cc := range list {
		items = append(items, consumerListItem{Status: keyservice.StatusActive, Created: FormatTimestamp(cc.Created),
			Updated: FormatTimestamp(cc.Updated), Name: cc.Name, URL: cc.URL})
	}
	return s.listPage(c, "consumers", items, "/v1/containers/"+ct.ID+"/consumers", limit, offset, total)
}
