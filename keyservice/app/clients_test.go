package app_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/orders"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/secrets"

	"opendev.org/x/arca/internal/testenv"
)

// databases returns the [database] connection URLs the real-client tests
// run against: a fresh SQLite file and a fresh database on the real MariaDB.
func databases(t *testing.T) map[string]string {
	t.Helper()
	_, dsn := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	url := "mysql+pymysql://" + cfg.User
	if cfg.Passwd != "" {
		url += ":" + cfg.Passwd
	}
	url += "@" + cfg.Addr + "/" + cfg.DBName + "?charset=utf8mb4"
	return map[string]string{
		"sqlite": "", // testapi makes a fresh file
		"mysql":  url,
	}
}

// TestBarbicanCLI drives a real arca-api process with the real barbican CLI
// (Debian python3-barbicanclient) in no-auth mode.
func TestBarbicanCLI(t *testing.T) {
	for name, dbURL := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL})
			cli := func(args ...string) string {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				full := append([]string{"--no-auth", "--endpoint", srv.URL, "--os-project-id", "demo"}, args...)
				out, errOut, err := testenv.RunOutputs(ctx, nil, "barbican", full...)
				if err != nil {
					t.Fatalf("barbican %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
				}
				return out
			}

			ref := cli("secret", "store", "--name", "cli-text", "--payload", "p@ss#word", "-t", "text/plain", "-f", "value", "-c", "Secret href")
			if !strings.HasPrefix(ref, srv.URL+"/v1/secrets/") {
				t.Fatalf("secret href %q", ref)
			}
			if got := cli("secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); got != "p@ss#word" {
				t.Fatalf("payload %q", got)
			}
			var meta map[string]any
			if err := json.Unmarshal([]byte(cli("secret", "get", ref, "-f", "json")), &meta); err != nil {
				t.Fatal(err)
			}
			if meta["Name"] != "cli-text" || meta["Status"] != "ACTIVE" || meta["Content types"] == nil {
				t.Fatalf("secret get: %v", meta)
			}

			// Binary: the CLI base64-encodes the file and sends octet-stream.
			dir := t.TempDir()
			blob := []byte{0, 1, 2, 3, 0xff, 0x80, '\n'}
			in, out := filepath.Join(dir, "in.bin"), filepath.Join(dir, "out.bin")
			if err := os.WriteFile(in, blob, 0o600); err != nil {
				t.Fatal(err)
			}
			binRef := cli("secret", "store", "--name", "cli-bin", "--file", in, "-f", "value", "-c", "Secret href")
			cli("secret", "get", "--file", out, "-t", "application/octet-stream", binRef)
			if got, _ := os.ReadFile(out); string(got) != string(blob) {
				t.Fatalf("binary round trip: %v, want %v", got, blob)
			}

			// Two-step: store without payload, then update.
			emptyRef := cli("secret", "store", "--name", "cli-later", "-f", "value", "-c", "Secret href")
			cli("secret", "update", emptyRef, "later-value")
			if got := cli("secret", "get", "--payload", emptyRef, "-f", "value", "-c", "Payload"); got != "later-value" {
				t.Fatalf("updated payload %q", got)
			}

			var list []map[string]any
			if err := json.Unmarshal([]byte(cli("secret", "list", "-f", "json")), &list); err != nil {
				t.Fatal(err)
			}
			if len(list) != 3 {
				t.Fatalf("secret list: %v", list)
			}

			orderRef := cli("secret", "order", "create", "key", "--name", "cli-key", "--algorithm", "aes", "--bit-length", "256", "-f", "value", "-c", "Order href")
			var order map[string]any
			if err := json.Unmarshal([]byte(cli("secret", "order", "get", orderRef, "-f", "json")), &order); err != nil {
				t.Fatal(err)
			}
			keyRef, _ := order["Secret href"].(string)
			if order["Status"] != "ACTIVE" || !strings.HasPrefix(keyRef, srv.URL) {
				t.Fatalf("order get: %v", order)
			}
			keyOut := filepath.Join(dir, "key.bin")
			cli("secret", "get", "--file", keyOut, "-t", "application/octet-stream", keyRef)
			if got, _ := os.ReadFile(keyOut); len(got) != 32 {
				t.Fatalf("ordered key is %d bytes, want 32", len(got))
			}

			cli("secret", "delete", ref)
			if err := json.Unmarshal([]byte(cli("secret", "list", "-f", "json")), &list); err != nil {
				t.Fatal(err)
			}
			if len(list) != 3 { // two stored + the ordered key
				t.Fatalf("after delete: %d secrets", len(list))
			}
			for _, line := range strings.Split(srv.Logs(), "\n") {
				if strings.Contains(line, "p@ss#word") || strings.Contains(line, "later-value") {
					t.Fatalf("a payload reached the logs: %s", line)
				}
			}
		})
	}
}

// TestGophercloud drives arca-api with gophercloud's keymanager/v1 client.
func TestGophercloud(t *testing.T) {
	for name, dbURL := range databases(t) {
		t.Run(name, func(t *testing.T) {
			srv := testenv.StartAPI(t, testenv.APIOptions{DatabaseURL: dbURL})
			ctx := context.Background()
			client := &gophercloud.ServiceClient{
				ProviderClient: &gophercloud.ProviderClient{},
				Endpoint:       srv.URL + "/v1/",
				MoreHeaders:    map[string]string{"X-Project-Id": "demo", "X-User-Id": "gopher"},
			}
			expires := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
			created, err := secrets.Create(ctx, client, secrets.CreateOpts{
				Name: "gc", Payload: "gopher-secret", PayloadContentType: "text/plain",
				Algorithm: "aes", BitLength: 256, Mode: "cbc", SecretType: secrets.OpaqueSecret, Expiration: &expires,
			}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			id := created.SecretRef[strings.LastIndex(created.SecretRef, "/")+1:]
			got, err := secrets.Get(ctx, client, id).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != "gc" || got.CreatorID != "gopher" || !got.Expiration.Equal(expires) || got.Created.IsZero() {
				t.Fatalf("secret %+v", got)
			}
			payload, err := secrets.GetPayload(ctx, client, id, nil).Extract()
			if err != nil || string(payload) != "gopher-secret" {
				t.Fatalf("payload %q %v", payload, err)
			}
			if _, err := secrets.CreateMetadata(ctx, client, id, secrets.MetadataOpts{"team": "storage"}).Extract(); err != nil {
				t.Fatal(err)
			}
			md, err := secrets.GetMetadata(ctx, client, id).Extract()
			if err != nil || md["team"] != "storage" {
				t.Fatalf("metadata %v %v", md, err)
			}

			empty, err := secrets.Create(ctx, client, secrets.CreateOpts{Name: "gc-later"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			emptyID := empty.SecretRef[strings.LastIndex(empty.SecretRef, "/")+1:]
			if err := secrets.Update(ctx, client, emptyID, secrets.UpdateOpts{ContentType: "text/plain", Payload: "second"}).ExtractErr(); err != nil {
				t.Fatal(err)
			}

			// gophercloud follows "next" links: 12 secrets in pages of 5.
			for i := 0; i < 10; i++ {
				if _, err := secrets.Create(ctx, client, secrets.CreateOpts{Name: "page"}).Extract(); err != nil {
					t.Fatal(err)
				}
			}
			pages, err := secrets.List(client, secrets.ListOpts{Limit: 5}).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			all, err := secrets.ExtractSecrets(pages)
			if err != nil || len(all) != 12 {
				t.Fatalf("listed %d secrets: %v", len(all), err)
			}

			order, err := orders.Create(ctx, client, orders.CreateOpts{
				Type: orders.KeyOrder, Meta: orders.MetaOpts{Name: "gc-key", Algorithm: "aes", BitLength: 128, Mode: "cbc"},
			}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			orderID := order.OrderRef[strings.LastIndex(order.OrderRef, "/")+1:]
			order, err = orders.Get(ctx, client, orderID).Extract()
			if err != nil || order.Status != "ACTIVE" || order.SecretRef == "" {
				t.Fatalf("order %+v %v", order, err)
			}
			keyID := order.SecretRef[strings.LastIndex(order.SecretRef, "/")+1:]
			key, err := secrets.GetPayload(ctx, client, keyID, secrets.GetPayloadOpts{PayloadContentType: "application/octet-stream"}).Extract()
			if err != nil || len(key) != 16 {
				t.Fatalf("ordered key %d bytes, %v", len(key), err)
			}
			orderPages, err := orders.List(client, nil).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if list, _ := orders.ExtractOrders(orderPages); len(list) != 1 {
				t.Fatalf("orders: %d", len(list))
			}
			if err := orders.Delete(ctx, client, orderID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := secrets.Delete(ctx, client, id).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if _, err := secrets.Get(ctx, client, id).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
				t.Fatalf("deleted secret: %v", err)
			}
		})
	}
}
