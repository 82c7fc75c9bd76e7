package envelope_test

import (
	"bytes"
	"testing"

	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/keyservice/envelope/envelopetest"
)

func TestKeyringConformance(t *testing.T) {
	ring, err := envelope.NewKeyring([]envelope.MasterKey{
		{ID: "old", Key: bytes.Repeat([]byte{1}, envelope.KeySize)},
		{ID: "new", Key: bytes.Repeat([]byte{2}, envelope.KeySize)},
	})
	if err != nil {
		t.Fatal(err)
	}
	envelopetest.Run(t, ring)
	envelopetest.Run(t, envelope.Chain{Primary: ring})
}
