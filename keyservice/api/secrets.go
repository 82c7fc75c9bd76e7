package api

import (
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// secretView is a secret as GET /v1/secrets/{id} shows it. Pointer fields
// render null when unset, as Barbican's do. barbicanclient 5.4 builds
// Secret(**item) and fails on any key it does not know, so nothing may be
// added here at 1.0.
type secretView struct {
	Created      string            `json:"created"`
	Updated      string            `json:"updated"`
	Status       string            `json:"status"`
	Name         *string           `json:"name"`
	SecretType   string            `json:"secret_type"`
	Expiration   *string           `json:"expiration"`
	Algorithm    *string           `json:"algorithm"`
	BitLength    *int              `json:"bit_length"`
	Mode         *string           `json:"mode"`
	CreatorID    *string           `json:"creator_id"`
	SecretRef    string            `json:"secret_ref"`
	ContentTypes map[string]string `json:"content_types,omitempty"`
	// Consumers appear from microversion 1.1 only.
	Consumers *[]consumerView `json:"consumers,omitempty"`
}

type consumerView struct {
	Service      string `json:"service"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) secretRef(c echo.Context, id string) string {
	return s.baseURL(c) + "/v1/secrets/" + id
}

func (s *Server) renderSecret(c echo.Context, sec *keyservice.Secret) secretView {
	v := secretView{
		Created: FormatTimestamp(sec.Created), Updated: FormatTimestamp(sec.Updated),
		Status: sec.Status, Name: nullable(sec.Name), SecretType: sec.SecretType,
		Algorithm: nullable(sec.Algorithm), Mode: nullable(sec.Mode),
		CreatorID: nullable(sec.CreatorID), SecretRef: s.secretRef(c, sec.ID),
	}
	if sec.BitLength > 0 {
		bits := sec.BitLength
		v.BitLength = &bits
	}
	if sec.Expiration != nil {
		exp := FormatTimestamp(*sec.Expiration)
		v.Expiration = &exp
	}
	if sec.HasPayload() {
		v.ContentTypes = map[string]string{"default": sec.PayloadContentType}
	}
	if microversion(c).AtLeast(Microversion{1, 1}) {
		consumers := []consumerView{}
		v.Consumers = &consumers
	}
	return v
}

// secretTarget is the policy target of a secret, from its stored row and
// ACLs (a read ACL lets its users in from any project; project-access
// false keeps the rest of the project out).
func secretTarget(sec *keyservice.Secret, acls []keyservice.ACL) Target {
	return Target{Kind: "secret", ProjectID: sec.ProjectID, CreatorID: sec.CreatorID, ACLs: targetACLs(acls)}
}

// collectionTarget is the target of the collection routes (checked by the
// route wrapper): the caller's own project.
func collectionTarget(c echo.Context) Target {
	return Target{ProjectID: callerOf(c).ProjectID}
}

// secretLoader is the loader of the /v1/secrets/{id} routes: the secret
// named in the path, and the target of its stored row with its ACLs.
func (s *Server) secretLoader(c echo.Context) (any, Target, error) {
	sec, err := s.svc.LoadSecret(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, Target{}, err
	}
	acls, err := s.svc.SecretACLs(c.Request().Context(), sec)
	if err != nil {
		return nil, Target{}, err
	}
	return sec, secretTarget(sec, acls), nil
}

// loadSecret returns the secret in the path, loaded and authorized by the
// route wrapper (secretLoader).
func (s *Server) loadSecret(c echo.Context) (*keyservice.Secret, error) {
	return loaded[*keyservice.Secret](c)
}

// decodeSecretSpec validates a POST /v1/secrets body: the attributes, then
// the payload, which is optional but comes with its content type.
func decodeSecretSpec(body []byte) (keyservice.SecretSpec, error) {
	var spec keyservice.SecretSpec
	obj, err := decodeObject(body)
	if err != nil {
		return spec, err
	}
	strs := map[string]*string{}
	for _, key := range []string{"name", "secret_type", "algorithm", "mode", "expiration", "payload", "payload_content_type", "payload_content_encoding"} {
		if strs[key], err = optString(obj, key); err != nil {
			return spec, err
		}
	}
	bits, err := optInt(obj, "bit_length", 1, keyservice.MaxBitLength)
	if err != nil {
		return spec, err
	}
	if err := setSecretAttributes(&spec, strs, bits); err != nil {
		return spec, err
	}
	payload, contentType, encoding := strs["payload"], strs["payload_content_type"], strs["payload_content_encoding"]
	if payload == nil {
		if contentType != nil {
			return spec, invalid("If 'payload_content_type' is specified, 'payload' must be too.")
		}
		if encoding != nil {
			return spec, invalid("If 'payload_content_encoding' is specified, 'payload' must be too.")
		}
		return spec, nil
	}
	spec.PayloadContentType, spec.Payload, err = decodeSecretPayload(*payload, contentType, encoding)
	return spec, err
}

// setSecretAttributes copies the optional attributes of a secret's body
// into spec; an expiration must be a timestamp.
func setSecretAttributes(spec *keyservice.SecretSpec, strs map[string]*string, bits *int) error {
	if p := strs["name"]; p != nil {
		spec.Name = *p
	}
	if p := strs["secret_type"]; p != nil {
		spec.SecretType = *p
	}
	if p := strs["algorithm"]; p != nil {
		spec.Algorithm = *p
	}
	if p := strs["mode"]; p != nil {
		spec.Mode = *p
	}
	if bits != nil {
		spec.BitLength = *bits
	}
	if p := strs["expiration"]; p != nil && strings.TrimSpace(*p) != "" {
		t, err := ParseTimestamp(*p)
		if err != nil {
			return invalid("Invalid date for 'expiration'.")
		}
		spec.Expiration = &t
	}
	return nil
}

// decodeSecretPayload checks a secret's payload against its content type
// and encoding (nil when absent) and returns the normalized content type
// and the payload's bytes: text as given, binary decoded from base64.
func decodeSecretPayload(payload string, contentType, encoding *string) (string, []byte, error) {
	if len(payload) > keyservice.MaxPayloadBytes*4/3+4 {
		return "", nil, keyservice.Errorf(keyservice.ErrTooLarge, "Could not add secret data as it was too large.")
	}
	trimmed := strings.TrimSpace(payload)
	if trimmed == "" {
		return "", nil, invalid("If 'payload' is specified, it must not be empty.")
	}
	if contentType == nil {
		return "", nil, invalid("If 'payload' is specified, 'payload_content_type' must be too.")
	}
	normalized, binary, err := normalizeContentType(*contentType)
	if err != nil {
		return "", nil, invalid(fmt.Sprintf("Invalid payload_content_type %q.", *contentType))
	}
	var data []byte
	switch {
	case encoding != nil && !strings.EqualFold(*encoding, "base64"):
		return "", nil, invalid(fmt.Sprintf("Invalid payload_content_encoding %q: only 'base64' is supported.", *encoding))
	case binary && encoding == nil:
		return "", nil, invalid("payload_content_encoding 'base64' is required for binary payloads.")
	case !binary && encoding != nil:
		return "", nil, invalid("payload_content_encoding is not allowed with text/plain payloads.")
	case binary:
		decoded, err := base64.StdEncoding.DecodeString(trimmed)
		if err != nil {
			return "", nil, invalid("Invalid payload: it is not valid base64.")
		}
		data = decoded
	default:
		data = []byte(trimmed)
	}
	if len(data) == 0 {
		return "", nil, invalid("If 'payload' is specified, it must not be empty.")
	}
	return normalized, data, nil
}

func (s *Server) createSecret(c echo.Context) error {
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	spec, err := decodeSecretSpec(body(c))
	if err != nil {
		return err
	}
	sec, err := s.svc.CreateSecret(c.Request().Context(), callerOf(c), spec)
	if err != nil {
		return err
	}
	ref := s.secretRef(c, sec.ID)
	c.Response().Header().Set(echo.HeaderLocation, ref)
	return c.JSON(http.StatusCreated, secretRefBody{SecretRef: ref})
}

// secretRefBody is a created secret's answer, {"secret_ref": ...}: a struct
// encodes to the same bytes as the one-key map it replaces, without the
// map's reflection and key sorting on every store.
type secretRefBody struct {
	SecretRef string `json:"secret_ref"`
}

// wantsMetadata reports whether GET /v1/secrets/{id} should answer with the
// metadata document; any other Accept asks for the payload (legacy form).
func wantsMetadata(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(part)
		if err == nil && (mt == "application/json" || mt == "*/*") {
			return true
		}
	}
	return false
}

// getSecretRule is the rule of GET /v1/secrets/{id}: a request that does
// not ask for metadata is Barbican's legacy payload read, a decrypt.
func getSecretRule(c echo.Context) string {
	if !wantsMetadata(c.Request().Header.Get(echo.HeaderAccept)) {
		return "secret:decrypt"
	}
	return "secret:get"
}

func (s *Server) getSecret(c echo.Context) error {
	if !wantsMetadata(c.Request().Header.Get(echo.HeaderAccept)) {
		// Legacy payload read, authorized as a decrypt (getSecretRule).
		return s.getSecretPayload(c)
	}
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	v := s.renderSecret(c, sec)
	if err := s.fillConsumers(c, sec, &v); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// payloadType picks the representation of a payload for an Accept header:
// text/plain needs valid UTF-8, octet-stream (or nothing) gives raw bytes,
// */* gives the stored type.
func payloadType(accept, stored string, payload []byte) (string, error) {
	accept = strings.TrimSpace(accept)
	if accept == "" {
		return keyservice.ContentTypeBinary, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		if mt == stored && (mt == keyservice.ContentTypePKCS8 || mt == keyservice.ContentTypePKIX) {
			// Barbican serves a secret in the binary type it was stored as
			// (an asymmetric order's private key as application/pkcs8).
			return stored, nil
		}
		switch mt {
		case keyservice.ContentTypeText:
			if !utf8.Valid(payload) {
				return "", keyservice.Errorf(keyservice.ErrNotAcceptable, "Wrong payload content-type: the payload is binary; ask for application/octet-stream.")
			}
			return keyservice.ContentTypeText, nil
		case keyservice.ContentTypeBinary:
			return keyservice.ContentTypeBinary, nil
		case "*/*":
			return stored, nil
		}
	}
	return "", keyservice.Errorf(keyservice.ErrNotAcceptable, "Wrong payload content-type: supported are text/plain and application/octet-stream.")
}

func (s *Server) getSecretPayload(c echo.Context) error {
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	payload, err := s.svc.DecryptSecret(c.Request().Context(), callerOf(c), sec) // audited as secret:decrypt
	if err != nil {
		return err
	}
	contentType, err := payloadType(c.Request().Header.Get(echo.HeaderAccept), sec.PayloadContentType, payload)
	if err != nil {
		return err
	}
	if contentType == keyservice.ContentTypeText {
		contentType = "text/plain; charset=utf-8"
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, contentType, payload)
}

// decodePayloadBody reads PUT /v1/secrets/{id}'s payload and media type.
func decodePayloadBody(c echo.Context) (mt string, payload []byte, err error) {
	mt, params, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || (mt != keyservice.ContentTypeText && mt != keyservice.ContentTypeBinary) {
		return "", nil, keyservice.Errorf(keyservice.ErrUnsupportedType, "Unsupported Media Type: the payload must be text/plain or application/octet-stream.")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", nil, keyservice.Errorf(keyservice.ErrUnsupportedType, "Unsupported Media Type: only charset=utf-8 is supported.")
	}
	payload = body(c)
	switch enc := strings.TrimSpace(c.Request().Header.Get("Content-Encoding")); {
	case strings.EqualFold(enc, "base64"):
		decoded, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(payload)))
		if err != nil {
			return "", nil, invalid("Invalid payload: it is not valid base64.")
		}
		payload = decoded
	case enc != "":
		return "", nil, invalid(fmt.Sprintf("Invalid Content-Encoding %q: only base64 is supported.", enc))
	}
	if len(payload) == 0 {
		return "", nil, invalid("No secret data was provided.")
	}
	if mt == keyservice.ContentTypeText && !utf8.Valid(payload) {
		return "", nil, invalid("Invalid payload: text/plain data must be UTF-8.")
	}
	return mt, payload, nil
}

// validPayloadBody answers a bad payload 400 or 415 before the secret is
// loaded (route validate).
func validPayloadBody(c echo.Context) error {
	_, _, err := decodePayloadBody(c)
	return err
}

func (s *Server) putSecretPayload(c echo.Context) error {
	mt, payload, err := decodePayloadBody(c)
	if err != nil {
		return err
	}
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	if err := s.svc.SetSecretPayload(c.Request().Context(), sec, mt, payload); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) deleteSecret(c echo.Context) error {
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	// ?force=true deletes a secret that still has consumers (newer
	// Barbican's parameter); it is an instruction, never a policy input.
	force := strings.EqualFold(c.QueryParam("force"), "true")
	if err := s.svc.DeleteSecret(c.Request().Context(), sec, force); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// Paging as Barbican does it: limit defaults to 10 and is clamped to
// [1, 100]; offset defaults to 0.
const (
	defaultLimit = 10
	maxLimit     = 100
)

// parseBool reads an optional boolean query parameter as oslo does
// (true/false, yes/no, on/off, 1/0, any case); anything else is a 400
// rather than a guess.
func parseBool(q url.Values, key string) (bool, error) {
	switch v := strings.ToLower(q.Get(key)); v {
	case "", "false", "no", "off", "0", "f", "n":
		return false, nil
	case "true", "yes", "on", "1", "t", "y":
		return true, nil
	default:
		return false, invalid(fmt.Sprintf("Invalid '%s': must be true or false.", key))
	}
}

func pageParams(q url.Values) (limit, offset int, err error) {
	limit, offset = defaultLimit, 0
	if v := q.Get("limit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			return 0, 0, invalid("Invalid 'limit': must be an integer.")
		}
		limit = min(max(n, 1), maxLimit)
	}
	if v := q.Get("offset"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			return 0, 0, invalid("Invalid 'offset': must be an integer.")
		}
		offset = max(n, 0)
	}
	return limit, offset, nil
}

// listPage answers a list request the way Barbican does:
// {"<key>": items, "total": N} plus "next" and "previous" hrefs when there
// are more items after or before this page.
func (s *Server) listPage(c echo.Context, key string, items any, path string, limit, offset, total int) error {
	resp := map[string]any{key: items, "total": total}
	next, prev := s.pageLinks(c, path, limit, offset, total)
	if next != "" {
		resp["next"] = next
	}
	if prev != "" {
		resp["previous"] = prev
	}
	return c.JSON(http.StatusOK, resp)
}

// pageLinks returns next/previous hrefs. Unlike Barbican 15, filters are
// kept in the links, so following "next" continues the same listing.
func (s *Server) pageLinks(c echo.Context, path string, limit, offset, total int) (next, previous string) {
	q := c.QueryParams()
	build := func(off int) string {
		v := url.Values{}
		for k, vals := range q {
			if k != "limit" && k != "offset" {
				v[k] = vals
			}
		}
		v.Set("limit", strconv.Itoa(limit))
		v.Set("offset", strconv.Itoa(off))
		return s.baseURL(c) + path + "?" + v.Encode()
	}
	// offset < total-limit, not offset+limit < total: offset comes from
	// the client and may be near MaxInt (hostile_test.go).
	if offset < total-limit {
		next = build(offset + limit)
	}
	if offset > 0 {
		previous = build(max(offset-limit, 0))
	}
	return next, previous
}

func parseTimeConditions(key, value string) ([]keyservice.TimeCondition, error) {
	var conds []keyservice.TimeCondition
	for _, term := range strings.Split(value, ",") {
		op := keyservice.CmpEQ
		if before, after, found := strings.Cut(term, ":"); found {
			switch before {
			case keyservice.CmpGT, keyservice.CmpGTE, keyservice.CmpLT, keyservice.CmpLTE:
				op, term = before, after
			}
		}
		t, err := ParseTimestamp(term)
		if err != nil {
			return nil, invalid(fmt.Sprintf("Invalid date filter '%s': %q.", key, term))
		}
		conds = append(conds, keyservice.TimeCondition{Op: op, Time: t})
	}
	return conds, nil
}

func parseSecretFilter(q url.Values) (keyservice.SecretFilter, error) {
	var f keyservice.SecretFilter
	var err error
	if f.Limit, f.Offset, err = pageParams(q); err != nil {
		return f, err
	}
	f.Name, f.Algorithm, f.Mode, f.SecretType = q.Get("name"), q.Get("alg"), q.Get("mode"), q.Get("secret_type")
	if v := q.Get("bits"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, invalid("Invalid 'bits': must be an integer.")
		}
		f.BitLength = n
	}
	for key, dst := range map[string]*[]keyservice.TimeCondition{"created": &f.Created, "updated": &f.Updated, "expiration": &f.Expiration} {
		if v := q.Get(key); v != "" {
			if *dst, err = parseTimeConditions(key, v); err != nil {
				return f, err
			}
		}
	}
	if v := q.Get("sort"); v != "" {
		for _, term := range strings.Split(v, ",") {
			field, dir, _ := strings.Cut(strings.TrimSpace(term), ":")
			if !keyservice.SortableSecretFields[field] {
				return f, invalid(fmt.Sprintf("Invalid sort key %q.", field))
			}
			switch dir {
			case "", "asc":
				f.Sort = append(f.Sort, keyservice.SortKey{Field: field})
			case "desc":
				f.Sort = append(f.Sort, keyservice.SortKey{Field: field, Desc: true})
			default:
				return f, invalid(fmt.Sprintf("Invalid sort direction %q: use asc or desc.", dir))
			}
		}
	}
	return f, nil
}

func (s *Server) listSecrets(c echo.Context) error {
	f, err := parseSecretFilter(c.QueryParams())
	if err != nil {
		return err
	}
	aclOnly, err := parseBool(c.QueryParams(), "acl_only")
	if err != nil {
		return err
	}
	caller := callerOf(c)
	f.ProjectID = caller.ProjectID
	if aclOnly {
		// The secrets shared with the caller through read ACLs, from any
		// project; a caller without a user id has none.
		if caller.UserID == "" {
			return s.listPage(c, "secrets", []secretView{}, "/v1/secrets", f.Limit, f.Offset, 0)
		}
		f.ACLUserID = caller.UserID
	}
	list, total, err := s.svc.ListSecrets(c.Request().Context(), f)
	if err != nil {
		return err
	}
	items := make([]secretView, 0, len(list))
	for _, sec := range list {
		v := s.renderSecret(c, sec)
		if err := s.fillConsumers(c, sec, &v); err != nil {
			return err
		}
		items = append(items, v)
	}
	return s.listPage(c, "secrets", items, "/v1/secrets", f.Limit, f.Offset, total)
}
