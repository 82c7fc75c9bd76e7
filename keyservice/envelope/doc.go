// Package envelope implements the key service's envelope encryption: a ring
// of master keys (one active) seals each project's key-encryption key (KEK),
// and a project's KEK seals that project's secret payloads and project keys.
//
// Every ciphertext is AES-256-GCM with associated data naming what it belongs
// to (the project, the secret), so a sealed value copied into another row,
// another project or another column fails to open instead of decrypting.
//
// The package holds keys in memory only; it neither stores nor logs them.
// It is not a general-purpose crypto library: the object data format lives in
// objcrypt.
package envelope
