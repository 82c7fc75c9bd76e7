package diskfile

import "testing"

func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{"1700000000.12345", "1700000000.12345_000000000000000a", "1", "1e9", "-1", "1_", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		back, err := ParseTimestamp(ts.Internal())
		if err != nil || back != ts {
			t.Fatalf("%q -> %s -> %v %v", s, ts.Internal(), back, err)
		}
	})
}

func FuzzFileNames(f *testing.F) {
	for _, s := range []string{"1700000000.12345.data", "1700000001.00000+0.meta", "1700000001.00000-1a.meta", "1.ts", "junk", "1.00000+zz.meta"} {
		f.Add(s, "1700000000.00000.data")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		st := gather([]string{a, b})
		if st.data != nil && st.ts != nil {
			t.Fatalf("both data and tombstone chosen from %q %q", a, b)
		}
		if st.meta != nil && st.data == nil {
			t.Fatalf("meta without data from %q %q", a, b)
		}
	})
}
