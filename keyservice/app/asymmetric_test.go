package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/orders"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/secrets"

	"opendev.org/x/arca/internal/testenv"
)

// asymmetricOpts is an asymmetric order with a passphrase: gophercloud's
// MetaOpts has no passphrase field, its CreateOptsBuilder takes any body.
type asymmetricOpts struct{ meta map[string]any }

func (o asymmetricOpts) ToOrderCreateMap() (map[string]any, error) {
	return map[string]any{"type": "asymmetric", "meta": o.meta}, nil
}

func lastPart(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }

// keyPair reads an asymmetric order's container with gophercloud and
// returns its secrets' payloads and metadata by reference name.
func keyPair(ctx context.Context, t *testing.T, km *gophercloud.ServiceClient, orderRef string) (string, map[string][]byte, map[string]*secrets.Secret) {
	t.Helper()
	order, err := orders.Get(ctx, km, lastPart(orderRef)).Extract()
	if err != nil || order.Status != "ACTIVE" || order.ContainerRef == "" || order.SecretRef != "" {
		t.Fatalf("order %+v: %v", order, err)
	}
	c, err := containers.Get(ctx, km, lastPart(order.ContainerRef)).Extract()
	if err != nil || c.Type != "rsa" {
		t.Fatalf("container %+v: %v", c, err)
	}
	payloads, meta := map[string][]byte{}, map[string]*secrets.Secret{}
	for _, ref := range c.SecretRefs {
		id := lastPart(ref.SecretRef)
		if meta[ref.Name], err = secrets.Get(ctx, km, id).Extract(); err != nil {
			t.Fatal(err)
		}
		p, err := secrets.GetPayload(ctx, km, id, secrets.GetPayloadOpts{PayloadContentType: "application/octet-stream"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		payloads[ref.Name] = p
	}
	return order.ContainerRef, payloads, meta
}

// TestAsymmetricOrdersRealStack orders RSA key pairs from arca-api through
// the real Keystone catalog: with gophercloud's keymanager client (the
// private key opens what the public key sealed; with a passphrase the
// PKCS#8 opens only with it), with the real openstack CLI as a member, and
// checks that another project, a reader, a domain-scoped token and an
// anonymous caller get nothing.
func TestAsymmetricOrdersRealStack(t *testing.T) {
	env := testenv.LoadKeystone(t)
	srv := keystoneServer(t, env, "")
	region := registerInFreshRegion(t, env, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	km, err := openstack.NewKeyManagerV1(env.Client(t, testenv.UserDemo).ProviderClient, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		t.Fatal(err)
	}

	// gophercloud, no passphrase.
	plain, err := orders.Create(ctx, km, orders.CreateOpts{Type: orders.AsymmetricOrder,
		Meta: orders.MetaOpts{Name: "gc-pair", Algorithm: "rsa", BitLength: 2048}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	_, payloads, meta := keyPair(ctx, t, km, plain.OrderRef)
	if len(payloads) != 2 || meta["public_key"].SecretType != "public" || meta["private_key"].SecretType != "private" ||
		meta["private_key"].Name != "gc-pair" || meta["private_key"].BitLength != 2048 {
		t.Fatalf("pair without passphrase: %v", meta)
	}
	testenv.CheckRSAKeyPair(t, payloads["public_key"], payloads["private_key"], 2048)

	// gophercloud, with a passphrase.
	const pass = "tr0ub4dor&3"
	withPass, err := orders.Create(ctx, km, asymmetricOpts{map[string]any{
		"name": "gc-protected", "algorithm": "rsa", "bit_length": 2048, "passphrase": pass}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	containerRef, payloads, meta := keyPair(ctx, t, km, withPass.OrderRef)
	if string(payloads["private_key_passphrase"]) != pass || meta["private_key_passphrase"].SecretType != "passphrase" {
		t.Fatalf("passphrase secret: %q %v", payloads["private_key_passphrase"], meta)
	}
	if _, err := testenv.OpenPKCS8(t, payloads["private_key"], "tr0ub4dor&4"); err == nil {
		t.Fatal("the private key opened with a wrong passphrase")
	}
	if _, err := testenv.OpenPKCS8(t, payloads["private_key"], ""); err == nil {
		t.Fatal("the private key opened without its passphrase")
	}
	opened, err := testenv.OpenPKCS8(t, payloads["private_key"], pass)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckRSAKeyPair(t, payloads["public_key"], opened, 2048)

	// The real CLI through the catalog, as member demo.
	demo := openstackCLI(t, env, testenv.UserDemo, region)
	orderRef := mustCLI(t, demo, "secret", "order", "create", "--name", "cli-pair", "--algorithm", "rsa",
		"--bit-length", "2048", "asymmetric", "-f", "value", "-c", "Order href")
	var order map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, demo, "secret", "order", "get", orderRef, "-f", "json")), &order); err != nil {
		t.Fatal(err)
	}
	cliContainer, _ := order["Container href"].(string)
	if order["Status"] != "ACTIVE" || order["Type"] != "Asymmetric" || !strings.HasPrefix(cliContainer, srv.URL+"/v1/containers/") {
		t.Fatalf("order get: %v", order)
	}
	// -f value, columns in the formatter's order: the client's rsa container formatter hands its JSON
	// formatter a datetime it cannot serialise (with Barbican too).
	fields := strings.Fields(mustCLI(t, demo, "secret", "container", "get", cliContainer, "-f", "value",
		"-c", "Name", "-c", "Type", "-c", "Public Key", "-c", "Private Key", "-c", "PK Passphrase"))
	if len(fields) != 5 || fields[0] != "cli-pair" || fields[1] != "rsa" || fields[4] != "None" ||
		!strings.HasPrefix(fields[2], srv.URL+"/v1/secrets/") || !strings.HasPrefix(fields[3], srv.URL+"/v1/secrets/") {
		t.Fatalf("container get: %q", fields)
	}
	pub := fields[2]
	pem := mustCLI(t, demo, "secret", "get", "--payload", pub, "-f", "value", "-c", "Payload")
	if !strings.HasPrefix(pem, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("public key through the CLI: %q", pem)
	}

	attackers(t, env, srv.URL, withPass.OrderRef, containerRef)
}

// attackers checks that nobody but demo's project reaches demo's key
// pair, and that a reader, a domain-scoped token and an anonymous caller
// cannot order one.
func attackers(t *testing.T, env *testenv.KeystoneEnv, base, orderRef, containerRef string) {
	t.Helper()
	demo := env.Token(t, testenv.UserDemo)
	alt := env.Token(t, testenv.UserAlt)
	reader, _ := env.NewProjectUser(t, "reader")
	domain := env.NewDomainUser(t, "admin").Token(t, env)
	call := func(token, method, url, body string) int {
		t.Helper()
		h := map[string]string{}
		if token != "" {
			h["X-Auth-Token"] = token
		}
		if body != "" {
			h["Content-Type"] = "application/json"
		}
		code, _ := testenv.Do(t, method, url, body, h)
		return code
	}
	body := `{"type":"asymmetric","meta":{"algorithm":"rsa","bit_length":2048,"passphrase":"x"}}`
	countOrders := func() int {
		_, b := testenv.Do(t, "GET", base+"/v1/orders", "", map[string]string{"X-Auth-Token": demo})
		var l struct{ Total int }
		_ = json.Unmarshal(b, &l)
		return l.Total
	}
	before := countOrders()
	for _, c := range []struct {
		who, token string
		want       int
	}{{"reader", reader, http.StatusForbidden}, {"domain-scoped", domain, http.StatusForbidden}, {"anonymous", "", http.StatusUnauthorized}} {
		if got := call(c.token, "POST", base+"/v1/orders", body); got != c.want {
			t.Errorf("%s orders a key pair: %d, want %d", c.who, got, c.want)
		}
	}
	if after := countOrders(); after != before {
		t.Errorf("refused callers changed demo's orders: %d -> %d", before, after)
	}

	_, b := testenv.Do(t, "GET", containerRef, "", map[string]string{"X-Auth-Token": demo})
	var c struct {
		SecretRefs []struct {
			SecretRef string `json:"secret_ref"`
		} `json:"secret_refs"`
	}
	if err := json.Unmarshal(b, &c); err != nil || len(c.SecretRefs) != 3 {
		t.Fatalf("container: %s", b)
	}
	targets := []struct{ method, url string }{{"GET", orderRef}, {"DELETE", orderRef}, {"GET", containerRef}, {"DELETE", containerRef}}
	for _, s := range c.SecretRefs {
		targets = append(targets, struct{ method, url string }{"GET", s.SecretRef}, struct{ method, url string }{"GET", s.SecretRef + "/payload"})
	}
	for _, who := range []struct{ name, token string }{{"alt", alt}, {"reader", reader}, {"domain-scoped", domain}, {"anonymous", ""}} {
		for _, tg := range targets {
			if got := call(who.token, tg.method, tg.url, ""); got != http.StatusNotFound && got != http.StatusForbidden && got != http.StatusUnauthorized {
				t.Errorf("%s %s %s: %d", who.name, tg.method, tg.url, got)
			}
		}
	}
	// Still there, whole, for demo.
	if got := call(demo, "GET", containerRef, ""); got != http.StatusOK {
		t.Errorf("demo's container after the attempts: %d", got)
	}
}
