package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// orderView is an order as GET /v1/orders/{id} shows it. Absent keys are
// omitted: barbicanclient builds KeyOrder(**order) and refuses surprises.
type orderView struct {
	Created          string               `json:"created"`
	Updated          string               `json:"updated"`
	Status           string               `json:"status"`
	Type             string               `json:"type"`
	Meta             keyservice.OrderMeta `json:"meta"`
	CreatorID        *string              `json:"creator_id"`
	OrderRef         string               `json:"order_ref"`
	SecretRef        string               `json:"secret_ref,omitempty"`
	ContainerRef     string               `json:"container_ref,omitempty"`
	SubStatus        string               `json:"sub_status,omitempty"`
	SubStatusMessage string               `json:"sub_status_message,omitempty"`
	ErrorStatusCode  string               `json:"error_status_code,omitempty"`
	ErrorReason      string               `json:"error_reason,omitempty"`
}

func (s *Server) renderOrder(c echo.Context, o *keyservice.Order) orderView {
	v := orderView{
		Created: FormatTimestamp(o.Created), Updated: FormatTimestamp(o.Updated),
		Status: o.Status, Type: o.Type, Meta: o.Meta, CreatorID: nullable(o.CreatorID),
		OrderRef:        s.baseURL(c) + "/v1/orders/" + o.ID,
		ErrorStatusCode: o.ErrorStatusCode, ErrorReason: o.ErrorReason,
	}
	// Barbican's worker sets sub_status only on the orders it completed;
	// an ERROR order shows none.
	if o.Status != keyservice.StatusError {
		v.SubStatus, v.SubStatusMessage = "Unknown", "Unknown"
	}
	if o.SecretID != "" {
		v.SecretRef = s.secretRef(c, o.SecretID)
	}
	if o.ContainerID != "" {
		v.ContainerRef = s.baseURL(c) + "/v1/containers/" + o.ContainerID
	}
	return v
}

// decodeOrderSpec validates a POST /v1/orders body. Unknown meta keys are
// dropped, so that what GET echoes back is only what clients understand.
func decodeOrderSpec(body []byte) (keyservice.OrderSpec, error) {
	var spec keyservice.OrderSpec
	obj, err := decodeObject(body)
	if err != nil {
		return spec, err
	}
	typ, err := optString(obj, "type")
	if err != nil {
		return spec, err
	}
	if typ == nil {
		return spec, invalid("Invalid order: 'type' is a required property.")
	}
	spec.Type = strings.ToLower(*typ)
	raw, ok := obj["meta"]
	if !ok || isNull(raw) {
		return spec, invalid("Invalid order: 'meta' is a required property.")
	}
	var rawMeta map[string]json.RawMessage
	if json.Unmarshal(raw, &rawMeta) != nil || rawMeta == nil {
		return spec, invalid("Invalid order: 'meta' must be an object.")
	}
	m := &spec.Meta
	for key, dst := range map[string]**string{
		"name": &m.Name, "algorithm": &m.Algorithm, "mode": &m.Mode,
		"payload_content_type": &m.PayloadContentType, "expiration": &m.Expiration,
	} {
		if *dst, err = optString(rawMeta, key); err != nil {
			return spec, err
		}
	}
	if m.BitLength, err = optInt(rawMeta, "bit_length", 1, keyservice.MaxBitLength); err != nil {
		return spec, err
	}
	// The passphrase of an asymmetric order goes to the service, never into
	// the stored (and echoed) meta. Barbican accepts a non-string one and
	// fails the order; the service does the same.
	if raw, ok := rawMeta["passphrase"]; ok && !isNull(raw) {
		var p string
		if json.Unmarshal(raw, &p) != nil {
			spec.PassphraseNotString = true
		} else if p != "" {
			spec.Passphrase = []byte(p)
		}
	}
	if m.Expiration != nil {
		if strings.TrimSpace(*m.Expiration) == "" {
			m.Expiration = nil
		} else {
			t, err := ParseTimestamp(*m.Expiration)
			if err != nil {
				return spec, invalid("Invalid date for 'expiration'.")
			}
			spec.Expiration = &t
			// Barbican's validator replaces the date by the parsed one, which
			// the order's meta then shows as naive UTC with microseconds.
			normalized := t.UTC().Format("2006-01-02T15:04:05.000000")
			m.Expiration = &normalized
		}
	}
	return spec, nil
}

func (s *Server) createOrder(c echo.Context) error {
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	spec, err := decodeOrderSpec(body(c))
	if err != nil {
		return err
	}
	o, err := s.svc.CreateOrder(c.Request().Context(), callerOf(c), spec)
	if err != nil {
		return err
	}
	ref := s.baseURL(c) + "/v1/orders/" + o.ID
	c.Response().Header().Set(echo.HeaderLocation, ref)
	return c.JSON(http.StatusAccepted, map[string]string{"order_ref": ref})
}

// orderLoader is the loader of the /v1/orders/{id} routes: the order in
// the path and the target of its stored row.
func (s *Server) orderLoader(c echo.Context) (any, Target, error) {
	o, err := s.svc.LoadOrder(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, Target{}, err
	}
	return o, Target{Kind: "order", ProjectID: o.ProjectID, CreatorID: o.CreatorID}, nil
}

// orderDenied reports an order of another project that policy refused as
// not found, as Barbican does.
func orderDenied(c echo.Context, res any, err error) error {
	if o, ok := res.(*keyservice.Order); ok && errors.Is(err, keyservice.ErrForbidden) && o.ProjectID != callerOf(c).ProjectID {
		return keyservice.Errorf(keyservice.ErrNotFound, "Order not found.")
	}
	return err
}

// loadOrder returns the order in the path, loaded and authorized by the
// route wrapper (orderLoader).
func (s *Server) loadOrder(c echo.Context) (*keyservice.Order, error) {
	return loaded[*keyservice.Order](c)
}

func (s *Server) getOrder(c echo.Context) error {
	o, err := s.loadOrder(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.renderOrder(c, o))
}

func (s *Server) deleteOrder(c echo.Context) error {
	o, err := s.loadOrder(c)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteOrder(c.Request().Context(), o); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listOrders(c echo.Context) error {
	limit, offset, err := pageParams(c.QueryParams())
	if err != nil {
		return err
	}
	list, total, err := s.svc.ListOrders(c.Request().Context(), callerOf(c).ProjectID, limit, offset)
	if err != nil {
		return err
	}
	items := make([]orderView, 0, len(list))
	for _, o := range list {
		items = append(items, s.renderOrder(c, o))
	}
	return s.listPage(c, "orders", items, "/v1/orders", limit, offset, total)
}

func notFoundMetadatum() error {
	return keyservice.Errorf(keyservice.ErrNotFound, "Secret metadata not found.")
}
