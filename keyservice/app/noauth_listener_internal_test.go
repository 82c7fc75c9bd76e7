package app

import (
	"net"
	"strings"
	"testing"
)

// TestNoAuthListenerChecked: bind_host "localhost" passes CheckNoAuthBind
// by its name; what it resolved to is checked once the listener is open,
// so a host whose name service maps "localhost" beyond loopback gets a
// refusal, not a no-auth key service on the network.
func TestNoAuthListenerChecked(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    Config
		addr   net.Addr
		refuse bool
	}{
		{"noauth on 127.0.0.1", Config{AuthStrategy: "noauth", BindHost: "localhost"}, &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9311}, false},
		{"noauth on ::1", Config{AuthStrategy: "noauth", BindHost: "localhost"}, &net.TCPAddr{IP: net.ParseIP("::1"), Port: 9311}, false},
		{"noauth on a LAN address", Config{AuthStrategy: "noauth", BindHost: "localhost"}, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 9311}, true},
		{"noauth on every address", Config{AuthStrategy: "noauth", BindHost: "localhost"}, &net.TCPAddr{IP: net.IPv6unspecified, Port: 9311}, true},
		{"noauth beyond loopback, allowed", Config{AuthStrategy: "noauth", BindHost: "localhost", AllowInsecureNoAuthBind: true}, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 9311}, false},
		{"keystone anywhere", Config{AuthStrategy: "keystone", BindHost: "localhost"}, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 9311}, false},
	} {
		err := c.cfg.checkNoAuthListener(c.addr)
		if c.refuse != (err != nil) {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "allow_insecure_noauth_bind") {
			t.Errorf("%s: the refusal does not say how to allow it: %v", c.name, err)
		}
	}
}
