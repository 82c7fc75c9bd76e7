package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/dbconn"
	"opendev.org/x/arca/keyservice"
)

// snapshotClock is the service clock of the row-snapshot tests: every
// request writes times the test knows.
var snapshotClock = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

// snapshotEnv is an env on a fixed, test-moved clock with a dbTracker.
func snapshotEnv(t *testing.T, dialect dbconn.Dialect) (*env, *fakeClock, *dbTracker) {
	t.Helper()
	clock := &fakeClock{now: snapshotClock}
	e := newEnvWith(t, dialect, keyservice.Options{Now: clock.Now})
	return e, clock, newTracker(t, e.db, dialect)
}

// TestSecretWritesChangeExactRows: on SQLite and MariaDB, each write of a
// secret and of what hangs off it (ACL, consumer) changes exactly the rows
// and columns named, and deleting the secret removes all of them.
func TestSecretWritesChangeExactRows(t *testing.T) {
	for _, dialect := range []dbconn.Dialect{dbconn.SQLite, dbconn.MySQL} {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			e, clock, tr := snapshotEnv(t, dialect)
			id := e.createSecret(`{"name":"db","payload":"hunter2","payload_content_type":"text/plain","algorithm":"aes","bit_length":256,"mode":"cbc"}`)
			tr.assertChanges(`
			INSERT INTO project_keks (created, master_key_id, project_id, secret_store, updated, wrapped_kek) VALUES ('2031-05-06 07:08:09.000000', 'test', 'demo', '', '2031-05-06 07:08:09.000000', <61 bytes>);
			INSERT INTO secrets (algorithm, bit_length, created, creator_id, expiration, id, mode, name, payload, payload_content_type, project_id, secret_store, secret_type, status, updated) VALUES ('aes', 256, '2031-05-06 07:08:09.000000', 'alice', NULL, '$S', 'cbc', 'db', <36 bytes>, 'text/plain', 'demo', '', 'opaque', 'ACTIVE', '2031-05-06 07:08:09.000000');
			`, "$S", id)

			clock.Advance(time.Minute)
			e.mustStatus(e.do("PUT", "/v1/secrets/"+id+"/acl", `{"read":{"users":["bob","carol"],"project-access":false}}`), http.StatusOK)
			tr.assertChanges(`
			INSERT INTO secret_acl_users (operation, secret_id, user_id) VALUES ('read', '$S', 'bob');
			INSERT INTO secret_acl_users (operation, secret_id, user_id) VALUES ('read', '$S', 'carol');
			INSERT INTO secret_acls (created, operation, project_access, secret_id, updated) VALUES ('2031-05-06 07:09:09.000000', 'read', 0, '$S', '2031-05-06 07:09:09.000000');
			`, "$S", id)

			clock.Advance(time.Minute)
			consumer := `{"service":"image","resource_type":"image","resource_id":"r1"}`
			v11 := []string{"OpenStack-API-Version", "key-manager 1.1"}
			e.mustStatus(e.do("POST", "/v1/secrets/"+id+"/consumers", consumer, v11...), http.StatusOK)
			tr.assertChanges(`
			INSERT INTO secret_consumers (created, project_id, resource_id, resource_type, secret_id, service, updated) VALUES ('2031-05-06 07:10:09.000000', 'demo', 'r1', 'image', '$S', 'image', '2031-05-06 07:10:09.000000');
			`, "$S", id)

			clock.Advance(time.Minute)
			e.mustStatus(e.do("DELETE", "/v1/secrets/"+id+"/consumers", consumer, v11...), http.StatusOK)
			tr.assertChanges(`
			DELETE FROM secret_consumers WHERE secret_id = '$S' AND service = 'image' AND resource_type = 'image' AND resource_id = 'r1';
			`, "$S", id)

			e.mustStatus(e.do("POST", "/v1/secrets/"+id+"/consumers", consumer, v11...), http.StatusOK)
			tr.changes()
			e.mustStatus(e.do("DELETE", "/v1/secrets/"+id+"?force=true", ""), http.StatusNoContent)
			tr.assertChanges(`
			DELETE FROM secret_acl_users WHERE secret_id = '$S' AND operation = 'read' AND user_id = 'bob';
			DELETE FROM secret_acl_users WHERE secret_id = '$S' AND operation = 'read' AND user_id = 'carol';
			DELETE FROM secret_acls WHERE secret_id = '$S' AND operation = 'read';
			DELETE FROM secret_consumers WHERE secret_id = '$S' AND service = 'image' AND resource_type = 'image' AND resource_id = 'r1';
			DELETE FROM secrets WHERE id = '$S';
			`, "$S", id)
		})
	}
}

// TestContainerWritesChangeExactRows: container create, consumer add and
// remove, and delete, on SQLite and MariaDB.
func TestContainerWritesChangeExactRows(t *testing.T) {
	for _, dialect := range []dbconn.Dialect{dbconn.SQLite, dbconn.MySQL} {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			e, clock, tr := snapshotEnv(t, dialect)
			sec := e.createSecret(`{"name":"cert","payload":"pem","payload_content_type":"text/plain"}`)
			tr.changes()

			clock.Advance(time.Minute)
			r := e.do("POST", "/v1/containers", `{"name":"tls","type":"generic","secret_refs":[{"name":"certificate","secret_ref":"`+e.url+`/v1/secrets/`+sec+`"}]}`)
			e.mustStatus(r, http.StatusCreated)
			ct := strings.TrimPrefix(r.json(t)["container_ref"].(string), e.url+"/v1/containers/")
			tr.assertChanges(`
			INSERT INTO container_secrets (container_id, name, secret_id) VALUES ('$C', 'certificate', '$S');
			INSERT INTO containers (created, creator_id, id, name, project_id, status, type, updated) VALUES ('2031-05-06 07:09:09.000000', 'alice', '$C', 'tls', 'demo', 'ACTIVE', 'generic', '2031-05-06 07:09:09.000000');
			`, "$S", sec, "$C", ct)

			clock.Advance(time.Minute)
			e.mustStatus(e.do("POST", "/v1/containers/"+ct+"/consumers", `{"name":"octavia","URL":"http://lb/1"}`), http.StatusOK)
			tr.assertChanges(`
			INSERT INTO container_consumers (container_id, created, name, project_id, updated, url) VALUES ('$C', '2031-05-06 07:10:09.000000', 'octavia', 'demo', '2031-05-06 07:10:09.000000', 'http://lb/1');
			`, "$S", sec, "$C", ct)

			clock.Advance(time.Minute)
			e.mustStatus(e.do("DELETE", "/v1/containers/"+ct+"/consumers", `{"name":"octavia","URL":"http://lb/1"}`), http.StatusOK)
			tr.assertChanges(`
			DELETE FROM container_consumers WHERE container_id = '$C' AND name = 'octavia' AND url = 'http://lb/1';
			`, "$S", sec, "$C", ct)

			e.mustStatus(e.do("PUT", "/v1/containers/"+ct+"/acl", `{"read":{"users":["bob"]}}`), http.StatusOK)
			e.mustStatus(e.do("POST", "/v1/containers/"+ct+"/consumers", `{"name":"octavia","URL":"http://lb/2"}`), http.StatusOK)
			tr.changes()
			e.mustStatus(e.do("DELETE", "/v1/containers/"+ct, ""), http.StatusNoContent)
			tr.assertChanges(`
			DELETE FROM container_acl_users WHERE container_id = '$C' AND operation = 'read' AND user_id = 'bob';
			DELETE FROM container_acls WHERE container_id = '$C' AND operation = 'read';
			DELETE FROM container_consumers WHERE container_id = '$C' AND name = 'octavia' AND url = 'http://lb/2';
			DELETE FROM container_secrets WHERE container_id = '$C' AND name = 'certificate' AND secret_id = '$S';
			DELETE FROM containers WHERE id = '$C';
			`, "$S", sec, "$C", ct)
		})
	}
}

// TestQuotaWritesChangeExactRows: setting a project's quotas writes its one
// row; setting them again updates only what changed.
func TestQuotaWritesChangeExactRows(t *testing.T) {
	for _, dialect := range []dbconn.Dialect{dbconn.SQLite, dbconn.MySQL} {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			e, clock, tr := snapshotEnv(t, dialect)
			e.mustStatus(e.do("PUT", "/v1/project-quotas/demo", `{"project_quotas":{"secrets":10,"cas":0}}`, systemAdmin...), http.StatusNoContent)
			tr.assertChanges(`
			INSERT INTO project_quotas (cas, consumers, containers, created, orders, project_id, secrets, updated) VALUES (0, NULL, NULL, '2031-05-06 07:08:09.000000', NULL, 'demo', 10, '2031-05-06 07:08:09.000000');
			`)
			clock.Advance(time.Minute)
			e.mustStatus(e.do("PUT", "/v1/project-quotas/demo", `{"project_quotas":{"secrets":20,"cas":0}}`, systemAdmin...), http.StatusNoContent)
			tr.assertChanges(`
			UPDATE project_quotas SET secrets = 20, updated = '2031-05-06 07:09:09.000000' WHERE project_id = 'demo';
			`)
		})
	}
}

// TestProjectKeyWritesChangeExactRows: the first request for a project's
// active key creates it (and the project's KEK), a rotation deactivates it
// and inserts the next, a destruction wipes the material; each writes its
// audit record, on SQLite and MariaDB.
func TestProjectKeyWritesChangeExactRows(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect dbconn.Dialect) {
		clock := &fakeClock{now: snapshotClock}
		e := newPKEnvWith(t, dialect, keyservice.Options{Now: clock.Now, ActiveKeyCacheTTL: time.Minute})
		tr := newTracker(t, e.db, dialect, keyAuditVolatile...)
		flush := func() {
			t.Helper()
			if err := e.svc.FlushAudit(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		first, _ := e.key(objectServer, "GET", "/v1/project-keys/active?project_id=demo", 200)["key_id"].(string)
		flush()
		tr.assertChanges(`
		INSERT INTO key_audit (action, created, detail, event_id, id, is_service, key_id, outcome, project_id, request_id, roles, user_id, user_project_id) VALUES ('create', '2031-05-06 07:08:09.000000', 'first key', <36 bytes>, 1, 1, '$K1', 'success', 'demo', <40 bytes>, 'key-manager:object-server', 'arca', 'service');
		INSERT INTO key_audit (action, created, detail, event_id, id, is_service, key_id, outcome, project_id, request_id, roles, user_id, user_project_id) VALUES ('get_active', '2031-05-06 07:08:09.000000', '', <36 bytes>, 2, 1, '$K1', 'success', 'demo', <40 bytes>, 'key-manager:object-server', 'arca', 'service');
		INSERT INTO project_keks (created, master_key_id, project_id, secret_store, updated, wrapped_kek) VALUES ('2031-05-06 07:08:09.000000', 'test', 'demo', '', '2031-05-06 07:08:09.000000', <61 bytes>);
		INSERT INTO project_keys (active_project_id, algorithm, bit_length, created, creator_id, deactivated, destroyed, id, material, project_id, status) VALUES ('demo', 'aes_128_cbc', 128, '2031-05-06 07:08:09.000000', 'arca', NULL, NULL, '$K1', <45 bytes>, 'demo', 'ACTIVE');
		`, "$K1", first)

		clock.Advance(time.Hour)
		second, _ := e.key(demoAdmin, "POST", "/v1/project-keys/rotate", 201)["key_id"].(string)
		flush()
		tr.assertChanges(`
		INSERT INTO key_audit (action, created, detail, event_id, id, is_service, key_id, outcome, project_id, request_id, roles, user_id, user_project_id) VALUES ('rotate', '2031-05-06 08:08:09.000000', 'previous $K1', <36 bytes>, 3, 0, '$K2', 'success', 'demo', <40 bytes>, 'admin,member,reader', 'dora', 'demo');
		INSERT INTO project_keys (active_project_id, algorithm, bit_length, created, creator_id, deactivated, destroyed, id, material, project_id, status) VALUES ('demo', 'aes_128_cbc', 128, '2031-05-06 08:08:09.000000', 'dora', NULL, NULL, '$K2', <45 bytes>, 'demo', 'ACTIVE');
		UPDATE project_keys SET active_project_id = NULL, deactivated = '2031-05-06 08:08:09.000000', status = 'DEACTIVATED' WHERE id = '$K1';
		`, "$K1", first, "$K2", second)

		clock.Advance(time.Hour)
		e.status(demoAdmin, "DELETE", "/v1/project-keys/"+first, 204)
		flush()
		tr.assertChanges(`
		INSERT INTO key_audit (action, created, detail, event_id, id, is_service, key_id, outcome, project_id, request_id, roles, user_id, user_project_id) VALUES ('destroy', '2031-05-06 09:08:09.000000', '', <36 bytes>, 4, 0, '$K1', 'success', 'demo', <40 bytes>, 'admin,member,reader', 'dora', 'demo');
		UPDATE project_keys SET destroyed = '2031-05-06 09:08:09.000000', material = NULL, status = 'DESTROYED' WHERE id = '$K1';
		`, "$K1", first, "$K2", second)
	})
}
