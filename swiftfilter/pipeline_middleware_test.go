package swiftfilter

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"opendev.org/x/arca/internal/testenv"
)

// middlewareHarness runs arca_swift.middleware in front of a WSGI app
// that answers 201, against a decision socket of its own that answers
// each question with the line the case names ({project} replaced by the
// question's project_id; a question without one gets no key id, as the
// filter answers an anonymous write), and prints, per case, the
// status, the key id the app saw and the questions asked.
const middlewareHarness = `
import json, os, socket, sys, tempfile, threading
from arca_swift import middleware as mw
from swift.common.swob import Request, Response

class Socket(object):
    def __init__(self, answer):
        self.asks, self.answer = [], answer
        self.path = os.path.join(tempfile.mkdtemp(), 's')
        self.s = socket.socket(socket.AF_UNIX)
        self.s.bind(self.path)
        self.s.listen(8)
        threading.Thread(target=self.loop, daemon=True).start()
    def loop(self):
        while True:
            c, _ = self.s.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()
    def serve(self, c):
        f = c.makefile('rb')
        for line in f:
            ask = json.loads(line)
            self.asks.append(ask)
            answer = self.answer
            if '{project}' in answer and 'project_id' not in ask:
                answer = '{"v":1}'  # as the filter answers an anonymous write
            c.sendall(answer.replace('{project}', ask.get('project_id', '')).encode() + b'\n')

def app(env, start_response):
    app.key_id = env.get('HTTP_X_ARCA_KEY_ID')
    return Response(status=201)(env, start_response)

out = []
for case in json.loads(sys.argv[1]):
    sock = Socket(case['answer'])
    m = mw.filter_factory({}, socket=sock.path, timeout='2')(app)
    app.key_id = None
    env = {'HTTP_X_PROJECT_ID': 'victim'}
    if case.get('authtoken'):
        # as authtoken and keystoneauth on its left leave it (a subrequest
        # of Swift's middleware carries these two, not the token data)
        env['swift.authorize'] = lambda req: None
    req = Request.blank('/v1/AUTH_victim/c/o', method='PUT', body=b'x', environ=env)
    resp = req.get_response(m)
    out.append({'name': case['name'], 'status': resp.status_int, 'key_id': app.key_id, 'asks': sock.asks})
print(json.dumps(out))
`

// TestMiddlewareTrustsOnlyWhatItMay: the Python middleware in Swift's
// pipeline takes the caller's project only with keystoneauth's
// swift.authorize beside it (sitting left of authtoken, it once asked
// about, and kept, the project a forged X-Project-Id named), and every answer of the decision socket
// that is not a refusal, a key id or nothing answers 503: a non-object
// answer once raised (500, the connection neither closed nor pooled),
// {"status":200} answered the PUT without Swift, and a key id with CR LF
// was attached as it was.
func TestMiddlewareTrustsOnlyWhatItMay(t *testing.T) {
	keyed := `{"v":1,"key_id":"k-{project}","account":"AUTH_victim"}`
	cases := []struct {
		name, answer string
		authtoken    bool
		status       int
		keyID        string
		askedProject string
	}{
		{"behind authtoken", keyed, true, 201, "k-victim", "victim"},
		{"left of authtoken: a forged X-Project-Id", keyed, false, 201, "", ""},
		{"no key id", `{"v":1}`, true, 201, "", "victim"},
		{"a refusal", `{"v":1,"status":403,"message":"no"}`, true, 403, "", "victim"},
		{"not an object", `[1,2]`, true, 503, "", "victim"},
		{"null", `null`, true, 503, "", "victim"},
		{"a status that is no refusal", `{"v":1,"status":200}`, true, 503, "", "victim"},
		{"a status that is no number", `{"v":1,"status":"abc"}`, true, 503, "", "victim"},
		{"a key id that is no string", `{"v":1,"key_id":123}`, true, 503, "", "victim"},
		{"a key id with CR LF", `{"v":1,"key_id":"a\r\nX-Evil: 1"}`, true, 503, "", "victim"},
	}
	in := make([]map[string]any, len(cases))
	for i, c := range cases {
		in[i] = map[string]any{"name": c.name, "answer": c.answer, "authtoken": c.authtoken}
	}
	arg, _ := json.Marshal(in)
	out := runMiddlewarePython(t, middlewareHarness, string(arg))
	var got []struct {
		Name   string           `json:"name"`
		Status int              `json:"status"`
		KeyID  *string          `json:"key_id"`
		Asks   []map[string]any `json:"asks"`
	}
	if err := json.Unmarshal(out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:], &got); err != nil || len(got) != len(cases) {
		t.Fatalf("harness output %q: %v", out, err)
	}
	for i, c := range cases {
		g := got[i]
		keyID := ""
		if g.KeyID != nil {
			keyID = *g.KeyID
		}
		if g.Status != c.status || (c.status == 201 && keyID != c.keyID) || (c.status != 201 && keyID != "") {
			t.Errorf("%s: %d with key id %q, want %d with %q", c.name, g.Status, keyID, c.status, c.keyID)
		}
		if len(g.Asks) != 1 {
			t.Errorf("%s: %d questions to the socket, want 1", c.name, len(g.Asks))
			continue
		}
		if p, _ := g.Asks[0]["project_id"].(string); p != c.askedProject {
			t.Errorf("%s: asked about project %q, want %q", c.name, p, c.askedProject)
		}
	}
}

// middlewareListingHarness runs the middleware on a container GET whose listing is
// the file argv[2], against the decision socket argv[1], with
// MAX_QUESTION argv[3]; it prints the status, the number of questions the
// listing's items make, and the opened listing. With "bound" it instead
// checks question_chunks' weights against json.dumps for the worst
// characters a name may hold, and prints the largest question.
const middlewareListingHarness = `
import json, sys
from arca_swift import middleware as mw
from swift.common.swob import Request, Response
if sys.argv[1] == 'bound':
    largest = 0
    for ch in ('\x01', '"', '\U0001F600', 'a'):
        items = [{'name': ch * 1024 + str(i), 'field': 'etag', 'token': 'arca1.k1.' + 'x' * 80} for i in range(1200)]
        for chunk in mw.question_chunks(items):
            largest = max(largest, len(json.dumps({'v': 1, 'op': 'open_listing', 'account': 'AUTH_demo', 'container': 'c', 'items': chunk})))
    print(json.dumps({'largest': largest, 'max': mw.MAX_QUESTION}))
    sys.exit(0)
mw.MAX_QUESTION = int(sys.argv[3])
body = open(sys.argv[2], 'rb').read()
def app(env, start_response):
    return Response(status=200, body=body, content_type='application/json')(env, start_response)
m = mw.filter_factory({}, socket=sys.argv[1], timeout='30')(app)
resp = Request.blank('/v1/AUTH_demo/c').get_response(m)
items = mw.JSONListing(body).items
print(json.dumps({'status': resp.status_int, 'questions': len(list(mw.question_chunks(items))), 'listing': json.loads(resp.body)}))
`

// TestMiddlewareListingInQuestions: the middleware sends a listing's
// sealed values to the decision socket in questions that stay under a
// bound, and puts the answers together in order. A page of 10,000 names
// of 1,024 control characters was one 61 MiB line, over the Go side's 32
// MiB: that container's listing answered 503 for good. The bound holds
// for the worst characters (json.dumps escapes them to 6 or 12 bytes).
func TestMiddlewareListingInQuestions(t *testing.T) {
	run := func(args ...string) []byte {
		t.Helper()
		return runMiddlewarePython(t, middlewareListingHarness, args...)
	}
	var bound struct{ Largest, Max int }
	if err := json.Unmarshal(run("bound"), &bound); err != nil || bound.Largest == 0 || bound.Largest > bound.Max || bound.Max > maxDecisionLine {
		t.Fatalf("largest question %d bytes, bound %d, the socket's line %d (%v)", bound.Largest, bound.Max, maxDecisionLine, err)
	}

	sock := startDecisions(t, &listingKeys{}, PipelineSettings{})
	const md5A = "0cc175b9c0f1b6a831c399e269772661"
	var entries []map[string]any
	for i := range 60 {
		name := strings.Repeat("\x01", 90) + strconv.Itoa(i)
		entries = append(entries, map[string]any{"name": name, "hash": seal(t, "k1", name, "etag", md5A), "bytes": 1,
			"content_type": "x", "last_modified": "2026-01-01T00:00:00.000000"})
	}
	body, _ := json.Marshal(entries)
	file := filepath.Join(t.TempDir(), "listing.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status    int              `json:"status"`
		Questions int              `json:"questions"`
		Listing   []map[string]any `json:"listing"`
	}
	if err := json.Unmarshal(run(sock, file, "8192"), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != 200 || got.Questions < 5 || len(got.Listing) != len(entries) {
		t.Fatalf("status %d, %d questions, %d entries", got.Status, got.Questions, len(got.Listing))
	}
	for i, e := range got.Listing {
		if e["hash"] != md5A || e["name"] != entries[i]["name"] {
			t.Fatalf("entry %d: %v", i, e)
		}
	}
}

// runMiddlewarePython runs script with Debian's python3 and the arca_swift
// package on its path, and returns what it printed.
func runMiddlewarePython(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import swift.common.swob").Run(); err != nil {
		testenv.StackMissing(t, "Debian's swift Python packages are not installed (tools/stack.sh install)")
	}
	cmd := exec.Command(python, append([]string{"-c", script}, args...)...)
	cmd.Env = append(cmd.Environ(), "PYTHONPATH="+filepath.Join(".", "python"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python harness %v: %v", args, err)
	}
	return out
}
