package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// Secret consumers (microversion 1.1). The routes answer at every
// microversion; the secret document shows its consumers from 1.1 only,
// because barbicanclient 5.4 (1.0) fails on the extra key.

// maxShownConsumers bounds the consumers embedded in a secret document;
// the full list is paged at …/consumers.
const maxShownConsumers = 100

// fillConsumers adds the secret's consumers to v at microversion 1.1 and
// later.
func (s *Server) fillConsumers(c echo.Context, sec *keyservice.Secret, v *secretView) error {
	if v.Consumers == nil {
		return nil
	}
	list, _, err := s.svc.ListSecretConsumers(c.Request().Context(), sec, maxShownConsumers, 0)
	if err != nil {
		return err
	}
	consumers := make([]consumerView, 0, len(list))
	for _, sc := range list {
		consumers = append(consumers, consumerView{Service: sc.Service, ResourceType: sc.ResourceType, ResourceID: sc.ResourceID})
	}
	v.Consumers = &consumers
	return nil
}

// secretConsumerItem is a consumer as the consumers list shows it
// (barbicanclient's SecretConsumers accepts exactly these keys).
type secretConsumerItem struct {
	Service      string `json:"service"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
	Created      string `json:"created"`
	Updated      string `json:"updated"`
	Status       string `json:"status"`
}

func decodeSecretConsumer(c echo.Context) (keyservice.SecretConsumerSpec, error) {
	var spec keyservice.SecretConsumerSpec
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return spec, err
	}
	obj, err := decodeObject(body(c))
	if err != nil {
		return spec, err
	}
	fields := map[string]*string{"service": &spec.Service, "resource_type": &spec.ResourceType, "resource_id": &spec.ResourceID}
	for key, dst := range fields {
		v, err := optString(obj, key)
		if err != nil {
			return spec, err
		}
		if v == nil {
			return spec, invalid("Invalid consumer: 'service', 'resource_type' and 'resource_id' are required non-empty strings.")
		}
		*dst = *v
	}
	return spec, nil
}

// validSecretConsumer answers a bad consumer 400 before the secret is
// loaded (route validate).
func validSecretConsumer(c echo.Context) error { _, err := decodeSecretConsumer(c); return err }

// changeSecretConsumer answers POST and DELETE with the secret as it is
// now (consumers shown from 1.1), status 200.
func (s *Server) changeSecretConsumer(c echo.Context, add bool) error {
	spec, err := decodeSecretConsumer(c)
	if err != nil {
		return err
	}
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if add {
		err = s.svc.AddSecretConsumer(ctx, callerOf(c), sec, spec)
	} else {
		err = s.svc.RemoveSecretConsumer(ctx, sec, spec)
	}
	if err != nil {
		return err
	}
	v := s.renderSecret(c, sec)
	if err := s.fillConsumers(c, sec, &v); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) addSecretConsumer(c echo.Context) error { return s.changeSecretConsumer(c, true) }

func (s *Server) removeSecretConsumer(c echo.Context) error { return s.changeSecretConsumer(c, false) }

func (s *Server) listSecretConsumers(c echo.Context) error {
	limit, offset, err := pageParams(c.QueryParams())
	if err != nil {
		return err
	}
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	list, total, err := s.svc.ListSecretConsumers(c.Request().Context(), sec, limit, offset)
	if err != nil {
		return err
	}
	items := make([]secretConsumerItem, 0, len(list))
	for _, sc := range list {
		items = append(items, secretConsumerItem{Service: sc.Service, ResourceType: sc.ResourceType, ResourceID: sc.ResourceID,
			Created: FormatTimestamp(sc.Created), Updated: FormatTimestamp(sc.Updated), Status: keyservice.StatusActive})
	}
	return s.listPage(c, "consumers", items, "/v1/secrets/"+sec.ID+"/consumers", limit, offset, total)
}
