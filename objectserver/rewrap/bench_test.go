package rewrap

import (
	"context"
	"fmt"
	"testing"

	"opendev.org/x/arca/objectserver/rewrap/rewraptest"
)

// BenchmarkRewrap measures one rewrap job over b.N small objects.
func BenchmarkRewrap(b *testing.B) {
	m := newNode(b)
	keys := rewraptest.NewKeys()
	keys.Rotate("p1")
	for i := range b.N {
		putObject(b, m, keys, "p1", fmt.Sprint("o", i), []byte(fmt.Sprint("small object ", i)), nil)
	}
	keys.Rotate("p1")
	b.ResetTimer()
	s, err := Run(context.Background(), Options{Devices: m.Devices, Project: "p1", Keys: keys, ChecksumDelay: 1})
	b.StopTimer()
	if err != nil || s.Rewrapped != b.N {
		b.Fatalf("%v %+v", err, s)
	}
	b.ReportMetric(float64(b.N)/s.Elapsed.Seconds(), "objects/s")
	b.ReportMetric(float64(s.IO.XattrWrites)/float64(b.N), "xattr-writes/op")
}
