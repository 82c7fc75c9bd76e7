// Package hsm keeps Arca's master key-encryption keys in a PKCS#11 token (an
// HSM; SoftHSM2 in tests). Each master key is an AES-256 secret key generated
// inside the token with CKA_SENSITIVE=true and CKA_EXTRACTABLE=false, so its
// bytes never exist outside the token: project KEKs are sealed and opened by
// the token with CKM_AES_GCM, in envelope.Seal's format and bound to the same
// associated data (envelope.KEKAAD), so a KEK moves between a key file and the
// token with "arca-manage kek rewrap".
//
// A Token implements envelope.MasterKeys. It talks to the module through
// github.com/miekg/pkcs11 directly rather than through crypto11: crypto11's
// AES-GCM AEAD panics when the token fails during Seal (a token lost while
// serving would crash arca-api), and its Context cannot be re-established
// after the token goes away. Here every token failure is an error wrapping
// keyservice.ErrUnavailable (HTTP 503), the connection is dropped, and the
// next operation after RetryInterval connects again, so the service recovers
// when the token returns.
//
// PKCS#11 modules are C libraries, so the package needs cgo; a build with
// CGO_ENABLED=0 compiles a stub whose Open says so. The library is loaded
// only when [crypto] master_key_backend = pkcs11: the default (a key file)
// never touches it.
package hsm
